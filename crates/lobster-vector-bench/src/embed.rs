//! MiniLM embedding throughput and single-query latency beside
//! sentence-transformers (`bench_embed.py`) on the same texts and threads.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lobster_vector::{Config, Overrides};
use serde_json::{json, Value};

use crate::{peer::Peer, stats};

pub struct EmbedArgs<'a> {
    /// Texts per throughput pass (the first N of the corpus).
    pub n: usize,
    /// One text per line; default: the corpus the peer wrote.
    pub texts: Option<&'a Path>,
    pub reps: usize,
    pub threads: usize,
    pub work: &'a Path,
    pub peer: Option<&'a Peer>,
}

const QUERY: &str = "heart attack";
const LATENCY_CALLS: usize = 200;

/// The corpus: `--texts`, else the MONDO labels and synonyms the peer wrote.
fn corpus(a: &EmbedArgs, peer_work: &Path) -> Result<Vec<String>> {
    if let Some(path) = a.texts {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        return Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect());
    }
    let meta = peer_work.join("mondo_all_meta.json");
    let text = std::fs::read_to_string(&meta).with_context(|| {
        format!(
            "reading {} (run with the peer, or pass --texts FILE)",
            meta.display()
        )
    })?;
    let v: Value = serde_json::from_str(&text)?;
    let texts = v["texts"]
        .as_array()
        .context("no `texts` in the peer's corpus")?
        .iter()
        .filter_map(|t| t.as_str().map(String::from))
        .collect();
    Ok(texts)
}

fn ours(texts: &[&str], a: &EmbedArgs) -> Result<Value> {
    let config = Config::resolve(&Overrides {
        embedding_provider: Some("minilm".into()),
        threads: Some(a.threads),
        ..Overrides::default()
    })?;
    let (load_s, embedder) = stats::time(|| lobster_vector::open_embedder(&config));
    let embedder = embedder?;
    embedder.embed_documents(&texts[..texts.len().min(1024)])?;
    for _ in 0..20 {
        embedder.embed_query(QUERY)?;
    }
    let mut pass = Vec::new();
    for r in 0..a.reps {
        let (s, v) = stats::time(|| embedder.embed_documents(texts));
        v?;
        eprintln!("ours rep {r}: {:.1} texts/s", texts.len() as f64 / s);
        pass.push(s);
    }
    let mut rep_medians = Vec::new();
    let mut rep_p99 = Vec::new();
    for _ in 0..a.reps {
        let mut ms = Vec::with_capacity(LATENCY_CALLS);
        for _ in 0..LATENCY_CALLS {
            let (s, v) = stats::time(|| embedder.embed_query(QUERY));
            v?;
            ms.push(s * 1e3);
        }
        rep_medians.push(stats::median(&ms));
        rep_p99.push(stats::percentile(&ms, 99.0));
    }
    Ok(json!({
        "model_load_s": load_s,
        "throughput_texts_per_s_median": texts.len() as f64 / stats::median(&pass),
        "single_query_latency_ms_median": stats::median(&rep_medians),
        "single_query_latency_ms_p99": stats::median(&rep_p99),
    }))
}

/// Runs the peer first (it writes the corpus), then ours on the same texts.
pub fn run(a: &EmbedArgs) -> Result<Value> {
    let peer_work: PathBuf = std::env::var_os("PEER_WORK")
        .map(PathBuf::from)
        .unwrap_or_else(|| a.work.join("peer-work"));
    let theirs = match a.peer {
        Some(p) => Some(p.run(
            "bench_embed.py",
            "embed",
            &a.work.join("peer-results"),
            &[
                ("REPS", a.reps.to_string()),
                ("PEER_EMBED_N", a.n.to_string()),
                ("PEER_THREADS", a.threads.to_string()),
                ("PEER_WORK", peer_work.display().to_string()),
            ],
        )?),
        None => None,
    };
    let all = corpus(a, &peer_work)?;
    if all.is_empty() {
        bail!("the corpus is empty");
    }
    let texts: Vec<&str> = all.iter().take(a.n).map(String::as_str).collect();
    let ours = ours(&texts, a)?;
    let ratio = |key: &str, higher_is_better: bool| -> Value {
        let (o, t) = (
            ours[key].as_f64(),
            theirs.as_ref().and_then(|t| t[key].as_f64()),
        );
        match (o, t) {
            (Some(o), Some(t)) if o > 0.0 && t > 0.0 => {
                json!(if higher_is_better { o / t } else { t / o })
            }
            _ => Value::Null,
        }
    };
    Ok(json!({
        "texts": texts.len(),
        "threads": a.threads,
        "ours": ours,
        "sentence_transformers": theirs,
        "ratio_throughput": ratio("throughput_texts_per_s_median", true),
        "ratio_latency": ratio("single_query_latency_ms_median", false),
    }))
}

pub fn print(v: &Value) {
    let f = |x: &Value| x.as_f64().map_or("-".to_string(), |x| format!("{x:.2}"));
    let theirs = &v["sentence_transformers"];
    println!(
        "MiniLM on {} MONDO texts, {} threads (ratio > 1 = lobster-vector better)",
        v["texts"], v["threads"]
    );
    println!(
        "{:<28} {:>14} {:>22} {:>8}",
        "figure", "lobster-vector", "sentence-transformers", "ratio"
    );
    println!(
        "{:<28} {:>14} {:>22} {:>8}",
        "throughput (texts/s)",
        f(&v["ours"]["throughput_texts_per_s_median"]),
        f(&theirs["throughput_texts_per_s_median"]),
        f(&v["ratio_throughput"])
    );
    println!(
        "{:<28} {:>14} {:>22} {:>8}",
        "\"heart attack\" median (ms)",
        f(&v["ours"]["single_query_latency_ms_median"]),
        f(&theirs["single_query_latency_ms_median"]),
        f(&v["ratio_latency"])
    );
    println!(
        "{:<28} {:>14} {:>22}",
        "\"heart attack\" p99 (ms)",
        f(&v["ours"]["single_query_latency_ms_p99"]),
        f(&theirs["single_query_latency_ms_p99"]),
    );
}
