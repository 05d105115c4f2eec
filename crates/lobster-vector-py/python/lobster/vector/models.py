"""Result types: :class:`OntologyMatch` and :class:`ArtifactMetadata`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

__all__ = ["OntologyMatch", "ArtifactMetadata", "platform_match_type"]


@dataclass(frozen=True)
class OntologyMatch:
    """One concept matched to a query.

    The predecessor's fields (``term``: the concept's label, ``ontology_id``,
    ``score``, ``metadata``, ``distance_metric``) and ours: ``matched_text``
    (the label or synonym that matched), ``match_type`` (``exact_label``,
    ``exact_synonym``, ``exact_id``, ``obsolete_redirect``, ``semantic``,
    ``lexical``, ``abbreviation``), ``ontology`` and ``ontology_version``.
    ``score`` is 1.0 for exact rows and otherwise the calibrated probability
    that the row is right (4 decimals).
    """

    term: str
    ontology_id: str
    score: float
    metadata: dict[str, Any] = field(default_factory=dict)
    distance_metric: str = "cosine"
    matched_text: str = ""
    match_type: str = "semantic"
    ontology: str = ""
    ontology_version: str = ""

    def model_dump(self) -> dict[str, Any]:
        """The fields as a dict (named as pydantic names it)."""
        return asdict(self)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return asdict(self)


@dataclass(frozen=True)
class ArtifactMetadata:
    """What built a collection: stored with it, checked before every query."""

    embedding_provider: str
    embedding_model: str
    dimensions: int
    ontology: str
    source_version: str
    source_sha256: str
    built_at: str
    lobster_vector_version: str
    entry_count: int
    term_count: int = 0
    source_path: Optional[str] = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ArtifactMetadata":
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in known})


_UNSET = object()
_platform: Any = _UNSET


def platform_match_type() -> Optional[type]:
    """The Lobster platform's own ``OntologyMatch`` (``lobster.core.schemas.search``) when
    it is importable, else ``None``."""
    global _platform
    if _platform is _UNSET:
        try:
            from lobster.core.schemas.search import OntologyMatch as platform  # type: ignore
        except ImportError:
            platform = None
        _platform = platform
    return _platform


def _field_names(cls: type) -> set[str]:
    fields = getattr(cls, "model_fields", None)  # pydantic 2
    if fields is None:
        fields = getattr(cls, "__fields__", None)  # pydantic 1
    if fields is None:
        fields = getattr(cls, "__dataclass_fields__", {})
    return set(fields)


def make_match(row: dict[str, Any], query: str) -> Any:
    """``row`` (the native layer's dict) as the platform's ``OntologyMatch`` where
    importable, else as ours. The platform type receives the fields it declares,
    from ours and from its older names (``input_term``, ``matched_term``,
    ``ontology_source``, ``confidence``, ``definition``, ``synonyms``)."""
    platform = platform_match_type()
    if platform is None:
        return OntologyMatch(**row)
    metadata = row.get("metadata") or {}
    values = dict(row)
    values.update(
        input_term=query,
        matched_term=row["term"],
        ontology_source=row.get("ontology", "").upper(),
        confidence=row["score"],
        definition=metadata.get("definition"),
        synonyms=[],
    )
    names = _field_names(platform)
    return platform(**{k: v for k, v in values.items() if k in names})
