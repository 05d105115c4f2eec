//! What every request shares: the loaded service, the limits, the
//! concurrency permits and the counters; and the operations both front ends
//! (HTTP and MCP) answer with.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use lobster_vector::ontology::{Neighborhood, OntologyKind, TermReport};
use lobster_vector::service::MatchOptions;
use lobster_vector::{CollectionSummary, Error, SearchService};
use tokio::sync::Semaphore;

use crate::api::{CollectionsResponse, MatchResponse, SearchResponse, TermMatches, TextHits};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Bounds on what one request may ask and on how much runs at once.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body (bytes); larger bodies answer 413.
    pub max_body_bytes: usize,
    /// Most terms (or texts) in one request; more answer 413.
    pub max_terms: usize,
    /// Largest `k`.
    pub max_k: usize,
    /// Requests computed at once; beyond it requests answer 429 at once.
    pub max_concurrent: usize,
    /// Terms (or texts) being computed at once, summed over requests; a
    /// request that would pass it answers 429 at once. Bounds CPU queueing
    /// and memory under many large batches. Raised to `max_terms` if lower.
    pub max_terms_in_flight: usize,
    /// Longest a request may take before it answers 504.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 1 << 20,
            max_terms: 1024,
            max_k: 100,
            max_concurrent: 16,
            max_terms_in_flight: 2048,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Default concepts per term and records per text.
pub const DEFAULT_K: usize = 5;

#[derive(Debug)]
struct Inner {
    service: SearchService,
    limits: Limits,
    token: Option<String>,
    permits: Arc<Semaphore>,
    term_permits: Arc<Semaphore>,
    metrics: Metrics,
    ready: AtomicBool,
    backend: String,
    embedding_provider: String,
}

