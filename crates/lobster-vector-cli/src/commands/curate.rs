//! `curate add|remove|list|import|export` over the store's curated set, and `remap`.

use std::io::Write;

use anyhow::{bail, Context, Result};
use lobster_vector::curation::{
    remap as remap_set, review, CuratedMapping, CuratedSet, MappingSet, ObjectChange,
};
use lobster_vector::ontology::{Ontology, OntologyKind};
use serde_json::json;

use super::Ctx;
use crate::cli::{
    CurateAddArgs, CurateCommand, CurateExportArgs, CurateImportArgs, CurateListArgs,
    CurateRemoveArgs, RemapArgs,
};
use crate::output;

pub fn run(ctx: &Ctx, cmd: &CurateCommand) -> Result<()> {
    match cmd {
        CurateCommand::Add(a) => add(ctx, a),
        CurateCommand::Remove(a) => remove(ctx, a),
        CurateCommand::List(a) => list(ctx, a),
        CurateCommand::Import(a) => import(ctx, a),
        CurateCommand::Export(a) => export(ctx, a),
    }
}

fn say(ctx: &Ctx, text: &str) {
    if !ctx.global.quiet {
        eprintln!("{text}");
    }
}

fn add(ctx: &Ctx, args: &CurateAddArgs) -> Result<()> {
    let mut mapping = CuratedMapping::new(args.label.trim(), args.id.trim());
    // Check the id against the ontology's current release when its source is here.
    let prefix = mapping.prefix().to_string();
    if OntologyKind::from_source_prefix(&prefix).is_some() {
        match ctx.ontologies().for_term_id(&mapping.object_id) {
            Ok(o) => match o.get(&mapping.object_id) {
                None => bail!(
                    "`{}` is not in {} {}; find the concept with `lobster-vector search`",
                    mapping.object_id,
                    o.name(),
                    o.version()
                ),
                Some(t) if t.deprecated => {
                    let hint = match o.resolve_obsolete(&t.id).and_then(|r| r.replaced_by) {
                        Some(r) => format!("it is replaced by {r}"),
                        None => "see `lobster-vector lookup` for terms to consider".into(),
                    };
                    bail!(
                        "`{}` is obsolete in {} {}: {hint}",
                        t.id,
                        o.name(),
                        o.version()
                    )
                }
                Some(t) => mapping.object_label = Some(t.label.clone()),
            },
            Err(e) => tracing::warn!(
                "cannot check `{}` against its ontology ({}); adding it unchecked",
                mapping.object_id,
                e.chain()
            ),
        }
    }
    mapping.author_label = args.author.clone();
    mapping.comment = args.comment.clone();
    mapping.mapping_date = Some(review::today());
    let store = ctx.curated_store();
    let shown = format!(
        "`{}` -> {} {}",
        mapping.subject_label,
        mapping.object_id,
        mapping.object_label.as_deref().unwrap_or_default()
    );
    let replaced = store.update(|set| set.insert(mapping))?;
    match replaced {
        Some(old) => say(
            ctx,
            &format!(
                "curated {shown} (was {}); `{}`",
                old.object_id,
                store.path().display()
            ),
        ),
        None => say(
            ctx,
            &format!("curated {shown}; `{}`", store.path().display()),
        ),
    }
    Ok(())
}

fn prefix_of(ontology: &str) -> Result<&'static str> {
    Ok(OntologyKind::from_alias(ontology)?.source_prefix())
}

fn remove(ctx: &Ctx, args: &CurateRemoveArgs) -> Result<()> {
    let prefix = args.ontology.as_deref().map(prefix_of).transpose()?;
    let store = ctx.curated_store();
    let removed = store.update(|set| Ok(set.remove(&args.label, prefix)))?;
    if removed.is_empty() {
        bail!("no curated mapping of `{}` to remove", args.label);
    }
    for m in &removed {
        say(
            ctx,
            &format!("removed `{}` -> {}", m.subject_label, m.object_id),
        );
    }
    Ok(())
}

