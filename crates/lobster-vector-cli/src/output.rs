//! Writing results to stdout: JSON for machines, aligned text for people.

use std::io::Write;

use anyhow::Result;
use serde::Serialize;

/// Writes `value` as pretty JSON plus a newline.
pub fn json<T: Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Writes rows as a left-aligned table with a header; the last column is not padded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = std::io::stdout().lock();
    let line =
        |cells: &mut dyn Iterator<Item = &str>, out: &mut dyn Write| -> std::io::Result<()> {
            let cells: Vec<&str> = cells.collect();
            let last = cells.len().saturating_sub(1);
            let mut s = String::new();
            for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
                if i == last {
                    s.push_str(cell);
                } else {
                    s.push_str(&format!("{cell:<w$}  "));
                }
            }
            writeln!(out, "{}", s.trim_end())
        };
    line(&mut header.iter().copied(), &mut out)?;
    for row in rows {
        line(&mut row.iter().map(String::as_str), &mut out)?;
    }
    Ok(())
}

/// Writes one line.
pub fn line(text: &str) -> Result<()> {
    writeln!(std::io::stdout().lock(), "{text}")?;
    Ok(())
}
