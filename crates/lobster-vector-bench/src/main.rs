//! `lobster-vector-bench`: our figures beside the Python predecessor's stack,
//! measured in the same run on the same data (see `../shared/peer`).
//!
//! Ratios are printed so that > 1.0 means lobster-vector is better.

mod embed;
mod flat;
mod peer;
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
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    rayon::ThreadPoolBuilder::new()
        .num_threads(cli.threads)
        .build_global()?;
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
    };
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&figures)?)?;
    }
    Ok(())
}
