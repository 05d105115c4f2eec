use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use lobster_vector::service::MatchOptions;
use lobster_vector::OntologyMatch;
use serde_json::json;

use super::Ctx;
use crate::{cli::MapArgs, progress::Progress};

/// Distinct values matched per service call.
const CHUNK: usize = 256;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Tsv,
    Csv,
    Lines,
    JsonLines,
}

fn format_of(path: &Path) -> Format {
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".tsv") || name.ends_with(".tab") {
        Format::Tsv
    } else if name.ends_with(".csv") {
        Format::Csv
    } else if name.ends_with(".jsonl") || name.ends_with(".ndjson") {
        Format::JsonLines
    } else {
        Format::Lines
    }
}

/// The values of the chosen column, in file order.
fn read_values(path: &Path, column: Option<&str>) -> Result<Vec<String>> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
    } else {
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .with_context(|| format!("cannot read `{}`", path.display()))?;
    }
    let delimiter = match format_of(path) {
        Format::Tsv => b'\t',
        Format::Csv => b',',
        _ => {
            if column.is_some() {
                bail!("--column needs a .tsv or .csv input with a header row; `{}` is read as plain lines", path.display());
            }
            return Ok(text.lines().map(|l| l.trim().to_string()).collect());
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .with_context(|| format!("reading the header row of `{}`", path.display()))?
        .clone();
    let index = match column {
        None => 0,
        Some(name) => headers
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| {
                format!(
                    "`{}` has no column `{name}`; its columns are: {}",
                    path.display(),
                    headers.iter().collect::<Vec<_>>().join(", ")
                )
            })?,
    };
    let mut values = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("`{}` row {}", path.display(), i + 2))?;
        values.push(record.get(index).unwrap_or_default().trim().to_string());
    }
    Ok(values)
}

/// Writes `bytes` to `path` through a temporary file and a rename, so a failed
/// run never leaves a half-written output.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp: PathBuf = dir.join(format!(
        ".{}.partial",
        path.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write `{}`", path.display()))
}

pub fn run(ctx: &Ctx, args: &MapArgs) -> Result<()> {
    let values = read_values(&args.input, args.column.as_deref())?;
    let mut distinct: Vec<&str> = values
        .iter()
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    let service = ctx.service()?;
    let per_value = args.candidates as usize;
    let options = MatchOptions {
        k: per_value,
        within: args.within.clone(),
    };
    // Resolve (and fail closed) before any work.
    let resolved = service.resolve_collection(&args.ontology)?;
    let progress = Progress::new(ctx.global.quiet);
    progress.begin(&format!("mapping to {}", resolved.name), distinct.len());
    // The rows kept per value, best first; a value whose best row is below
    // `--min-score` is left unmapped.
    let mut best: HashMap<&str, Vec<OntologyMatch>> = HashMap::with_capacity(distinct.len());
    for chunk in distinct.chunks(CHUNK) {
        let matches = service.match_ontology_batch_with(chunk, &resolved.name, &options)?;
        for (value, rows) in chunk.iter().zip(matches) {
            if rows.first().is_some_and(|m| m.score >= args.min_score) {
                best.insert(value, rows);
            }
        }
        progress.inc(chunk.len());
    }
    progress.end();

    let format = args.output.as_deref().map_or(Format::Tsv, format_of);
    let mut out: Vec<u8> = Vec::new();
    let header = [
        "input",
        "rank",
        "ontology_id",
        "label",
        "score",
        "match_type",
        "matched_text",
    ];
    match format {
        Format::JsonLines => {
            for v in &values {
                let rows: Vec<Option<&OntologyMatch>> = match best.get(v.as_str()) {
                    Some(rows) => rows.iter().map(Some).collect(),
                    None => vec![None],
                };
                for (rank, m) in rows.into_iter().enumerate() {
                    let row = json!({
                        "input": v,
                        "rank": m.map(|_| rank + 1),
                        "ontology_id": m.map(|m| &m.ontology_id),
                        "label": m.map(|m| &m.term),
                        "score": m.map(|m| lobster_vector::service::output_score(m.score)),
                        "match_type": m.map_or("unmapped", |m| m.match_type.as_str()),
                        "matched_text": m.map(|m| &m.matched_text),
                        "ontology_version": m.map(|m| &m.ontology_version),
                    });
                    serde_json::to_writer(&mut out, &row)?;
                    out.push(b'\n');
                }
            }
        }
        _ => {
            let delimiter = if format == Format::Csv { b',' } else { b'\t' };
            let mut w = csv::WriterBuilder::new()
                .delimiter(delimiter)
                .from_writer(&mut out);
            w.write_record(header)?;
            for v in &values {
                match best.get(v.as_str()) {
                    Some(rows) => {
                        for (rank, m) in rows.iter().enumerate() {
                            w.write_record([
                                v.clone(),
                                (rank + 1).to_string(),
                                m.ontology_id.clone(),
                                m.term.clone(),
                                format!("{:.4}", m.score),
                                m.match_type.as_str().to_string(),
                                m.matched_text.clone(),
                            ])?;
                        }
                    }
                    None => w.write_record([
                        v.clone(),
                        String::new(),
                        String::new(),
                        String::new(),
                        String::new(),
                        "unmapped".into(),
                        String::new(),
                    ])?,
                }
            }
            w.flush()?;
        }
    }
    let mapped = values
        .iter()
        .filter(|v| best.contains_key(v.as_str()))
        .count();
    match &args.output {
        Some(path) => {
            write_atomically(path, &out)?;
            if !ctx.global.quiet {
                eprintln!(
                    "mapped {mapped} of {} values ({} distinct) to {}; wrote `{}`",
                    values.len(),
                    distinct.len(),
                    resolved.name,
                    path.display()
                );
            }
        }
        None => std::io::stdout().lock().write_all(&out)?,
    }
    Ok(())
}
