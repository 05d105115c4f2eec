//! The OpenAI-compatible embedder against a real HTTP server on 127.0.0.1
//! that imitates the embeddings API.
#![cfg(feature = "openai")]
#![allow(clippy::unwrap_used)] // test helpers fail loudly

mod support;

use std::time::{Duration, Instant};

use lobster_vector::http::HttpOptions;
use lobster_vector::openai::{OpenAiEmbedder, OpenAiOptions};
use lobster_vector::{Embedder, Error, Secret};
use serde_json::{json, Value};
use support::{FakeApi, Reply, Request};

/// A deterministic 3-d vector for a text: [length, first byte, 1].
fn vector_of(text: &str) -> Vec<f32> {
    vec![text.len() as f32, f32::from(text.as_bytes()[0]), 1.0]
}

/// Answers like the API, listing the items in reverse order (clients must use `index`).
fn embeddings(request: &Request) -> Reply {
    let inputs = request.body["input"].as_array().expect("input array");
    let mut data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"object": "embedding", "index": i, "embedding": vector_of(t.as_str().expect("text"))})
        })
        .collect();
    data.reverse();
    Reply::json(
        200,
        json!({"object": "list", "data": data, "model": request.body["model"]}),
    )
}

fn fast_http() -> HttpOptions {
    HttpOptions {
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(5),
        max_retries: 3,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
    }
}

fn options_for(api: &FakeApi, batch_size: usize) -> OpenAiOptions {
    OpenAiOptions {
        base_url: format!("{}/v1", api.url()),
        model: "local-embedder".into(),
        api_key: Some(Secret::new("sk-test")),
        batch_size,
        http: fast_http(),
    }
}

fn embedder(api: &FakeApi, batch_size: usize) -> OpenAiEmbedder {
    OpenAiEmbedder::new(options_for(api, batch_size)).expect("embedder")
}

#[test]
fn embeds_in_input_order_across_batches() {
    let api = FakeApi::start(|_, r| embeddings(r));
    let e = embedder(&api, 3);
    let texts = [
        "heart attack",
        "asthma",
        "colon",
        "T cell",
        "b",
        "liver",
        "CD8+",
    ];
    let got = e.embed_documents(&texts).unwrap();
    let want: Vec<Vec<f32>> = texts.iter().map(|t| vector_of(t)).collect();
    assert_eq!(got, want);
    assert_eq!(e.dimensions(), 3);
    let requests = api.requests();
    assert_eq!(requests.len(), 3, "7 inputs in batches of 3");
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/embeddings");
        assert_eq!(r.header("authorization"), Some("Bearer sk-test"));
        assert_eq!(r.body["model"], "local-embedder");
        assert!(r.body["input"].as_array().unwrap().len() <= 3);
    }
    assert_eq!(e.embed_query("liver").unwrap(), vector_of("liver"));
}

#[test]
fn retries_429_honouring_retry_after_then_succeeds() {
    let api = FakeApi::start(|n, r| match n {
        0 => Reply::json(429, json!({"error": {"message": "rate limited"}}))
            .with_header("Retry-After", "0.3"),
        _ => embeddings(r),
    });
    let mut options = options_for(&api, 16);
    options.http.max_backoff = Duration::from_secs(1);
    let e = OpenAiEmbedder::new(options).unwrap();
    let started = Instant::now();
    assert_eq!(
        e.embed_documents(&["asthma"]).unwrap(),
        vec![vector_of("asthma")]
    );
    // Retry-After (0.3 s) is honoured over the 10 ms backoff.
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(api.requests().len(), 2);
}

#[test]
fn retries_500_then_succeeds() {
    let api = FakeApi::start(|n, r| match n {
        0 | 1 => Reply::text(500, "upstream exploded"),
        _ => embeddings(r),
    });
    let e = embedder(&api, 16);
    assert_eq!(
        e.embed_documents(&["colon"]).unwrap(),
        vec![vector_of("colon")]
    );
    assert_eq!(api.requests().len(), 3);
}

#[test]
fn persistent_503_gives_up_with_status_and_body() {
    let api = FakeApi::start(|_, _| Reply::text(503, "overloaded, try later"));
    let e = embedder(&api, 16);
    let err = e.embed_documents(&["colon"]).unwrap_err();
    let chain = chain(&err);
    assert!(
        chain.contains("HTTP 503") && chain.contains("overloaded, try later"),
        "{chain}"
    );
    assert_eq!(api.requests().len(), 4, "1 attempt + 3 retries");
}

