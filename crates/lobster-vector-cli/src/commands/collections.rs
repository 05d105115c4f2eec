use anyhow::{Context, Result};
use lobster_vector::Artifact;
use serde_json::json;

use super::Ctx;
use crate::{cli::CollectionsArgs, output};

pub fn run(ctx: &Ctx, args: &CollectionsArgs) -> Result<()> {
    let store = lobster_vector::open_store(&ctx.config)
        .with_context(|| format!("cannot open the `{}` store", ctx.config.backend))?;
    let mut rows = Vec::new();
    for name in store.list_collections()? {
        let info = store.collection_info(&name)?;
        let artifact = Artifact::from_metadata(&info.metadata);
        rows.push((info, artifact));
    }
    if args.json {
        let list: Vec<_> = rows
            .iter()
            .map(|(info, artifact)| {
                json!({
                    "name": info.name,
                    "count": info.count,
                    "dimension": info.dimension,
                    "complete": artifact.is_some(),
                    "artifact": artifact,
                })
            })
            .collect();
        return output::json(
            &json!({ "backend": ctx.config.backend.as_str(), "collections": list }),
        );
    }
    if rows.is_empty() {
        return output::line(&format!(
            "no collections in the `{}` store; build them with `lobster-vector build --ontology all`",
            ctx.config.backend
        ));
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(info, a)| {
            vec![
                info.name.clone(),
                info.count.to_string(),
                info.dimension.map_or("-".into(), |d| d.to_string()),
                a.as_ref().map_or("unfinished build".into(), |a| {
                    format!(
                        "{}:{} built {}",
                        a.embedding_provider, a.embedding_model, a.built_at
                    )
                }),
            ]
        })
        .collect();
    output::table(&["COLLECTION", "COUNT", "DIM", "ARTIFACT"], &table)
}
