"""Exceptions raised by lobster.vector.

Every error of the native layer is a :class:`LobsterVectorError` whose
message is the error and its causes; each class also derives from the
built-in exception a Python caller would catch for it (``ValueError`` for bad
input, ``LookupError`` for a missing collection or term, ...).
"""

from __future__ import annotations

__all__ = [
    "LobsterVectorError",
    "InvalidInput",
    "NotFound",
    "CollectionUnavailable",
    "NotAvailable",
    "StoreLocked",
    "Unauthorized",
    "StoreError",
    "ModelError",
    "Interrupted",
]


class LobsterVectorError(Exception):
    """Base class. ``kind`` names the failure (``invalid_input``, ``not_found``, ...)."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


class InvalidInput(LobsterVectorError, ValueError):
    """The input or configuration is wrong (unknown ontology, empty text, bad value)."""


class NotFound(LobsterVectorError, LookupError):
    """A collection, ontology build or term does not exist."""


class CollectionUnavailable(LobsterVectorError, RuntimeError):
    """The collection exists but cannot answer: built by another embedder, or unfinished."""


class NotAvailable(LobsterVectorError, RuntimeError):
    """A backend, provider or reranker that this build does not contain."""


class StoreLocked(LobsterVectorError, RuntimeError):
    """Another writer holds the store, or it was opened read-only."""


class Unauthorized(LobsterVectorError, PermissionError):
    """A remote service refused the credentials."""


class StoreError(LobsterVectorError, OSError):
    """A file, storage engine or remote service failed."""


class ModelError(LobsterVectorError, RuntimeError):
    """A model could not be found, loaded or run."""


class Interrupted(LobsterVectorError, RuntimeError):
    """The operation was stopped and rolled back."""
