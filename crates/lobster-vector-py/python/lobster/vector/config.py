"""``VectorSearchConfig``: which store, embedder and reranker a service uses.

Values resolve as the CLI's do: what is passed here, else the environment
(``LOBSTER_VECTOR_BACKEND``, ``LOBSTER_VECTOR_STORE_PATH``,
``LOBSTER_EMBEDDING_PROVIDER``, ``LOBSTER_RERANKER``, and for the remote
backends ``LOBSTER_PGVECTOR_URL``, ``LOBSTER_CHROMA_URL``, ...), else the
defaults (``local`` store under ``~/.lobster/vector_store``, ``minilm``, no
reranker).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

from . import _native

__all__ = ["VectorSearchConfig"]


@dataclass
class VectorSearchConfig:
    """Configuration of a :class:`~lobster.vector.service.VectorSearchService`.

    ``backend``: ``local`` | ``memory`` | ``pgvector`` | ``faiss`` | ``chromadb``;
    ``embedding_provider``: ``minilm`` | ``sapbert`` | ``openai``;
    ``reranker``: ``none`` | ``cross_encoder`` | ``cohere``;
    ``persist_path``: the ``local`` store's directory;
    ``default_top_k``: results per query when none is asked for;
    ``assets_dir``: where models and ontology sources are (``LOBSTER_ASSETS_DIR``).
    ``None`` resolves from the environment, then the defaults.
    """

    backend: Optional[str] = None
    embedding_provider: Optional[str] = None
    persist_path: Optional[str] = None
    default_top_k: int = 5
    reranker: Optional[str] = None
    assets_dir: Optional[str] = None

    def __post_init__(self) -> None:
        resolved = _native.resolve_config(
            backend=self.backend,
            store_path=self.persist_path,
            embedding_provider=self.embedding_provider,
            reranker=self.reranker,
        )
        self.backend = resolved["backend"]
        self.embedding_provider = resolved["embedding_provider"]
        self.reranker = resolved["reranker"]
        self.persist_path = str(resolved["store_path"])
        if self.assets_dir is None:
            self.assets_dir = str(resolved["assets_dir"])
        if isinstance(self.default_top_k, bool) or not isinstance(self.default_top_k, int):
            raise TypeError(f"default_top_k must be an int, got {self.default_top_k!r}")
        if self.default_top_k < 1:
            raise ValueError(f"default_top_k must be at least 1, got {self.default_top_k}")

    @classmethod
    def from_env(cls) -> "VectorSearchConfig":
        """The configuration the environment describes (as the CLI reads it)."""
        return cls(assets_dir=os.environ.get("LOBSTER_ASSETS_DIR") or None)

    def create_backend(self) -> _native.Store:
        """Opens the configured store."""
        return _native.Store(backend=self.backend, store_path=self.persist_path)

    def create_embedder(self) -> _native.Embedder:
        """The configured embedder; its model loads on first use."""
        return _native.Embedder(provider=self.embedding_provider)

    def create_reranker(self) -> Optional[_native.Reranker]:
        """The configured reranker, or ``None`` for ``none``."""
        if self.reranker == "none":
            return None
        return _native.Reranker(kind=self.reranker)

    def describe(self) -> dict[str, Any]:
        """The resolved values, secrets masked (as ``lobster-vector info`` shows them)."""
        return dict(
            _native.resolve_config(
                backend=self.backend,
                store_path=self.persist_path,
                embedding_provider=self.embedding_provider,
                reranker=self.reranker,
            ),
            default_top_k=self.default_top_k,
        )
