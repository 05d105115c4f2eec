//! `lobster-vector serve` against the real binary, the real MiniLM model and
//! the real Cell Ontology: every endpoint's success and error statuses, the
//! token rule, 413 and 429 at their limits, and SIGTERM during a batch.
//! Skips without the model and CL source; fails instead when
//! LOBSTER_TEST_REQUIRE_SERVICES=1.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;

use common::{cl_store, lv, stdout_json};
use serde_json::{json, Value};

/// A running server and what it printed.
struct Server {
    child: Child,
    url: String,
    stderr: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Server {
    fn start(store: &Path, args: &[&str]) -> Server {
        let mut cmd = lv(store);
        cmd.arg("serve").args(args);
        Server::spawn(cmd, "ready")
    }

    /// Starts `cmd` (a `serve`) and waits for its address, then for `until`.
    fn spawn(mut cmd: Command, until: &str) -> Server {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start serve");
        let (tx, rx) = mpsc::channel();
        let err = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            child,
            url: String::new(),
            stderr: rx,
            seen: Vec::new(),
        };
        let line = server.wait_for("listening on http://");
        let addr = line
            .split("listening on http://")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .expect("address");
        server.url = format!("http://{addr}");
        server.wait_for(until);
        server
    }

    fn wait_for(&mut self, needle: &str) -> String {
        loop {
            match self.stderr.recv_timeout(Duration::from_secs(300)) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(e) => panic!(
                    "no `{needle}` from the server ({e}); it printed {:?}",
                    self.seen
                ),
            }
        }
    }

    fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// Status, `Retry-After`, and the body parsed as JSON (or as a string).
fn call(
    method: &str,
    url: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, Option<String>, Value) {
    let agent = agent();
    let auth = token.map(|t| format!("Bearer {t}"));
    let result = match (method, body) {
        ("GET", _) => {
            let mut req = agent.get(url);
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            req.call()
        }
        (_, b) => {
            let mut req = agent.post(url).header("content-type", "application/json");
            if let Some(a) = &auth {
                req = req.header("authorization", a);
            }
            req.send(b.unwrap_or(""))
        }
    };
    let mut resp = result.expect("HTTP exchange");
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, retry, value)
}

fn post(url: &str, body: &Value) -> (u16, Option<String>, Value) {
    call("POST", url, Some(&body.to_string()), None)
}

