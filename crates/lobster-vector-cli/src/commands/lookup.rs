use anyhow::Result;
use lobster_vector::ontology::{Neighborhood, TermReport};

use super::Ctx;
use crate::{
    cli::{LookupArgs, NeighborsArgs},
    output,
};

pub fn lookup(ctx: &Ctx, args: &LookupArgs) -> Result<()> {
    let o = ctx.ontologies().for_term_id(&args.id)?;
    let t = TermReport::of(&o, &args.id)?;
    if args.json {
        return output::json(&t);
    }
    output::line(&format!("{}  {}", t.id, t.label))?;
    if t.obsolete {
        match &t.replaced_by {
            Some(r) => output::line(&format!("OBSOLETE: replaced by {} {}", r.id, r.label))?,
            None => output::line("OBSOLETE: no replacement")?,
        }
        for c in &t.consider {
            let label = o.get(c).map(|t| t.label.as_str()).unwrap_or_default();
            output::line(&format!("  consider {c} {label}"))?;
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
        output::line(&format!("parent: {} {}", p.id, p.label))?;
    }
    output::line(&format!("source: {} {}", t.ontology, t.ontology_version))
}

pub fn neighbors(ctx: &Ctx, args: &NeighborsArgs) -> Result<()> {
    let o = ctx.ontologies().for_term_id(&args.id)?;
    let n = Neighborhood::of(&o, &args.id, args.depth)?;
    if args.json {
        return output::json(&n);
    }
    output::line(&format!("{}  {}", n.id, n.label))?;
    let sections = [
        ("parents", &n.parents),
        ("children", &n.children),
        ("siblings", &n.siblings),
        ("ancestors", &n.ancestors),
        ("descendants", &n.descendants),
    ];
    for (name, list) in sections {
        let depth_note = if matches!(name, "ancestors" | "descendants") {
            format!(" (depth {})", n.depth)
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
