#!/usr/bin/env python3
"""Python-side benchmark, one run: `match_ontology` from Python (the wheel),
the same work through the CLI, and the Python predecessor's stack
(sentence-transformers MiniLM + FAISS IndexIDMap(IndexFlatL2), its
`match_ontology`: embed, search k*4, format, truncate) from ../shared/peer.

Queries: the cell-type labels of ../shared/eval/dev/celltype_dev.json against
the real Cell Ontology. Figures: single-call latency (median, p99, after a
warm-up), batch throughput (one call over every query), cold start (a fresh
process: import, open, load the model, answer one query).

  python3 scripts/bench_python.py --ours VENV_PYTHON --cli target/release/lobster-vector \
      [--peer /tmp/lv-peer/venv/bin/python] [--store DIR] [--json OUT]

VENV_PYTHON has the wheel installed (`LOBSTER_WHEEL_PROFILE=release bash
scripts/python-tests.sh` leaves one in target/python/test). Both sides use
2 threads (PEER_THREADS, LOBSTER_THREADS).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT.parent / "shared" / "eval" / "dev" / "celltype_dev.json"
PEER_DIR = ROOT.parent / "shared" / "peer"
THREADS = os.environ.get("PEER_THREADS", "2")

OURS = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
from lobster.vector import VectorSearchConfig, VectorSearchService
cfg = VectorSearchConfig(backend="local", persist_path=sys.argv[1])
svc = VectorSearchService(cfg)
svc.build("cell_type")
queries = json.load(open(sys.argv[2]))
mode = sys.argv[3]
if mode == "cold":
    svc.match_ontology(queries[0], "cell_type")
    print(json.dumps({"cold_s": time.perf_counter() - t0}))
    sys.exit()
for q in queries[:20]:
    svc.match_ontology(q, "cell_type")
lat = []
for q in queries:
    t = time.perf_counter(); svc.match_ontology(q, "cell_type", k=5); lat.append((time.perf_counter() - t) * 1e3)
batch = []
for _ in range(3):
    t = time.perf_counter(); svc.match_terms(queries, "cell_type", k=5); batch.append(time.perf_counter() - t)
lat.sort()
print(json.dumps({"single_ms_median": statistics.median(lat), "single_ms_p99": lat[int(0.99 * (len(lat) - 1))],
                  "batch_terms_per_s": len(queries) / statistics.median(batch)}))
"""

PEER = r"""
import json, os, statistics, sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[4])
import common  # the peer's thread pinning and paths
import numpy as np, faiss
from sentence_transformers import SentenceTransformer
faiss.omp_set_num_threads(common.THREADS)
import torch; torch.set_num_threads(common.THREADS)
model = SentenceTransformer(str(common.MODEL_DIR), device="cpu")
onto = json.load(open(common.ONTO_DIR / common.ONTOLOGY_FILES["CL"]))
texts, ids = [], []
for tid, t in onto.items():
    if t.get("deprecated") or not t.get("label"):
        continue
    for s in [t["label"]] + list(t.get("synonyms") or []):
        texts.append(s); ids.append(tid)
queries = json.load(open(sys.argv[2]))
mode = sys.argv[3]
cache = sys.argv[1]
if os.path.exists(cache):
    xb = np.load(cache)
else:
    xb = model.encode(texts, batch_size=128, normalize_embeddings=True, convert_to_numpy=True).astype("float32")
    np.save(cache, xb)
index = faiss.IndexIDMap(faiss.IndexFlatL2(xb.shape[1]))
index.add_with_ids(xb, np.arange(len(texts), dtype=np.int64))

def fmt(D, I):
    # The predecessor's backend: distance = L2^2 / 2 on unit vectors; score = clamp(1 - d), 4 decimals.
    return [{"term": texts[i], "ontology_id": ids[i], "score": round(max(0.0, min(1.0, 1.0 - d / 2.0)), 4),
             "metadata": {"ontology_id": ids[i]}, "distance_metric": "cosine"} for d, i in zip(D, I) if i >= 0]

def match_ontology(term, k=5):
    q = model.encode([term], normalize_embeddings=True, convert_to_numpy=True).astype("float32")
    D, I = index.search(q, k * 4)
    return fmt(D[0], I[0])[:k]

def query_batch(terms, k=5):
    qs = model.encode(terms, batch_size=128, normalize_embeddings=True, convert_to_numpy=True).astype("float32")
    out = []
    for q in qs:
        D, I = index.search(q[None, :], k * 4)
        out.append(fmt(D[0], I[0])[:k])
    return out

if mode == "cold":
    match_ontology(queries[0])
    print(json.dumps({"cold_s": time.perf_counter() - t0}))
    sys.exit()
for q in queries[:20]:
    match_ontology(q)
lat = []
for q in queries:
    t = time.perf_counter(); match_ontology(q); lat.append((time.perf_counter() - t) * 1e3)
batch = []
for _ in range(3):
    t = time.perf_counter(); query_batch(queries); batch.append(time.perf_counter() - t)
lat.sort()
print(json.dumps({"single_ms_median": statistics.median(lat), "single_ms_p99": lat[int(0.99 * (len(lat) - 1))],
                  "batch_terms_per_s": len(queries) / statistics.median(batch)}))
"""


