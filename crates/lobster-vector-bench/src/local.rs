//! The `local` store (SQLite + HNSW) beside ChromaDB's PersistentClient
//! and raw hnswlib, on the same vectors in the same run.
//!
//! Datasets: real MiniLM embeddings of MONDO labels (queries: 1,000 MONDO
//! synonyms), embedded once with the workspace's candle embedder and cached
//! as `.npy` under the work directory; and uniform random unit vectors (speed
//! only: every HNSW's recall collapses on them). Every record carries a
//! document and metadata on both sides that store them (ours, Chroma); hnswlib
//! stores vectors only. Exact top-k ground truth comes from `FlatStore`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use lobster_vector::local::{HnswParams, LocalOptions, LocalStore};
use lobster_vector::{FlatStore, Metadata, Record, VectorStore};
use lobster_vector_core::testing::bench::read_npy_f32;
use rand::SeedableRng;
use serde_json::{json, Value};

use crate::{
    flat::unit_vectors,
    peer::{write_npy, write_npy_i64, Peer},
    stats,
};

/// The collection name used on our side.
const COLLECTION: &str = "bench";

pub struct LocalArgs<'a> {
    pub datasets: &'a [String],
    pub random_n: usize,
    pub queries: usize,
    pub k: usize,
    pub batch: usize,
    pub reps: usize,
    pub threads: usize,
    pub work: &'a Path,
    pub mondo_json: &'a Path,
    pub model: &'a Path,
    pub hnsw: HnswParams,
    pub peer: Option<&'a Peer>,
}

/// One dataset: row-major unit vectors plus what each record carries.
struct Dataset {
    name: String,
    dim: usize,
    base: Vec<f32>,
    queries: Vec<f32>,
    documents: Vec<String>,
    metadatas: Vec<Metadata>,
}

impl Dataset {
    fn n(&self) -> usize {
        self.base.len() / self.dim
    }
    fn nq(&self) -> usize {
        self.queries.len() / self.dim
    }
}

fn meta(pairs: &[(&str, &str)]) -> Metadata {
    let mut m = Metadata::new();
    for (k, v) in pairs {
        m.insert((*k).into(), (*v).into());
    }
    m
}

