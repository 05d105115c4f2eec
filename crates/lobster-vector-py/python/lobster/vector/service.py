"""``VectorSearchService``: the entry point the Lobster platform imports.

Same names and shapes as the predecessor (``query``, ``query_batch``,
``match_ontology``, ``ONTOLOGY_COLLECTIONS``), backed by the native matcher:
exact labels and synonyms, the lexical and abbreviation channels, the ranker
and the calibrated confidence the build fitted. Nothing is opened or loaded
until the first call; one service may be shared by any number of threads,
and every call releases the GIL while it embeds and searches.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Iterator, Optional, Sequence

from . import _native
from .config import VectorSearchConfig
from .errors import NotFound
from .models import ArtifactMetadata, OntologyMatch, make_match

__all__ = [
    "VectorSearchService",
    "ONTOLOGY_COLLECTIONS",
    "ONTOLOGY_ALIASES",
    "get_default_service",
    "OntologyMatch",
]

#: Ontology names and aliases → the canonical name.
ONTOLOGY_ALIASES: dict[str, str] = {
    "mondo": "mondo",
    "uberon": "uberon",
    "cell_ontology": "cell_ontology",
    "disease": "mondo",
    "tissue": "uberon",
    "cell_type": "cell_ontology",
}


def _check_texts(texts: Any, what: str) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError(f"{what} must be a list of strings, got {type(texts).__name__}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"{what}[{i}] must be a string, got {type(t).__name__}")
    return out


def _check_k(k: Any, name: str) -> int:
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"{name} must be an int, got {k!r}")
    if k < 1:
        raise ValueError(f"{name} must be at least 1, got {k}")
    return k


def _check_unit(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be between 0 and 1, got {value}")


class VectorSearchService:
    """Embeds, searches, matches and ranks over one configured store.

    ``config`` defaults to :meth:`VectorSearchConfig.from_env`; ``backend``,
    ``embedder`` and ``reranker`` (handles from the config's ``create_*``
    methods) replace the configured ones.
    """

    def __init__(
        self,
        config: Optional[VectorSearchConfig] = None,
        backend: Optional[_native.Store] = None,
        embedder: Optional[_native.Embedder] = None,
        reranker: Optional[_native.Reranker] = None,
    ) -> None:
        for value, cls, name in (
            (backend, _native.Store, "backend"),
            (embedder, _native.Embedder, "embedder"),
            (reranker, _native.Reranker, "reranker"),
        ):
            if value is not None and not isinstance(value, cls):
                raise TypeError(
                    f"{name} must be a lobster.vector {cls.__name__} "
                    f"(VectorSearchConfig.create_{name}()), got {type(value).__name__}"
                )
        self._config = config if config is not None else VectorSearchConfig.from_env()
        self._backend = backend
        self._embedder = embedder
        self._reranker = reranker
        self._native: Optional[_native.Service] = None
        self._lock = threading.Lock()

    @property
    def config(self) -> VectorSearchConfig:
        return self._config

    def _service(self) -> _native.Service:
        service = self._native
        if service is not None:
            return service
        with self._lock:
            if self._native is None:
                c = self._config
                backend = self._backend if self._backend is not None else c.create_backend()
                embedder = self._embedder if self._embedder is not None else c.create_embedder()
                reranker = self._reranker if self._reranker is not None else c.create_reranker()
                self._native = _native.Service(backend, embedder, reranker, c.assets_dir)
            return self._native

    # -- the predecessor's API -------------------------------------------------

    def query(self, text: str, collection: str, top_k: Optional[int] = None) -> list[dict[str, Any]]:
        """The ``top_k`` (default ``config.default_top_k``) nearest records of
        ``collection``: dicts with ``term``, ``ontology_id``, ``score``
        (``clamp(1 - distance, 0, 1)``, 4 decimals), ``metadata``, ``distance_metric``."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a string, got {type(text).__name__}")
        return self.query_batch([text], collection, top_k)[0]

    def query_batch(
        self, texts: Sequence[str], collection: str, top_k: Optional[int] = None
    ) -> list[list[dict[str, Any]]]:
        """:meth:`query` for many texts, in one embedding batch."""
        texts = _check_texts(texts, "texts")
        k = _check_k(top_k or self._config.default_top_k, "top_k")
        if not texts:
            return []
        return self._service().query_batch(texts, collection, k)

    def match_ontology(self, term: str, ontology: str, k: int = 5) -> list[Any]:
        """The best ``k`` concepts of ``ontology`` for ``term``, best first.

        ``ontology``: ``mondo``/``disease``, ``uberon``/``tissue``,
        ``cell_ontology``/``cell_type`` (or an exact collection name); an
        unknown name raises ``ValueError`` listing the valid ones. Returns
        :class:`OntologyMatch` (the platform's own type where importable).
        """
        if not isinstance(term, str):
            raise TypeError(f"term must be a string, got {type(term).__name__}")
        return self.match_terms([term], ontology, k)[0]

    # -- beyond the predecessor --------------------------------------------------

    def match_terms(
        self,
        terms: Sequence[str],
        ontology: str,
        k: int = 5,
        min_score: Optional[float] = None,
        within: Optional[str] = None,
    ) -> list[list[Any]]:
        """:meth:`match_ontology` for a whole column in one call, results in
        input order; rows scoring below ``min_score`` (0..1) are dropped;
        ``within`` keeps only a term id and its descendants."""
        terms = _check_texts(terms, "terms")
        k = _check_k(k, "k")
        if min_score is not None:
            _check_unit(min_score, "min_score")
        if not terms:
            return []
        rows = self._service().match_batch(terms, ontology, k, within)
        return [
            [make_match(r, term) for r in per_term if min_score is None or r["score"] >= min_score]
            for term, per_term in zip(terms, rows)
        ]

    def match_sssom(
        self,
        terms: Sequence[str],
        ontology: str,
        k: int = 1,
        min_score: float = 0.0,
        license: Optional[str] = None,
    ) -> str:
        """The best ``k`` concepts per term as SSSOM/TSV text (what
        ``lobster-vector map --format sssom`` writes): literal subjects, each
        term's review status (``accepted``, ``review``, ``unmapped``) in
        ``comment``, ``sssom:NoTermFound`` below ``min_score``."""
        terms = _check_texts(terms, "terms")
        k = _check_k(k, "k")
        _check_unit(min_score, "min_score")
        return self._service().match_sssom(terms, ontology, k, float(min_score), license)

    def curated_mappings(self) -> list[dict[str, Any]]:
        """The store's curated mappings (``lobster-vector curate``), which every
        match answers first with ``match_type`` ``curated``."""
        return self._service().curated()

    def build(self, ontology: str = "all", source: Optional[str] = None, force: bool = False) -> list[dict[str, Any]]:
        """Builds the collections of ``ontology`` (a name, alias or ``all``)
        from the newest sources in the asset directory (or the file
        ``source``), fitting each matcher; returns one report per collection.
        An identical earlier build is kept unless ``force``."""
        return self._service().build(ontology, source, force)

    def lookup(self, term_id: str) -> dict[str, Any]:
        """Label, definition, synonyms, parents, obsolete status and replacement of ``term_id``."""
        return self._service().lookup(term_id)

    def neighbors(self, term_id: str, depth: int = 1) -> dict[str, Any]:
        """Parents, children, siblings, and ancestors and descendants to ``depth``."""
        return self._service().neighbors(term_id, _check_k(depth, "depth"))

    def ontology(self, ontology: str) -> _native.Ontology:
        """The loaded source of ``ontology`` (for :func:`~lobster.vector.ontology_graph.get_neighbors`)."""
        return self._service().ontology(ontology)

    def collections(self) -> list[dict[str, Any]]:
        """Every collection of the store: name, count, dimension, complete, artifact."""
        return self._service().store.collections()

    def resolve(self, ontology: str) -> str:
        """The collection an ontology name or alias resolves to: its newest finished build."""
        return self._service().resolve(ontology)["collection"]

    def artifact(self, ontology: str) -> ArtifactMetadata:
        """What built the collection ``ontology`` resolves to."""
        return ArtifactMetadata.from_dict(self._service().resolve(ontology)["artifact"])


_default: Optional[VectorSearchService] = None
_default_lock = threading.Lock()


def get_default_service() -> VectorSearchService:
    """One shared service configured from the environment."""
    global _default
    with _default_lock:
        if _default is None:
            _default = VectorSearchService()
        return _default


class _OntologyCollections(Mapping):
    """Ontology names and aliases → the newest finished collection of each in
    the default store. A name whose ontology is not built is absent."""

    def __getitem__(self, alias: str) -> str:
        if alias not in ONTOLOGY_ALIASES:
            raise KeyError(alias)
        try:
            return get_default_service().resolve(alias)
        except NotFound as e:
            raise KeyError(alias) from e

    def __iter__(self) -> Iterator[str]:
        return iter(ONTOLOGY_ALIASES)

    def __len__(self) -> int:
        return len(ONTOLOGY_ALIASES)

    def __repr__(self) -> str:
        return "ONTOLOGY_COLLECTIONS(" + ", ".join(ONTOLOGY_ALIASES) + ")"


#: Ontology names and aliases → collection names, resolved to the newest build.
ONTOLOGY_COLLECTIONS: Mapping = _OntologyCollections()