fn list(ctx: &Ctx, args: &CurateListArgs) -> Result<()> {
    let prefix = args.ontology.as_deref().map(prefix_of).transpose()?;
    let set = ctx.curated_store().load()?;
    let rows: Vec<&CuratedMapping> = set
        .iter()
        .filter(|m| prefix.is_none_or(|p| m.prefix().eq_ignore_ascii_case(p)))
        .collect();
    if args.json {
        let out: Vec<_> = rows
            .iter()
            .map(|m| {
                json!({
                    "subject_label": m.subject_label,
                    "object_id": m.object_id,
                    "object_label": m.object_label,
                    "predicate_id": m.predicate_id,
                    "mapping_justification": m.justification,
                    "author_label": m.author_label,
                    "mapping_date": m.mapping_date,
                    "comment": m.comment,
                })
            })
            .collect();
        return output::json(&out);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|m| {
            vec![
                m.subject_label.clone(),
                m.object_id.clone(),
                m.object_label.clone().unwrap_or_default(),
                m.author_label.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&["label", "id", "concept", "author"], &table)?;
    say(
        ctx,
        &format!(
            "{} curated mapping(s) in `{}`",
            rows.len(),
            ctx.curated_store().path().display()
        ),
    );
    Ok(())
}

/// Warns about the curated mappings that point to obsolete or absent terms
/// in the newest release of each ontology they name.
fn report_stale(ctx: &Ctx, set: &CuratedSet) {
    let library = ctx.ontologies();
    for kind in OntologyKind::ALL {
        let named = set
            .iter()
            .any(|m| m.prefix().eq_ignore_ascii_case(kind.source_prefix()));
        if let Some(o) = named.then(|| library.newest(kind).ok()).flatten() {
            warn_stale(set, &o);
        }
    }
}

/// Warns about the curated mappings of `o`'s ontology that point to an
/// obsolete or absent term in `o`.
pub(super) fn warn_stale(set: &CuratedSet, o: &Ontology) {
    for (m, change) in set.check(o) {
        let what = match &change {
            ObjectChange::Replaced { replaced_by, .. } => {
                format!("is obsolete; answered as its replacement {replaced_by}")
            }
            other => format!("is {} in {}; it is not used", other.as_str(), o.version()),
        };
        tracing::warn!("curated `{}` -> {} {what}", m.subject_label, m.object_id);
    }
}

fn import(ctx: &Ctx, args: &CurateImportArgs) -> Result<()> {
    let incoming = CuratedSet::load(&args.file)?;
    let n = incoming.len();
    report_stale(ctx, &incoming);
    let store = ctx.curated_store();
    let total = store.update(|set| {
        set.extend(incoming);
        Ok(set.len())
    })?;
    say(
        ctx,
        &format!(
            "imported {n} curated mapping(s) from `{}`; {total} in `{}`",
            args.file.display(),
            store.path().display()
        ),
    );
    Ok(())
}

fn export(ctx: &Ctx, args: &CurateExportArgs) -> Result<()> {
    let store = ctx.curated_store();
    let set = store.load()?;
    let text = set.to_sssom(&store.mapping_set_id()).to_tsv()?;
    match &args.output {
        Some(path) => {
            lobster_vector::curation::store::write_replacing(path, text.as_bytes())?;
            say(
                ctx,
                &format!(
                    "wrote {} curated mapping(s) to `{}`",
                    set.len(),
                    path.display()
                ),
            );
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    Ok(())
}

pub fn remap(ctx: &Ctx, args: &RemapArgs) -> Result<()> {
    let set = MappingSet::load(&args.input)?;
    let ontologies = ctx
        .ontologies()
        .select(&args.ontology, args.source.as_deref())?;
    let o = ontologies.first().context("no ontology source selected")?;
    let remapped = remap_set(&set, o);
    if let Some(path) = &args.output {
        lobster_vector::curation::store::write_replacing(path, remapped.set.to_tsv()?.as_bytes())?;
    }
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &remapped.rows {
        *counts.entry(r.change.as_str()).or_default() += 1;
    }
    if args.json {
        return output::json(&json!({
            "ontology": o.name(),
            "ontology_version": o.version(),
            "input": args.input,
            "output": args.output,
            "counts": counts,
            "rows": remapped.rows,
        }));
    }
    let table: Vec<Vec<String>> = remapped
        .rows
        .iter()
        .map(|r| {
            let now = match &r.change {
                ObjectChange::Unchanged => String::new(),
                ObjectChange::LabelChanged {
                    old_label,
                    new_label,
                } => {
                    format!("label `{old_label}` -> `{new_label}`")
                }
                ObjectChange::Replaced { replaced_by, label } => format!("{replaced_by} {label}"),
                ObjectChange::ObsoleteConsider { consider } => {
                    format!("consider {}", consider.join(", "))
                }
                ObjectChange::Obsolete => "no replacement".into(),
                ObjectChange::Missing => format!("not in {}", o.version()),
            };
            vec![
                r.line.to_string(),
                r.subject.clone(),
                r.object_id.clone(),
                r.change.as_str().to_string(),
                now,
            ]
        })
        .collect();
    output::table(&["line", "subject", "object_id", "change", "now"], &table)?;
    let summary: Vec<String> = counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
    say(
        ctx,
        &format!(
            "{} mapping(s) checked against {} {}: {}{}",
            remapped.rows.len(),
            o.name(),
            o.version(),
            if summary.is_empty() {
                "none".into()
            } else {
                summary.join(", ")
            },
            args.output
                .as_ref()
                .map(|p| format!("; wrote `{}`", p.display()))
                .unwrap_or_default()
        ),
    );
    Ok(())
}
