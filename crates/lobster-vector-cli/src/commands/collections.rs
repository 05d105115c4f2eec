use anyhow::Result;
use lobster_vector::CollectionSummary;
use serde_json::json;

use super::Ctx;
use crate::{cli::CollectionsArgs, output};

pub fn run(ctx: &Ctx, args: &CollectionsArgs) -> Result<()> {
    let store = ctx.open_store(super::StoreAccess::Existing)?;
    let rows = CollectionSummary::list(store.as_ref())?;
    if args.json {
        return output::json(
            &json!({ "backend": ctx.config.backend.as_str(), "collections": rows }),
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
        .map(|c| {
            vec![
                c.name.clone(),
                c.count.to_string(),
                c.dimension.map_or("-".into(), |d| d.to_string()),
                c.artifact.as_ref().map_or("unfinished build".into(), |a| {
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
