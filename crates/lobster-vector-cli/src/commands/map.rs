use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use lobster_vector::curation::{mapping_set, CuratedSet, SetInfo, Status};
use lobster_vector::service::MatchOptions;
use lobster_vector::OntologyMatch;
use serde_json::json;

use super::Ctx;
use crate::cli::{MapArgs, MapFormat};
use crate::progress::Progress;

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

/// The output format: `--format`, else the output's extension.
fn output_format(args: &MapArgs) -> MapFormat {
    if let Some(f) = args.format {
        return f;
    }
    let Some(path) = &args.output else {
        return MapFormat::Tsv;
    };
    let name = path.to_string_lossy().to_ascii_lowercase();
    if name.ends_with(".sssom.tsv") {
        return MapFormat::Sssom;
    }
    match format_of(path) {
        Format::Csv => MapFormat::Csv,
        Format::JsonLines => MapFormat::Jsonl,
        Format::Tsv | Format::Lines => MapFormat::Tsv,
    }
}

/// Refuses, before any work, an output that is the input (by any spelling or
/// link) or whose directory does not exist.
fn check_output(args: &MapArgs) -> Result<()> {
    let Some(out) = &args.output else {
        return Ok(());
    };
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !dir.is_dir() {
        bail!(
            "the output directory `{}` does not exist; create it or choose another --output",
            dir.display()
        );
    }
    if out.is_dir() {
        bail!("--output `{}` is a directory; name a file", out.display());
    }
    if args.input != Path::new("-") {
        if let (Ok(a), Ok(b)) = (args.input.canonicalize(), out.canonicalize()) {
            if a == b {
                bail!(
                    "--output `{}` is the input file; write the mapping to another file",
                    out.display()
                );
            }
        }
    }
    Ok(())
}

/// The store's curated mappings (unless `--no-curated`) with `--curated`'s over them.
fn curated(ctx: &Ctx, args: &MapArgs) -> Result<CuratedSet> {
    let mut set = if args.no_curated {
        CuratedSet::new()
    } else {
        ctx.curated_store().load()?
    };
    if let Some(path) = &args.curated {
        set.extend(CuratedSet::load(path)?);
    }
    Ok(set)
}

pub fn run(ctx: &Ctx, args: &MapArgs) -> Result<()> {
    check_output(args)?;
    let format = output_format(args);
    let values = read_values(&args.input, args.column.as_deref())?;
    let mut distinct: Vec<&str> = values
        .iter()
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    let curated = Arc::new(curated(ctx, args)?);
    let service = ctx
        .search_service(super::StoreAccess::Existing)?
        .with_curated(Some(curated.clone()));
    let options = MatchOptions {
        k: args.candidates as usize,
        within: args.within.clone(),
    };
    // Resolve (and fail closed) before any work.
    let resolved = service.resolve_collection(&args.ontology)?;
    // Against the release the collection was built from (loaded once, for matching too).
    if let Some(o) = service.ontology_of(&resolved)? {
        super::curate::warn_stale(&curated, &o);
    }
    let progress = Progress::new(ctx.global.quiet);
    progress.begin(&format!("mapping to {}", resolved.name), distinct.len());
    // The rows of each distinct value, best first.
    let mut found: HashMap<&str, Vec<OntologyMatch>> = HashMap::with_capacity(distinct.len());
    for chunk in distinct.chunks(CHUNK) {
        let matches = service.match_ontology_batch_with(chunk, &resolved.name, &options)?;
        found.extend(chunk.iter().copied().zip(matches));
        progress.inc(chunk.len());
    }
    progress.end();
    let status: HashMap<&str, Status> = found
        .iter()
        .map(|(v, rows)| (*v, Status::of(rows, args.min_score)))
        .collect();
    let status_of = |v: &str| status.get(v).copied().unwrap_or(Status::Unmapped);
    // The rows written for a value: none when it is unmapped.
    let rows_of = |v: &str| -> &[OntologyMatch] {
        match (status_of(v), found.get(v)) {
            (Status::Unmapped, _) | (_, None) => &[],
            (_, Some(rows)) => rows,
        }
    };

    let mut out: Vec<u8> = Vec::new();
    match format {
        MapFormat::Sssom => {
            let info = SetInfo::for_collection(&resolved, &args.license);
            let results = distinct
                .iter()
                .map(|v| (*v, found.get(v).map_or(&[][..], |r| &r[..])));
            out = mapping_set(results, args.min_score, &info)
                .to_tsv()?
                .into_bytes();
        }
        MapFormat::Jsonl => {
            for v in &values {
                let status = status_of(v);
                let rows: Vec<Option<&OntologyMatch>> = match rows_of(v) {
                    [] => vec![None],
                    rows => rows.iter().map(Some).collect(),
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
                        "status": status.as_str(),
                    });
                    serde_json::to_writer(&mut out, &row)?;
                    out.push(b'\n');
                }
            }
        }
        MapFormat::Tsv | MapFormat::Csv => {
            let delimiter = if format == MapFormat::Csv {
                b','
            } else {
                b'\t'
            };
            let mut w = csv::WriterBuilder::new()
                .delimiter(delimiter)
                .from_writer(&mut out);
            w.write_record([
                "input",
                "rank",
                "ontology_id",
                "label",
                "score",
                "match_type",
                "matched_text",
                "status",
            ])?;
            for v in &values {
                let status = status_of(v).as_str();
                match rows_of(v) {
                    [] => w.write_record([v.as_str(), "", "", "", "", "unmapped", "", status])?,
                    rows => {
                        for (rank, m) in rows.iter().enumerate() {
                            w.write_record([
                                v.as_str(),
                                &(rank + 1).to_string(),
                                &m.ontology_id,
                                &m.term,
                                &format!("{:.4}", m.score),
                                m.match_type.as_str(),
                                &m.matched_text,
                                status,
                            ])?;
                        }
                    }
                }
            }
            w.flush()?;
        }
    }
    let mut counts = [0usize; 3];
    for v in &distinct {
        counts[status_of(v) as usize] += 1;
    }
    let summary = format!(
        "{} values ({} distinct) to {}: {} accepted, {} to review, {} unmapped",
        values.len(),
        distinct.len(),
        resolved.name,
        counts[Status::Accepted as usize],
        counts[Status::Review as usize],
        counts[Status::Unmapped as usize],
    );
    match &args.output {
        Some(path) => {
            lobster_vector::curation::store::write_replacing(path, &out)?;
            if !ctx.global.quiet {
                eprintln!("mapped {summary}; wrote `{}`", path.display());
            }
        }
        None => {
            std::io::stdout().lock().write_all(&out)?;
            if !ctx.global.quiet {
                eprintln!("mapped {summary}");
            }
        }
    }
    Ok(())
}
