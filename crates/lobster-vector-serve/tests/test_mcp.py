"""A real MCP client (the official `mcp` SDK from PyPI) drives
`lobster-vector mcp` over stdio and `lobster-vector serve` under /mcp over
streamable HTTP: it lists the tools and calls each; the answer for
"CD8+ T cells" equals the CLI's."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(os.environ.get("LOBSTER_VECTOR_BIN") or ROOT / "target" / "debug" / "lobster-vector")
REQUIRE = os.environ.get("LOBSTER_TEST_REQUIRE_SERVICES") == "1"
TOOLS = {"standardize_term", "map_terms", "lookup_term", "ontology_neighbors"}

mcp = pytest.importorskip("mcp") if not REQUIRE else __import__("mcp")
from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402


def unavailable(message: str) -> None:
    if REQUIRE:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    if not BIN.exists():
        unavailable(f"no lobster-vector binary at {BIN} (cargo build, or set LOBSTER_VECTOR_BIN)")
    store = tmp_path_factory.mktemp("mcp-store")
    e = dict(os.environ, LOBSTER_VECTOR_BACKEND="local", LOBSTER_VECTOR_STORE_PATH=str(store))
    for k in ("LOBSTER_EMBEDDING_PROVIDER", "LOBSTER_RERANKER", "LOBSTER_SERVE_TOKEN"):
        e.pop(k, None)
    built = subprocess.run([str(BIN), "build", "-o", "cell_type", "--json", "-q"], env=e, capture_output=True, text=True)
    if built.returncode != 0:
        unavailable(f"cannot build CL (the real model and CL source are needed): {built.stderr[-2000:]}")
    return e


@pytest.fixture(scope="module")
def cli_answer(env: dict[str, str]) -> list[dict]:
    out = subprocess.run([str(BIN), "search", "CD8+ T cells", "-o", "cell_type", "-k", "3", "--json"],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["results"]["cell_ontology"]


def payload(result) -> dict:
    text = "".join(getattr(c, "text", "") for c in result.content)
    return json.loads(text)


def is_error(result) -> bool:
    return bool(getattr(result, "is_error", None) or getattr(result, "isError", False))


async def exercise(session: ClientSession, cli_answer: list[dict]) -> None:
    await session.initialize()
    listed = await session.list_tools()
    tools = {t.name: t for t in listed.tools}
    assert set(tools) == TOOLS
    for t in tools.values():
        schema = getattr(t, "input_schema", None) or getattr(t, "inputSchema", None)
        assert t.description and len(t.description) > 40
        assert schema["type"] == "object" and schema["properties"]
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{t.name}.{name} has no description"

    r = await session.call_tool("standardize_term", {"term": "CD8+ T cells", "ontology": "cell_type", "k": 3})
    assert not is_error(r)
    answer = payload(r)
    assert answer["results"][0]["matches"] == cli_answer
    assert answer["results"][0]["matches"][0]["ontology_id"] == "CL:0000625"
    assert answer["results"][0]["matches"][0]["ontology_version"].startswith("v20")

    r = await session.call_tool("map_terms", {"terms": ["B cells", "classical monocyte"], "ontology": "cl", "k": 2})
    mapped = payload(r)["results"]
    assert [m["query"] for m in mapped] == ["B cells", "classical monocyte"]
    assert mapped[1]["matches"][0]["ontology_id"] == "CL:0000860"
    assert mapped[1]["matches"][0]["match_type"] == "exact_label"

    r = await session.call_tool("lookup_term", {"id": "CL:0000625"})
    term = payload(r)
    assert term["label"] == "CD8-positive, alpha-beta T cell" and term["obsolete"] is False
    assert term["ontology_version"].startswith("v20")

    r = await session.call_tool("ontology_neighbors", {"id": "CL:0000625", "depth": 2})
    n = payload(r)
    assert {a["distance"] for a in n["ancestors"]} == {1, 2}
    assert any(p["id"] == "CL:0000791" for p in n["parents"])

    r = await session.call_tool("standardize_term", {"term": "B cells", "ontology": "genes"})
    assert is_error(r)
    assert payload(r)["kind"] == "invalid_input"
    r = await session.call_tool("lookup_term", {"id": "CL:9999999"})
    assert is_error(r) and payload(r)["kind"] == "not_found"


def test_stdio(env: dict[str, str], cli_answer: list[dict]) -> None:
    params = StdioServerParameters(command=str(BIN), args=["mcp"], env=env)

    async def main() -> None:
        async with stdio_client(params) as (read, write):
            async with ClientSession(read, write) as session:
                await exercise(session, cli_answer)

    asyncio.run(main())


def test_streamable_http(env: dict[str, str], cli_answer: list[dict]) -> None:
    server = subprocess.Popen([str(BIN), "serve", "--addr", "127.0.0.1:0"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in server.stderr], daemon=True).start()
    try:
        url = None
        while True:
            line = lines.get(timeout=300)
            if "listening on http://" in line:
                url = line.split("listening on ")[1].split()[0]
            if "ready" in line:
                break
        assert url

        async def main() -> None:
            async with streamable_http_client(f"{url}/mcp") as streams:
                read, write = streams[0], streams[1]
                async with ClientSession(read, write) as session:
                    await exercise(session, cli_answer)

        asyncio.run(main())
    finally:
        server.terminate()
        assert server.wait(timeout=60) == 0