fn ids_and_scores(rows: &Value) -> Vec<(String, f64)> {
    rows.as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["ontology_id"].as_str().unwrap_or_default().to_string(),
                r["score"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect()
}

#[test]
fn every_endpoint_answers_with_its_status() {
    let Some(store) = cl_store() else { return };
    let mut server = Server::start(
        store,
        &[
            "--addr",
            "127.0.0.1:0",
            "--max-terms",
            "16",
            "--max-body-bytes",
            "4096",
            "--max-concurrent",
            "1",
        ],
    );
    let u = server.url.clone();

    let (s, _, health) = call("GET", &format!("{u}/health"), None, None);
    assert_eq!(
        (s, health["status"].as_str()),
        (200, Some("ok")),
        "{health}"
    );

    // The answer equals the CLI's.
    let (s, _, m) = post(
        &format!("{u}/v1/match"),
        &json!({"terms": "CD8+ T cells", "ontology": "cell_type", "k": 3}),
    );
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["ontology"], "cell_ontology");
    let rows = &m["results"][0]["matches"];
    assert_eq!(rows[0]["ontology_id"], "CL:0000625", "{m}");
    let cli = stdout_json(
        &lv(store)
            .args([
                "search",
                "CD8+ T cells",
                "-o",
                "cell_type",
                "-k",
                "3",
                "--json",
            ])
            .output()
            .expect("search"),
    );
    assert_eq!(
        ids_and_scores(rows),
        ids_and_scores(&cli["results"]["cell_ontology"])
    );
    assert_eq!(rows, &cli["results"]["cell_ontology"]);

    // A list keeps its order; min_score drops rows below it.
    let terms = ["B cells", "classical monocyte", "foo bar baz"];
    let (s, _, m) = post(
        &format!("{u}/v1/match"),
        &json!({"terms": terms, "ontology": "cl", "min_score": 0.5}),
    );
    assert_eq!(s, 200, "{m}");
    let queries: Vec<&str> = m["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["query"].as_str().unwrap())
        .collect();
    assert_eq!(queries, terms);
    assert_eq!(m["results"][1]["matches"][0]["ontology_id"], "CL:0000860");
    assert!(m["results"].as_array().unwrap().iter().all(|r| r["matches"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["score"].as_f64().unwrap() >= 0.5)));

    // 400 bad input, 404 unknown things.
    for (body, kind) in [
        (json!({"terms": "x", "ontology": "genes"}), "invalid_input"),
        (
            json!({"terms": "x", "ontology": "cl", "k": 0}),
            "invalid_input",
        ),
        (
            json!({"terms": "x", "ontology": "cl", "min_score": 2}),
            "invalid_input",
        ),
        (json!({"terms": "   ", "ontology": "cl"}), "invalid_input"),
        (json!({"terms": [], "ontology": "cl"}), "invalid_input"),
        (json!({"ontology": "cl"}), "invalid_input"),
    ] {
        let (s, _, e) = post(&format!("{u}/v1/match"), &body);
        assert_eq!((s, e["kind"].as_str()), (400, Some(kind)), "{body} -> {e}");
        assert!(
            e["error"].as_str().is_some_and(|m| !m.is_empty()) && e["detail"].is_string(),
            "{e}"
        );
    }
    let (s, _, e) = call("POST", &format!("{u}/v1/match"), Some("{not json"), None);
    assert_eq!(s, 400, "{e}");
    let (s, _, e) = post(
        &format!("{u}/v1/match"),
        &json!({"terms": "heart attack", "ontology": "disease"}),
    );
    assert_eq!((s, e["kind"].as_str()), (404, Some("not_found")), "{e}");
    let (s, _, e) = call("GET", &format!("{u}/v1/terms/CL:9999999"), None, None);
    assert_eq!((s, e["kind"].as_str()), (404, Some("not_found")), "{e}");
    let (s, _, _) = call("GET", &format!("{u}/v1/terms/FOO:1"), None, None);
    assert_eq!(s, 400);
    let (s, _, _) = call("GET", &format!("{u}/v2/nothing"), None, None);
    assert_eq!(s, 404);

    // 413 at the body and term limits.
    let many: Vec<String> = (0..17).map(|i| format!("cell {i}")).collect();
    let (s, _, e) = post(
        &format!("{u}/v1/match"),
        &json!({"terms": many, "ontology": "cl"}),
    );
    assert_eq!((s, e["kind"].as_str()), (413, Some("too_large")), "{e}");
    let (s, _, e) = post(
        &format!("{u}/v1/match"),
        &json!({"terms": "x".repeat(5000), "ontology": "cl"}),
    );
    assert_eq!((s, e["kind"].as_str()), (413, Some("too_large")), "{e}");

    // Lookups, neighbours, collections, raw search.
    let (s, _, t) = call("GET", &format!("{u}/v1/terms/CL:0000625"), None, None);
    assert_eq!(
        (s, t["label"].as_str()),
        (200, Some("CD8-positive, alpha-beta T cell")),
        "{t}"
    );
    let (s, _, n) = call(
        "GET",
        &format!("{u}/v1/terms/CL:0000625/neighbors?depth=2"),
        None,
        None,
    );
    assert_eq!(s, 200, "{n}");
    let distances: Vec<u64> = n["ancestors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["distance"].as_u64().unwrap())
        .collect();
    assert!(
        distances.contains(&1) && distances.contains(&2) && distances.iter().all(|d| *d <= 2),
        "{n}"
    );
    let (s, _, _) = call(
        "GET",
        &format!("{u}/v1/terms/CL:0000625/neighbors?depth=0"),
        None,
        None,
    );
    assert_eq!(s, 400);
    let (s, _, c) = call("GET", &format!("{u}/v1/collections"), None, None);
    assert_eq!(s, 200, "{c}");
    let collection = c["collections"][0]["name"]
        .as_str()
        .expect("a collection")
        .to_string();
    assert!(c["collections"][0]["complete"].as_bool().unwrap_or(false));
    let (s, _, h) = post(
        &format!("{u}/v1/search"),
        &json!({"texts": ["T cell"], "collection": collection, "k": 4}),
    );
    assert_eq!(s, 200, "{h}");
    assert_eq!(h["results"][0]["hits"].as_array().map(Vec::len), Some(4));
    let (s, _, _) = post(
        &format!("{u}/v1/search"),
        &json!({"texts": "T cell", "collection": "nope_v1"}),
    );
    assert_eq!(s, 404);

    // 429 beyond one request at a time, with Retry-After; no other errors.
    let batch: Vec<String> = (0..16)
        .map(|i| format!("activated T cell subset {i}"))
        .collect();
    let body = json!({"terms": batch, "ontology": "cl", "k": 10});
    let url = format!("{u}/v1/match");
    let answers: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    let (status, retry, _) = post(&url, &body);
                    (status, retry)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    assert!(answers.iter().any(|(s, _)| *s == 200), "{answers:?}");
    assert!(
        answers
            .iter()
            .any(|(s, r)| *s == 429 && r.as_deref() == Some("1")),
        "{answers:?}"
    );
    assert!(
        answers.iter().all(|(s, _)| *s == 200 || *s == 429),
        "{answers:?}"
    );

    let (s, _, metrics) = call("GET", &format!("{u}/metrics"), None, None);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert_eq!(s, 200);
    assert!(
        metrics.contains("lobster_vector_requests_total{route=\"/v1/match\",status=\"200\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("lobster_vector_overloaded_total"),
        "{metrics}"
    );
    let (s, _, api) = call("GET", &format!("{u}/openapi.json"), None, None);
    assert_eq!(s, 200);
    for path in [
        "/v1/match",
        "/v1/search",
        "/v1/terms/{id}",
        "/v1/terms/{id}/neighbors",
        "/v1/collections",
        "/health",
    ] {
        assert!(
            api["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    server.terminate();
    let status = server.child.wait().expect("wait");
    assert!(status.success(), "{status:?}");
}

#[test]
fn another_embedder_is_a_conflict() {
    let Some(store) = cl_store() else { return };
    let mut cmd = lv(store);
    cmd.env("LOBSTER_EMBEDDING_PROVIDER", "openai")
        .env("OPENAI_API_KEY", "sk-test")
        .env("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
        .args(["serve", "--addr", "127.0.0.1:0"]);
    let mut server = Server::spawn(cmd, "warm-up failed");
    let (s, _, e) = post(
        &format!("{}/v1/match", server.url),
        &json!({"terms": "B cells", "ontology": "cl"}),
    );
    assert_eq!((s, e["kind"].as_str()), (409, Some("unavailable")), "{e}");
    assert!(
        e["detail"].as_str().unwrap_or_default().contains("minilm"),
        "{e}"
    );
    server.terminate();
}

#[test]
fn the_token_rule() {
    let out = Command::new(env!("CARGO_BIN_EXE_lobster-vector"))
        .env_remove("LOBSTER_SERVE_TOKEN")
        .args(["serve", "--addr", "0.0.0.0:0"])
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--token") && err.contains("LOBSTER_SERVE_TOKEN"),
        "{err}"
    );

    let Some(store) = cl_store() else { return };
    let secret = "s3cret-token-value";
    let mut server = Server::start(store, &["--addr", "127.0.0.1:0", "--token", secret]);
    let u = server.url.clone();
    let body = json!({"terms": "NK cells", "ontology": "cl", "k": 1}).to_string();
    let (s, _, e) = call("POST", &format!("{u}/v1/match"), Some(&body), None);
    assert_eq!((s, e["kind"].as_str()), (401, Some("unauthorized")), "{e}");
    let (s, _, _) = call("POST", &format!("{u}/v1/match"), Some(&body), Some("wrong"));
    assert_eq!(s, 401);
    let (s, _, m) = call("POST", &format!("{u}/v1/match"), Some(&body), Some(secret));
    assert_eq!(s, 200, "{m}");
    let (s, _, _) = call("GET", &format!("{u}/metrics"), None, None);
    assert_eq!(s, 401);
    let (s, _, _) = call("GET", &format!("{u}/health"), None, None);
    assert_eq!(s, 200);
    server.terminate();
    let _ = server.child.wait();
    while let Ok(line) = server.stderr.recv_timeout(Duration::from_secs(5)) {
        server.seen.push(line);
    }
    assert!(
        server.seen.iter().all(|l| !l.contains(secret)),
        "{:?}",
        server.seen
    );
}

#[test]
fn sigterm_during_a_batch_finishes_it() {
    let Some(store) = cl_store() else { return };
    let mut server = Server::start(store, &["--addr", "127.0.0.1:0"]);
    let url = format!("{}/v1/match", server.url);
    let terms: Vec<String> = (0..1000)
        .map(|i| format!("T cell population number {i}"))
        .collect();
    let body = json!({"terms": terms, "ontology": "cl", "k": 3});
    let (url, body) = (&url, &body);
    let (answer, status, sent, took) = std::thread::scope(|s| {
        let started = Instant::now();
        let client = s.spawn(move || {
            let answer = post(url, body);
            (answer, started.elapsed())
        });
        std::thread::sleep(Duration::from_millis(200));
        server.terminate();
        let sent = started.elapsed();
        let (answer, took) = client.join().expect("client");
        (answer, server.child.wait().expect("wait"), sent, took)
    });
    // The signal arrived while the batch was being computed.
    assert!(
        took > sent,
        "the batch ended ({took:?}) before SIGTERM ({sent:?})"
    );
    let (s, _, m) = answer;
    assert_eq!(s, 200, "{m}");
    assert_eq!(m["results"].as_array().map(Vec::len), Some(1000));
    assert!(status.success(), "{status:?}");
}
