//! Reading an ontology file: format by name, optional zstd, SHA-256 in the
//! same pass.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{cellxgene, obo, Ontology};
use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    CellxgeneJson,
    Obo,
}

pub(super) fn load(path: &Path) -> Result<Ontology> {
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
    let (bytes, sha256) = read_all(path, compressed)?;
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
    Ok(ontology)
}

/// Most bytes an ontology source may hold (decompressed): larger input is
/// refused before it is parsed.
pub(crate) const MAX_SOURCE_BYTES: u64 = 1 << 30;

/// Reads the whole file (decompressing zstd when `compressed`) and returns its
/// content with the lowercase hex SHA-256 of the bytes on disk.
fn read_all(path: &Path, compressed: bool) -> Result<(Vec<u8>, String)> {
    let file = File::open(path).map_err(|e| Error::io("cannot open ontology file", path, e))?;
    let size_hint = file.metadata().map(|m| m.len() as usize).unwrap_or(0);
    let mut hashing = HashingReader::new(file);
    let mut content = Vec::new();
    let limit = MAX_SOURCE_BYTES + 1;
    let read = if compressed {
        // Compressed ontology JSON expands about tenfold.
        content.reserve(size_hint.saturating_mul(10).min(MAX_SOURCE_BYTES as usize));
        zstd::stream::read::Decoder::new(&mut hashing)
            .and_then(|decoder| decoder.take(limit).read_to_end(&mut content))
    } else {
        content.reserve(size_hint.min(MAX_SOURCE_BYTES as usize));
        (&mut hashing).take(limit).read_to_end(&mut content)
    };
    if content.len() as u64 > MAX_SOURCE_BYTES {
        return Err(Error::invalid_input(format!(
            "`{}` holds more than {} MiB{}; no CL, UBERON or MONDO release comes near \
             (the largest is under 200 MiB)",
            path.display(),
            MAX_SOURCE_BYTES >> 20,
            if compressed { " once decompressed" } else { "" }
        )));
    }
    let done = read.and_then(|_| hashing.drain());
    if let Err(e) = done {
        return Err(if hashing.failed || !compressed {
            Error::io("cannot read ontology file", path, e)
        } else {
            Error::Parse {
                path: path.to_path_buf(),
                location: None,
                message: format!("truncated or corrupt zstd data ({e})"),
            }
        });
    }
    Ok((content, hashing.hex_digest()))
}

/// A reader that hashes every byte it passes on, and remembers whether the
/// underlying reader (rather than a decoder above it) failed.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    failed: bool,
}

impl<R: Read> HashingReader<R> {
    fn new(inner: R) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            failed: false,
        }
    }

    /// Reads (and hashes) whatever a decoder left unread, so the digest covers
    /// the whole file.
    fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(|_| ())
    }

    fn hex_digest(self) -> String {
        use std::fmt::Write;
        let digest = self.hasher.finalize();
        let mut hex = String::with_capacity(digest.len() * 2);
        for byte in digest {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
        }
        hex
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.failed = true;
                }
                Err(e)
            }
        }
    }
}
