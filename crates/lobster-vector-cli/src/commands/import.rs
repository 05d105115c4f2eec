//! `import`: copy a collection between backends, page by page.
//!
//! The artifact (what model made the vectors) comes across with the
//! collection. A source without one (a Chroma store built by another tool)
//! needs `--embedding-provider`; that model is loaded to take its id and to
//! check its dimension against the vectors. The artifact is written last, so
//! an interrupted import leaves an unfinished collection that search ignores.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use lobster_vector::artifact::now_rfc3339;
use lobster_vector::ontology::OntologyKind;
use lobster_vector::{Artifact, Backend, Config, EmbeddingProvider, Metadata};
use serde_json::json;

use super::Ctx;
use crate::{cli::ImportArgs, output, progress::Progress};

/// The artifact for a source that has none, from the model the user named.
fn artifact_for(
    ctx: &Ctx,
    provider: &str,
    target: &str,
    dimension: Option<usize>,
    count: usize,
) -> Result<Artifact> {
    let provider: EmbeddingProvider = provider.parse()?;
    let config = Config {
        embedding_provider: provider,
        ..ctx.config.clone()
    };
    let embedder = lobster_vector::open_embedder(&config)
        .with_context(|| format!("cannot load the `{provider}` model to label the import"))?;
    if let Some(d) = dimension {
        if d != embedder.dimensions() {
            bail!(
                "the source vectors are {d}-d but `{provider}` ({}) makes {}-d vectors; \
                 they were not made by this model",
                embedder.model_id(),
                embedder.dimensions()
            );
        }
    }
    let (ontology, version) = match OntologyKind::parse_collection_name(target) {
        Some((kind, version)) => (kind.name().to_string(), version),
        None => (target.to_string(), "unknown".to_string()),
    };
    Ok(Artifact {
        embedding_provider: embedder.provider().to_string(),
        embedding_model: embedder.model_id().to_string(),
        dimensions: embedder.dimensions(),
        ontology,
        source_version: version,
        source_sha256: String::new(),
        built_at: now_rfc3339(),
        lobster_vector_version: env!("CARGO_PKG_VERSION").to_string(),
        entry_count: count,
        term_count: 0,
        source_path: None,
    })
}

pub fn run(ctx: &Ctx, args: &ImportArgs) -> Result<()> {
    let from: Backend = args.from.parse()?;
    let to: Backend = match &args.to {
        Some(b) => b.parse()?,
        None => ctx.config.backend,
    };
    let target = args.target.as_deref().unwrap_or(&args.collection);
    lobster_vector::validate::collection_name(target)?;
    if from == to && target == args.collection {
        bail!(
            "`--from {from}` and `--to {to}` are the same store and collection; \
             pass --as NEW_NAME to copy within one backend"
        );
    }
    let open = |backend: Backend| {
        let config = Config {
            backend,
            ..ctx.config.clone()
        };
        lobster_vector::open_store(&config)
            .with_context(|| format!("cannot open the `{backend}` store"))
    };
    if from == Backend::Local {
        super::require_local_store(&ctx.config.store_path)?;
    }
    let source = open(from)?;
    let info = source
        .collection_info(&args.collection)
        .with_context(|| format!("reading `{}` from the `{from}` store", args.collection))?;
    let artifact = match (
        Artifact::from_metadata(&info.metadata),
        &args.embedding_provider,
    ) {
        (Some(a), Some(p)) if p.parse::<EmbeddingProvider>()?.as_str() != a.embedding_provider => {
            bail!(
                "`{}` was built with {}:{} but --embedding-provider says {p}; \
                 drop the flag to keep the recorded model",
                args.collection,
                a.embedding_provider,
                a.embedding_model
            )
        }
        (Some(a), _) => a,
        (None, Some(p)) => artifact_for(ctx, p, target, info.dimension, info.count)?,
        (None, None) => bail!(
            "`{}` in the `{from}` store has no lobster-vector artifact metadata, so nothing \
             says which model made its vectors; pass --embedding-provider minilm|sapbert|openai \
             (querying with a different model would return wrong neighbours without any error)",
            args.collection
        ),
    };
    let dest = open(to)?;
    if dest.has_collection(target)? {
        if !args.force {
            bail!("`{target}` already exists in the `{to}` store; pass --force to replace it");
        }
        dest.drop_collection(target)?;
    }

    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping after the current page (Ctrl-C again to quit now)");
    })
    .context("cannot install the Ctrl-C handler")?;

    let started = std::time::Instant::now();
    let progress = Progress::new(ctx.global.quiet);
    progress.begin(&format!("importing {}", args.collection), info.count);
    let page_size = args.batch_size as usize;
    let mut copied = 0usize;
    loop {
        if cancel.load(Ordering::SeqCst) {
            progress.end();
            bail!(
                "interrupted after {copied} records; `{target}` in the `{to}` store has no \
                 artifact yet, so search ignores it (run the import again with --force)"
            );
        }
        let page = source
            .read_page(&args.collection, copied, page_size)
            .with_context(|| format!("reading records {copied}.. of `{}`", args.collection))?;
        if page.is_empty() {
            break;
        }
        dest.upsert(target, &page)
            .with_context(|| format!("writing records {copied}.. into `{target}`"))?;
        copied += page.len();
        progress.inc(page.len());
    }
    progress.end();
    let written = dest.count(target)?;
    if written != copied {
        bail!("copied {copied} records but `{target}` holds {written}; the source changed during the import?");
    }
    let mut metadata: Metadata = info.metadata.clone();
    let mut artifact = artifact;
    artifact.entry_count = copied;
    artifact.write_into(&mut metadata);
    dest.set_collection_metadata(target, metadata)?;
    dest.flush()?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        return output::json(&json!({
            "from": from.as_str(),
            "to": to.as_str(),
            "collection": args.collection,
            "target": target,
            "records": copied,
            "seconds": seconds,
            "artifact": artifact,
        }));
    }
    output::line(&format!(
        "imported {copied} records of `{}` ({from}) into `{target}` ({to}) in {seconds:.1} s; \
         model {}:{}",
        args.collection, artifact.embedding_provider, artifact.embedding_model
    ))
}
