"""SSSOM output read back by the independent `sssom` package, and the store's
curated mappings answered first, through the Python package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lobster.vector import VectorSearchConfig, VectorSearchService

REQUIRE = os.environ.get("LOBSTER_TEST_REQUIRE_SERVICES") == "1"


def sssom_package():
    try:
        from sssom.parsers import parse_sssom_table
        from sssom.validators import validate
    except ImportError as e:  # pragma: no cover - depends on the environment
        if REQUIRE:
            pytest.fail(f"needs the `sssom` package from PyPI: {e}")
        pytest.skip(f"needs the `sssom` package from PyPI: {e}")
    return parse_sssom_table, validate


VALUES = ["T cells", "CD8+ T cells", "CD14+ Mono", "foo bar baz"]


def test_sssom_output_parses_and_validates_with_sssom_py(service, tmp_path: Path):
    parse_sssom_table, validate = sssom_package()
    text = service.match_sssom(VALUES, "cell_type", k=3, min_score=0.1)
    path = tmp_path / "out.sssom.tsv"
    path.write_text(text)
    msdf = parse_sssom_table(path)
    df = msdf.df
    # Every row survived sssom-py's own well-formedness check.
    assert len(df) == sum(1 for line in text.splitlines() if not line.startswith("#")) - 1
    reports = validate(msdf, fail_on_error=False)
    assert reports, "no validation ran"
    for kind, report in reports.items():
        assert not report.results, (kind, [r.message for r in report.results])
    # sssom-py moves mapping-level slots of the set metadata into the rows.
    if "mapping_tool" in msdf.metadata:
        assert msdf.metadata["mapping_tool"] == "lobster-vector"
    else:
        assert set(df["mapping_tool"]) == {"lobster-vector"}
    assert msdf.metadata["mapping_set_id"].startswith("urn:uuid:")
    assert set(df["subject_label"]) == set(VALUES)
    # sssom-py reorders rows: take each subject's most confident one.
    t = df[df["subject_label"] == "T cells"].sort_values("confidence", ascending=False).iloc[0]
    assert t["object_id"] == "CL:0000084"
    assert t["predicate_id"] == "skos:exactMatch"
    assert t["mapping_justification"] == "semapv:LexicalMatching"
    assert t["comment"] == "accepted"
    cd8 = df[df["subject_label"] == "CD8+ T cells"]
    assert len(cd8) == 3
    assert len(set(cd8["object_id"])) == 3
    assert set(cd8["mapping_justification"]) <= {
        "semapv:SemanticSimilarityThresholdMatching",
        "semapv:LexicalMatching",
    }
    nonsense = df[df["subject_label"] == "foo bar baz"].iloc[0]
    assert nonsense["object_id"] == "sssom:NoTermFound"
    assert nonsense["comment"] == "unmapped"


def test_curated_mappings_of_the_store_answer_first(service, config: VectorSearchConfig, store_dir: Path):
    curated = store_dir / "curated.sssom.tsv"
    assert service.match_ontology("CD14+ Mono", "cell_type", k=1)[0].match_type != "curated"
    curated.write_text("label\tid\nCD14+ Mono\tCL:0001054\n")
    try:
        fresh = VectorSearchService(config)
        assert fresh.curated_mappings()[0]["object_id"] == "CL:0001054"
        best = fresh.match_ontology("cd14+ mono", "cell_type", k=3)[0]
        assert best.ontology_id == "CL:0001054"
        assert best.match_type == "curated"
        assert best.score == 1.0
        # A bad curated file is a clear error naming its line.
        curated.write_text("label\tid\nx\tFOO:1\n")
        with pytest.raises(Exception, match="line 2"):
            VectorSearchService(config).match_ontology("x", "cell_type")
    finally:
        curated.unlink()
