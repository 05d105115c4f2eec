use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use lobster_vector::build::live_collection;
use lobster_vector::build::{build_collection, refit_matcher, BuildOptions, BuildReport};
use lobster_vector::matcher::{FitOptions, FitReport};

use super::Ctx;
use crate::{cli::BuildArgs, output, progress::Progress};

/// Set by Ctrl-C; the build stops between batches and removes its partial collection.
pub(super) fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C: leave at once. The unfinished collection has no
            // artifact, so search ignores it and the next build replaces it.
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after the current batch (Ctrl-C again to quit now)");
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(flag)
}

pub fn run(ctx: &Ctx, args: &BuildArgs) -> Result<()> {
    let library = ctx.ontologies();
    let sources = library.select(&args.ontology, args.source.as_deref())?;
    let service = ctx.search_service(super::StoreAccess::Create)?;
    // Refuse a second writer now, before the model loads and texts are embedded.
    service.store().lock_for_writing().with_context(|| {
        format!(
            "cannot build into the `{}` store: another process is writing to it (or it is read-only)",
            ctx.config.backend
        )
    })?;
    let embedder = service
        .embedder()
        .context("cannot load the embedding model")?;
    let store = service.store().clone();
    let cancel = interrupt_flag()?;
    let progress = Progress::new(ctx.global.quiet);
    let fit = FitOptions {
        seed: args.seed,
        without: args.matcher_without.clone(),
        ..FitOptions::default()
    };
    if args.refit {
        let mut reports = Vec::new();
        for o in &sources {
            let name = live_collection(store.as_ref(), o)?.with_context(|| {
                format!(
                    "no finished build of {} {} to refit; build it first",
                    o.name(),
                    o.version()
                )
            })?;
            let report = refit_matcher(o, embedder.as_ref(), store.as_ref(), &name, &fit)
                .with_context(|| format!("fitting the matcher of {name}"))?;
            if !args.json {
                output::line(&format!("{name}: {}", describe_fit(&report)))?;
            }
            reports.push(serde_json::json!({"collection": name, "matcher": report}));
        }
        if args.json {
            return output::json(&serde_json::json!({ "collections": reports }));
        }
        return Ok(());
    }
    let options = BuildOptions {
        batch_size: args.batch_size as usize,
        force: args.force,
        fit: Some(fit),
    };
    let mut reports: Vec<BuildReport> = Vec::new();
    for o in &sources {
        let report = build_collection(
            o,
            embedder.as_ref(),
            store.as_ref(),
            &options,
            &progress,
            &cancel,
        )
        .with_context(|| format!("building {} {}", o.name(), o.version()))?;
        if !args.json {
            if report.skipped {
                output::line(&format!(
                    "{}: already built from this source with this model ({} entries); use --force to rebuild",
                    report.collection, report.entries
                ))?;
                if let Some(fit) = &report.matcher {
                    output::line(&format!(
                        "  matcher (missing or fitted by another version, fitted again): {}",
                        describe_fit(fit)
                    ))?;
                }
            } else {
                output::line(&format!(
                    "{}: {} entries ({} terms) in {:.1}s ({:.0} texts/s)",
                    report.collection,
                    report.entries,
                    report.terms,
                    report.seconds,
                    report.entries as f64 / report.seconds.max(1e-9)
                ))?;
                if let Some(fit) = &report.matcher {
                    output::line(&format!("  matcher: {}", describe_fit(fit)))?;
                }
            }
        }
        reports.push(report);
    }
    if args.json {
        return output::json(&serde_json::json!({
            "backend": ctx.config.backend.as_str(),
            "embedding_provider": embedder.provider(),
            "embedding_model": embedder.model_id(),
            "collections": reports,
        }));
    }
    Ok(())
}

/// One line on a fitted matcher.
fn describe_fit(r: &FitReport) -> String {
    format!(
        "fitted on {} held-out synonyms in {:.1}s; on {} more: acc@1 {:.3} (dense alone {:.3}), calibration error {:.3}",
        r.train_queries, r.seconds, r.calibration_queries, r.ranker_acc1, r.dense_acc1, r.ece
    )
}
