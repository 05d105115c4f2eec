use std::time::Duration;

use anyhow::{Context, Result};
use lobster_vector_serve::{AppState, Limits, ServeError};

use super::Ctx;
use crate::cli::{LimitArgs, McpArgs, ServeArgs};

fn limits(args: &LimitArgs) -> Limits {
    Limits {
        max_body_bytes: args.max_body_bytes as usize,
        max_terms: args.max_terms as usize,
        max_k: args.max_k as usize,
        max_concurrent: args.max_concurrent as usize,
        max_terms_in_flight: args.max_terms_in_flight as usize,
        timeout: Duration::from_secs(u64::from(args.timeout)),
    }
}

fn state(ctx: &Ctx, limits: Limits, token: Option<String>) -> Result<AppState> {
    Ok(AppState::new(
        ctx.service()?,
        limits,
        token,
        ctx.config.backend.as_str(),
        ctx.config.embedding_provider.as_str(),
    ))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Loads the model and ontologies in the background; requests answer 503 until then.
fn warm_up_in_background(state: &AppState) {
    let state = state.clone();
    tokio::task::spawn_blocking(move || match state.warm_up() {
        Ok(()) => eprintln!("lobster-vector: ready"),
        Err(e) => {
            // Requests then report the error themselves; ready before the
            // log line, so whoever waits for the line finds it answering.
            state.set_ready();
            tracing::error!("warm-up failed: {}", e.chain());
        }
    });
}

pub fn http(ctx: &Ctx, args: &ServeArgs) -> Result<()> {
    let token = args.token.clone().filter(|t| !t.is_empty());
    // Refused before the store is opened or anything loads.
    lobster_vector_serve::check_exposure(args.addr, token.as_deref()).map_err(|e| match e {
        ServeError::TokenRequired { .. } => anyhow::Error::new(e)
            .context("pass --token TOKEN (or set LOBSTER_SERVE_TOKEN), or listen on 127.0.0.1"),
        other => anyhow::Error::new(other),
    })?;
    let state = state(ctx, limits(&args.limits), token.clone())?;
    runtime()?.block_on(async {
        let listener = lobster_vector_serve::bind(args.addr, token.as_deref()).await?;
        let local = listener.local_addr()?;
        eprintln!(
            "lobster-vector: listening on http://{local} (MCP at http://{local}/mcp){}; loading the model and ontologies",
            if token.is_some() { ", bearer token required" } else { "" }
        );
        warm_up_in_background(&state);
        lobster_vector_serve::serve(listener, state, lobster_vector_serve::shutdown_signal()).await?;
        eprintln!("lobster-vector: stopped");
        Ok(())
    })
}

pub fn mcp(ctx: &Ctx, args: &McpArgs) -> Result<()> {
    let state = state(ctx, limits(&args.limits), None)?;
    state.set_ready();
    runtime()?.block_on(async {
        warm_up_in_background(&state);
        lobster_vector_serve::mcp::serve_stdio(state)
            .await
            .context("the MCP session failed")
    })
}
