"""lobster.vector: map biomedical free text to MONDO, UBERON and Cell Ontology
concepts. A native drop-in for the Lobster platform's vector layer.

    from lobster.vector import VectorSearchService
    service = VectorSearchService()              # configured from the environment
    service.build("cell_type")                   # once: embed CL, fit its matcher
    best = service.match_ontology("CD8+ T cells", "cell_type", k=3)[0]
    print(best.ontology_id, best.term, best.score)

Importing loads no model; nothing is opened until the first call.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from ._native import __version__
from .config import VectorSearchConfig
from .errors import (
    CollectionUnavailable,
    InvalidInput,
    LobsterVectorError,
    ModelError,
    NotAvailable,
    NotFound,
    StoreError,
    StoreLocked,
)
from .models import ArtifactMetadata, OntologyMatch
from .service import ONTOLOGY_COLLECTIONS, VectorSearchService, get_default_service

__all__ = [
    "__version__",
    "VectorSearchService",
    "VectorSearchConfig",
    "OntologyMatch",
    "ArtifactMetadata",
    "ONTOLOGY_COLLECTIONS",
    "LobsterVectorError",
    "InvalidInput",
    "NotFound",
    "CollectionUnavailable",
    "NotAvailable",
    "StoreLocked",
    "StoreError",
    "ModelError",
    "get_default_service",
    "match_terms",
    "build",
    "lookup",
]


def match_terms(
    terms: Sequence[str], ontology: str, k: int = 5, min_score: Optional[float] = None
) -> list[list[Any]]:
    """Matches a whole column with the default service (see
    :meth:`VectorSearchService.match_terms`)."""
    return get_default_service().match_terms(terms, ontology, k, min_score)


def build(ontology: str = "all", source: Optional[str] = None, force: bool = False) -> list[dict[str, Any]]:
    """Builds collections into the default store (see :meth:`VectorSearchService.build`)."""
    return get_default_service().build(ontology, source, force)


def lookup(term_id: str) -> dict[str, Any]:
    """A term's label, definition, synonyms, parents and obsolete status."""
    return get_default_service().lookup(term_id)
