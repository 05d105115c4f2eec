//! The MCP server: the same operations as the HTTP API as tools an agent
//! calls (`standardize_term`, `map_terms`, `lookup_term`,
//! `ontology_neighbors`), over stdio or streamable HTTP under `/mcp`.

use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData, ServerHandler, ServiceExt};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::state::AppState;

/// Arguments of `standardize_term`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct StandardizeArgs {
    /// The free text to standardise, as written (e.g. "heart attack", "CD8+ T cells", "colon mucosa").
    pub term: String,
    /// The ontology: "disease" (MONDO), "tissue" (UBERON) or "cell_type" (Cell Ontology); "mondo", "uberon", "cell_ontology" also work.
    pub ontology: String,
    /// How many candidate concepts to return, best first (default 5).
    #[serde(default)]
    pub k: Option<usize>,
    /// Drop candidates whose score (the calibrated probability of being right, 0..1) is below this.
    #[serde(default)]
    pub min_score: Option<f32>,
}

/// Arguments of `map_terms`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct MapArgs {
    /// The terms to standardise (for example a metadata column's distinct values).
    pub terms: Vec<String>,
    /// The ontology: "disease" (MONDO), "tissue" (UBERON) or "cell_type" (Cell Ontology).
    pub ontology: String,
    /// Candidate concepts per term, best first (default 5).
    #[serde(default)]
    pub k: Option<usize>,
    /// Drop candidates whose score (0..1) is below this.
    #[serde(default)]
    pub min_score: Option<f32>,
}

/// Arguments of `lookup_term`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct LookupArgs {
    /// A MONDO, UBERON or CL id, e.g. "MONDO:0005068", "UBERON:0001155", "CL:0000625".
    pub id: String,
}

/// Arguments of `ontology_neighbors`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct NeighborsArgs {
    /// A MONDO, UBERON or CL id.
    pub id: String,
    /// How many edges up (ancestors) and down (descendants) to walk (default 1).
    #[serde(default)]
    pub depth: Option<usize>,
}

/// The tools over one server state.
#[derive(Debug, Clone)]
pub struct Tools {
    state: AppState,
    tool_router: ToolRouter<Tools>,
}

/// A tool's answer: the JSON of `value`, or an error result the model can read.
fn answer<T: Serialize>(r: Result<T, ApiError>) -> Result<CallToolResult, ErrorData> {
    match r {
        Ok(v) => Ok(CallToolResult::success(vec![ContentBlock::json(&v)?])),
        Err(e) => Ok(CallToolResult::error(vec![ContentBlock::json(&e.body)?])),
    }
}

#[tool_router]
impl Tools {
    pub fn new(state: AppState) -> Self {
        Self {
            state,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(
        description = "Standardise one biomedical term to ontology concepts: returns candidates best first, each with ontology_id, term (the concept's label), score (calibrated probability of being right; 1.0 for exact label/synonym matches), match_type, matched_text and the ontology_version that answered."
    )]
    async fn standardize_term(
        &self,
        Parameters(a): Parameters<StandardizeArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            self.state
                .match_terms(vec![a.term], a.ontology, a.k, a.min_score, None)
                .await,
        )
    }

    #[tool(
        description = "Standardise many terms at once (a metadata column) to one ontology; results are in input order, each with its candidates best first (same fields as standardize_term)."
    )]
    async fn map_terms(
        &self,
        Parameters(a): Parameters<MapArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            self.state
                .match_terms(a.terms, a.ontology, a.k, a.min_score, None)
                .await,
        )
    }

    #[tool(
        description = "Look up an ontology term by id: label, definition, synonyms, parents, whether it is obsolete and its replacement, and the ontology version."
    )]
    async fn lookup_term(
        &self,
        Parameters(a): Parameters<LookupArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(self.state.lookup(a.id).await)
    }

    #[tool(
        description = "The terms around an ontology term: parents, children, siblings, and ancestors and descendants up to depth edges away, each with id, label and distance."
    )]
    async fn ontology_neighbors(
        &self,
        Parameters(a): Parameters<NeighborsArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(self.state.neighbors(a.id, a.depth).await)
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("lobster-vector", lobster_vector::VERSION))
            .with_instructions(
                "Maps biomedical free text to MONDO (diseases), UBERON (tissues) and Cell Ontology \
                 (cell types) concepts. Use standardize_term for one term, map_terms for a list, \
                 lookup_term and ontology_neighbors to inspect a concept. A score of 0.8 or more \
                 is a confident match; lower scores deserve a look at the other candidates.",
            )
    }
}

/// Serves the tools on stdin/stdout until the client closes them.
pub async fn serve_stdio(state: AppState) -> std::io::Result<()> {
    let running = Tools::new(state)
        .serve(rmcp::transport::stdio())
        .await
        .map_err(std::io::Error::other)?;
    running.waiting().await.map_err(std::io::Error::other)?;
    Ok(())
}

/// The streamable HTTP transport as a router serving `/mcp`; sessions end
/// when `cancel` is cancelled. `allowed_hosts` are the `Host` values it
/// accepts (the listening address and loopback names).
pub fn http_router(
    state: AppState,
    cancel: CancellationToken,
    allowed_hosts: Vec<String>,
) -> axum::Router<AppState> {
    let config = StreamableHttpServerConfig::default()
        .with_cancellation_token(cancel)
        .with_allowed_hosts(allowed_hosts);
    let service = StreamableHttpService::new(
        move || Ok(Tools::new(state.clone())),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    axum::Router::new().nest_service("/mcp", service)
}
