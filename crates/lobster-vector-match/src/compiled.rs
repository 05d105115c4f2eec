//! Files compiled once from an ontology source, so a process that answers
//! one query reads them instead of parsing and indexing the source again:
//! the [terms](crate::ontology::Ontology::load_compiled) and the
//! [lexical index](crate::matcher::compiled).
//!
//! A file is named by what it holds and its source's SHA-256, and starts
//! with a header: the magic of its [`Kind`], the fingerprint of the code
//! that wrote it, a checksum of the payload and the source's SHA-256 (hex).
//! [`read`] returns the payload only when every part matches; the caller
//! then checks what it decoded against the ontology. [`write`] writes a
//! temporary file and renames it, so a reader never sees half a file;
//! [`prune`] keeps the newest few files of a kind per ontology. Failing to
//! read or write a compiled file is never an error for the caller: it then
//! does the work in memory.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use serde::Serialize;
use xxhash_rust::xxh3::xxh3_64;

/// What a compiled file holds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kind {
    pub magic: &'static [u8; 8],
    /// Changes with the code that writes and reads the payload (a
    /// compile-time hash of its source files and the crate version).
    pub fingerprint: u64,
    /// File name extension, without the dot.
    pub extension: &'static str,
}

/// Header bytes before the payload: magic, fingerprint, payload checksum, SHA-256 (hex).
const HEADER: usize = 8 + 8 + 8 + 64;
/// Files of one kind kept per ontology, the newest ones (other sources and releases).
const KEEP_PER_ONTOLOGY: usize = 3;
/// Temporary files older than this were left by a process that died while writing.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// The fingerprint of code made of `sources` (file contents) at this crate version.
pub(crate) const fn fingerprint(sources: &[&[u8]]) -> u64 {
    use xxhash_rust::const_xxh3::xxh3_64 as hash;
    let mut f = hash(env!("CARGO_PKG_VERSION").as_bytes());
    let mut i = 0;
    while i < sources.len() {
        f = f.rotate_left(23) ^ hash(sources[i]);
        i += 1;
    }
    f
}

/// `dir/<stem>-<first 16 hex digits of sha256>.<extension>`, or `None` when
/// `sha256` is not a hex SHA-256 (an ontology built in memory).
pub(crate) fn path(dir: &Path, stem: &str, sha256: &str, kind: Kind) -> Option<PathBuf> {
    (sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| dir.join(format!("{stem}-{}.{}", &sha256[..16], kind.extension)))
}

/// Reads the payload of a compiled file of `kind` made from the source
/// with `sha256`; the error says why the file is not used.
pub(crate) fn read<T: DeserializeOwned>(
    path: &Path,
    kind: Kind,
    sha256: &str,
) -> Result<T, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() < HEADER || &bytes[..8] != kind.magic {
        return Err(format!("not a compiled .{} file", kind.extension));
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(w)
    };
    if word(8) != kind.fingerprint {
        return Err("written by another version".into());
    }
    if &bytes[24..HEADER] != sha256.as_bytes() {
        return Err("compiled from another source".into());
    }
    let payload = &bytes[HEADER..];
    if xxh3_64(payload) != word(16) {
        return Err("checksum mismatch (damaged)".into());
    }
    postcard::from_bytes(payload).map_err(|e| e.to_string())
}

/// Writes `value` as a compiled file of `kind`: a temporary file in the same
/// directory (created if missing), renamed over `path`.
pub(crate) fn write<T: Serialize>(
    path: &Path,
    kind: Kind,
    sha256: &str,
    value: &T,
) -> std::io::Result<()> {
    let payload = postcard::to_stdvec(value).map_err(std::io::Error::other)?;
    let mut bytes = Vec::with_capacity(HEADER + payload.len());
    bytes.extend_from_slice(kind.magic);
    bytes.extend_from_slice(&kind.fingerprint.to_le_bytes());
    bytes.extend_from_slice(&xxh3_64(&payload).to_le_bytes());
    bytes.extend_from_slice(sha256.as_bytes());
    bytes.extend_from_slice(&payload);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("compiled");
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = std::fs::write(&temp, &bytes).and_then(|()| std::fs::rename(&temp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Writes like [`write`], then [prunes](prune) the older files of `family`
/// beside it; a failure is logged at debug level and otherwise ignored.
pub(crate) fn save<T: Serialize>(path: &Path, kind: Kind, sha256: &str, value: &T, family: &str) {
    match write(path, kind, sha256, value) {
        Ok(()) => prune(path, family, kind),
        Err(e) => tracing::debug!(path = %path.display(), "compiled file not written: {e}"),
    }
}

/// Removes, beside the file just written at `written`, the files of `kind`
/// whose name starts with `family-` (one ontology's sources and releases)
/// beyond the [`KEEP_PER_ONTOLOGY`] newest, and temporary files older than
/// [`STALE_TEMP`]. Best effort.
fn prune(written: &Path, family: &str, kind: Kind) {
    let Some(dir) = written.parent() else { return };
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{family}-");
    let suffix = format!(".{}", kind.extension);
    let mut older: Vec<(SystemTime, PathBuf)> = Vec::new();
    for entry in listing.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else {
            continue;
        };
        if name.starts_with('.') && name.ends_with(".tmp") {
            if modified.elapsed().is_ok_and(|age| age > STALE_TEMP) {
                let _ = std::fs::remove_file(&path);
            }
        } else if name.starts_with(&prefix) && name.ends_with(&suffix) && path != written {
            older.push((modified, path));
        }
    }
    older.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    for (_, path) in older.into_iter().skip(KEEP_PER_ONTOLOGY - 1) {
        tracing::debug!(path = %path.display(), "removing an old compiled file");
        let _ = std::fs::remove_file(path);
    }
}
