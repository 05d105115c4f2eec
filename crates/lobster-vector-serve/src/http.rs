//! The HTTP API: routes, handlers, the bearer-token check, counters and the
//! OpenAPI document generated from the handlers' types.

use std::time::Instant;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use utoipa::OpenApi;

use crate::api::{
    CollectionsResponse, Health, MatchRequest, MatchResponse, NeighborsBody, NeighborsQuery,
    SearchRequest, SearchResponse, TermBody,
};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// The OpenAPI document of the HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "lobster-vector",
        description = "Map biomedical free text to MONDO, UBERON and Cell Ontology concepts."
    ),
    paths(match_terms, search, term, neighbors, collections, health),
    components(schemas(ErrorBody))
)]
#[derive(Debug)]
pub struct ApiDoc;

/// Every route, with the limits and the token check of `state`; `mcp` (the
/// `/mcp` router) sits behind the same token.
pub fn router(state: AppState, mcp: Router<AppState>) -> Router {
    let protected = Router::new()
        .route("/v1/match", post(match_terms))
        .route("/v1/search", post(search))
        .route("/v1/terms/{id}", get(term))
        .route("/v1/terms/{id}/neighbors", get(neighbors))
        .route("/v1/collections", get(collections))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .merge(mcp)
        .layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(protected)
        .route("/health", get(health))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(state.limits().max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
}

/// A JSON body, or the error its rejection means (413 past the size limit, else 400).
fn body<T>(r: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    match r {
        Ok(Json(v)) => Ok(v),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(ApiError::too_large(format!(
            "request body too large: {}",
            e.body_text()
        ))),
        Err(e) => Err(ApiError::bad_request(e.body_text())),
    }
}

fn not_ready(state: &AppState) -> Result<(), ApiError> {
    if state.is_ready() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "the model and ontologies are still loading",
    )
    .retry_after(2))
}

/// Map one term or a list to an ontology.
#[utoipa::path(post, path = "/v1/match", request_body = MatchRequest, responses(
    (status = 200, body = MatchResponse),
    (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn match_terms(
    State(state): State<AppState>,
    req: Result<Json<MatchRequest>, JsonRejection>,
) -> Result<Json<MatchResponse>, ApiError> {
    let req = body(req)?;
    not_ready(&state)?;
    let r = state
        .match_terms(
            req.terms.into_vec(),
            req.ontology,
            req.k,
            req.min_score,
            req.within,
        )
        .await?;
    Ok(Json(r))
}

/// Nearest records of one collection (no ranking).
#[utoipa::path(post, path = "/v1/search", request_body = SearchRequest, responses(
    (status = 200, body = SearchResponse),
    (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn search(
    State(state): State<AppState>,
    req: Result<Json<SearchRequest>, JsonRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let req = body(req)?;
    not_ready(&state)?;
    Ok(Json(
        state
            .search(req.texts.into_vec(), req.collection, req.k)
            .await?,
    ))
}

/// One term: label, definition, synonyms, parents, obsolete status and replacement.
#[utoipa::path(get, path = "/v1/terms/{id}", params(("id" = String, Path, description = "e.g. CL:0000625")),
    responses((status = 200, body = TermBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn term(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TermBody>, ApiError> {
    Ok(Json(TermBody(state.lookup(id).await?)))
}

/// Parents, children, siblings, and ancestors and descendants to `depth`.
#[utoipa::path(get, path = "/v1/terms/{id}/neighbors", params(("id" = String, Path), NeighborsQuery),
    responses((status = 200, body = NeighborsBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn neighbors(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<NeighborsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<NeighborsBody>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    Ok(Json(NeighborsBody(state.neighbors(id, q.depth).await?)))
}

/// The store's collections with their artifacts.
#[utoipa::path(get, path = "/v1/collections", responses((status = 200, body = CollectionsResponse)))]
async fn collections(State(state): State<AppState>) -> Result<Json<CollectionsResponse>, ApiError> {
    Ok(Json(state.collections().await?))
}

/// `ok` once the model and ontologies are loaded (200), `loading` before (503).
#[utoipa::path(get, path = "/health", responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn health(State(state): State<AppState>) -> Response {
    let ready = state.is_ready();
    let body = Health {
        status: if ready { "ok" } else { "loading" }.into(),
        version: lobster_vector::VERSION.into(),
        backend: state.backend().into(),
        embedding_provider: state.embedding_provider().into(),
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics().render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    Json(ApiDoc::openapi()).into_response()
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {} {}", req.method(), req.uri().path()),
    )
}

/// Equal without an early exit on the first differing byte.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(token) = state.token() else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if same_secret(g.trim().as_bytes(), token.as_bytes()) => next.run(req).await,
        _ => {
            let mut r = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a bearer token is required: send `Authorization: Bearer <token>`",
            )
            .into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

/// The route a path belongs to (a bounded set of metric labels).
fn route_label(path: &str) -> &'static str {
    const ROUTES: [&str; 7] = [
        "/v1/match",
        "/v1/search",
        "/v1/collections",
        "/health",
        "/metrics",
        "/openapi.json",
        "/mcp",
    ];
    if let Some(rest) = path.strip_prefix("/v1/terms/") {
        return if rest.ends_with("/neighbors") {
            "/v1/terms/{id}/neighbors"
        } else {
            "/v1/terms/{id}"
        };
    }
    ROUTES
        .into_iter()
        .find(|r| path == *r || (*r == "/mcp" && path.starts_with("/mcp/")))
        .unwrap_or("other")
}

async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = route_label(req.uri().path());
    let started = Instant::now();
    state.metrics().started();
    let r = next.run(req).await;
    state
        .metrics()
        .finished(route, r.status().as_u16(), started.elapsed());
    r
}
