//! Reading an ontology file: format by name, optional zstd, the SHA-256 of
//! the bytes on disk, and the [compiled terms](crate::compiled) that spare
//! a later process the decompression and parsing.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{cellxgene, obo, Ontology, OntologyKind, Term};
use crate::compiled::{self, Kind};
use crate::{Error, Result};

/// The parsed terms of a source, as a compiled file holds them.
const TERMS: Kind = Kind {
    magic: b"LVONTv1\0",
    fingerprint: compiled::fingerprint(&[
        include_bytes!("source.rs"),
        include_bytes!("cellxgene.rs"),
        include_bytes!("obo.rs"),
        include_bytes!("model.rs"),
        include_bytes!("kind.rs"),
    ]),
    extension: "terms",
};

/// What a compiled terms file holds besides the checksum in its header:
/// borrowed from a parsed ontology when written, owned when read.
#[derive(Serialize, Deserialize)]
struct CompiledTerms<'a> {
    name: Cow<'a, str>,
    kind: Option<OntologyKind>,
    version: Cow<'a, str>,
    terms: Cow<'a, [Term]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    CellxgeneJson,
    Obo,
}

/// Loads `path`; with `compiled_dir`, from the compiled terms of the same
/// bytes when that file is current (checked by SHA-256, code fingerprint and
/// checksum), else by parsing, writing the compiled file for the next process.
pub(super) fn load(path: &Path, compiled_dir: Option<&Path>) -> Result<Ontology> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let lower = file_name.to_ascii_lowercase();
    let (stem, compressed) = match lower.strip_suffix(".zst") {
        Some(stem) => (stem, true),
        None => (lower.as_str(), false),
    };
    let format = if stem.ends_with(".json") {
        Format::CellxgeneJson
    } else if stem.ends_with(".obo") {
        Format::Obo
    } else {
        return Err(Error::invalid_input(format!(
            "cannot tell the format of `{}`: expected a file name ending in .json, .json.zst, \
             .obo or .obo.zst",
            path.display()
        )));
    };
    let started = std::time::Instant::now();
    let raw = read_raw(path)?;
    let sha256 = hex_sha256(&raw);
    let compiled_path =
        compiled_dir.and_then(|dir| compiled::path(dir, &file_name, &sha256, TERMS));
    if let Some(cpath) = &compiled_path {
        match compiled::read::<CompiledTerms>(cpath, TERMS, &sha256) {
            Ok(c) => {
                let o = Ontology::assemble(
                    c.name.into_owned(),
                    c.kind,
                    c.version.into_owned(),
                    sha256,
                    path.to_path_buf(),
                    c.terms.into_owned(),
                )?;
                tracing::debug!(
                    path = %path.display(),
                    terms = o.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "loaded compiled ontology"
                );
                return Ok(o);
            }
            Err(why) => tracing::debug!(path = %cpath.display(), "compiled terms not used: {why}"),
        }
    }
    let bytes = if compressed {
        decompress(path, &raw)?
    } else {
        raw
    };
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            location: Some(format!("byte {at}")),
            message: "a NUL byte: this is binary data, not an ontology text file".into(),
        });
    }
    let ontology = match format {
        Format::CellxgeneJson => cellxgene::parse(&bytes, path, &file_name, sha256)?,
        Format::Obo => obo::parse(&bytes, path, sha256)?,
    };
    if ontology.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            location: None,
            message: "it holds no terms (is it an ontology file?)".into(),
        });
    }
    tracing::debug!(
        path = %path.display(),
        terms = ontology.len(),
        version = ontology.version(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "loaded ontology"
    );
    if let Some(cpath) = &compiled_path {
        let c = CompiledTerms {
            name: Cow::Borrowed(ontology.name()),
            kind: ontology.kind(),
            version: Cow::Borrowed(ontology.version()),
            terms: Cow::Borrowed(ontology.terms()),
        };
        // One family per ontology: `<PREFIX>-ontology-<version>…` files share
        // `<PREFIX>-ontology`; any other file name is its own family.
        let family = match file_name.split_once("-ontology-") {
            Some((prefix, _)) => format!("{prefix}-ontology"),
            None => file_name.clone(),
        };
        compiled::save(cpath, TERMS, ontology.source_sha256(), &c, &family);
    }
    Ok(ontology)
}

/// Most bytes an ontology source may hold (decompressed): larger input is
/// refused before it is parsed.
pub(crate) const MAX_SOURCE_BYTES: u64 = 1 << 30;

/// Reads the file's bytes as stored (at most [`MAX_SOURCE_BYTES`]).
fn read_raw(path: &Path) -> Result<Vec<u8>> {
    let file = File::open(path).map_err(|e| Error::io("cannot open ontology file", path, e))?;
    let size_hint = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut raw = Vec::with_capacity(size_hint.min(MAX_SOURCE_BYTES as usize));
    file.take(MAX_SOURCE_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| Error::io("cannot read ontology file", path, e))?;
    if raw.len() as u64 > MAX_SOURCE_BYTES {
        return Err(too_large(path, false));
    }
    Ok(raw)
}

/// Decompresses a zstd source (at most [`MAX_SOURCE_BYTES`] once decompressed).
fn decompress(path: &Path, raw: &[u8]) -> Result<Vec<u8>> {
    let limit = MAX_SOURCE_BYTES + 1;
    // Compressed ontology JSON expands about tenfold.
    let mut content =
        Vec::with_capacity(raw.len().saturating_mul(10).min(MAX_SOURCE_BYTES as usize));
    let read = zstd::stream::read::Decoder::new(raw)
        .and_then(|decoder| decoder.take(limit).read_to_end(&mut content));
    if content.len() as u64 > MAX_SOURCE_BYTES {
        return Err(too_large(path, true));
    }
    read.map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        location: None,
        message: format!("truncated or corrupt zstd data ({e})"),
    })?;
    Ok(content)
}

fn too_large(path: &Path, compressed: bool) -> Error {
    Error::invalid_input(format!(
        "`{}` holds more than {} MiB{}; no CL, UBERON or MONDO release comes near \
         (the largest is under 200 MiB)",
        path.display(),
        MAX_SOURCE_BYTES >> 20,
        if compressed { " once decompressed" } else { "" }
    ))
}

/// The lowercase hex SHA-256 of `bytes`.
fn hex_sha256(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(digest.len() * 2);
    for byte in digest {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}
