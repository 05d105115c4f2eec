//! `store check | compact | backup DEST`: maintenance of the local store.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lobster_vector::local::{
    CheckReport, CollectionCheck, IndexFileStatus, LocalOptions, LocalStore, DB_FILE,
};
use lobster_vector::Backend;
use serde_json::json;

use super::Ctx;
use crate::cli::{StoreBackupArgs, StoreCheckArgs, StoreCommand, StoreCompactArgs};
use crate::output;

pub fn run(ctx: &Ctx, cmd: &StoreCommand) -> Result<()> {
    if ctx.config.backend != Backend::Local {
        bail!(
            "`lobster-vector store` maintains the embedded `local` store, but the configured \
             backend is `{}`; point it at a local store with --backend local --store-path DIR \
             (or LOBSTER_VECTOR_BACKEND=local and LOBSTER_VECTOR_STORE_PATH)",
            ctx.config.backend
        );
    }
    let path = &ctx.config.store_path;
    match cmd {
        StoreCommand::Check(args) => check(ctx, path, args),
        StoreCommand::Compact(args) => compact(ctx, path, args),
        StoreCommand::Backup(args) => backup(ctx, path, args),
    }
}

/// Opens an existing store; read-only stores take no write lock, so `check`
/// and `backup` run beside a writer.
fn open(path: &Path, read_only: bool) -> Result<LocalStore> {
    super::require_local_store(path)?;
    LocalStore::open(
        path,
        LocalOptions {
            read_only,
            ..LocalOptions::default()
        },
    )
    .with_context(|| format!("cannot open the local store at `{}`", path.display()))
}

fn file_status(s: &IndexFileStatus) -> String {
    match s {
        IndexFileStatus::Absent => "absent (built from SQLite on load)".into(),
        IndexFileStatus::Current { seq } => format!("current (seq {seq})"),
        IndexFileStatus::Behind { seq, last_seq } => {
            format!("behind (seq {seq} of {last_seq}; newer writes replayed on load)")
        }
        IndexFileStatus::Invalid { reason } => format!("INVALID: {reason}"),
    }
}

/// What is wrong with one collection, in words; empty when it is sound.
fn problems(c: &CollectionCheck) -> Vec<String> {
    let mut p = Vec::new();
    if c.records != c.recorded_count {
        p.push(format!(
            "SQLite holds {} rows but the collection counts {}",
            c.records, c.recorded_count
        ));
    }
    if c.index_entries != c.records {
        p.push(format!(
            "the index holds {} entries, SQLite {} records",
            c.index_entries, c.records
        ));
    }
    if c.missing_from_index > 0 {
        p.push(format!(
            "{} records are missing from the index",
            c.missing_from_index
        ));
    }
    if c.extra_in_index > 0 {
        p.push(format!("{} index entries have no record", c.extra_in_index));
    }
    if c.vector_mismatches > 0 {
        p.push(format!(
            "{} sampled vectors differ between the index and SQLite",
            c.vector_mismatches
        ));
    }
    if let IndexFileStatus::Invalid { reason } = &c.index_file {
        p.push(format!("the index file is unusable: {reason}"));
    }
    p
}

fn check(ctx: &Ctx, path: &Path, args: &StoreCheckArgs) -> Result<()> {
    let store = open(path, true)?;
    if !ctx.global.quiet {
        eprintln!(
            "checking `{}` (loads every collection's index) …",
            path.display()
        );
    }
    let report: CheckReport = store.check().context("the check could not run")?;
    let ok = report.is_ok();
    if args.json {
        let collections: Vec<_> = report
            .collections
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).unwrap_or_default();
                v["ok"] = json!(c.is_ok());
                v["problems"] = json!(problems(c));
                v
            })
            .collect();
        output::json(&json!({
            "store_path": path.display().to_string(),
            "ok": ok,
            "integrity_check": report.integrity,
            "collections": collections,
            "stray_files": report.stray_files,
        }))?;
    } else {
        output::line(&format!("store: {}", path.display()))?;
        output::line(&format!(
            "SQLite integrity_check: {}",
            report.integrity.join("; ")
        ))?;
        let rows: Vec<Vec<String>> = report
            .collections
            .iter()
            .map(|c| {
                vec![
                    c.name.clone(),
                    c.dimension.map_or("-".into(), |d| d.to_string()),
                    c.records.to_string(),
                    c.index_entries.to_string(),
                    c.missing_from_index.to_string(),
                    c.extra_in_index.to_string(),
                    c.dead_entries.to_string(),
                    if c.is_ok() { "ok" } else { "DISAGREE" }.into(),
                    file_status(&c.index_file),
                ]
            })
            .collect();
        if rows.is_empty() {
            output::line("no collections")?;
        } else {
            output::table(
                &[
                    "COLLECTION",
                    "DIM",
                    "SQLITE",
                    "INDEX",
                    "MISSING",
                    "EXTRA",
                    "DELETED",
                    "STATUS",
                    "INDEX FILE",
                ],
                &rows,
            )?;
        }
        for c in &report.collections {
            for p in problems(c) {
                output::line(&format!("{}: {p}", c.name))?;
            }
        }
        for f in &report.stray_files {
            output::line(&format!(
                "stray index file (removed by `store compact`): {}",
                f.display()
            ))?;
        }
    }
    if !ok {
        let bad: Vec<&str> = report
            .collections
            .iter()
            .filter(|c| !c.is_ok())
            .map(|c| c.name.as_str())
            .collect();
        if report.integrity != ["ok"] {
            bail!(
                "SQLite's integrity check failed for `{}`; restore the store from a backup \
                 (`lobster-vector store backup` makes one)",
                path.display()
            );
        }
        bail!(
            "the index and SQLite disagree in {} collection(s): {}; run `lobster-vector store \
             compact` to rebuild the indexes from SQLite",
            bad.len(),
            bad.join(", ")
        );
    }
    Ok(())
}

