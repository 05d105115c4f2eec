use std::sync::Arc;

use anyhow::{anyhow, Result};
use lobster_vector::ontology::{graph::Graph, graph::Related, Ontology, OntologyKind};
use serde_json::json;

use super::Ctx;
use crate::{
    cli::{LookupArgs, NeighborsArgs},
    output,
};

/// The newest ontology whose ids carry `id`'s prefix.
fn ontology_for(ctx: &Ctx, id: &str) -> Result<Arc<Ontology>> {
    let prefix = id.split(':').next().unwrap_or_default();
    let kind = OntologyKind::from_source_prefix(prefix).ok_or_else(|| {
        anyhow!("`{id}` is not a MONDO, UBERON or CL id (expected e.g. MONDO:0005068, UBERON:0001155, CL:0000625)")
    })?;
    Ok(ctx.ontologies().newest(kind)?)
}

fn label_of(o: &Ontology, id: &str) -> String {
    o.get(id).map(|t| t.label.clone()).unwrap_or_default()
}

pub fn lookup(ctx: &Ctx, args: &LookupArgs) -> Result<()> {
    let id = args.id.trim();
    let o = ontology_for(ctx, id)?;
    let t = o.term(id)?;
    let redirect = o.resolve_obsolete(id);
    let parents: Vec<_> = t
        .parents
        .iter()
        .map(|p| json!({"id": p, "label": label_of(&o, p)}))
        .collect();
    let report = json!({
        "id": t.id,
        "label": t.label,
        "definition": t.definition,
        "synonyms": t.synonyms,
        "parents": parents,
        "obsolete": t.deprecated,
        "replaced_by": redirect.as_ref().and_then(|r| r.replaced_by.clone()).map(|id| json!({"id": id, "label": label_of(&o, &id)})),
        "consider": redirect.as_ref().map(|r| r.consider.clone()).unwrap_or_default(),
        "ontology": o.name(),
        "ontology_version": o.version(),
    });
    if args.json {
        return output::json(&report);
    }
    output::line(&format!("{}  {}", t.id, t.label))?;
    if t.deprecated {
        match redirect.as_ref().and_then(|r| r.replaced_by.as_ref()) {
            Some(r) => output::line(&format!("OBSOLETE: replaced by {r} {}", label_of(&o, r)))?,
            None => output::line("OBSOLETE: no replacement")?,
        }
        if let Some(r) = &redirect {
            for c in &r.consider {
                output::line(&format!("  consider {c} {}", label_of(&o, c)))?;
            }
        }
    }
    if let Some(d) = &t.definition {
        output::line(&format!("definition: {d}"))?;
    }
    for s in &t.synonyms {
        let scope = s
            .scope
            .map(|s| format!(" ({})", s.as_str()))
            .unwrap_or_default();
        output::line(&format!("synonym: {}{scope}", s.text))?;
    }
    for p in &t.parents {
        output::line(&format!("parent: {p} {}", label_of(&o, p)))?;
    }
    output::line(&format!("source: {} {}", o.name(), o.version()))
}

pub fn neighbors(ctx: &Ctx, args: &NeighborsArgs) -> Result<()> {
    let id = args.id.trim();
    let o = ontology_for(ctx, id)?;
    let g = Graph::new(&o);
    let sections: Vec<(&str, Vec<Related>)> = vec![
        ("parents", g.parents(id)?),
        ("children", g.children(id)?),
        ("siblings", g.siblings(id)?),
        ("ancestors", g.ancestors(id, args.depth)?),
        ("descendants", g.descendants(id, args.depth)?),
    ];
    if args.json {
        let mut report = serde_json::Map::new();
        report.insert("id".into(), json!(id));
        report.insert("label".into(), json!(label_of(&o, id)));
        report.insert("depth".into(), json!(args.depth));
        for (name, list) in &sections {
            let rows: Vec<_> = list
                .iter()
                .map(|r| json!({"id": r.id, "label": r.label, "distance": r.distance}))
                .collect();
            report.insert((*name).into(), json!(rows));
        }
        return output::json(&report);
    }
    output::line(&format!("{id}  {}", label_of(&o, id)))?;
    for (name, list) in &sections {
        let depth_note = if matches!(*name, "ancestors" | "descendants") {
            format!(" (depth {})", args.depth)
        } else {
            String::new()
        };
        output::line(&format!("\n{name}{depth_note}: {}", list.len()))?;
        for r in list {
            output::line(&format!("  {:<16} {}  [{}]", r.id, r.label, r.distance))?;
        }
    }
    Ok(())
}
