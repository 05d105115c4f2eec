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

/// What to do next about `err`, where its text alone does not say.
fn hint(err: &anyhow::Error) -> Option<String> {
    use lobster_vector::Error;
    let e = err.chain().find_map(|c| c.downcast_ref::<Error>())?;
    match e {
        Error::OntologySourceMissing { .. } => Some(
            "fetch the ontology sources with `bash scripts/setup.sh`, or pass --source FILE".into(),
        ),
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
