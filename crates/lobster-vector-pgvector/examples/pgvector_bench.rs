//! Figures for the `pgvector` store beside the `local` store (SQLite + HNSW)
//! on the same vectors: bulk ingest rate, query latency p50/p99 at k=20
//! (with documents and metadata), and recall@20 against the exact FlatStore.
//!
//! `LOBSTER_PGVECTOR_URL=… cargo run --release -p lobster-vector-pgvector --example pgvector_bench -- [N] [DIM] [BATCH] [mondo|random|clustered]`
//! (defaults 100000 384 5000; data sets `mondo`, `random`, `clustered`, all by
//! default). `mondo` is 27,990 real MiniLM embeddings of MONDO labels with
//! 1,000 synonym queries, as written by `lobster-vector-bench local`. On
//! uniform random vectors only the speed figures mean anything (every HNSW's
//! recall collapses there); the clustered set (64 centres, noise 0.6) is
//! closer to real embeddings.

use std::path::Path;
use std::time::Instant;

use lobster_vector_core::testing::bench::{percentile, read_npy_f32};
use lobster_vector_core::testing::data::{clustered_split, random_vector, rng};
use lobster_vector_core::{FlatStore, Metadata, Record, VectorStore};
use lobster_vector_local::{LocalOptions, LocalStore};
use lobster_vector_pgvector::{PgOptions, PgStore};

/// MiniLM embeddings written by `lobster-vector-bench local` (27,990 MONDO
/// labels and 1,000 held-out synonyms), when present.
const MONDO_BASE: &str = "/tmp/lv-bench/mondo_labels_27990.npy";
const MONDO_QUERIES: &str = "/tmp/lv-bench/mondo27k_queries.npy";

type Vectors = Vec<Vec<f32>>;
type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A data set: name, base vectors, queries, and whether recall means anything.
struct Dataset(String, Vectors, Vectors, bool);

/// Rows of a 2-d `float32` `.npy` file.
fn read_npy(path: &Path) -> BoxResult<Vectors> {
    let (data, _, dim) = read_npy_f32(path)?;
    Ok(data.chunks_exact(dim).map(<[f32]>::to_vec).collect())
}

fn datasets(n: usize, dim: usize, only: Option<&str>) -> BoxResult<Vec<Dataset>> {
    let mut out = Vec::new();
    let wanted = |name: &str| only.is_none_or(|o| o == name);
    if wanted("mondo") {
        if Path::new(MONDO_BASE).is_file() && Path::new(MONDO_QUERIES).is_file() {
            let base = read_npy(Path::new(MONDO_BASE))?;
            let queries = read_npy(Path::new(MONDO_QUERIES))?;
            out.push(Dataset("MONDO MiniLM".into(), base, queries, true));
        } else {
            eprintln!(
                "skipping MONDO: {MONDO_BASE} is missing (run `lobster-vector-bench local` once)"
            );
        }
    }
    if wanted("random") {
        let mut r = rng(7);
        let all: Vectors = (0..n + 500).map(|_| random_vector(&mut r, dim)).collect();
        let (base, queries) = all.split_at(n);
        out.push(Dataset(
            "random".into(),
            base.to_vec(),
            queries.to_vec(),
            false,
        ));
    }
    if wanted("clustered") {
        let (base, queries) = clustered_split(11, n, 500, dim, 64, 0.6);
        out.push(Dataset("clustered".into(), base, queries, true));
    }
    Ok(out)
}

struct Figures {
    ingest_per_s: f64,
    p50: f64,
    p99: f64,
    recall: f64,
}

fn run(
    store: &dyn VectorStore,
    c: &str,
    records: &[Record],
    queries: &[Vec<f32>],
    truth: &[Vec<String>],
    batch: usize,
) -> Result<Figures, Box<dyn std::error::Error>> {
    let t = Instant::now();
    for chunk in records.chunks(batch) {
        store.upsert(c, chunk)?;
    }
    store.flush()?;
    let ingest = t.elapsed();
    let mut lat = Vec::with_capacity(queries.len());
    let (mut hit, mut total) = (0usize, 0usize);
    for (q, want) in queries.iter().zip(truth) {
        let t = Instant::now();
        let hits = store.search(c, q, 20)?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        hit += hits.iter().filter(|h| want.contains(&h.id)).count();
        total += want.len();
    }
    Ok(Figures {
        ingest_per_s: records.len() as f64 / ingest.as_secs_f64(),
        p50: percentile(&lat, 50.0),
        p99: percentile(&lat, 99.0),
        recall: hit as f64 / total as f64,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(100_000);
    let dim = args.get(1).copied().unwrap_or(384);
    let batch = args.get(2).copied().unwrap_or(5_000);
    let only = std::env::args()
        .skip(1)
        .find(|a| ["mondo", "random", "clustered"].contains(&a.as_str()));
    let url = lobster_vector_pgvector::url_from_env()
        .ok_or("set LOBSTER_PGVECTOR_URL (eval \"$(bash scripts/pg-test-server.sh start)\")")?;
    let pg = PgStore::connect(&url, PgOptions::default())?;
    for Dataset(kind, vectors, queries, recall_counts) in datasets(n, dim, only.as_deref())? {
        let records: Vec<Record> = vectors
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let mut m = Metadata::new();
                m.insert("ontology_id".into(), format!("MONDO:{i:07}").into());
                Record::new(format!("id{i}"), v)
                    .with_document(format!("label number {i}"))
                    .with_metadata(m)
            })
            .collect();
        let flat = FlatStore::new();
        flat.upsert("truth", &records)?;
        let truth: Vec<Vec<String>> = queries
            .iter()
            .map(|q| {
                flat.search("truth", q, 20)
                    .map(|h| h.into_iter().map(|h| h.id).collect())
            })
            .collect::<Result<_, _>>()?;
        drop(flat);
        let (count, d, nq) = (records.len(), queries[0].len(), queries.len());
        println!("== {count} x {d} {kind} vectors, batches of {batch}, {nq} queries at k=20");
        let c = format!("bench_{}_{}", kind.replace(' ', "_"), std::process::id());
        let f = run(&pg, &c, &records, &queries, &truth, batch)?;
        pg.drop_collection(&c)?;
        let dir = tempfile::tempdir()?;
        let local = LocalStore::open(dir.path(), LocalOptions::default())?;
        let l = run(&local, "bench", &records, &queries, &truth, batch)?;
        for (name, x) in [("pgvector", &f), ("local", &l)] {
            println!(
                "{name:>9}: ingest {:>7.0} vectors/s  query p50 {:>6.2} ms  p99 {:>6.2} ms  recall@20 {:.4}{}",
                x.ingest_per_s,
                x.p50,
                x.p99,
                x.recall,
                if recall_counts { "" } else { " (random data: speed only)" }
            );
        }
        println!(
            "  pgvector / local: ingest {:.2}x, p50 {:.2}x slower",
            f.ingest_per_s / l.ingest_per_s,
            f.p50 / l.p50
        );
    }
    Ok(())
}