fn compact(ctx: &Ctx, path: &Path, args: &StoreCompactArgs) -> Result<()> {
    let store = open(path, false)?;
    if !ctx.global.quiet {
        eprintln!(
            "compacting `{}`: rebuilding every index from SQLite, then VACUUM …",
            path.display()
        );
    }
    let report = store
        .compact()
        .with_context(|| format!("cannot compact the store at `{}`", path.display()))?;
    if args.json {
        return output::json(&json!({
            "store_path": path.display().to_string(),
            "collections_rebuilt": report.collections_rebuilt,
            "stray_files_removed": report.stray_files_removed,
            "bytes_before": report.bytes_before,
            "bytes_after": report.bytes_after,
        }));
    }
    output::line(&format!(
        "compacted {}: rebuilt {} index(es), removed {} stray file(s), {} → {}",
        path.display(),
        report.collections_rebuilt,
        report.stray_files_removed,
        human_bytes(report.bytes_before),
        human_bytes(report.bytes_after)
    ))
}

fn human_bytes(n: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if n as f64 >= MIB {
        format!("{:.1} MiB", n as f64 / MIB)
    } else {
        format!("{:.1} KiB", n as f64 / 1024.0)
    }
}

/// A sibling of `dest` named `.<name>.<tag>-<pid>`, on the same file system.
fn sibling(dest: &Path, tag: &str) -> Result<PathBuf> {
    let name = dest
        .file_name()
        .with_context(|| format!("`{}` does not name a directory", dest.display()))?;
    let mut s = std::ffi::OsString::from(".");
    s.push(name);
    s.push(format!(".{tag}-{}", std::process::id()));
    Ok(dest.with_file_name(s))
}

/// Whether `dir` is an empty directory.
fn is_empty_dir(dir: &Path) -> Result<bool> {
    Ok(fs::read_dir(dir)
        .with_context(|| format!("cannot read `{}`", dir.display()))?
        .next()
        .is_none())
}

fn backup(ctx: &Ctx, path: &Path, args: &StoreBackupArgs) -> Result<()> {
    let store = open(path, true)?;
    let dest = std::path::absolute(&args.dest)
        .with_context(|| format!("cannot resolve `{}`", args.dest.display()))?;
    let source = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dest_real = dest
        .parent()
        .and_then(|p| fs::canonicalize(p).ok())
        .and_then(|p| dest.file_name().map(|n| p.join(n)))
        .unwrap_or_else(|| dest.clone());
    if dest_real.starts_with(&source) || source.starts_with(&dest_real) {
        bail!(
            "the backup destination `{}` must lie outside the store directory `{}` (and not contain it)",
            dest.display(),
            path.display()
        );
    }
    // What to do with an existing DEST.
    let replace = match fs::symlink_metadata(&dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => return Err(e).with_context(|| format!("cannot inspect `{}`", dest.display())),
        Ok(m) if !m.is_dir() => bail!(
            "the backup destination `{}` exists and is not a directory; choose another DEST",
            dest.display()
        ),
        Ok(_) if is_empty_dir(&dest)? => false,
        Ok(_) if !args.force => bail!(
            "the backup destination `{}` already exists and is not empty; choose a new DEST, \
             or pass --force to replace an earlier backup",
            dest.display()
        ),
        Ok(_) if !dest.join(DB_FILE).is_file() => bail!(
            "the backup destination `{}` is not a lobster-vector store (no {DB_FILE}); \
             --force only replaces an earlier backup, never other files",
            dest.display()
        ),
        Ok(_) => true,
    };
    if !ctx.global.quiet {
        eprintln!("backing up `{}` to `{}` …", path.display(), dest.display());
    }
    // Written next to DEST and renamed into place, so DEST is never half a backup.
    let partial = if dest.exists() {
        sibling(&dest, "partial")?
    } else {
        dest.clone()
    };
    let written = store.backup(&partial).with_context(|| {
        format!(
            "cannot back up the store at `{}` into `{}`",
            path.display(),
            dest.display()
        )
    });
    let report = match written {
        Ok(r) => r,
        Err(e) => {
            // `partial` is DEST only when DEST did not exist: everything in it is ours.
            if partial.exists() {
                let _ = fs::remove_dir_all(&partial);
            }
            return Err(e);
        }
    };
    if partial != dest {
        if replace {
            let old = sibling(&dest, "old")?;
            fs::rename(&dest, &old).with_context(|| {
                format!("cannot move the earlier backup `{}` aside", dest.display())
            })?;
            fs::rename(&partial, &dest)
                .with_context(|| format!("cannot move the new backup into `{}`", dest.display()))?;
            fs::remove_dir_all(&old).with_context(|| {
                format!("cannot remove the earlier backup at `{}`", old.display())
            })?;
        } else {
            // DEST was an empty directory.
            fs::remove_dir(&dest).with_context(|| {
                format!("cannot replace the empty directory `{}`", dest.display())
            })?;
            fs::rename(&partial, &dest)
                .with_context(|| format!("cannot move the new backup into `{}`", dest.display()))?;
        }
    }
    if args.json {
        return output::json(&json!({
            "store_path": path.display().to_string(),
            "destination": dest.display().to_string(),
            "collections": report.collections,
            "bytes": report.bytes,
            "replaced": replace,
        }));
    }
    output::line(&format!(
        "backed up {} collection(s) from {} to {} ({}){}",
        report.collections,
        path.display(),
        dest.display(),
        human_bytes(report.bytes),
        if replace {
            ", replacing the earlier backup"
        } else {
            ""
        }
    ))
}
