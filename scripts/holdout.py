#!/usr/bin/env python3
"""Held-out synonym split: what no dictionary lookup can answer.

  holdout.py make OUT [--seed N] [--cl 300 --uberon 300 --mondo 400]
      copies the CL, UBERON and MONDO sources (cellxgene JSON, zstd) from the
      asset directory into OUT/ontologies with the chosen synonyms removed, and
      writes OUT/queries.json ([{ontology, query, expected}]). A synonym is
      chosen only if, once removed, no label or synonym of any term
      normalises like it (so exact matching cannot answer it).
  holdout.py eval LV_BINARY --store DIR OUT [-k 5] [--json FILE]
      maps the removed synonyms through `lobster-vector map --candidates K`
      on a store built from OUT/ontologies and prints acc@1, acc@5, the
      expected calibration error of the top score and the precision and
      share accepted at thresholds.

Build the store first:  for f in OUT/ontologies/*; do lobster-vector build --source "$f"; done
"""
import argparse, hashlib, json, os, re, subprocess, sys, tempfile

PREFIX = {"cell_ontology": "CL", "uberon": "UBERON", "mondo": "MONDO"}


def norm(text):
    t = re.sub(r"[-_\u2010-\u2015\u2212]", " ", text.lower())
    return " ".join(t.split())


def source(onto_dir, ontology):
    names = sorted(n for n in os.listdir(onto_dir) if n.startswith(PREFIX[ontology] + "-ontology-"))
    if not names:
        sys.exit(f"no {PREFIX[ontology]}-ontology-* file in {onto_dir}; run scripts/setup.sh")
    return os.path.join(onto_dir, names[-1])


def read(path):
    return json.loads(subprocess.run(["zstd", "-dc", path], capture_output=True, check=True).stdout)


def make(a):
    onto_dir = os.path.join(a.assets, "ontologies")
    out_dir = os.path.join(a.out, "ontologies")
    os.makedirs(out_dir, exist_ok=True)
    queries = []
    for ontology, n in (("cell_ontology", a.cl), ("uberon", a.uberon), ("mondo", a.mondo)):
        path = source(onto_dir, ontology)
        d = read(path)
        owners = {}
        for tid, t in d.items():
            if str(t.get("deprecated", False)).lower() == "true":
                continue
            for text in [t.get("label") or ""] + list(t.get("synonyms") or []):
                owners.setdefault(norm(text), set()).add(tid)
        pool = []
        for tid, t in d.items():
            if str(t.get("deprecated", False)).lower() == "true" or not t.get("label"):
                continue
            for s in t.get("synonyms") or []:
                # Only a synonym whose normal form nothing else carries.
                if s.strip() and owners.get(norm(s)) == {tid} and norm(s) != norm(t["label"]):
                    if sum(1 for x in t["synonyms"] if norm(x) == norm(s)) == 1:
                        key = hashlib.sha256(f"{a.seed}:{tid}:{s}".encode()).hexdigest()
                        pool.append((key, tid, s))
        pool.sort()
        chosen, used_terms = [], set()
        for _, tid, s in pool:
            if len(chosen) >= n:
                break
            if tid in used_terms:  # one synonym per term keeps the sample spread
                continue
            used_terms.add(tid)
            chosen.append((tid, s))
        for tid, s in chosen:
            d[tid]["synonyms"] = [x for x in d[tid]["synonyms"] if x != s]
            queries.append({"ontology": ontology, "query": s, "expected": tid})
        target = os.path.join(out_dir, os.path.basename(path))
        raw = json.dumps(d).encode()
        subprocess.run(["zstd", "-q", "-f", "-o", target], input=raw, check=True)
        print(f"{ontology}: removed {len(chosen)} synonyms -> {target}")
    json.dump(queries, open(os.path.join(a.out, "queries.json"), "w"), indent=0)
    print(f"{len(queries)} queries in {os.path.join(a.out, 'queries.json')}")


