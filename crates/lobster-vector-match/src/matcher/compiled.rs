//! The lexical index of an ontology compiled once per source into a
//! [compiled file](crate::compiled), so a process that answers one query
//! reads it instead of tokenising every label and synonym again.
//!
//! The file is used only when its header matches (this code, the source's
//! SHA-256, the checksum) and the index passes
//! [`LexicalIndex::is_consistent`]; otherwise the index is built and the file
//! written again. Failing to read or write the file is never an error: the
//! index is then built in memory.

use std::path::{Path, PathBuf};

use super::lexical::LexicalIndex;
use crate::compiled::{self, Kind};
use crate::ontology::Ontology;

/// Changes whenever the code that builds the index, or the grammar it reads
/// text with, changes: a file written by other code is never used.
const LEXICAL: Kind = Kind {
    magic: b"LVLEXv1\0",
    fingerprint: compiled::fingerprint(&[include_bytes!("lexical.rs"), include_bytes!("text.rs")]),
    extension: "lexical",
};

/// Where the compiled index of `ontology` lives under `dir`; `None` for an
/// ontology without a source checksum (built in memory).
pub(crate) fn path_of(ontology: &Ontology, dir: &Path) -> Option<PathBuf> {
    let stem = format!("{}-{}", ontology.name(), ontology.version());
    compiled::path(dir, &stem, ontology.source_sha256(), LEXICAL)
}

/// The lexical index of `ontology`: read from its compiled file under
/// `dir` when that file is current and sound, else built (and the file
/// written, older ones of the same ontology pruned). Without `dir`, built.
pub(crate) fn load_or_build(ontology: &Ontology, dir: Option<&Path>) -> LexicalIndex {
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
    compiled::save(
        &path,
        LEXICAL,
        ontology.source_sha256(),
        &index,
        ontology.name(),
    );
    index
}

/// Reads and checks a compiled index.
fn read(path: &Path, ontology: &Ontology) -> Result<LexicalIndex, String> {
    let index: LexicalIndex = compiled::read(path, LEXICAL, ontology.source_sha256())?;
    if !index.is_consistent(ontology.len()) {
        return Err("inconsistent with the ontology".into());
    }
    Ok(index)
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
            .filter(|n| !n.to_string_lossy().ends_with(".terms"))
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
        std::fs::write(&path, &good[..40]).unwrap();
        assert!(read(&path, &ontology).is_err());
        std::fs::write(&path, b"hello").unwrap();
        assert!(read(&path, &ontology).is_err());

        // A sound payload whose ids point outside the index: checksummed
        // correctly, refused by the consistency check.
        let mut broken = built.clone();
        broken.entries_mut_for_test()[0].tokens.push(u32::MAX);
        compiled::write(&path, LEXICAL, ontology.source_sha256(), &broken).unwrap();
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
            .filter(|n| !n.ends_with(".terms"))
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
