//! Load on `lobster-vector serve` over loopback, bounded in requests: single-term
//! and batch `POST /v1/match` at several client counts (throughput, p50/p99,
//! errors), the server's RSS before and after, and the CLI's one-shot latency
//! for the same query in the same run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::stats::{median, percentile};

pub struct ServeArgs<'a> {
    pub binary: &'a Path,
    pub store: &'a Path,
    pub terms: &'a [String],
    pub clients: &'a [usize],
    pub single_requests: usize,
    pub batch_requests: usize,
    pub batch: usize,
    pub max_concurrent: usize,
}

/// A started server; killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(args: &ServeArgs) -> Result<Server> {
    let mut child = Command::new(args.binary)
        .env("LOBSTER_VECTOR_BACKEND", "local")
        .env("LOBSTER_VECTOR_STORE_PATH", args.store)
        .args(["serve", "--addr", "127.0.0.1:0", "--max-concurrent"])
        .arg(args.max_concurrent.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", args.binary.display()))?;
    let stderr = child.stderr.take().context("server stderr")?;
    let mut url = None;
    for line in BufReader::new(stderr).lines() {
        let line = line?;
        if let Some(rest) = line.split("listening on ").nth(1) {
            url = rest.split_whitespace().next().map(str::to_string);
        }
        if line.contains("ready") {
            break;
        }
        if line.contains("error") {
            bail!("the server failed: {line}");
        }
    }
    let url = url.context("the server printed no address")?;
    Ok(Server { child, url })
}

/// Resident set size of `pid`, MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// `requests` requests from `clients` threads, each body built by `body(i)`;
/// a 429 is retried after its `Retry-After` (counted, not an error), and a
/// request's latency runs from its first send to its answer.
fn load(
    url: &str,
    clients: usize,
    requests: usize,
    body: &(dyn Fn(usize) -> Value + Sync),
) -> Value {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let per_client: Vec<(Vec<f64>, usize, usize, usize)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(120)))
                        .build()
                        .into();
                    let (mut lat, mut ok, mut err, mut shed) = (Vec::new(), 0, 0, 0);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= requests {
                            break;
                        }
                        let payload = body(i).to_string();
                        let t = Instant::now();
                        // A 429 is load shedding: wait as Retry-After says and send again.
                        loop {
                            let r = agent
                                .post(&format!("{url}/v1/match"))
                                .header("content-type", "application/json")
                                .send(payload.as_str());
                            match r {
                                Ok(mut resp) if resp.status().as_u16() == 200 => {
                                    let _ = resp.body_mut().read_to_string();
                                    ok += 1;
                                }
                                Ok(resp) if resp.status().as_u16() == 429 => {
                                    shed += 1;
                                    let wait = resp
                                        .headers()
                                        .get("retry-after")
                                        .and_then(|v| v.to_str().ok())
                                        .and_then(|v| v.parse::<u64>().ok())
                                        .unwrap_or(1);
                                    std::thread::sleep(Duration::from_secs(wait));
                                    continue;
                                }
                                _ => err += 1,
                            }
                            break;
                        }
                        lat.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    (lat, ok, err, shed)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut lat: Vec<f64> = per_client
        .iter()
        .flat_map(|c| c.0.iter().copied())
        .collect();
    lat.sort_by(f64::total_cmp);
    let ok: usize = per_client.iter().map(|c| c.1).sum();
    let errors: usize = per_client.iter().map(|c| c.2).sum();
    let shed: usize = per_client.iter().map(|c| c.3).sum();
    json!({
        "clients": clients,
        "requests": requests,
        "ok": ok,
        "errors": errors,
        "answered_429": shed,
        "seconds": seconds,
        "requests_per_s": requests as f64 / seconds,
        "p50_ms": percentile(&lat, 50.0),
        "p99_ms": percentile(&lat, 99.0),
    })
}

