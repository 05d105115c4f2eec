"""The ontology hierarchy: ``get_neighbors`` and ``load_ontology_graph``."""

from __future__ import annotations

import threading
from typing import Any, Union

from . import _native
from .config import VectorSearchConfig

__all__ = ["get_neighbors", "load_ontology_graph", "OntologyGraph"]

#: A loaded ontology source, with ``lookup``, ``neighbors``, ``len`` and ``in``.
OntologyGraph = _native.Ontology

_RELATIONS = ("all", "parents", "children", "siblings")


_loaded: dict[tuple[str, str, str], OntologyGraph] = {}
_lock = threading.Lock()


def load_ontology_graph(ontology: str, source: Union[str, None] = None) -> OntologyGraph:
    """The newest source of ``ontology`` (name or alias) in the asset
    directory (``LOBSTER_ASSETS_DIR``), or the file ``source``; loaded once
    per process. Opens no store."""
    assets = VectorSearchConfig.from_env().assets_dir or ""
    key = (ontology.strip().lower(), str(source or ""), assets)
    with _lock:
        graph = _loaded.get(key)
        if graph is None:
            graph = _native.Ontology(ontology, source, assets)
            _loaded[key] = graph
        return graph


def get_neighbors(
    graph_or_ontology: Union[OntologyGraph, str],
    term_id: str,
    depth: int = 1,
    relation: str = "all",
) -> dict[str, list[dict[str, Any]]]:
    """The terms around ``term_id``: ``{"parents", "children", "siblings"}``,
    each a list of ``{"term_id", "name", "distance"}``.

    ``parents`` and ``children`` reach ``depth`` edges up and down (1 = direct);
    ``siblings`` share a direct parent. ``relation`` (``all``, ``parents``,
    ``children``, ``siblings``) fills only that list. ``graph_or_ontology`` is
    a graph from :func:`load_ontology_graph` or an ontology name or alias.
    Unknown ids raise :class:`~lobster.vector.errors.NotFound` (a ``LookupError``).
    """
    if relation not in _RELATIONS:
        raise ValueError(f"relation must be one of {', '.join(_RELATIONS)}; got {relation!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}")
    if isinstance(graph_or_ontology, str):
        graph = load_ontology_graph(graph_or_ontology)
    elif isinstance(graph_or_ontology, _native.Ontology):
        graph = graph_or_ontology
    else:
        raise TypeError(
            "graph_or_ontology must be an ontology name or a graph from load_ontology_graph(), "
            f"got {type(graph_or_ontology).__name__}"
        )
    n = graph.neighbors(term_id, depth)

    def rows(key: str) -> list[dict[str, Any]]:
        return [{"term_id": r["id"], "name": r["label"], "distance": r["distance"]} for r in n[key]]

    wanted = {
        "parents": ("ancestors", relation in ("all", "parents")),
        "children": ("descendants", relation in ("all", "children")),
        "siblings": ("siblings", relation in ("all", "siblings")),
    }
    return {name: rows(key) if on else [] for name, (key, on) in wanted.items()}
