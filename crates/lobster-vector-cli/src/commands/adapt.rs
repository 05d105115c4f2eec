use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use lobster_vector::adapt::{
    adapt, base_model, default_output, synonym_sets, AdaptEvent, AdaptOptions,
};

use lobster_vector::matcher::FitOptions;
use lobster_vector::EmbeddingProvider;

use super::Ctx;
use crate::{cli::AdaptArgs, output, progress::Progress};

pub fn run(ctx: &Ctx, args: &AdaptArgs) -> Result<()> {
    let library = ctx.ontologies();
    let ontologies = if args.source.is_empty() {
        library.select(&args.ontology, None)?
    } else {
        let mut all = Vec::new();
        for s in &args.source {
            all.extend(library.select(&args.ontology, Some(s))?);
        }
        all
    };
    let fit = FitOptions {
        seed: args.fit_seed,
        ..FitOptions::default()
    };
    let (sets, sources) = synonym_sets(&ontologies, &fit);
    let output_dir: PathBuf = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&ctx.config));
    if output_dir.exists() && !args.force {
        bail!(
            "`{}` already exists; pass --force to replace it, or --output DIR",
            output_dir.display()
        );
    }
    let (base_dir, base_options) =
        base_model(&ctx.config).context("cannot find the model to adapt")?;
    let options = AdaptOptions {
        train_layers: args.train_layers as usize,
        epochs: args.epochs as usize,
        batch_size: args.batch_size as usize,
        learning_rate: args.learning_rate,
        seed: args.seed,
        max_steps: args.max_steps,
        ..AdaptOptions::default()
    };
    // Train into a sibling and swap it in only at the end: a failed or
    // interrupted run leaves the old model as it was.
    let fresh = sibling(&output_dir, "new");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh)
            .with_context(|| format!("cannot remove `{}`", fresh.display()))?;
    }
    let cancel = super::build::interrupt_flag()?;
    let progress = Progress::new(ctx.global.quiet);
    let mut on_event = |event: AdaptEvent| match event {
        AdaptEvent::Mining { concepts } => {
            progress.note(&format!(
                "finding each of {concepts} concepts' nearest neighbour with the base model"
            ));
        }
        AdaptEvent::Training { steps } => progress.begin("training", steps),
        AdaptEvent::Step { step, loss } => {
            progress.set_message(&format!("training (loss {loss:.3})"));
            progress.inc(1);
            tracing::debug!(step, loss, "adapt step");
        }
        AdaptEvent::Saving => progress.end(),
    };
    let report = adapt(
        &base_dir,
        base_options,
        &sets,
        &sources,
        &options,
        &fresh,
        &cancel,
        &mut on_event,
    )
    .with_context(|| format!("adapting `{}`", base_dir.display()))?;
    if output_dir.exists() {
        std::fs::remove_dir_all(&output_dir)
            .with_context(|| format!("cannot replace `{}`", output_dir.display()))?;
    }
    std::fs::rename(&fresh, &output_dir)
        .with_context(|| format!("cannot move the model into `{}`", output_dir.display()))?;
    let m = &report.manifest;
    if args.json {
        return output::json(&serde_json::json!({
            "output": output_dir,
            "manifest": m,
        }));
    }
    output::line(&format!(
        "{}: {} concepts, {} steps in {:.0}s, loss {:.3} -> {:.3}",
        output_dir.display(),
        m.concepts,
        m.steps,
        m.seconds,
        m.first_loss,
        m.last_loss
    ))?;
    output::line(&format!("model id: {}", m.model_id))?;
    let variable = match ctx.config.embedding_provider {
        EmbeddingProvider::Sapbert => "LOBSTER_SAPBERT_MODEL",
        _ => "LOBSTER_MINILM_MODEL",
    };
    output::line(&format!(
        "use it: {variable}={} lobster-vector build --force",
        output_dir.display()
    ))?;
    Ok(())
}

/// `<dir>.<what>` beside `dir`.
fn sibling(dir: &std::path::Path, what: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{what}"));
    dir.with_file_name(name)
}