pub fn run(args: &ServeArgs) -> Result<Vec<Value>> {
    if args.terms.is_empty() {
        bail!("no terms to send");
    }
    let server = start(args)?;
    let pid = server.child.id();
    let rss_before = rss_mib(pid);
    let mut rows = Vec::new();
    let single = |i: usize| json!({"terms": args.terms[i % args.terms.len()], "ontology": "cell_type", "k": 5});
    let batch = |i: usize| {
        let n = args.terms.len();
        let terms: Vec<&String> = (0..args.batch)
            .map(|j| &args.terms[(i * args.batch + j) % n])
            .collect();
        json!({"terms": terms, "ontology": "cell_type", "k": 5})
    };
    for &clients in args.clients {
        let mut r = load(&server.url, clients, args.single_requests, &single);
        r["kind"] = json!("single term");
        r["rss_mib_after"] = json!(rss_mib(pid));
        eprintln!("{r}");
        rows.push(r);
    }
    let rss_after_single = rss_mib(pid);
    for &clients in args.clients {
        let mut r = load(&server.url, clients, args.batch_requests, &batch);
        r["kind"] = json!(format!("{}-term batch", args.batch));
        r["terms_per_s"] = json!(r["requests_per_s"].as_f64().unwrap_or(0.0) * args.batch as f64);
        r["rss_mib_after"] = json!(rss_mib(pid));
        eprintln!("{r}");
        rows.push(r);
    }
    let rss_after = rss_mib(pid);
    let singles = args.single_requests * args.clients.len();
    rows.push(json!({
        "kind": "rss",
        "rss_mib_ready": rss_before,
        "rss_mib_after_single_requests": rss_after_single,
        "single_requests": singles,
        "rss_mib_after_batches": rss_after,
    }));
    drop(server);
    rows.push(one_shot(args)?);
    Ok(rows)
}

/// The CLI's one-shot `search` for the same kind of query, median of 10 processes.
fn one_shot(args: &ServeArgs) -> Result<Value> {
    let mut times = Vec::new();
    for t in args.terms.iter().take(10) {
        let started = Instant::now();
        let out = Command::new(args.binary)
            .env("LOBSTER_VECTOR_BACKEND", "local")
            .env("LOBSTER_VECTOR_STORE_PATH", args.store)
            .args(["search", t, "-o", "cell_type", "--json"])
            .output()?;
        if !out.status.success() {
            bail!("search failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    Ok(json!({"kind": "cli one-shot search", "p50_ms": median(&times)}))
}

pub fn print(rows: &[Value]) {
    println!("| load | clients | requests | req/s | terms/s | p50 ms | p99 ms | errors | 429s retried | RSS after, MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows.iter().filter(|r| r.get("clients").is_some()) {
        println!(
            "| {} | {} | {} | {:.0} | {:.0} | {:.2} | {:.2} | {} | {} | {:.0} |",
            r["kind"].as_str().unwrap_or_default(),
            r["clients"],
            r["requests"],
            r["requests_per_s"].as_f64().unwrap_or(f64::NAN),
            r.get("terms_per_s")
                .and_then(Value::as_f64)
                .unwrap_or_else(|| r["requests_per_s"].as_f64().unwrap_or(f64::NAN)),
            r["p50_ms"].as_f64().unwrap_or(f64::NAN),
            r["p99_ms"].as_f64().unwrap_or(f64::NAN),
            r["errors"],
            r["answered_429"],
            r["rss_mib_after"].as_f64().unwrap_or(f64::NAN),
        );
    }
    for r in rows.iter().filter(|r| r.get("clients").is_none()) {
        println!("{r}");
    }
}

/// The distinct queries of a dev set (`[{query, ...}]`), or lines of a text file.
pub fn read_terms(path: &PathBuf) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut terms: Vec<String> = match serde_json::from_str::<Vec<Value>>(&text) {
        Ok(records) => records
            .iter()
            .filter_map(|r| r["query"].as_str().map(str::to_string))
            .collect(),
        Err(_) => text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    };
    terms.sort();
    terms.dedup();
    Ok(terms)
}