#[test]
fn unauthorized_names_the_variable_and_does_not_retry() {
    let api = FakeApi::start(|_, _| Reply::json(401, json!({"error": "invalid key"})));
    let err = embedder(&api, 16).embed_documents(&["colon"]).unwrap_err();
    match &err {
        Error::Unauthorized {
            status, variable, ..
        } => {
            assert_eq!(*status, 401);
            assert_eq!(variable, "OPENAI_API_KEY");
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(!chain(&err).contains("sk-test"), "the key never appears");
    assert_eq!(api.requests().len(), 1);
}

#[test]
fn client_errors_carry_status_and_body_excerpt_without_retry() {
    let api = FakeApi::start(|_, _| {
        Reply::json(
            400,
            json!({"error": {"message": "input too long for model"}}),
        )
    });
    let err = embedder(&api, 16).embed_documents(&["colon"]).unwrap_err();
    let chain = chain(&err);
    assert!(
        chain.contains("HTTP 400") && chain.contains("input too long"),
        "{chain}"
    );
    assert_eq!(api.requests().len(), 1);
}

#[test]
fn malformed_json_is_an_error() {
    let api = FakeApi::start(|_, _| Reply::text(200, "{\"data\": [oops"));
    let err = embedder(&api, 16).embed_documents(&["colon"]).unwrap_err();
    assert!(chain(&err).contains("invalid JSON"), "{}", chain(&err));
}

#[test]
fn wrong_vector_count_is_an_error() {
    let api = FakeApi::start(|_, _| {
        Reply::json(
            200,
            json!({"data": [{"index": 0, "embedding": [1.0, 2.0]}]}),
        )
    });
    let err = embedder(&api, 16)
        .embed_documents(&["colon", "liver", "lung"])
        .unwrap_err();
    assert!(
        chain(&err).contains("1 vectors for 3 inputs"),
        "{}",
        chain(&err)
    );
}

#[test]
fn repeated_index_and_changed_dimension_are_errors() {
    let api = FakeApi::start(|_, _| {
        Reply::json(
            200,
            json!({"data": [{"index": 0, "embedding": [1.0, 2.0]}, {"index": 0, "embedding": [3.0, 4.0]}]}),
        )
    });
    let err = embedder(&api, 16).embed_documents(&["a", "b"]).unwrap_err();
    assert!(chain(&err).contains("appears twice"), "{}", chain(&err));

    let api = FakeApi::start(|n, r| {
        if n == 0 {
            embeddings(r)
        } else {
            Reply::json(
                200,
                json!({"data": [{"index": 0, "embedding": [1.0, 2.0]}]}),
            )
        }
    });
    let e = embedder(&api, 16);
    e.embed_documents(&["first"]).unwrap();
    let err = e.embed_documents(&["second"]).unwrap_err();
    assert!(
        chain(&err).contains("2 dimensions, earlier responses had 3"),
        "{}",
        chain(&err)
    );
}

#[test]
fn slow_response_times_out() {
    let api = FakeApi::start(|_, r| embeddings(r).after(Duration::from_secs(3)));
    let e = OpenAiEmbedder::new(OpenAiOptions {
        base_url: api.url(),
        model: "m".into(),
        api_key: None,
        batch_size: 16,
        http: HttpOptions {
            read_timeout: Duration::from_millis(300),
            max_retries: 0,
            ..fast_http()
        },
    })
    .unwrap();
    // The answer comes after 3 s: an error means the 300 ms timeout ended the call.
    let err = e.embed_documents(&["colon"]).unwrap_err();
    assert!(chain(&err).contains("no response from"), "{}", chain(&err));
    assert!(
        api.requests()[0].header("authorization").is_none(),
        "no key, no header"
    );
}

#[test]
fn unreachable_server_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = OpenAiEmbedder::new(OpenAiOptions {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        api_key: None,
        http: HttpOptions {
            max_retries: 1,
            ..fast_http()
        },
        ..OpenAiOptions::default()
    })
    .unwrap();
    let err = e.embed_documents(&["colon"]).unwrap_err();
    assert!(
        chain(&err).contains(&format!(
            "cannot reach http://127.0.0.1:{port}/v1/embeddings"
        )),
        "{}",
        chain(&err)
    );
}

#[test]
fn bad_input_and_options_are_refused_before_any_request() {
    let api = FakeApi::start(|_, r| embeddings(r));
    let e = embedder(&api, 16);
    assert!(matches!(
        e.embed_documents(&["ok", "  "]),
        Err(Error::InvalidInput { .. })
    ));
    assert!(api.requests().is_empty());
    for batch_size in [0, 2049] {
        let r = OpenAiEmbedder::new(OpenAiOptions {
            batch_size,
            base_url: api.url(),
            ..OpenAiOptions::default()
        });
        assert!(matches!(r, Err(Error::InvalidInput { .. })));
    }
    let r = OpenAiEmbedder::new(OpenAiOptions::default());
    match r {
        Err(Error::NotAvailable { hint, .. }) => assert!(hint.contains("OPENAI_API_KEY")),
        other => panic!("expected NotAvailable, got {other:?}"),
    }
}

#[test]
fn probe_learns_the_dimension_of_an_unknown_model() {
    let api = FakeApi::start(|_, r| embeddings(r));
    let e = embedder(&api, 16);
    assert_eq!(e.dimensions(), 0);
    assert_eq!(e.probe_dimensions().unwrap(), 3);
    assert_eq!(e.dimensions(), 3);
    assert_eq!(e.provider(), "openai");
    assert_eq!(e.model_id(), "local-embedder");
}

fn chain(e: &Error) -> String {
    e.chain()
}
