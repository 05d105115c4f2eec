//! The `lobster-vector` command.

mod cli;
mod commands;
mod output;
mod progress;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing(cli.global.verbose, cli.global.quiet);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) if is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            let mut stderr = std::io::stderr().lock();
            let _ = writeln!(stderr, "error: {err}");
            for cause in err.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {cause}");
            }
            if let Some(hint) = hint(&err) {
                let _ = writeln!(stderr, "hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}

/// The command that fetches the model and ontology sources.
const SETUP: &str = "bash scripts/setup.sh";

/// What to do next about `err`, where its text alone does not say.
fn hint(err: &anyhow::Error) -> Option<String> {
    use lobster_vector::Error;
    let e = err.chain().find_map(|c| c.downcast_ref::<Error>())?;
    match e {
        Error::OntologySourceMissing { .. } => Some(format!(
            "fetch the ontology sources with `{SETUP}`, or pass --source FILE"
        )),
        Error::CollectionSourceMissing { .. } => Some(format!(
            "fetch the ontology sources with `{SETUP}` (the collection's source file must be in \
             the assets' ontologies directory)"
        )),
        Error::CollectionNotFound { .. } => {
            Some("list the collections with `lobster-vector collections`".into())
        }
        Error::NoCollection { ontology } => Some(format!(
            "build it with `lobster-vector build --ontology {ontology}`"
        )),
        Error::BuildUnfinished { .. } => {
            Some("build it again with `lobster-vector build --force`".into())
        }
        Error::EmbedderMismatch { .. } => Some(
            "query with the embedder that built it (LOBSTER_EMBEDDING_PROVIDER, \
             LOBSTER_MINILM_MODEL, LOBSTER_SAPBERT_MODEL), or rebuild the collection with \
             `lobster-vector build --force`"
                .into(),
        ),
        Error::MetricMismatch { collection, .. } => Some(format!(
            "copy it into a store that keeps cosine distances: `lobster-vector import --from \
             chromadb --collection {collection} --to local`"
        )),
        Error::ModelMissing {
            fetched_by_setup: true,
            ..
        } => Some(format!("fetch the model with `{SETUP}`")),
        Error::ModelMissing {
            model_id, env_var, ..
        } => Some(format!(
            "no offline package ships it: download the Hugging Face model `{model_id}` \
             (model.safetensors, config.json, tokenizer.json) on a machine with hub access and \
             point {env_var} at that directory"
        )),
        Error::ModelFiles { .. } => Some(format!(
            "fetch the model again with `{SETUP}`, or point the model variable at an intact copy"
        )),
        Error::Io { path, source, .. }
            if source.kind() == std::io::ErrorKind::InvalidData
                && path.file_name()
                    == Some(std::ffi::OsStr::new(lobster_vector::local::DB_FILE)) =>
        {
            Some(format!(
                "the store database is damaged: `lobster-vector store check` reports what it can \
                 still read; restore `{}` from a backup (`lobster-vector store backup DIR` makes \
                 one), or move it away and build the collections again",
                path.display()
            ))
        }
        Error::ReadOnly { .. } => {
            Some("run the command as a user who can write the store directory and its files".into())
        }
        _ => None,
    }
}

/// A closed stdout (`lobster-vector search … | head`) is success, not an error.
fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        let kind = c
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                c.downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

fn init_tracing(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = match std::env::var("LOBSTER_LOG") {
        Ok(spec) => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!(
                "warning: LOBSTER_LOG `{spec}` is not a tracing filter ({e}); using `{default}`"
            );
            EnvFilter::new(default)
        }),
        Err(_) => EnvFilter::new(default),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::{hint, SETUP};
    use lobster_vector::Error;

    fn hint_of(e: Error) -> String {
        hint(&anyhow::Error::new(e).context("while testing")).unwrap_or_default()
    }

    #[test]
    fn library_errors_get_the_command_that_fixes_them() {
        let cases = [
            (
                Error::NoCollection {
                    ontology: "mondo".into(),
                },
                "lobster-vector build --ontology mondo",
            ),
            (
                Error::BuildUnfinished {
                    collection: "cl_v1".into(),
                },
                "lobster-vector build --force",
            ),
            (
                Error::CollectionNotFound { name: "x".into() },
                "lobster-vector collections",
            ),
            (
                Error::MetricMismatch {
                    collection: "c1".into(),
                    metric: "l2".into(),
                },
                "--collection c1",
            ),
            (
                Error::ModelMissing {
                    provider: "minilm".into(),
                    model_id: "m".into(),
                    tried: String::new(),
                    env_var: "LOBSTER_MINILM_MODEL",
                    fetched_by_setup: true,
                },
                SETUP,
            ),
            (
                Error::ModelMissing {
                    provider: "sapbert".into(),
                    model_id: "org/sap".into(),
                    tried: String::new(),
                    env_var: "LOBSTER_SAPBERT_MODEL",
                    fetched_by_setup: false,
                },
                "`org/sap` (model.safetensors",
            ),
        ];
        for (error, want) in cases {
            let got = hint_of(error);
            assert!(got.contains(want), "{got:?} lacks {want:?}");
        }
        assert_eq!(hint(&anyhow::anyhow!("not a library error")), None);
    }
}
