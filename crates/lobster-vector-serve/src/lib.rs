//! lobster-vector as a long-running service: one process holding the store,
//! the embedder and the ontologies, answering an HTTP API ([`http`]) and MCP
//! tools ([`mcp`], over stdio or under `/mcp`). Kept apart from the library
//! crates so they stay free of an async runtime.
//!
//! Blocking work (embedding, search, ranking) runs on tokio's blocking pool
//! under a concurrency limit: past it a request answers 429 at once, never
//! queues without bound; past the timeout it answers 504.

pub mod api;
pub mod error;
pub mod http;
pub mod mcp;
mod metrics;
pub mod state;

use std::future::Future;
use std::net::SocketAddr;

pub use error::{ApiError, ErrorBody};
pub use state::{AppState, Limits};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Why a server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A non-loopback address without a token would expose the service unauthenticated.
    #[error(
        "listening on {addr} exposes the service beyond this machine, which needs a bearer token"
    )]
    TokenRequired { addr: SocketAddr },
    /// The token is empty or has characters a header cannot carry.
    #[error("the token must be non-empty visible ASCII")]
    BadToken,
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the server failed")]
    Io(#[from] std::io::Error),
}

/// Refuses a non-loopback `addr` without a token, and a malformed token.
pub fn check_exposure(addr: SocketAddr, token: Option<&str>) -> Result<(), ServeError> {
    if let Some(t) = token {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ServeError::BadToken);
        }
    } else if !addr.ip().is_loopback() {
        return Err(ServeError::TokenRequired { addr });
    }
    Ok(())
}

/// Binds `addr` (after [`check_exposure`]).
pub async fn bind(addr: SocketAddr, token: Option<&str>) -> Result<TcpListener, ServeError> {
    check_exposure(addr, token)?;
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves the HTTP API and `/mcp` on `listener` until `shutdown` completes,
/// then stops accepting, lets in-flight requests finish and ends MCP sessions.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let local = listener.local_addr()?;
    let cancel = CancellationToken::new();
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1", "[::1]"]
        .map(String::from)
        .into();
    let ip = local.ip().to_string();
    if !hosts.contains(&ip) {
        hosts.push(ip);
    }
    let mcp = mcp::http_router(state.clone(), cancel.child_token(), hosts);
    let app = http::router(state, mcp);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            cancel.cancel();
        })
        .await?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing the requests in flight");
}
