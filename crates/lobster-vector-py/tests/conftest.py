"""Fixtures: a real local store with the real Cell Ontology embedded by the
real MiniLM, built once per session through the package itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lobster.vector import VectorSearchConfig, VectorSearchService

REQUIRE = os.environ.get("LOBSTER_TEST_REQUIRE_SERVICES") == "1"
ASSETS = Path(os.environ.get("LOBSTER_ASSETS_DIR") or Path.home() / ".lobster" / "assets")


def need_assets() -> None:
    """Skips (fails under LOBSTER_TEST_REQUIRE_SERVICES=1) without the real model and CL."""
    model = ASSETS / "models" / "all-MiniLM-L6-v2" / "model.safetensors"
    cl = sorted((ASSETS / "ontologies").glob("CL-ontology-*.json*"))
    if model.exists() and cl:
        return
    message = f"needs the real MiniLM weights and the CL source under {ASSETS}: run `bash scripts/setup.sh`"
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="session")
def config(store_dir: Path) -> VectorSearchConfig:
    need_assets()
    return VectorSearchConfig(
        backend="local",
        persist_path=str(store_dir),
        embedding_provider="minilm",
        reranker="none",
        assets_dir=str(ASSETS),
    )


@pytest.fixture(scope="session")
def service(config: VectorSearchConfig) -> VectorSearchService:
    s = VectorSearchService(config)
    reports = s.build("cell_type")
    assert len(reports) == 1
    report = reports[0]
    assert report["ontology"] == "cell_ontology" and not report["skipped"]
    assert report["entries"] > 5000 and report["terms"] > 2000
    assert report["matcher"] is not None
    return s


@pytest.fixture(scope="session")
def collection(service: VectorSearchService) -> str:
    return service.resolve("cell_type")
