//! FlatStore vs FAISS (`IndexIDMap(IndexFlatL2)` and `IndexFlatIP`) on the same random vectors.

use std::path::Path;

use anyhow::Result;
use lobster_vector::{metric::normalize, FlatStore, Record, VectorStore};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::{
    peer::{write_npy, Peer},
    stats,
};

pub struct FlatArgs<'a> {
    pub sizes: &'a [usize],
    pub dim: usize,
    pub queries: usize,
    pub k: usize,
    pub reps: usize,
    pub threads: usize,
    pub work: &'a Path,
    pub peer: Option<&'a Peer>,
}

/// `n` random unit vectors of `dim` floats (row-major), reproducible from `seed`.
pub fn unit_vectors(seed: u64, n: usize, dim: usize) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut data: Vec<f32> = (0..n * dim)
        .map(|_| {
            // Box–Muller normal samples: isotropic directions after normalising.
            let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random());
            ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
        })
        .collect();
    data.chunks_exact_mut(dim).for_each(|r| {
        normalize(r);
    });
    data
}

/// Our figures for one dataset.
fn ours(base: &[f32], queries: &[f32], a: &FlatArgs) -> Result<Value> {
    let (dim, n) = (a.dim, base.len() / a.dim);
    let records: Vec<Record> = base
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| Record::new(i.to_string(), v.to_vec()))
        .collect();
    let mut add = Vec::new();
    let mut store = FlatStore::new();
    for _ in 0..a.reps {
        store = FlatStore::new();
        let (s, r) = stats::time(|| store.upsert("bench", &records));
        r?;
        add.push(s);
    }
    let qs: Vec<&[f32]> = queries.chunks_exact(dim).collect();
    for q in qs.iter().take(50) {
        store.search("bench", q, a.k)?;
    }
    let (mut med, mut p99) = (Vec::new(), Vec::new());
    for _ in 0..a.reps {
        let mut lat = Vec::with_capacity(qs.len());
        for q in &qs {
            let (s, r) = stats::time(|| store.search("bench", q, a.k));
            r?;
            lat.push(s * 1e3);
        }
        med.push(stats::median(&lat));
        p99.push(stats::percentile(&lat, 99.0));
    }
    let mut batch = Vec::new();
    for _ in 0..a.reps {
        let (s, r) = stats::time(|| store.search_batch("bench", &qs, a.k));
        r?;
        batch.push(s);
    }
    Ok(json!({
        "N": n,
        "add_vectors_per_s": n as f64 / stats::median(&add),
        "single_query_ms_median": stats::median(&med),
        "single_query_ms_p99": stats::median(&p99),
        "batch_qps": qs.len() as f64 / stats::median(&batch),
    }))
}

pub fn run(a: &FlatArgs) -> Result<Value> {
    std::fs::create_dir_all(a.work)?;
    let queries = unit_vectors(4242, a.queries, a.dim);
    let qpath = a.work.join("flat_queries.npy");
    write_npy(&qpath, &queries, a.queries, a.dim)?;
    let mut out = Vec::new();
    for &n in a.sizes {
        let base = unit_vectors(42, n, a.dim);
        let us = ours(&base, &queries, a)?;
        eprintln!("FlatStore N={n}: {us}");
        let mut row = json!({ "dataset": format!("random{}k", n / 1000), "flatstore": us });
        if let Some(peer) = a.peer {
            let bpath = a.work.join(format!("flat_base_{n}.npy"));
            write_npy(&bpath, &base, n, a.dim)?;
            drop(base);
            let res = peer.run(
                "bench_faiss.py",
                "faiss",
                &a.work.join(format!("peer_faiss_{n}")),
                &[
                    ("PEER_BASE_NPY", bpath.display().to_string()),
                    ("PEER_QUERY_NPY", qpath.display().to_string()),
                    ("PEER_THREADS", a.threads.to_string()),
                    ("REPS", a.reps.to_string()),
                    ("PEER_WORK", a.work.join("peer_work").display().to_string()),
                ],
            )?;
            for r in res["results"].as_array().into_iter().flatten() {
                let kind = if r["index"].as_str().unwrap_or("").contains("FlatIP") {
                    "faiss_flat_ip"
                } else {
                    "faiss_flat_l2"
                };
                row[kind] = json!({
                    "add_vectors_per_s": r["add_vectors_per_s"],
                    "single_query_ms_median": r["single_query_ms_median"],
                    "single_query_ms_p99": r["single_query_ms_p99"],
                    "batch_qps": r["batch_qps"],
                });
            }
            let _ = std::fs::remove_file(&bpath);
        }
        out.push(row);
    }
    Ok(json!(out))
}

/// Prints our figures beside FAISS's with ratios (>1 means lobster-vector is better).
pub fn print(rows: &Value) {
    println!(
        "{:<12} {:<14} {:>14} {:>14} {:>14} {:>8}",
        "dataset", "peer", "metric", "FlatStore", "peer value", "ratio"
    );
    for row in rows.as_array().into_iter().flatten() {
        let us = &row["flatstore"];
        for peer in ["faiss_flat_ip", "faiss_flat_l2"] {
            let p = &row[peer];
            if p.is_null() {
                continue;
            }
            for (metric, higher_better) in [
                ("add_vectors_per_s", true),
                ("single_query_ms_median", false),
                ("batch_qps", true),
            ] {
                let (a, b) = (
                    us[metric].as_f64().unwrap_or(f64::NAN),
                    p[metric].as_f64().unwrap_or(f64::NAN),
                );
                let ratio = if higher_better { a / b } else { b / a };
                println!(
                    "{:<12} {:<14} {:>14} {:>14.3} {:>14.3} {:>7.2}x",
                    row["dataset"].as_str().unwrap_or(""),
                    peer,
                    short(metric),
                    a,
                    b,
                    ratio
                );
            }
        }
    }
}

fn short(metric: &str) -> &str {
    match metric {
        "add_vectors_per_s" => "add vec/s",
        "single_query_ms_median" => "single ms p50",
        "batch_qps" => "batch q/s",
        m => m,
    }
}
