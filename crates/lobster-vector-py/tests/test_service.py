"""The predecessor's service contract and ours, against the real store."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import lobster.vector as lv
from lobster.vector import (
    CollectionUnavailable,
    InvalidInput,
    NotFound,
    OntologyMatch,
    VectorSearchConfig,
    VectorSearchService,
)
from lobster.vector import models, service as service_module
from lobster.vector.ontology_graph import get_neighbors

# Author labels of the kind curators map (a cell-type column of an atlas).
LABELS = [
    "CD8+ T cells",
    "CD14+ Mono",
    "B cells",
    "NK cells",
    "MAIT",
    "cDC2",
    "plasma cell",
    "classical monocyte",
    "regulatory T cell",
    "hepatocyte",
    "alveolar macrophage",
    "Tregs",
    "megakaryocyte",
    "naive B cell",
    "erythroblast",
    "gamma-delta T cells",
]

PREDECESSOR_KEYS = {"term", "ontology_id", "score", "metadata", "distance_metric"}


def ids_and_scores(rows):
    return [(r.ontology_id, r.score) for r in rows]


def test_query_rows_have_the_predecessors_shape(service, collection):
    rows = service.query("T cell", collection)
    assert len(rows) == 5  # default_top_k
    for r in rows:
        assert set(r) == PREDECESSOR_KEYS
        assert r["distance_metric"] == "cosine"
        assert 0.0 <= r["score"] <= 1.0
        assert round(r["score"], 4) == r["score"]
        assert r["ontology_id"] == r["metadata"]["ontology_id"]
        assert r["ontology_id"].startswith("CL:")
        assert r["term"] == r["metadata"]["matched_text"]
    assert [r["score"] for r in rows] == sorted((r["score"] for r in rows), reverse=True)
    assert len(service.query("T cell", collection, top_k=3)) == 3


def test_query_score_is_the_clamped_rounded_cosine(service, collection, config):
    store = service._service().store
    embedder = service._service().embedder
    hits = store.search(collection, embedder.embed_text("cytotoxic lymphocyte"), 8)
    rows = service.query("cytotoxic lymphocyte", collection, top_k=8)
    assert [h["metadata"]["ontology_id"] for h in hits] == [r["ontology_id"] for r in rows]
    for h, r in zip(hits, rows):
        assert r["score"] == round(max(0.0, min(1.0, 1.0 - h["distance"])), 4)


def test_match_ontology_finds_cd8_positive_alpha_beta_t_cells(service):
    rows = service.match_ontology("CD8+ T cells", "cell_type")
    assert len(rows) == 5
    best = rows[0]
    assert isinstance(best, OntologyMatch)
    assert best.ontology_id == "CL:0000625"
    assert best.term == "CD8-positive, alpha-beta T cell"
    assert best.ontology == "cell_ontology"
    assert best.ontology_version.startswith("v20")
    assert best.distance_metric == "cosine"
    assert [r.score for r in rows] == sorted((r.score for r in rows), reverse=True)
    assert len({r.ontology_id for r in rows}) == 5


def test_exact_labels_score_one(service):
    best = service.match_ontology("classical monocyte", "cell_type", k=1)[0]
    assert best.ontology_id == "CL:0000860"
    assert best.match_type == "exact_label" and best.score == 1.0


def test_aliases_name_the_same_collection(service):
    expected = ids_and_scores(service.match_ontology("B cells", "cell_type", k=3))
    for alias in ("cell_ontology", "CELL_TYPE", service.resolve("cell_type")):
        assert ids_and_scores(service.match_ontology("B cells", alias, k=3)) == expected


def test_unknown_ontology_is_a_value_error_listing_the_valid_names(service):
    with pytest.raises(ValueError) as e:
        service.match_ontology("B cells", "genes")
    message = str(e.value)
    for name in ("mondo", "disease", "uberon", "tissue", "cell_ontology", "cell_type"):
        assert name in message
    assert isinstance(e.value, InvalidInput) and e.value.kind == "invalid_input"


def test_an_ontology_not_built_is_a_lookup_error(service):
    with pytest.raises(LookupError) as e:
        service.match_ontology("heart attack", "disease")
    assert isinstance(e.value, NotFound)
    assert "mondo" in str(e.value)


def test_batch_equals_singles(service, collection):
    batch = service.match_terms(LABELS, "cell_type", k=3)
    assert len(batch) == len(LABELS)
    singles = [service.match_ontology(t, "cell_type", k=3) for t in LABELS]
    assert [ids_and_scores(b) for b in batch] == [ids_and_scores(s) for s in singles]
    qb = service.query_batch(LABELS[:5], collection, top_k=4)
    assert qb == [service.query(t, collection, top_k=4) for t in LABELS[:5]]
    assert service.match_terms([], "cell_type") == []


def test_min_score_drops_rows_below_it(service):
    full = service.match_terms(LABELS, "cell_type", k=5)
    kept = service.match_terms(LABELS, "cell_type", k=5, min_score=0.6)
    assert [ids_and_scores(k) for k in kept] == [
        [x for x in ids_and_scores(f) if x[1] >= 0.6] for f in full
    ]
    assert sum(len(f) for f in full) > sum(len(k) for k in kept)
    with pytest.raises(ValueError):
        service.match_terms(LABELS, "cell_type", min_score=1.5)


def test_bad_input_is_refused_with_a_type_or_value_error(service, collection):
    with pytest.raises(TypeError):
        service.match_terms("CD8+ T cells", "cell_type")
    with pytest.raises(TypeError):
        service.query(42, collection)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        service.match_ontology("B cells", "cell_type", k=0)
    with pytest.raises(ValueError) as e:
        service.match_ontology("   ", "cell_type")
    assert "empty" in str(e.value) or "blank" in str(e.value)


def test_fails_closed_on_another_embedder(service, store_dir, monkeypatch):
    # The OpenAI provider knows its dimension without a request, so the
    # mismatch is found before anything is sent (the URL answers nothing).
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    other = VectorSearchService(
        VectorSearchConfig(backend="local", persist_path=str(store_dir), embedding_provider="openai")
    )
    with pytest.raises(CollectionUnavailable) as e:
        other.match_ontology("B cells", "cell_type")
    assert "minilm" in str(e.value) and "openai" in str(e.value)
    assert isinstance(e.value, RuntimeError) and e.value.kind == "unavailable"
    with pytest.raises(CollectionUnavailable):
        other.query("B cells", service.resolve("cell_type"))


def test_artifact_and_collections(service, collection):
    a = service.artifact("cell_type")
    assert a.embedding_provider == "minilm" and a.dimensions == 384
    assert a.ontology == "cell_ontology" and a.entry_count > 5000
    (listed,) = [c for c in service.collections() if c["name"] == collection]
    assert listed["complete"] and listed["count"] == a.entry_count


def test_ontology_collections_resolve_to_the_newest_build(service, store_dir, monkeypatch):
    monkeypatch.setenv("LOBSTER_VECTOR_BACKEND", "local")
    monkeypatch.setenv("LOBSTER_VECTOR_STORE_PATH", str(store_dir))
    monkeypatch.setattr(service_module, "_default", None)
    oc = lv.ONTOLOGY_COLLECTIONS
    assert set(oc) == {"mondo", "uberon", "cell_ontology", "disease", "tissue", "cell_type"}
    assert oc["cell_type"] == oc["cell_ontology"] == service.resolve("cell_type")
    assert oc.get("disease") is None and "disease" not in oc
    with pytest.raises(KeyError):
        oc["genes"]
    rows = lv.match_terms(["NK cells"], "cell_type", k=2)
    assert ids_and_scores(rows[0]) == ids_and_scores(service.match_ontology("NK cells", "cell_type", k=2))


def test_lookup(service):
    t = service.lookup("CL:0000625")
    assert t["label"] == "CD8-positive, alpha-beta T cell"
    assert t["obsolete"] is False and t["ontology"] == "cell_ontology"
    assert any(p["id"] == "CL:0000791" for p in t["parents"])
    with pytest.raises(LookupError):
        service.lookup("CL:9999999")
    with pytest.raises(ValueError):
        service.lookup("FOO:1")


def test_get_neighbors_honours_depth_and_relation(service):
    graph = service.ontology("cell_type")
    assert "CL:0000625" in graph and len(graph) > 2000
    one = get_neighbors(graph, "CL:0000625", depth=1)
    two = get_neighbors(graph, "CL:0000625", depth=2)
    assert set(one) == {"parents", "children", "siblings"}
    assert {r["distance"] for r in one["parents"]} == {1}
    assert {r["distance"] for r in two["parents"]} == {1, 2}
    ids = lambda rows: {r["term_id"] for r in rows}  # noqa: E731
    assert ids(one["parents"]) < ids(two["parents"])
    assert ids(one["children"]) <= ids(two["children"])
    assert "CL:0000791" in ids(one["parents"])
    for row in one["parents"] + one["children"] + one["siblings"]:
        assert set(row) == {"term_id", "name", "distance"} and row["name"]
    only = get_neighbors(graph, "CL:0000625", relation="parents")
    assert only["parents"] == one["parents"] and only["children"] == [] and only["siblings"] == []
    assert get_neighbors("cell_type", "CL:0000625") == one
    with pytest.raises(LookupError):
        get_neighbors(graph, "CL:9999999")
    with pytest.raises(ValueError):
        get_neighbors(graph, "CL:0000625", relation="cousins")


def test_eight_threads_sharing_one_service_answer_as_serial_calls(service):
    terms = LABELS * 3
    serial = [ids_and_scores(service.match_ontology(t, "cell_type", k=3)) for t in terms]
    with ThreadPoolExecutor(max_workers=8) as pool:
        threaded = list(pool.map(lambda t: ids_and_scores(service.match_ontology(t, "cell_type", k=3)), terms))
    assert threaded == serial


def test_the_gil_is_released_during_a_long_batch(service):
    terms = [f"{label} cluster {i}" for i in range(60) for label in LABELS]
    started, finished = threading.Event(), threading.Event()
    result = {}

    def batch():
        started.set()
        t0 = time.perf_counter()
        result["rows"] = service.match_terms(terms, "cell_type", k=3)
        result["seconds"] = time.perf_counter() - t0
        finished.set()

    worker = threading.Thread(target=batch)
    worker.start()
    started.wait()
    last, longest_gap, ticks = time.perf_counter(), 0.0, 0
    while not finished.is_set():
        now = time.perf_counter()
        longest_gap = max(longest_gap, now - last)
        last, ticks = now, ticks + 1
    worker.join()
    assert len(result["rows"]) == len(terms)
    assert result["seconds"] > 0.2, "the batch is too short to tell"
    # Holding the GIL would stall this loop for the whole batch.
    assert longest_gap < result["seconds"] / 4, (longest_gap, result["seconds"])
    assert ticks > 1000


def test_import_and_construction_load_no_model(config):
    embedder = config.create_embedder()
    s = VectorSearchService(config, embedder=embedder)
    s.collections()
    assert not embedder.loaded
    s.match_ontology("NK cells", "cell_type", k=1)
    assert embedder.loaded


def test_the_platforms_own_match_type_is_returned_when_importable(service, tmp_path, monkeypatch):
    schemas = tmp_path / "lobster" / "core" / "schemas"
    schemas.mkdir(parents=True)
    (schemas / "search.py").write_text(
        "from dataclasses import dataclass, field\n"
        "@dataclass\n"
        "class OntologyMatch:\n"
        "    term: str\n"
        "    ontology_id: str\n"
        "    score: float\n"
        "    metadata: dict = field(default_factory=dict)\n"
        "    distance_metric: str = 'cosine'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(models, "_platform", models._UNSET)
    try:
        rows = service.match_ontology("CD8+ T cells", "cell_type", k=2)
        from lobster.core.schemas.search import OntologyMatch as Platform

        assert type(rows[0]) is Platform
        assert rows[0].ontology_id == "CL:0000625" and rows[0].distance_metric == "cosine"
    finally:
        for name in [m for m in sys.modules if m.startswith("lobster.core")]:
            del sys.modules[name]
        models._platform = models._UNSET
