//! Finding and caching ontology source files in a set of directories (the
//! asset directory filled by `scripts/setup.sh`, and any the user adds).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::{compare_versions, Ontology, OntologyKind};
use crate::{Artifact, Error, Result};

/// File name endings the loaders understand.
const EXTENSIONS: [&str; 4] = [".json.zst", ".json", ".obo.zst", ".obo"];

/// Ontology source files found in directories, loaded once and shared.
#[derive(Debug, Default)]
pub struct OntologyLibrary {
    dirs: Vec<PathBuf>,
    compiled_dir: Option<PathBuf>,
    loaded: Mutex<HashMap<PathBuf, Arc<Ontology>>>,
}

/// Splits `<PREFIX>-ontology-<version><ext>` into prefix and version.
fn parse_file_name(name: &str) -> Option<(&str, &str)> {
    let stem = EXTENSIONS.iter().find_map(|e| name.strip_suffix(e))?;
    let (prefix, version) = stem.split_once("-ontology-")?;
    Some((prefix, version))
}

impl OntologyLibrary {
    /// A library searching `dirs` in order.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self {
            dirs,
            compiled_dir: None,
            loaded: Mutex::default(),
        }
    }

    /// The library of an asset directory: sources in `assets/ontologies`
    /// (where `scripts/setup.sh` puts them), loaded with
    /// [`Ontology::load_compiled`] from and into `assets/compiled`.
    pub fn in_assets(assets: &Path) -> Self {
        Self {
            compiled_dir: Some(assets.join("compiled")),
            ..Self::new(vec![assets.join("ontologies")])
        }
    }

    /// The directories searched.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Loads `path` (or returns the copy already loaded).
    pub fn load(&self, path: &Path) -> Result<Arc<Ontology>> {
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        if let Some(o) = self
            .loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return Ok(o.clone());
        }
        let o = Arc::new(match &self.compiled_dir {
            Some(dir) => Ontology::load_compiled(path, dir)?,
            None => Ontology::load(path)?,
        });
        self.loaded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, o.clone());
        Ok(o)
    }

    /// Every `<PREFIX>-ontology-<version>` source of `kind` in the directories, newest first.
    pub fn sources(&self, kind: OntologyKind) -> Vec<(String, PathBuf)> {
        let mut found: Vec<(String, PathBuf)> = Vec::new();
        for dir in &self.dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some((prefix, version)) = parse_file_name(&name) {
                    if prefix.eq_ignore_ascii_case(kind.source_prefix()) {
                        found.push((version.to_string(), entry.path()));
                    }
                }
            }
        }
        found.sort_by(|a, b| compare_versions(&b.0, &a.0).then_with(|| a.1.cmp(&b.1)));
        found
    }

    /// The newest source file of `kind`.
    pub fn newest_source(&self, kind: OntologyKind) -> Result<PathBuf> {
        self.sources(kind)
            .into_iter()
            .next()
            .map(|(_, p)| p)
            .ok_or_else(|| Error::OntologySourceMissing {
                ontology: kind.name().to_string(),
                pattern: format!("{}-ontology-<version>.json.zst", kind.source_prefix()),
                searched: self.describe_dirs(),
            })
    }

    /// The newest ontology of `kind`, loaded.
    pub fn newest(&self, kind: OntologyKind) -> Result<Arc<Ontology>> {
        self.load(&self.newest_source(kind)?)
    }

    /// The ontologies a build of `ontology` reads: the newest source of a name
    /// or alias, every ontology's newest for `all`, or the file `source` (which
    /// must hold that ontology unless `ontology` is `all`).
    ///
    /// # Errors
    /// [`Error::UnknownOntology`], [`Error::InvalidInput`] when `source` holds
    /// another ontology, and what loading returns.
    pub fn select(&self, ontology: &str, source: Option<&Path>) -> Result<Vec<Arc<Ontology>>> {
        let all = ontology.trim().eq_ignore_ascii_case("all");
        match source {
            Some(path) => {
                let o = self.load(path)?;
                if !all {
                    let wanted = OntologyKind::from_alias(ontology)?;
                    if o.kind().is_some_and(|k| k != wanted) {
                        return Err(Error::invalid_input(format!(
                            "`{}` holds {} terms, not {}",
                            path.display(),
                            o.name(),
                            wanted.name()
                        )));
                    }
                }
                Ok(vec![o])
            }
            None if all => OntologyKind::ALL.iter().map(|k| self.newest(*k)).collect(),
            None => Ok(vec![self.newest(OntologyKind::from_alias(ontology)?)?]),
        }
    }

    /// The newest ontology whose ids carry `id`'s prefix (`MONDO:`, `UBERON:`, `CL:`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an id of no known ontology; what
    /// [`newest`](Self::newest) returns when no source of it is found.
    pub fn for_term_id(&self, id: &str) -> Result<Arc<Ontology>> {
        let id = super::model::canonical_term_id(id);
        let prefix = id.split(':').next().unwrap_or_default();
        let kind = OntologyKind::from_source_prefix(prefix).ok_or_else(|| {
            Error::invalid_input(format!(
                "`{}` is not a MONDO, UBERON or CL id (expected e.g. MONDO:0005068, UBERON:0001155, CL:0000625)",
                super::model::shorten(&id)
            ))
        })?;
        self.newest(kind)
    }

    /// The ontology a collection was built from, when its source file (same
    /// SHA-256) is still available; `None` otherwise.
    pub fn for_artifact(&self, artifact: &Artifact) -> Result<Option<Arc<Ontology>>> {
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Some(p) = &artifact.source_path {
            candidates.push(PathBuf::from(p));
            if let Some(name) = Path::new(p).file_name() {
                candidates.extend(self.dirs.iter().map(|d| d.join(name)));
            }
        }
        if let Ok(kind) = OntologyKind::from_alias(&artifact.ontology) {
            candidates.extend(self.sources(kind).into_iter().map(|(_, p)| p));
        }
        for path in candidates {
            if !path.is_file() {
                continue;
            }
            let o = self.load(&path)?;
            if o.source_sha256() == artifact.source_sha256 {
                return Ok(Some(o));
            }
        }
        Ok(None)
    }

    fn describe_dirs(&self) -> String {
        if self.dirs.is_empty() {
            return "no directory".into();
        }
        self.dirs
            .iter()
            .map(|d| format!("`{}`", d.display()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(
            parse_file_name("CL-ontology-v2026-03-26.json.zst"),
            Some(("CL", "v2026-03-26"))
        );
        assert_eq!(
            parse_file_name("MONDO-ontology-v1.obo"),
            Some(("MONDO", "v1"))
        );
        assert_eq!(parse_file_name("CL-ontology-v1.txt"), None);
        assert_eq!(parse_file_name("notes.json"), None);
    }

    #[test]
    fn newest_first_and_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        for v in ["v2025-01-02", "v2026-03-26", "v2024-12-31"] {
            std::fs::write(dir.path().join(format!("CL-ontology-{v}.json")), "{}").expect("write");
        }
        let lib = OntologyLibrary::new(vec![dir.path().to_path_buf()]);
        let versions: Vec<String> = lib
            .sources(OntologyKind::CellOntology)
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(versions, ["v2026-03-26", "v2025-01-02", "v2024-12-31"]);
        let e = lib.newest_source(OntologyKind::Mondo).expect_err("none");
        assert!(
            matches!(&e, Error::OntologySourceMissing { ontology, .. } if ontology == "mondo"),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(
            e.contains("MONDO-ontology") && e.contains(&dir.path().display().to_string()),
            "{e}"
        );
    }
}
