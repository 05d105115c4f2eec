//! The lexical index of an ontology compiled once per source into a file,
//! so a process that answers one query reads it instead of tokenising every
//! label and synonym again.
//!
//! A file is named by the ontology and its source's SHA-256 and holds a
//! header (magic, the fingerprint of the code that wrote it, the source's
//! SHA-256, a checksum of the payload) and the index. It is used only when
//! every part of the header matches and the index passes
//! [`LexicalIndex::is_consistent`]; otherwise the index is built and the file
//! written again (to a temporary name, then renamed), and the ontology's
//! older files beyond the newest few are removed. Failing to read or write
//! the file is never an error: the index is then built in memory.

use std::path::{Path, PathBuf};

use xxhash_rust::const_xxh3::xxh3_64 as const_xxh3_64;
use xxhash_rust::xxh3::xxh3_64;

use super::lexical::LexicalIndex;
use crate::ontology::Ontology;

const MAGIC: &[u8; 8] = b"LVLEXv1\0";

/// Changes whenever the code that builds the index, or the grammar it reads
/// text with, changes: a file written by other code is never used.
const FINGERPRINT: u64 = const_xxh3_64(include_bytes!("lexical.rs"))
    ^ const_xxh3_64(include_bytes!("text.rs")).rotate_left(21)
    ^ const_xxh3_64(env!("CARGO_PKG_VERSION").as_bytes()).rotate_left(42);

/// Header bytes before the payload: magic, fingerprint, payload checksum, SHA-256 (hex).
const HEADER: usize = 8 + 8 + 8 + 64;

/// Where the compiled index of `ontology` lives under `dir`; `None` for an
/// ontology without a source checksum (built in memory).
pub fn path_of(ontology: &Ontology, dir: &Path) -> Option<PathBuf> {
    let sha = ontology.source_sha256();
    (sha.len() == 64).then(|| {
        dir.join(format!(
            "{}-{}-{}.lexical",
            ontology.name(),
            ontology.version(),
            &sha[..16]
        ))
    })
}

/// The lexical index of `ontology`: read from its compiled file under
/// `dir` when that file is current and sound, else built (and the file
/// written). Without `dir`, built.
pub fn load_or_build(ontology: &Ontology, dir: Option<&Path>) -> LexicalIndex {
    let Some(path) = dir.and_then(|d| path_of(ontology, d)) else {
        return LexicalIndex::build(ontology);
    };
    match read(&path, ontology) {
        Ok(index) => return index,
        Err(why) => {
            tracing::debug!(path = %path.display(), "compiled lexical index not used: {why}")
        }
    }
    let index = LexicalIndex::build(ontology);
    match write(&path, ontology, &index) {
        Ok(()) => prune(&path, ontology.name()),
        Err(e) => {
            tracing::debug!(path = %path.display(), "compiled lexical index not written: {e}")
        }
    }
    index
}

/// Compiled files of one ontology kept, the newest ones (other sources and releases).
const KEEP_PER_ONTOLOGY: usize = 3;
/// Temporary files older than this are left by a process that died while writing.
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(3600);

/// Removes, beside the file just written at `written`, the compiled files
/// of `ontology` beyond the [`KEEP_PER_ONTOLOGY`] newest and temporary files
/// older than [`STALE_TEMP`]. Best effort: what cannot be removed stays.
fn prune(written: &Path, ontology: &str) {
    let Some(dir) = written.parent() else { return };
    let Ok(listing) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{ontology}-");
    let mut older: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
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
        } else if name.starts_with(&prefix) && name.ends_with(".lexical") && path != written {
            older.push((modified, path));
        }
    }
    older.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    for (_, path) in older.into_iter().skip(KEEP_PER_ONTOLOGY - 1) {
        tracing::debug!(path = %path.display(), "removing an old compiled lexical index");
        let _ = std::fs::remove_file(path);
    }
}

/// Reads and checks a compiled index.
fn read(path: &Path, ontology: &Ontology) -> Result<LexicalIndex, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err("not a compiled lexical index".into());
    }
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    if word(8) != FINGERPRINT {
        return Err("written by another version".into());
    }
    if &bytes[24..HEADER] != ontology.source_sha256().as_bytes() {
        return Err("compiled from another source".into());
    }
    let payload = &bytes[HEADER..];
    if xxh3_64(payload) != word(16) {
        return Err("checksum mismatch (damaged)".into());
    }
    let index: LexicalIndex = postcard::from_bytes(payload).map_err(|e| e.to_string())?;
    if !index.is_consistent(ontology.len()) {
        return Err("inconsistent with the ontology".into());
    }
    Ok(index)
}

