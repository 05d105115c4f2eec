//! Embedding throughput and single-query latency of the candle BERT embedder.
//!
//! ```text
//! cargo run --release -p lobster-vector-candle --example embed_bench -- TEXTS_FILE \
//!     [--threads 2] [--n 20000] [--batch-size 32] [--reps 3] [--runs 200] \
//!     [--provider minilm] [--model DIR] [--pooling mean|cls|max]
//! ```
//!
//! TEXTS_FILE holds one text per line (blank lines are skipped). Prints
//! texts/s over the first `--n` texts (median of `--reps` passes after a
//! warm-up) and the median / p99 latency of `embed_query("heart attack")`
//! over `--runs` calls, as one JSON line on stdout.

use std::path::PathBuf;
use std::time::Instant;

use lobster_vector_candle::{resolve_model_dir, BertEmbedder, BertOptions, Pooling};
use lobster_vector_core::Embedder;

struct Args {
    file: PathBuf,
    threads: usize,
    n: usize,
    batch_size: usize,
    reps: usize,
    runs: usize,
    provider: String,
    model: Option<PathBuf>,
    pooling: Option<Pooling>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut args = Args {
        file: PathBuf::new(),
        threads: 2,
        n: 20_000,
        batch_size: lobster_vector_candle::DEFAULT_BATCH_SIZE,
        reps: 3,
        runs: 200,
        provider: "minilm".into(),
        model: None,
        pooling: None,
    };
    let mut file = None;
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let num = |v: String, name: &str| {
            v.parse::<usize>()
                .map_err(|e| format!("{name}: {e}"))
                .and_then(|n| {
                    if n == 0 {
                        Err(format!("{name} must be positive"))
                    } else {
                        Ok(n)
                    }
                })
        };
        match a.as_str() {
            "--threads" => args.threads = num(value("--threads")?, "--threads")?,
            "--n" => args.n = num(value("--n")?, "--n")?,
            "--batch-size" => args.batch_size = num(value("--batch-size")?, "--batch-size")?,
            "--reps" => args.reps = num(value("--reps")?, "--reps")?,
            "--runs" => args.runs = num(value("--runs")?, "--runs")?,
            "--provider" => args.provider = value("--provider")?,
            "--model" => args.model = Some(PathBuf::from(value("--model")?)),
            "--pooling" => {
                args.pooling = Some(value("--pooling")?.parse().map_err(|e| format!("{e}"))?)
            }
            "-h" | "--help" => {
                return Err("usage: embed_bench TEXTS_FILE [--threads N] [--n N] [--batch-size N] [--reps N] [--runs N] [--provider P] [--model DIR] [--pooling mean|cls|max]".into())
            }
            _ if file.is_none() && !a.starts_with("--") => file = Some(PathBuf::from(a)),
            _ => return Err(format!("unexpected argument `{a}`")),
        }
    }
    args.file = file.ok_or("missing TEXTS_FILE (one text per line)")?;
    Ok(args)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let text = std::fs::read_to_string(&args.file)
        .map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    let texts: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .take(args.n)
        .collect();
    if texts.is_empty() {
        return Err("no texts in the file".into());
    }

    let dir = resolve_model_dir(&args.provider, args.model.as_deref())?;
    let mut options = BertOptions::for_provider(&args.provider)?
        .with_threads(args.threads)
        .with_batch_size(args.batch_size);
    if let Some(p) = args.pooling {
        options = options.with_pooling(p);
    }
    let t0 = Instant::now();
    let embedder = BertEmbedder::load(&dir, options)?;
    let load_s = t0.elapsed().as_secs_f64();
    let tokens: usize = texts
        .iter()
        .map(|t| embedder.token_ids(t).map(|ids| ids.len()))
        .sum::<Result<usize, _>>()?;

    // Warm-up.
    embedder.embed_documents(&texts[..texts.len().min(1000)])?;
    for _ in 0..20 {
        embedder.embed_query("heart attack")?;
    }

    let mut pass_s = Vec::new();
    for rep in 0..args.reps {
        let t = Instant::now();
        let v = embedder.embed_documents(&texts)?;
        let dt = t.elapsed().as_secs_f64();
        assert_eq!(v.len(), texts.len());
        eprintln!(
            "rep {rep}: {:.1} texts/s ({dt:.2} s)",
            texts.len() as f64 / dt
        );
        pass_s.push(dt);
    }
    let throughput = texts.len() as f64 / median(&mut pass_s);

    let mut lat = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        let t = Instant::now();
        let v = embedder.embed_query("heart attack")?;
        lat.push(t.elapsed().as_secs_f64() * 1e3);
        assert_eq!(v.len(), embedder.dimensions());
    }
    let lat_median = median(&mut lat);
    let p99 = lat[((lat.len() as f64 * 0.99) as usize).min(lat.len() - 1)];

    eprintln!(
        "{} texts (mean {:.2} tokens), {} threads, batch {}: {:.1} texts/s; single query median {:.2} ms, p99 {:.2} ms",
        texts.len(),
        tokens as f64 / texts.len() as f64,
        args.threads,
        args.batch_size,
        throughput,
        lat_median,
        p99
    );
    println!(
        "{{\"provider\":\"{}\",\"model_dir\":{:?},\"texts\":{},\"mean_tokens\":{:.3},\"threads\":{},\"batch_size\":{},\"load_s\":{:.3},\"texts_per_s\":{:.1},\"single_query_ms_median\":{:.3},\"single_query_ms_p99\":{:.3}}}",
        args.provider,
        dir.display().to_string(),
        texts.len(),
        tokens as f64 / texts.len() as f64,
        args.threads,
        args.batch_size,
        load_s,
        throughput,
        lat_median,
        p99
    );
    Ok(())
}