/// The shared state of a server; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// A server state over `service`; `token`, when set, is required as a
    /// bearer token on every route but `/health`.
    pub fn new(
        service: SearchService,
        limits: Limits,
        token: Option<String>,
        backend: &str,
        embedding_provider: &str,
    ) -> Self {
        let mut limits = limits;
        limits.max_concurrent = limits.max_concurrent.max(1);
        limits.max_terms_in_flight = limits.max_terms_in_flight.max(limits.max_terms).max(1);
        let permits = Arc::new(Semaphore::new(limits.max_concurrent));
        let term_permits = Arc::new(Semaphore::new(limits.max_terms_in_flight));
        Self(Arc::new(Inner {
            service,
            limits,
            token,
            permits,
            term_permits,
            metrics: Metrics::default(),
            ready: AtomicBool::new(false),
            backend: backend.to_string(),
            embedding_provider: embedding_provider.to_string(),
        }))
    }

    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }

    pub fn token(&self) -> Option<&str> {
        self.0.token.as_deref()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn backend(&self) -> &str {
        &self.0.backend
    }

    pub fn embedding_provider(&self) -> &str {
        &self.0.embedding_provider
    }

    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Acquire)
    }

    /// Loads the model, each built ontology and its matching tables (one
    /// query per ontology), then marks the server ready. Blocking.
    pub fn warm_up(&self) -> lobster_vector::Result<()> {
        let service = &self.0.service;
        service.embedder()?;
        for kind in OntologyKind::ALL {
            match service.match_ontology(kind.name(), kind.name(), 1) {
                Ok(_) | Err(Error::NoCollection { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        self.0.ready.store(true, Ordering::Release);
        Ok(())
    }

    /// Marks the server ready without warming up.
    pub fn set_ready(&self) {
        self.0.ready.store(true, Ordering::Release);
    }

    fn overloaded(&self, what: String) -> ApiError {
        self.0.metrics.refused();
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "overloaded", what).retry_after(1)
    }

    /// Runs `work` (over `terms` terms) on the blocking pool under a request
    /// permit, `terms` term permits and the request timeout: 429 when either
    /// limit is reached, 504 past the timeout (the work still holds its
    /// permits until it ends, so timed-out work cannot pile up beyond the limits).
    pub async fn run<T, F>(&self, terms: usize, work: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&SearchService) -> Result<T, ApiError> + Send + 'static,
    {
        let limits = &self.0.limits;
        let Ok(permit) = self.0.permits.clone().try_acquire_owned() else {
            return Err(self.overloaded(format!(
                "{} requests are being answered, the most this server runs at once; retry shortly",
                limits.max_concurrent
            )));
        };
        let weight = u32::try_from(terms.clamp(1, limits.max_terms_in_flight)).unwrap_or(u32::MAX);
        let Ok(term_permit) = self.0.term_permits.clone().try_acquire_many_owned(weight) else {
            return Err(self.overloaded(format!(
                "{} terms are being matched, the most this server computes at once; retry shortly",
                limits.max_terms_in_flight
            )));
        };
        let inner = self.0.clone();
        let task = tokio::task::spawn_blocking(move || {
            let _permits = (permit, term_permit);
            work(&inner.service)
        });
        match tokio::time::timeout(self.0.limits.timeout, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(join)) => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the request failed: {join}"),
            )),
            Err(_) => Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "timeout",
                format!(
                    "the request took longer than {} s",
                    self.0.limits.timeout.as_secs_f64()
                ),
            )),
        }
    }

    fn check_terms(&self, n: usize, what: &str) -> Result<(), ApiError> {
        if n == 0 {
            return Err(ApiError::bad_request(format!("no {what} given")));
        }
        if n > self.0.limits.max_terms {
            return Err(ApiError::too_large(format!(
                "{n} {what} in one request; the most is {}",
                self.0.limits.max_terms
            )));
        }
        Ok(())
    }

    fn check_k(&self, k: Option<usize>) -> Result<usize, ApiError> {
        let k = k.unwrap_or(DEFAULT_K);
        if k == 0 || k > self.0.limits.max_k {
            return Err(ApiError::bad_request(format!(
                "k must be 1..={}, got {k}",
                self.0.limits.max_k
            )));
        }
        Ok(k)
    }

    /// Matches `terms` to `ontology`: the best `k` concepts each, rows
    /// scoring below `min_score` dropped.
    pub async fn match_terms(
        &self,
        terms: Vec<String>,
        ontology: String,
        k: Option<usize>,
        min_score: Option<f32>,
        within: Option<String>,
    ) -> Result<MatchResponse, ApiError> {
        self.check_terms(terms.len(), "terms")?;
        let k = self.check_k(k)?;
        if let Some(s) = min_score {
            if !(0.0..=1.0).contains(&s) {
                return Err(ApiError::bad_request(format!(
                    "min_score must be between 0 and 1, got {s}"
                )));
            }
        }
        let n = terms.len();
        let response = self
            .run(n, move |service| {
                let refs: Vec<&str> = terms.iter().map(String::as_str).collect();
                let options = MatchOptions { k, within };
                let rows = service.match_ontology_batch_with(&refs, &ontology, &options)?;
                let name = OntologyKind::from_alias(&ontology)
                    .map_or_else(|_| ontology.clone(), |k| k.name().to_string());
                let results = terms
                    .into_iter()
                    .zip(rows)
                    .map(|(query, mut matches)| {
                        if let Some(s) = min_score {
                            matches.retain(|m| m.score >= s);
                        }
                        TermMatches { query, matches }
                    })
                    .collect();
                Ok(MatchResponse {
                    ontology: name,
                    results,
                })
            })
            .await?;
        self.0.metrics.matched(n);
        Ok(response)
    }

    /// The `k` nearest records of `collection` per text.
    pub async fn search(
        &self,
        texts: Vec<String>,
        collection: String,
        k: Option<usize>,
    ) -> Result<SearchResponse, ApiError> {
        self.check_terms(texts.len(), "texts")?;
        let k = self.check_k(k)?;
        self.run(texts.len(), move |service| {
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let hits = service.query_batch(&refs, &collection, k)?;
            let results = texts
                .into_iter()
                .zip(hits)
                .map(|(query, hits)| TextHits { query, hits })
                .collect();
            Ok(SearchResponse {
                collection,
                results,
            })
        })
        .await
    }

    /// Label, definition, synonyms, parents, obsolete status and replacement of `id`.
    pub async fn lookup(&self, id: String) -> Result<TermReport, ApiError> {
        self.run(1, move |service| {
            let o = library(service)?.for_term_id(&id)?;
            Ok(TermReport::of(&o, &id)?)
        })
        .await
    }

    /// The neighbourhood of `id` to `depth` (default 1).
    pub async fn neighbors(
        &self,
        id: String,
        depth: Option<usize>,
    ) -> Result<Neighborhood, ApiError> {
        let depth = depth.unwrap_or(1);
        if depth == 0 || depth > 50 {
            return Err(ApiError::bad_request(format!(
                "depth must be 1..=50, got {depth}"
            )));
        }
        self.run(1, move |service| {
            let o = library(service)?.for_term_id(&id)?;
            Ok(Neighborhood::of(&o, &id, depth)?)
        })
        .await
    }

    /// Every collection of the store.
    pub async fn collections(&self) -> Result<CollectionsResponse, ApiError> {
        let backend = self.0.backend.clone();
        self.run(1, move |service| {
            Ok(CollectionsResponse {
                backend,
                collections: CollectionSummary::list(service.store().as_ref())?,
            })
        })
        .await
    }
}

fn library(
    service: &SearchService,
) -> Result<&Arc<lobster_vector::ontology::OntologyLibrary>, ApiError> {
    service.ontologies().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "this server has no ontology sources",
        )
    })
}