/// Writes a compiled index: a temporary file in the same directory, renamed over `path`.
fn write(path: &Path, ontology: &Ontology, index: &LexicalIndex) -> std::io::Result<()> {
    let payload = postcard::to_stdvec(index).map_err(std::io::Error::other)?;
    let mut bytes = Vec::with_capacity(HEADER + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&FINGERPRINT.to_le_bytes());
    bytes.extend_from_slice(&xxh3_64(&payload).to_le_bytes());
    bytes.extend_from_slice(ontology.source_sha256().as_bytes());
    bytes.extend_from_slice(&payload);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("lexical"),
        std::process::id()
    ));
    let result = std::fs::write(&temp, &bytes).and_then(|()| std::fs::rename(&temp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ontology::OntologyLibrary;

    const SOURCE: &str = r#"{
      "CL:0000000": {"label": "cell", "synonyms": [], "ancestors": {}},
      "CL:0000084": {"label": "T cell", "synonyms": ["T lymphocyte", "T-cell"], "ancestors": {"CL:0000000": 1}},
      "CL:0000625": {"label": "CD8-positive, alpha-beta T cell", "synonyms": ["CD8+ T cell"], "ancestors": {"CL:0000084": 1, "CL:0000000": 2}},
      "CL:0000236": {"label": "B cell", "synonyms": ["B lymphocyte"], "ancestors": {"CL:0000000": 1}}
    }"#;

    fn assets() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("ontologies")).expect("mkdir");
        let source = dir.path().join("ontologies/CL-ontology-v1.json");
        std::fs::write(&source, SOURCE).expect("write");
        (dir, source)
    }

    fn load(assets: &Path, source: &Path) -> std::sync::Arc<Ontology> {
        OntologyLibrary::in_assets(assets)
            .load(source)
            .expect("load")
    }

    #[test]
    fn a_compiled_index_is_written_once_and_reads_back_equal() {
        let (dir, source) = assets();
        let first = load(dir.path(), &source);
        let built = LexicalIndex::build(&first);
        assert_eq!(first.lexical(), &built);
        let path = path_of(&first, &dir.path().join("compiled")).expect("path");
        let written = std::fs::metadata(&path)
            .expect("written")
            .modified()
            .expect("mtime");
        // A new process (a new library) reads the file instead of building.
        let second = load(dir.path(), &source);
        assert_eq!(second.lexical(), &built);
        assert_eq!(
            std::fs::metadata(&path).unwrap().modified().unwrap(),
            written
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[test]
    fn a_damaged_or_foreign_file_is_never_used() {
        let (dir, source) = assets();
        let ontology = load(dir.path(), &source);
        let built = LexicalIndex::build(&ontology);
        let path = path_of(&ontology, &dir.path().join("compiled")).expect("path");
        let _ = ontology.lexical();
        let good = std::fs::read(&path).expect("read");
        assert!(read(&path, &ontology).is_ok());

        // One flipped payload byte: the checksum refuses it.
        let mut damaged = good.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 0x40;
        std::fs::write(&path, &damaged).unwrap();
        assert!(read(&path, &ontology).unwrap_err().contains("checksum"));
        // Another source's checksum in the header.
        let mut foreign = good.clone();
        foreign[24] = if foreign[24] == b'0' { b'1' } else { b'0' };
        std::fs::write(&path, &foreign).unwrap();
        assert!(read(&path, &ontology)
            .unwrap_err()
            .contains("another source"));
        // Another code version.
        let mut other = good.clone();
        other[8] ^= 1;
        std::fs::write(&path, &other).unwrap();
        assert!(read(&path, &ontology)
            .unwrap_err()
            .contains("another version"));
        // Truncated, and not an index at all.
        std::fs::write(&path, &good[..HEADER - 1]).unwrap();
        assert!(read(&path, &ontology).is_err());
        std::fs::write(&path, b"hello").unwrap();
        assert!(read(&path, &ontology).is_err());

        // A sound payload whose ids point outside the index: checksummed
        // correctly, refused by the consistency check.
        let mut broken = built.clone();
        broken.entries_mut_for_test()[0].tokens.push(u32::MAX);
        write(&path, &ontology, &broken).unwrap();
        assert!(read(&path, &ontology).unwrap_err().contains("inconsistent"));

        // Whatever was there, the next process builds the index and writes it again.
        let fresh = load(dir.path(), &source);
        assert_eq!(fresh.lexical(), &built);
        assert_eq!(read(&path, &ontology).expect("rewritten"), built);
    }

    #[test]
    fn an_unwritable_directory_still_gives_the_index() {
        let (dir, source) = assets();
        // `compiled` is a file, so nothing can be written under it.
        std::fs::write(dir.path().join("compiled"), b"").unwrap();
        let ontology = load(dir.path(), &source);
        assert_eq!(ontology.lexical(), &LexicalIndex::build(&ontology));
    }

    #[test]
    fn old_compiled_files_of_the_same_ontology_are_pruned() {
        let (dir, source) = assets();
        let compiled = dir.path().join("compiled");
        std::fs::create_dir_all(&compiled).unwrap();
        let touch = |name: &str, age_s: u64| {
            let p = compiled.join(name);
            std::fs::write(&p, b"old").unwrap();
            let t = std::time::SystemTime::now() - std::time::Duration::from_secs(age_s);
            std::fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        };
        touch("cell_ontology-v0-aaaaaaaaaaaaaaaa.lexical", 300);
        touch("cell_ontology-v0-bbbbbbbbbbbbbbbb.lexical", 200);
        touch("cell_ontology-v0-cccccccccccccccc.lexical", 100);
        touch("mondo-v0-aaaaaaaaaaaaaaaa.lexical", 400);
        touch(".cell_ontology-v0-dead.lexical.1.tmp", 7200);
        touch(".cell_ontology-v0-live.lexical.2.tmp", 10);
        let ontology = load(dir.path(), &source);
        let _ = ontology.lexical();
        let mut left: Vec<String> = std::fs::read_dir(&compiled)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let written = path_of(&ontology, &compiled).unwrap();
        let written = written.file_name().unwrap().to_string_lossy().into_owned();
        let mut expected = vec![
            ".cell_ontology-v0-live.lexical.2.tmp".to_string(),
            "cell_ontology-v0-bbbbbbbbbbbbbbbb.lexical".to_string(),
            "cell_ontology-v0-cccccccccccccccc.lexical".to_string(),
            "mondo-v0-aaaaaaaaaaaaaaaa.lexical".to_string(),
            written,
        ];
        expected.sort();
        assert_eq!(left, expected);
    }
}
