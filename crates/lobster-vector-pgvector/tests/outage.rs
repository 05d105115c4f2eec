//! A server that goes away and a server that cannot do what the URL asks:
//! a PostgreSQL stopped while searches run gives each caller a clear error
//! (no hang, no password), and `sslmode=require` against a server without
//! TLS is refused with the reason. The stopped server is a second
//! throwaway one (`scripts/pg-test-server.sh` in its own directory), so the
//! shared test server stays up.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use lobster_vector_core::{Record, VectorStore};
use lobster_vector_pgvector::{PgOptions, PgStore};

fn chain(e: &lobster_vector_core::Error) -> String {
    e.chain()
}

/// Runs `scripts/pg-test-server.sh ACTION` on the server in `dir`.
fn server_script(action: &str, dir: &Path) {
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-test-server.sh"))
        .arg(action)
        .env("LOBSTER_PG_TEST_DIR", dir)
        .output()
        .expect("run pg-test-server.sh");
    assert!(
        out.status.success(),
        "pg-test-server.sh {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A second server with its own data directory, stopped and removed on drop.
struct OwnServer {
    dir: PathBuf,
    url: String,
}

impl OwnServer {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("lv-pg-outage-{}", std::process::id()));
        server_script("start", &dir);
        let url = std::fs::read_to_string(dir.join("url"))
            .expect("the server's url file")
            .trim()
            .to_string();
        Self { dir, url }
    }

    fn stop(&self) {
        server_script("stop", &self.dir);
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        if self.dir.exists() {
            self.stop();
        }
    }
}

#[test]
fn a_server_stopped_during_searches_gives_a_clear_error_not_a_hang() {
    if common::url().is_none() {
        return;
    }
    let server = OwnServer::start();
    let password = common::password(&server.url);
    let store = Arc::new(
        PgStore::connect(
            &server.url,
            PgOptions {
                connect_timeout: Duration::from_secs(2),
                pool_timeout: Duration::from_secs(5),
                ..PgOptions::default()
            },
        )
        .expect("connect"),
    );
    let c = common::unique("outage");
    let vectors = common::clustered(5, 3_000, 32, 8, 0.5);
    let records: Vec<Record> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| Record::new(format!("r{i}"), v.clone()))
        .collect();
    store.upsert(&c, &records).expect("upsert");

    // Two threads search without pause until a search fails.
    let done = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel();
    for q in vectors.iter().take(2) {
        let (store, c, done, tx) = (store.clone(), c.clone(), done.clone(), tx.clone());
        let q = q.clone();
        std::thread::spawn(move || loop {
            match store.search(&c, &q, 10) {
                Ok(hits) => {
                    assert_eq!(hits.len(), 10);
                    done.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => {
                    let _ = tx.send(e);
                    return;
                }
            }
        });
    }
    drop(tx);
    for _ in 0..12_000 {
        if done.load(Ordering::SeqCst) >= 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        done.load(Ordering::SeqCst) >= 20,
        "searches did not run before the stop: {:?}",
        rx.try_recv().map(|e| chain(&e))
    );
    server.stop();
    // Generous bound: it only tells a hang from an answer.
    for _ in 0..2 {
        let e = rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a search hung after the server stopped");
        let text = chain(&e);
        eprintln!("a search when the server stopped: {text}");
        assert!(!text.contains(&password), "{text}");
        assert!(
            text.contains("127.0.0.1") || text.contains("connection") || text.contains("terminat"),
            "an unclear error: {text}"
        );
    }
    // With the server gone, a new call fails with the address it tried.
    let e = store.count(&c).expect_err("server is gone");
    let text = chain(&e);
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(!text.contains(&password), "{text}");
}

#[test]
fn sslmode_require_against_a_server_without_tls_is_refused_with_the_reason() {
    let Some(url) = common::url() else {
        return;
    };
    let base = url.split('?').next().expect("url").to_string();
    let e = PgStore::connect(&format!("{base}?sslmode=require"), PgOptions::default())
        .expect_err("the test server has no TLS");
    let text = chain(&e);
    eprintln!("sslmode=require: {text}");
    assert!(
        text.to_ascii_lowercase().contains("tls") || text.to_ascii_lowercase().contains("ssl"),
        "{text}"
    );
    assert!(!text.contains(&common::password(&url)), "{text}");
}