def evaluate(a):
    queries = json.load(open(os.path.join(a.out, "queries.json")))
    # The matcher needs the sources the store was built from: an asset
    # directory whose ontologies/ are the held-out copies (models and the
    # rest linked from the real one).
    assets = os.path.join(a.out, "assets")
    os.makedirs(assets, exist_ok=True)
    for name in os.listdir(a.assets):
        link = os.path.join(assets, name)
        if name not in ("ontologies", "compiled") and not os.path.lexists(link):
            os.symlink(os.path.join(os.path.abspath(a.assets), name), link)
    if not os.path.lexists(os.path.join(assets, "ontologies")):
        os.symlink(os.path.abspath(os.path.join(a.out, "ontologies")), os.path.join(assets, "ontologies"))
    env = dict(os.environ, LOBSTER_VECTOR_STORE_PATH=a.store, LOBSTER_ASSETS_DIR=assets)
    rows, report = [], {}
    for ontology in PREFIX:
        qs = [q for q in queries if q["ontology"] == ontology]
        if not qs:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            inp, outp = os.path.join(tmp, "in.txt"), os.path.join(tmp, "out.jsonl")
            open(inp, "w").writelines(q["query"].replace("\n", " ") + "\n" for q in qs)
            cmd = [a.lv, "map", "-i", inp, "-o", ontology, "--output", outp, "-q"]
            p = subprocess.run(cmd + ["--candidates", str(a.k)], env=env, capture_output=True, text=True)
            if p.returncode != 0 and "--candidates" in p.stderr:
                # An older binary without --candidates: top-1 only (acc@5 then counts top-1).
                p = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit(f"map failed: {p.stderr[-600:]}")
            ranked = {}
            for line in open(outp):
                r = json.loads(line)
                if r.get("ontology_id"):
                    ranked.setdefault(r["input"], []).append((r["ontology_id"], r.get("score") or 0.0))
        for q in qs:
            got = ranked.get(q["query"].replace("\n", " "), [])
            ids = [i for i, _ in got]
            rows.append({"ontology": ontology, "top1": ids[:1] == [q["expected"]],
                         "top5": q["expected"] in ids[:5], "score": got[0][1] if got else 0.0})
    def summary(rs):
        n = len(rs)
        return {"n": n, "acc1": round(sum(r["top1"] for r in rs) / n, 3),
                "acc5": round(sum(r["top5"] for r in rs) / n, 3)}
    for ontology in PREFIX:
        rs = [r for r in rows if r["ontology"] == ontology]
        if rs:
            report[ontology] = summary(rs)
    report["all"] = summary(rows)
    bins = [[0, 0.0, 0] for _ in range(10)]
    for r in rows:
        b = min(int(r["score"] * 10), 9)
        bins[b][0] += 1; bins[b][1] += r["score"]; bins[b][2] += r["top1"]
    report["ece"] = round(sum(abs(s - c) for _, s, c in bins) / len(rows), 4)
    report["thresholds"] = {}
    for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        acc = [r for r in rows if r["score"] >= t]
        report["thresholds"][str(t)] = {
            "accepted": round(len(acc) / len(rows), 3),
            "precision": round(sum(r["top1"] for r in acc) / len(acc), 3) if acc else None}
    print(json.dumps(report, indent=1))
    if a.json:
        json.dump(report, open(a.json, "w"), indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("out")
    m.add_argument("--seed", type=int, default=20261202)
    m.add_argument("--cl", type=int, default=300)
    m.add_argument("--uberon", type=int, default=300)
    m.add_argument("--mondo", type=int, default=400)
    m.add_argument("--assets", default=os.environ.get("LOBSTER_ASSETS_DIR", os.path.expanduser("~/.lobster/assets")))
    e = sub.add_parser("eval")
    e.add_argument("lv")
    e.add_argument("out")
    e.add_argument("--store", required=True)
    e.add_argument("-k", type=int, default=5)
    e.add_argument("--json")
    e.add_argument("--assets", default=os.environ.get("LOBSTER_ASSETS_DIR", os.path.expanduser("~/.lobster/assets")),
                   help="the real asset directory (models); its ontologies are replaced by OUT/ontologies")
    a = ap.parse_args()
    make(a) if a.cmd == "make" else evaluate(a)


if __name__ == "__main__":
    main()
