use anyhow::Result;
use lobster_vector::{
    backend_availability, provider_availability, redact_url, reranker_availability, Availability,
    Backend, EmbeddingProvider, RerankerKind,
};
use serde_json::{json, Value};

use super::Ctx;
use crate::{cli::InfoArgs, output};

fn availability(a: Availability) -> Value {
    match a {
        Availability::Available => json!("available"),
        Availability::Missing(hint) => json!(format!("unavailable: {hint}")),
    }
}

pub fn run(ctx: &Ctx, args: &InfoArgs) -> Result<()> {
    let c = &ctx.config;
    let secret = |s: &Option<lobster_vector::Secret>| s.as_ref().map(|s| s.redacted());
    let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let report = json!({
        "version": lobster_vector::VERSION,
        "configuration": {
            "backend": c.backend.as_str(),
            "store_path": c.store_path.display().to_string(),
            "embedding_provider": c.embedding_provider.as_str(),
            "reranker": c.reranker.as_str(),
            "threads": c.threads.unwrap_or_else(rayon::current_num_threads),
            "assets_dir": c.assets_dir.display().to_string(),
            "pgvector_url": secret(&c.pgvector_url),
            "chroma_url": redact_url(&c.chroma_url),
            "chroma_tenant": c.chroma_tenant,
            "chroma_database": c.chroma_database,
            "chroma_token": c.chroma_token.as_ref().map(|_| "***"),
            "minilm_model": path(&c.minilm_model),
            "sapbert_model": path(&c.sapbert_model),
            "cross_encoder_model": path(&c.cross_encoder_model),
            "openai_api_key": c.openai_api_key.as_ref().map(|_| "***"),
            "faiss_path": c.faiss_path,
            "faiss_index": c.faiss_index,
            "faiss_params": c.faiss_params,
            "openai_base_url": c.openai_base_url.as_deref().map(redact_url),
            "openai_model": c.openai_model,
            "cohere_base_url": c.cohere_base_url.as_deref().map(redact_url),
            "cohere_api_key": c.cohere_api_key.as_ref().map(|_| "***"),
            "cohere_rerank_model": c.cohere_rerank_model,
        },
        "models": lobster_vector::model_sources(c).into_iter().map(|(name, source)| {
            let shown = match source {
                Ok(s) => s,
                Err(e) => format!("not found: {e}"),
            };
            (name.to_string(), json!(shown))
        }).collect::<serde_json::Map<_, _>>(),
        "backends": Backend::ALL.iter().map(|b| (b.as_str().to_string(), availability(backend_availability(*b)))).collect::<serde_json::Map<_, _>>(),
        "embedding_providers": EmbeddingProvider::ALL.iter().map(|p| (p.as_str().to_string(), availability(provider_availability(*p)))).collect::<serde_json::Map<_, _>>(),
        "rerankers": RerankerKind::ALL.iter().map(|r| (r.as_str().to_string(), availability(reranker_availability(*r)))).collect::<serde_json::Map<_, _>>(),
    });
    if args.json {
        return output::json(&report);
    }
    output::line(&format!("lobster-vector {}", lobster_vector::VERSION))?;
    for (section, value) in report
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.is_object())
    {
        output::line(&format!("\n{section}:"))?;
        for (k, v) in v_obj(value) {
            let shown = match v {
                Value::String(s) => s.clone(),
                Value::Null => "-".into(),
                other => other.to_string(),
            };
            output::line(&format!("  {k:<22} {shown}"))?;
        }
    }
    Ok(())
}

fn v_obj(v: &Value) -> impl Iterator<Item = (&String, &Value)> {
    v.as_object().into_iter().flatten()
}
