use anyhow::Result;
use serde_json::json;

use super::Ctx;
use crate::{cli::EmbedArgs, output};

pub fn run(ctx: &Ctx, args: &EmbedArgs) -> Result<()> {
    let embedder = lobster_vector::open_embedder(&ctx.config)?;
    let texts: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    let vectors = embedder.embed_documents(&texts)?;
    if args.json {
        return output::json(&json!({
            "provider": embedder.provider(),
            "model": embedder.model_id(),
            "dimensions": embedder.dimensions(),
            "texts": texts,
            "vectors": vectors,
        }));
    }
    for v in vectors {
        let line: Vec<String> = v.iter().map(|x| format!("{x:.7}")).collect();
        output::line(&line.join("\t"))?;
    }
    Ok(())
}
