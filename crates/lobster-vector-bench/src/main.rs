//! `lobster-vector-bench`: our figures beside the Python predecessor's stack,
//! measured in the same run on the same data (see `../shared/peer`).
//!
//! Ratios are printed so that > 1.0 means lobster-vector is better.

mod embed;
mod flat;
mod local;
mod peer;
mod serve;
mod stats;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "lobster-vector-bench",
    about = "Benchmarks beside the peer stack (../shared/peer)"
)]
struct Cli {
    /// Threads on both sides
    #[arg(long, default_value_t = 2, global = true)]
    threads: usize,
    /// Repetitions; each figure is the median over them
    #[arg(long, default_value_t = 5, global = true)]
    reps: usize,
    /// Scratch directory for vectors and peer results
    #[arg(long, default_value = "/tmp/lv-bench", global = true)]
    work: PathBuf,
    /// Measure only lobster-vector (no peer run)
    #[arg(long, global = true)]
    no_peer: bool,
    /// Write all figures as JSON to this file
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    #[command(subcommand)]
    command: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// FlatStore add, single-query and batch search vs FAISS IndexFlatL2/IndexFlatIP
    Flat {
        /// Collection sizes
        #[arg(long, value_delimiter = ',', default_value = "32000,200000")]
        sizes: Vec<usize>,
        #[arg(long, default_value_t = 384)]
        dim: usize,
        #[arg(long, default_value_t = 1000)]
        queries: usize,
        #[arg(short, default_value_t = 20)]
        k: usize,
    },
    /// MiniLM throughput (first N MONDO texts) and "heart attack" latency vs sentence-transformers
    Embed {
        /// Texts per throughput pass
        #[arg(long, default_value_t = 20_000)]
        n: usize,
        /// One text per line, instead of the MONDO corpus the peer writes
        #[arg(long, value_name = "FILE")]
        texts: Option<PathBuf>,
    },
    /// The local store (SQLite + HNSW) vs ChromaDB PersistentClient and raw hnswlib:
    /// ingest, query p50/p99 with documents and metadata, recall, disk, open + first query
    Local {
        /// Datasets: mondo (real MiniLM embeddings of MONDO labels), random (speed only)
        #[arg(long, value_delimiter = ',', default_value = "mondo,random")]
        datasets: Vec<String>,
        /// Size of the random dataset
        #[arg(long, default_value_t = 100_000)]
        random_n: usize,
        #[arg(long, default_value_t = 1000)]
        queries: usize,
        #[arg(short, default_value_t = 20)]
        k: usize,
        /// Records per upsert (Chroma's script adds 5,000 at a time)
        #[arg(long, default_value_t = 5000)]
        batch: usize,
        /// MONDO JSON (cellxgene-ontology-guide, decompressed)
        #[arg(long, default_value_os_t = local::default_mondo_json())]
        mondo_json: PathBuf,
        /// all-MiniLM-L6-v2 model directory (embeds MONDO once; cached in --work)
        #[arg(long, default_value = "/tmp/lv-peer/model")]
        model: PathBuf,
        /// Our HNSW: edges per node (M) [default: the store's]
        #[arg(long)]
        m: Option<usize>,
        /// Our HNSW: candidate list while inserting [default: the store's]
        #[arg(long)]
        ef_construction: Option<usize>,
        /// Our HNSW: candidate list while searching [default: the store's]
        #[arg(long)]
        ef_search: Option<usize>,
        /// Our HNSW: threads inserting large batches [default: the store's]
        #[arg(long)]
        build_threads: Option<usize>,
    },
    /// `lobster-vector serve` under load over loopback (bounded in requests):
    /// single-term and batch matches at each client count, RSS before/after,
    /// beside the CLI's one-shot search
    Serve {
        /// The lobster-vector binary (release)
        #[arg(long, default_value = "target/release/lobster-vector")]
        binary: PathBuf,
        /// A local store holding a built Cell Ontology collection
        #[arg(long)]
        store: PathBuf,
        /// Queries: a dev set (JSON records with `query`) or one per line
        #[arg(long, default_value = "../shared/eval/dev/celltype_dev.json")]
        terms: PathBuf,
        #[arg(long, value_delimiter = ',', default_value = "16,64")]
        clients: Vec<usize>,
        /// Single-term requests per client count
        #[arg(long, default_value_t = 50_000)]
        single_requests: usize,
        /// Batch requests per client count
        #[arg(long, default_value_t = 256)]
        batch_requests: usize,
        /// Terms per batch request
        #[arg(long, default_value_t = 256)]
        batch: usize,
        /// The server's --max-concurrent
        #[arg(long, default_value_t = 64)]
        max_concurrent: usize,
    },
    /// (internal) open a local store in this fresh process and run one query
    #[command(hide = true)]
    Reopen {
        dir: PathBuf,
        query_npy: PathBuf,
        k: usize,
        ef_search: usize,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Bench::Reopen {
        dir,
        query_npy,
        k,
        ef_search,
    } = &cli.command
    {
        return local::reopen(dir, query_npy, *k, *ef_search);
    }
    rayon::ThreadPoolBuilder::new()
        .num_threads(cli.threads)
        .build_global()?;
    if let Bench::Serve {
        binary,
        store,
        terms,
        clients,
        single_requests,
        batch_requests,
        batch,
        max_concurrent,
    } = &cli.command
    {
        let terms = serve::read_terms(terms)?;
        let rows = serve::run(&serve::ServeArgs {
            binary,
            store,
            terms: &terms,
            clients,
            single_requests: *single_requests,
            batch_requests: *batch_requests,
            batch: *batch,
            max_concurrent: *max_concurrent,
        })?;
        serve::print(&rows);
        if let Some(path) = &cli.json {
            std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
        }
        return Ok(());
    }
    let peer = if cli.no_peer {
        None
    } else {
        Some(peer::Peer::locate()?)
    };
    let figures = match &cli.command {
        Bench::Flat {
            sizes,
            dim,
            queries,
            k,
        } => {
            let rows = flat::run(&flat::FlatArgs {
                sizes,
                dim: *dim,
                queries: *queries,
                k: *k,
                reps: cli.reps,
                threads: cli.threads,
                work: &cli.work,
                peer: peer.as_ref(),
            })?;
            flat::print(&rows);
            rows
        }
        Bench::Embed { n, texts } => {
            let figures = embed::run(&embed::EmbedArgs {
                n: *n,
                texts: texts.as_deref(),
                reps: cli.reps,
                threads: cli.threads,
                work: &cli.work,
                peer: peer.as_ref(),
            })?;
            embed::print(&figures);
            figures
        }
        Bench::Local {
            datasets,
            random_n,
            queries,
            k,
            batch,
            mondo_json,
            model,
            m,
            ef_construction,
            ef_search,
            build_threads,
        } => {
            let mut hnsw = lobster_vector::local::HnswParams::default();
            hnsw.m = m.unwrap_or(hnsw.m);
            hnsw.ef_construction = ef_construction.unwrap_or(hnsw.ef_construction);
            hnsw.ef_search = ef_search.unwrap_or(hnsw.ef_search);
            hnsw.build_threads = build_threads.unwrap_or(hnsw.build_threads);
            let rows = local::run(&local::LocalArgs {
                datasets,
                random_n: *random_n,
                queries: *queries,
                k: *k,
                batch: *batch,
                reps: cli.reps,
                threads: cli.threads,
                work: &cli.work,
                mondo_json,
                model,
                hnsw,
                peer: peer.as_ref(),
            })?;
            local::print(&rows);
            rows
        }
        Bench::Reopen { .. } | Bench::Serve { .. } => unreachable!("handled above"),
    };
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&figures)?)?;
    }
    Ok(())
}
