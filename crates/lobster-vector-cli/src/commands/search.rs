use anyhow::Result;
use lobster_vector::{ontology::OntologyKind, service::MatchOptions, Error, OntologyMatch};
use serde_json::{json, Map, Value};

use super::Ctx;
use crate::{cli::SearchArgs, output};

pub fn run(ctx: &Ctx, args: &SearchArgs) -> Result<()> {
    let service = ctx.service()?;
    let k = args.k as usize;
    let options = MatchOptions {
        k,
        within: args.within.clone(),
    };
    let targets: Vec<String> = if args.ontology.eq_ignore_ascii_case("all") {
        OntologyKind::ALL
            .iter()
            .map(|k| k.name().to_string())
            .collect()
    } else {
        vec![args.ontology.clone()]
    };
    let all = targets.len() > 1;
    let mut results: Vec<(String, Vec<OntologyMatch>)> = Vec::new();
    let mut missing = Vec::new();
    for target in &targets {
        match service.match_ontology_with(&args.text, target, &options) {
            Ok(mut m) => {
                m.retain(|r| r.score >= args.min_score);
                let name = OntologyKind::from_alias(target)
                    .map_or_else(|_| target.clone(), |k| k.name().to_string());
                results.push((name, m))
            }
            // With `all`, an ontology that is not built is reported, not fatal.
            Err(Error::NoCollection { ontology }) if all => missing.push(ontology),
            Err(e) => return Err(e.into()),
        }
    }
    if results.is_empty() {
        anyhow::bail!(
            "no ontology collection is built in the `{}` store; run `lobster-vector build --ontology all`",
            ctx.config.backend
        );
    }
    if args.json {
        let by_ontology: Map<String, Value> = results
            .iter()
            .map(|(name, m)| (name.clone(), json!(m)))
            .collect();
        return output::json(&json!({
            "query": args.text,
            "results": by_ontology,
            "top_k": k,
            "backend": ctx.config.backend.as_str(),
            "embedding_provider": ctx.config.embedding_provider.as_str(),
            "reranker": ctx.config.reranker.as_str(),
            "not_built": missing,
        }));
    }
    for (i, (name, matches)) in results.iter().enumerate() {
        if i > 0 {
            output::line("")?;
        }
        let version = matches
            .first()
            .map(|m| m.ontology_version.as_str())
            .unwrap_or("");
        output::line(&format!("{name} {version}"))?;
        let rows: Vec<Vec<String>> = matches
            .iter()
            .enumerate()
            .map(|(r, m)| {
                vec![
                    (r + 1).to_string(),
                    m.ontology_id.clone(),
                    format!("{:.4}", m.score),
                    m.match_type.as_str().to_string(),
                    m.term.clone(),
                    if m.matched_text == m.term {
                        String::new()
                    } else {
                        format!("via \"{}\"", m.matched_text)
                    },
                ]
            })
            .collect();
        output::table(&["#", "ID", "SCORE", "MATCH", "TERM", ""], &rows)?;
    }
    for name in missing {
        output::line(&format!(
            "\n{name}: not built (run `lobster-vector build --ontology {name}`)"
        ))?;
    }
    Ok(())
}
