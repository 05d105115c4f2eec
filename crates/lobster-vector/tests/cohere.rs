//! The Cohere reranker against a real HTTP server on 127.0.0.1 that imitates
//! the rerank API.
#![cfg(feature = "cohere")]
#![allow(clippy::unwrap_used)] // test helpers fail loudly

mod support;

use std::time::Duration;

use lobster_vector::cohere::{CohereOptions, CohereReranker};
use lobster_vector::http::HttpOptions;
use lobster_vector::{Error, Reranker, Secret};
use serde_json::{json, Value};
use support::{FakeApi, Reply, Request};

/// Scores each document by the share of the query's words it contains and
/// lists results best first, cut to `top_n`, as the API does.
fn rerank(request: &Request) -> Reply {
    let query = request.body["query"]
        .as_str()
        .expect("query")
        .to_lowercase();
    let words: Vec<&str> = query.split_whitespace().collect();
    let docs = request.body["documents"].as_array().expect("documents");
    let mut results: Vec<Value> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let d = d.as_str().expect("text").to_lowercase();
            let hits = words.iter().filter(|w| d.contains(*w)).count();
            json!({"index": i, "relevance_score": hits as f64 / words.len() as f64})
        })
        .collect();
    results.sort_by(|a, b| {
        b["relevance_score"]
            .as_f64()
            .unwrap()
            .total_cmp(&a["relevance_score"].as_f64().unwrap())
    });
    results.truncate(request.body["top_n"].as_u64().expect("top_n") as usize);
    Reply::json(200, json!({"id": "r1", "results": results, "meta": {}}))
}

fn options(api: &FakeApi, key: Option<&str>) -> CohereOptions {
    CohereOptions {
        base_url: api.url(),
        model: "rerank-test".into(),
        api_key: key.map(Secret::new),
        http: HttpOptions {
            connect_timeout: Duration::from_secs(2),
            read_timeout: Duration::from_secs(5),
            max_retries: 2,
            base_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(50),
        },
    }
}

const DOCS: [&str; 4] = [
    "asthma",
    "heart disease",
    "myocardial infarction (heart attack)",
    "lung cancer",
];

#[test]
fn scores_and_orders_by_relevance() {
    let api = FakeApi::start(|_, r| rerank(r));
    let r = CohereReranker::new(options(&api, Some("co-key"))).unwrap();
    assert!(r.is_active());
    let ranking = r.rerank("heart attack", &DOCS, 2).unwrap();
    assert_eq!(ranking, vec![(2, 1.0), (1, 0.5)]);
    let req = &api.requests()[0];
    assert_eq!(req.path, "/v2/rerank");
    assert_eq!(req.header("authorization"), Some("Bearer co-key"));
    assert_eq!(req.body["model"], "rerank-test");
    assert_eq!(req.body["documents"].as_array().unwrap().len(), 4);
}

#[test]
fn retries_429_then_succeeds() {
    let api = FakeApi::start(|n, r| match n {
        0 => Reply::json(429, json!({"message": "slow down"})).with_header("Retry-After", "0"),
        _ => rerank(r),
    });
    let r = CohereReranker::new(options(&api, Some("co-key"))).unwrap();
    assert_eq!(r.rerank("lung", &DOCS, 1).unwrap(), vec![(3, 1.0)]);
    assert_eq!(api.requests().len(), 2);
}

#[test]
fn unauthorized_is_clear() {
    let api = FakeApi::start(|_, _| Reply::json(401, json!({"message": "invalid api token"})));
    let r = CohereReranker::new(options(&api, Some("bad"))).unwrap();
    match r.rerank("lung", &DOCS, 2) {
        Err(Error::Unauthorized {
            service,
            status,
            variable,
        }) => {
            assert_eq!((service.as_str(), status), ("cohere", 401));
            assert!(variable.contains("COHERE_API_KEY") && variable.contains("CO_API_KEY"));
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_eq!(api.requests().len(), 1);
}

#[test]
fn timeout_is_an_error_within_the_read_timeout() {
    let api = FakeApi::start(|_, r| rerank(r).after(Duration::from_secs(3)));
    let mut o = options(&api, Some("co-key"));
    o.http.read_timeout = Duration::from_millis(300);
    o.http.max_retries = 0;
    let r = CohereReranker::new(o).unwrap();
    // The answer comes after 3 s: an error means the 300 ms timeout ended the call.
    let err = r.rerank("lung", &DOCS, 2).unwrap_err();
    assert!(
        matches!(err, Error::Backend { kind: "cohere", .. }),
        "{err:?}"
    );
}

#[test]
fn missing_key_degrades_without_inventing_scores() {
    let api = FakeApi::start(|_, r| rerank(r));
    let r = CohereReranker::new(options(&api, None)).unwrap();
    assert!(!r.is_active());
    assert!(matches!(
        r.rerank("lung", &DOCS, 2),
        Err(Error::NotAvailable { .. })
    ));
    assert!(api.requests().is_empty(), "nothing sent without a key");
}

#[test]
fn results_missing_a_document_are_an_error() {
    let api = FakeApi::start(|_, _| {
        Reply::json(
            200,
            json!({"results": [{"index": 0, "relevance_score": 0.9}]}),
        )
    });
    let r = CohereReranker::new(options(&api, Some("k"))).unwrap();
    let err = r.rerank("lung", &DOCS, 4).unwrap_err();
    assert!(
        matches!(err, Error::Backend { kind: "cohere", .. }),
        "{err:?}"
    );
}