def run_json(cmd: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd[:2])} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ours", required=True, help="python of a venv with the lobster.vector wheel")
    ap.add_argument("--cli", required=True, help="the lobster-vector binary (release)")
    ap.add_argument("--peer", default="/tmp/lv-peer/venv/bin/python", help="python of ../shared/peer's venv")
    ap.add_argument("--store", default=None, help="local store directory (default: a temp dir)")
    ap.add_argument("--json", default=None, help="write the figures here too")
    args = ap.parse_args()

    queries = sorted({r["query"] for r in json.load(open(DEV))})
    work = Path(tempfile.mkdtemp(prefix="lv-bench-py-"))
    store = Path(args.store) if args.store else work / "store"
    qfile = work / "queries.json"
    qfile.write_text(json.dumps(queries))
    env = dict(os.environ, LOBSTER_THREADS=THREADS, PEER_THREADS=THREADS, OMP_NUM_THREADS=THREADS)
    results: dict[str, dict] = {}

    print(f"{len(queries)} distinct cell-type labels; store {store}", file=sys.stderr)
    run_json([args.ours, "-c", OURS, str(store), str(qfile), "cold"], env)  # builds the store once
    results["python (ours)"] = run_json([args.ours, "-c", OURS, str(store), str(qfile), "warm"], env)
    results["python (ours)"].update(run_json([args.ours, "-c", OURS, str(store), str(qfile), "cold"], env))

    cli_env = dict(env, LOBSTER_VECTOR_BACKEND="local", LOBSTER_VECTOR_STORE_PATH=str(store))
    (work / "terms.txt").write_text("\n".join(queries) + "\n")
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([args.cli, "--quiet", "map", "-i", str(work / "terms.txt"), "-o", "cell_type",
                        "--output", str(work / "mapped.jsonl")], env=cli_env, check=True, capture_output=True)
        runs.append(time.perf_counter() - t)
    one_shot = []
    for q in queries[:10]:
        t = time.perf_counter()
        subprocess.run([args.cli, "search", q, "-o", "cell_type", "--json"], env=cli_env, check=True, capture_output=True)
        one_shot.append(time.perf_counter() - t)
    results["cli"] = {
        "batch_terms_per_s": len(queries) / statistics.median(runs),
        "single_ms_median": statistics.median(one_shot) * 1e3,
        "cold_s": statistics.median(one_shot),
    }

    if Path(args.peer).exists():
        cache = str(work / "peer_cl.npy")
        run_json([args.peer, "-c", PEER, cache, str(qfile), "cold", str(PEER_DIR)], env)  # embeds CL once
        results["predecessor (sentence-transformers + FAISS)"] = run_json(
            [args.peer, "-c", PEER, cache, str(qfile), "warm", str(PEER_DIR)], env)
        results["predecessor (sentence-transformers + FAISS)"].update(
            run_json([args.peer, "-c", PEER, cache, str(qfile), "cold", str(PEER_DIR)], env))
    else:
        print(f"no peer venv at {args.peer} (run ../shared/peer/setup.sh); predecessor skipped", file=sys.stderr)

    print("| side | single call ms (median) | p99 | batch terms/s | cold start s |")
    print("|---|---|---|---|---|")
    for side, r in results.items():
        print(f"| {side} | {r.get('single_ms_median', float('nan')):.2f} | {r.get('single_ms_p99', float('nan')):.2f} "
              f"| {r['batch_terms_per_s']:.0f} | {r['cold_s']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