fn is_deprecated(v: &Value) -> bool {
    match &v["deprecated"] {
        Value::Bool(b) => *b,
        Value::String(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// MONDO labels (base) and 1,000 sampled synonyms (queries), embedded with
/// MiniLM; cached in `work` so later runs skip the embedding.
fn mondo(a: &LocalArgs) -> Result<Dataset> {
    let text = std::fs::read_to_string(a.mondo_json).with_context(|| {
        format!(
            "cannot read the MONDO JSON `{}` (set --mondo-json; ../shared/peer/setup.sh writes it)",
            a.mondo_json.display()
        )
    })?;
    let terms: serde_json::Map<String, Value> =
        serde_json::from_str(&text).context("the MONDO JSON is not an object of terms")?;
    let (mut labels, mut ids, mut synonyms) = (Vec::new(), Vec::new(), Vec::new());
    for (id, t) in &terms {
        if is_deprecated(t) {
            continue;
        }
        labels.push(t["label"].as_str().unwrap_or("").to_string());
        ids.push(id.clone());
        for s in t["synonyms"].as_array().into_iter().flatten() {
            if let Some(s) = s.as_str().filter(|s| !s.trim().is_empty()) {
                synonyms.push(s.to_string());
            }
        }
    }
    let keep: Vec<usize> = (0..labels.len())
        .filter(|&i| !labels[i].trim().is_empty())
        .collect();
    let labels: Vec<String> = keep.iter().map(|&i| labels[i].clone()).collect();
    let ids: Vec<String> = keep.iter().map(|&i| ids[i].clone()).collect();
    let nq = a.queries.min(synonyms.len());
    let mut rng = rand::rngs::StdRng::seed_from_u64(4242);
    let mut picked = rand::seq::index::sample(&mut rng, synonyms.len(), nq).into_vec();
    picked.sort_unstable();
    let query_texts: Vec<&str> = picked.iter().map(|&i| synonyms[i].as_str()).collect();

    let base_path = a.work.join(format!("mondo_labels_{}.npy", labels.len()));
    let query_path = a.work.join(format!("mondo_synonym_queries_{nq}.npy"));
    let (base, queries, dim) = match (read_npy_f32(&base_path), read_npy_f32(&query_path)) {
        (Ok((b, rows, d)), Ok((q, qrows, qd)))
            if rows == labels.len() && qrows == nq && d == qd =>
        {
            eprintln!("mondo: using cached embeddings {}", base_path.display());
            (b, q, d)
        }
        _ => {
            let mut config = lobster_vector::Config::resolve(&lobster_vector::Overrides {
                embedding_provider: Some("minilm".into()),
                threads: Some(a.threads),
                ..Default::default()
            })?;
            config.minilm_model = Some(a.model.to_path_buf());
            let embedder = lobster_vector::open_embedder(&config)
                .with_context(|| format!("cannot load MiniLM from `{}`", a.model.display()))?;
            let embed = |texts: Vec<&str>, what: &str| -> Result<Vec<f32>> {
                let started = Instant::now();
                let mut out = Vec::with_capacity(texts.len() * embedder.dimensions());
                for (i, chunk) in texts.chunks(512).enumerate() {
                    for v in embedder.embed_documents(chunk)? {
                        out.extend(v);
                    }
                    if i % 10 == 0 {
                        eprintln!(
                            "embedding {what}: {}/{} ({:.0} texts/s)",
                            (i * 512 + chunk.len()),
                            texts.len(),
                            (i * 512 + chunk.len()) as f64 / started.elapsed().as_secs_f64()
                        );
                    }
                }
                Ok(out)
            };
            let dim = embedder.dimensions();
            let b = embed(labels.iter().map(String::as_str).collect(), "MONDO labels")?;
            let q = embed(query_texts.clone(), "MONDO synonym queries")?;
            write_npy(&base_path, &b, labels.len(), dim)?;
            write_npy(&query_path, &q, nq, dim)?;
            (b, q, dim)
        }
    };
    let metadatas = ids
        .iter()
        .map(|id| meta(&[("term_id", id), ("ontology", "MONDO")]))
        .collect();
    Ok(Dataset {
        name: format!("mondo{}k", labels.len() / 1000),
        dim,
        base,
        queries,
        documents: labels,
        metadatas,
    })
}

fn random(a: &LocalArgs) -> Dataset {
    let dim = 384;
    let n = a.random_n;
    Dataset {
        name: format!("random{}k", n / 1000),
        dim,
        base: unit_vectors(42, n, dim),
        queries: unit_vectors(4242, a.queries, dim),
        documents: (0..n).map(|i| format!("random label {i}")).collect(),
        metadatas: (0..n)
            .map(|i| meta(&[("term_id", &format!("R:{i:07}")), ("ontology", "RANDOM")]))
            .collect(),
    }
}

/// Exact top-k row indices of every query (FlatStore).
fn ground_truth(d: &Dataset, k: usize) -> Result<Vec<Vec<i64>>> {
    let store = FlatStore::new();
    let records: Vec<Record> = d
        .base
        .chunks_exact(d.dim)
        .enumerate()
        .map(|(i, v)| Record::new(i.to_string(), v.to_vec()))
        .collect();
    store.upsert("ground_truth", &records)?;
    let qs: Vec<&[f32]> = d.queries.chunks_exact(d.dim).collect();
    let hits = store.search_batch("ground_truth", &qs, k)?;
    hits.into_iter()
        .map(|h| {
            h.into_iter()
                .map(|x| x.id.parse::<i64>().context("ground-truth id"))
                .collect()
        })
        .collect()
}

fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Our figures for one dataset.
fn ours(d: &Dataset, gt: &[Vec<i64>], a: &LocalArgs, qpath: &Path) -> Result<Value> {
    let records: Vec<Record> = d
        .base
        .chunks_exact(d.dim)
        .enumerate()
        .map(|(i, v)| {
            Record::new(i.to_string(), v.to_vec())
                .with_document(d.documents[i].clone())
                .with_metadata(d.metadatas[i].clone())
        })
        .collect();
    let dir = a.work.join(format!("local_{}", d.name));
    let mut ingest = Vec::new();
    for rep in 0..a.reps {
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let store = LocalStore::open(&dir, options(a.hnsw))?;
        let started = Instant::now();
        for chunk in records.chunks(a.batch) {
            store.upsert(COLLECTION, chunk)?;
        }
        store.flush()?;
        let s = started.elapsed().as_secs_f64();
        eprintln!(
            "[local {}] ingest rep {rep}: {s:.1}s ({:.0} vectors/s)",
            d.name,
            d.n() as f64 / s
        );
        ingest.push(s);
    }
    let store = LocalStore::open(&dir, options(a.hnsw))?;
    let qs: Vec<Vec<f32>> = d.queries.chunks_exact(d.dim).map(<[f32]>::to_vec).collect();
    for q in qs.iter().take(50) {
        store.search(COLLECTION, q, a.k)?;
    }
    let (mut med, mut p99) = (Vec::new(), Vec::new());
    let mut found: Vec<Vec<i64>> = Vec::new();
    for _ in 0..a.reps {
        let mut lat = Vec::with_capacity(qs.len());
        found.clear();
        for q in &qs {
            let (s, hits) = stats::time(|| store.search(COLLECTION, q, a.k));
            let hits = hits?;
            lat.push(s * 1e3);
            if hits
                .iter()
                .any(|h| h.document.is_none() || h.metadata.is_empty())
            {
                bail!("a hit came back without its document or metadata");
            }
            found.push(hits.iter().filter_map(|h| h.id.parse().ok()).collect());
        }
        med.push(stats::median(&lat));
        p99.push(stats::percentile(&lat, 99.0));
    }
    let recall = recall(&found, gt, a.k);
    drop(store);
    let disk = dir_bytes(&dir);
    // Open + first query in fresh processes, after one warm-up run (page cache warm).
    let exe = std::env::current_exe()?;
    let mut reopen = Vec::new();
    for run in 0..=a.reps {
        let out = Command::new(&exe)
            .arg("reopen")
            .arg(&dir)
            .arg(qpath)
            .arg(a.k.to_string())
            .arg(a.hnsw.ef_search.to_string())
            .output()
            .context("cannot run the reopen helper")?;
        if !out.status.success() {
            bail!(
                "the reopen helper failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let v: Value = serde_json::from_slice(&out.stdout).context("reopen helper output")?;
        if run > 0 {
            reopen.push(v["open_plus_first_query_ms"].as_f64().unwrap_or(f64::NAN));
        }
    }
    Ok(json!({
        "N": d.n(),
        "hnsw": {"m": a.hnsw.m, "ef_construction": a.hnsw.ef_construction, "ef_search": a.hnsw.ef_search, "build_threads": a.hnsw.build_threads},
        "ingest_seconds_median": stats::median(&ingest),
        "ingest_vectors_per_s": d.n() as f64 / stats::median(&ingest),
        "single_query_ms_median": stats::median(&med),
        "single_query_ms_p99": stats::median(&p99),
        "recall_at_k_vs_exact": recall,
        "disk_bytes": disk,
        "open_plus_first_query_ms_median": stats::median(&reopen),
    }))
}

fn options(hnsw: HnswParams) -> LocalOptions {
    LocalOptions {
        hnsw,
        ..LocalOptions::default()
    }
}

fn recall(found: &[Vec<i64>], gt: &[Vec<i64>], k: usize) -> f64 {
    let mut total = 0.0;
    for (f, g) in found.iter().zip(gt) {
        total += f.iter().filter(|x| g.contains(x)).count() as f64 / k as f64;
    }
    total / found.len().max(1) as f64
}

/// The `reopen` helper: opens the store in this fresh process and answers the
/// first query of `query_npy`; prints `{open_ms, first_query_ms, open_plus_first_query_ms}`.
pub fn reopen(dir: &Path, query_npy: &Path, k: usize, ef_search: usize) -> Result<()> {
    let (q, _, dim) = read_npy_f32(query_npy)?;
    let q = q[..dim].to_vec();
    let t0 = Instant::now();
    let store = LocalStore::open(
        dir,
        LocalOptions {
            read_only: true,
            hnsw: HnswParams {
                ef_search,
                ..HnswParams::default()
            },
            ..LocalOptions::default()
        },
    )?;
    let t1 = Instant::now();
    let hits = store.search(COLLECTION, &q, k)?;
    let t2 = Instant::now();
    if hits.len() != k {
        bail!("the first query returned {} hits, not {k}", hits.len());
    }
    println!(
        "{}",
        json!({
            "open_ms": (t1 - t0).as_secs_f64() * 1e3,
            "first_query_ms": (t2 - t1).as_secs_f64() * 1e3,
            "open_plus_first_query_ms": (t2 - t0).as_secs_f64() * 1e3,
        })
    );
    Ok(())
}

/// Runs Chroma (with documents and metadata, through bench_chroma's own
/// `run_dataset`) and hnswlib (bench_ann.py) on the dataset's `.npy` files.
fn peers(peer: &Peer, d: &Dataset, a: &LocalArgs, bpath: &Path, qpath: &Path) -> Result<Value> {
    let peer_work = a.work.join(format!("peer_work_{}", d.name));
    let docs_path = a.work.join(format!("{}_docs.json", d.name));
    std::fs::write(
        &docs_path,
        serde_json::to_vec(&json!({"documents": d.documents, "metadatas": d.metadatas}))?,
    )?;
    let env = [
        ("PEER_BASE_NPY", bpath.display().to_string()),
        ("PEER_QUERY_NPY", qpath.display().to_string()),
        ("PEER_THREADS", a.threads.to_string()),
        ("REPS", a.reps.to_string()),
        ("PEER_WORK", peer_work.display().to_string()),
        ("LV_DOCS_JSON", docs_path.display().to_string()),
        ("ANN_LIBS", "hnswlib".to_string()),
    ];
    let results = a.work.join(format!("peer_results_{}", d.name));
    let chroma = peer.run_code(
        "chroma",
        r#"
import json, os
import numpy as np
import common, bench_chroma
xb, xq = common.external_dataset()
gt = np.load(common.WORK / "gt_external.npy")
d = json.load(open(os.environ["LV_DOCS_JSON"]))
r = bench_chroma.run_dataset("external", xb, xq, gt, d["documents"], d["metadatas"])
common.save_result("chroma", {"results": [r], "versions": common.versions()})
"#,
        "chroma",
        &results,
        &env,
    )?;
    let ann = peer.run("bench_ann.py", "ann", &results, &env)?;
    let _ = std::fs::remove_file(&docs_path);
    let c = &chroma["results"][0];
    let h = ann["results"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["library"] == "hnswlib")
        .cloned()
        .unwrap_or(Value::Null);
    Ok(json!({
        "chroma": {
            "ingest_vectors_per_s": c["add_vectors_per_s"],
            "single_query_ms_median": c["single_query_ms_median"],
            "single_query_ms_p99": c["single_query_ms_p99"],
            "recall_at_k_vs_exact": c["recall_at_20_vs_exact"],
            "disk_bytes": c["disk_bytes"],
            "open_plus_first_query_ms_median": c["reopen_plus_first_query_ms_median"],
        },
        "hnswlib": {
            "ingest_vectors_per_s": h["build_vectors_per_s"],
            "single_query_ms_median": h["single_query_ms_median"],
            "single_query_ms_p99": h["single_query_ms_p99"],
            "recall_at_k_vs_exact": h["recall_at_20_vs_exact"],
            "disk_bytes": h["index_file_bytes"],
            "open_plus_first_query_ms_median": h["load_seconds_median"].as_f64().map(|s| s * 1e3),
        },
    }))
}

pub fn run(a: &LocalArgs) -> Result<Value> {
    std::fs::create_dir_all(a.work)?;
    let mut rows = Vec::new();
    for name in a.datasets {
        let d = match name.as_str() {
            "mondo" => mondo(a)?,
            "random" => random(a),
            other => bail!("unknown dataset `{other}`; valid: mondo, random"),
        };
        if d.nq() < 1000 && a.peer.is_some() {
            bail!("the peer scripts need at least 1,000 queries");
        }
        eprintln!(
            "[{}] {} vectors, {} queries, dim {}",
            d.name,
            d.n(),
            d.nq(),
            d.dim
        );
        let gt = ground_truth(&d, a.k)?;
        let bpath = a.work.join(format!("{}_base.npy", d.name));
        let qpath = a.work.join(format!("{}_queries.npy", d.name));
        write_npy(&bpath, &d.base, d.n(), d.dim)?;
        write_npy(&qpath, &d.queries, d.nq(), d.dim)?;
        let us = ours(&d, &gt, a, &qpath)?;
        eprintln!("[local {}] {us}", d.name);
        let mut row = json!({ "dataset": d.name, "N": d.n(), "k": a.k, "local": us });
        if let Some(peer) = a.peer {
            let peer_work = a.work.join(format!("peer_work_{}", d.name));
            std::fs::create_dir_all(&peer_work)?;
            let flat: Vec<i64> = gt.iter().flatten().copied().collect();
            write_npy_i64(&peer_work.join("gt_external.npy"), &flat, gt.len(), a.k)?;
            let p = peers(peer, &d, a, &bpath, &qpath)?;
            row["chroma"] = p["chroma"].clone();
            row["hnswlib"] = p["hnswlib"].clone();
        }
        let _ = std::fs::remove_file(&bpath);
        let _ = std::fs::remove_dir_all(a.work.join(format!("local_{}", d.name)));
        rows.push(row);
    }
    Ok(json!(rows))
}

/// `(key, label, higher is better)` of the printed figures.
const METRICS: &[(&str, &str, bool)] = &[
    ("ingest_vectors_per_s", "ingest vec/s", true),
    ("single_query_ms_median", "query p50 ms", false),
    ("single_query_ms_p99", "query p99 ms", false),
    ("recall_at_k_vs_exact", "recall@k", true),
    ("disk_bytes", "disk MiB", false),
    (
        "open_plus_first_query_ms_median",
        "open+1st query ms",
        false,
    ),
];

fn num(v: &Value, key: &str) -> f64 {
    let x = v[key].as_f64().unwrap_or(f64::NAN);
    if key == "disk_bytes" {
        x / (1024.0 * 1024.0)
    } else {
        x
    }
}

/// Prints our figures beside Chroma's and hnswlib's with ratios (> 1 means
/// lobster-vector is better), then the issue's goals.
pub fn print(rows: &Value) {
    println!(
        "{:<11} {:<18} {:>12} {:>12} {:>8} {:>12} {:>8}",
        "dataset", "metric", "local", "chroma", "ratio", "hnswlib", "ratio"
    );
    for row in rows.as_array().into_iter().flatten() {
        let ds = row["dataset"].as_str().unwrap_or("");
        for (key, label, higher) in METRICS {
            let us = num(&row["local"], key);
            let mut line = format!("{ds:<11} {label:<18} {us:>12.3}");
            for peer in ["chroma", "hnswlib"] {
                let p = num(&row[peer], key);
                let ratio = if *higher { us / p } else { p / us };
                if p.is_nan() {
                    line.push_str(&format!(" {:>12} {:>8}", "-", "-"));
                } else {
                    line.push_str(&format!(" {p:>12.3} {ratio:>7.2}x"));
                }
            }
            println!("{line}");
        }
    }
    println!("\nnotes: hnswlib stores no documents; its 'open' is index load only (in-process).");
    for row in rows.as_array().into_iter().flatten() {
        let ds = row["dataset"].as_str().unwrap_or("");
        let (l, c, h) = (&row["local"], &row["chroma"], &row["hnswlib"]);
        if c.is_null() || h.is_null() {
            continue;
        }
        let q = num(l, "single_query_ms_median") / num(h, "single_query_ms_median");
        let rec_ok = num(l, "recall_at_k_vs_exact") >= num(h, "recall_at_k_vs_exact") - 1e-9;
        let o =
            num(l, "open_plus_first_query_ms_median") / num(c, "open_plus_first_query_ms_median");
        let i = num(l, "ingest_vectors_per_s") / num(c, "ingest_vectors_per_s");
        let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
        println!(
            "{ds}: query p50 = {q:.2}x hnswlib's (goal <= 1.5x at >= its recall: {}); \
             open+first query = {o:.3}x Chroma's (goal <= 0.25x: {}); ingest = {i:.2}x Chroma's (goal >= 2x: {})",
            verdict(q <= 1.5 && rec_ok),
            verdict(o <= 0.25),
            verdict(i >= 2.0)
        );
    }
}

/// Default location of the MONDO JSON written by ../shared/peer/setup.sh.
pub fn default_mondo_json() -> PathBuf {
    PathBuf::from("/tmp/lv-peer/onto/MONDO-ontology-v2026-05-05.json")
}
