//! Curated mappings: labels a person mapped to a concept, answered before
//! any other match.
//!
//! A [`CuratedSet`] is keyed by the subject label normalised as exact
//! matching normalises it ([`normalize_label`]) and by the object's ontology
//! (its CURIE prefix), so one label may be curated once per ontology. It is
//! read from SSSOM/TSV or from a two-column TSV (label, id) and written as
//! SSSOM/TSV.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::remap::{object_change, ObjectChange};
use super::sssom::{
    self, curie_prefix, Mapping, MappingSet, SetMetadata, EXACT_MATCH, LITERAL, MANUAL_CURATION,
};
use crate::ontology::{normalize_label, OntologyKind};
use crate::ontology::{Ontology, Term};
use crate::{Error, Result};

/// One curated mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct CuratedMapping {
    /// The label as the curator wrote it.
    pub subject_label: String,
    /// The concept, a CURIE of a known ontology (`CL:0000625`).
    pub object_id: String,
    pub object_label: Option<String>,
    /// `skos:exactMatch` unless the source said otherwise.
    pub predicate_id: String,
    /// `semapv:ManualMappingCuration` unless the source said otherwise.
    pub justification: String,
    pub author_id: Option<String>,
    pub author_label: Option<String>,
    pub mapping_date: Option<String>,
    pub comment: Option<String>,
}

impl CuratedMapping {
    /// A manual curation of `subject_label` as `object_id`.
    pub fn new(subject_label: impl Into<String>, object_id: impl Into<String>) -> Self {
        Self {
            subject_label: subject_label.into(),
            object_id: object_id.into(),
            object_label: None,
            predicate_id: EXACT_MATCH.to_string(),
            justification: MANUAL_CURATION.to_string(),
            author_id: None,
            author_label: None,
            mapping_date: None,
            comment: None,
        }
    }

    /// The ontology prefix of the object (`CL`).
    pub fn prefix(&self) -> &str {
        curie_prefix(&self.object_id).unwrap_or_default()
    }

    fn to_sssom(&self) -> Mapping {
        Mapping {
            subject_label: Some(self.subject_label.clone()),
            subject_type: Some(LITERAL.to_string()),
            predicate_id: self.predicate_id.clone(),
            object_id: self.object_id.clone(),
            object_label: self.object_label.clone(),
            mapping_justification: self.justification.clone(),
            author_id: self.author_id.clone(),
            author_label: self.author_label.clone(),
            mapping_date: self.mapping_date.clone(),
            comment: self.comment.clone(),
            ..Mapping::default()
        }
    }
}

/// How a curated mapping stands in the ontology a query is answered from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CuratedTarget<'a> {
    /// The curated term is live.
    Live(&'a Term),
    /// The curated term is obsolete; this is its replacement.
    Redirected {
        obsolete: &'a Term,
        replacement: &'a Term,
    },
}

/// Curated mappings by normalised label and ontology prefix.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CuratedSet {
    /// Keyed by (normalised label, object prefix).
    by_key: BTreeMap<(String, String), CuratedMapping>,
}

fn key_of(label: &str, prefix: &str) -> (String, String) {
    (normalize_label(label), prefix.to_ascii_uppercase())
}

/// The ontology prefixes a curated object may have.
fn known_prefixes() -> String {
    OntologyKind::ALL
        .iter()
        .map(|k| k.source_prefix())
        .collect::<Vec<_>>()
        .join(", ")
}

fn line_error(origin: &Path, line: usize, message: impl Into<String>) -> Error {
    Error::Parse {
        path: origin.to_path_buf(),
        location: (line > 0).then(|| format!("line {line}")),
        message: message.into(),
    }
}

impl CuratedSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The mappings, by normalised label then prefix.
    pub fn iter(&self) -> impl Iterator<Item = &CuratedMapping> {
        self.by_key.values()
    }

    /// Reads curated mappings from SSSOM/TSV (a `#` metadata block or an
    /// `object_id` column) or from a two-column TSV of label and id (an
    /// optional header row names them `label`/`subject_label` and
    /// `id`/`object_id`). All or nothing: the first bad line fails the whole
    /// text, naming the line, and nothing is returned. Bad lines: a missing
    /// column or cell, an object that is not a CL, UBERON or MONDO CURIE
    /// (or, in SSSOM, a prefix the curie_map does not declare), and one label
    /// curated to two different concepts of the same ontology.
    pub fn parse(text: &str, origin: &Path) -> Result<CuratedSet> {
        let body = text.strip_prefix('\u{feff}').unwrap_or(text);
        let first = body.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let is_sssom = first.starts_with('#') || first.split('\t').any(|c| c.trim() == "object_id");
        let mut set = CuratedSet::new();
        let mut lines: HashMap<(String, String), usize> = HashMap::new();
        let mut add = |m: CuratedMapping, line: usize| -> Result<()> {
            let prefix = m.prefix().to_string();
            if prefix.is_empty() {
                return Err(line_error(
                    origin,
                    line,
                    format!("`{}` is not a CURIE such as CL:0000625", m.object_id),
                ));
            }
            if OntologyKind::from_source_prefix(&prefix).is_none() {
                return Err(line_error(
                    origin,
                    line,
                    format!(
                        "unknown prefix `{prefix}` in `{}`; curated objects must be {} ids",
                        m.object_id,
                        known_prefixes()
                    ),
                ));
            }
            if normalize_label(&m.subject_label).is_empty() {
                return Err(line_error(origin, line, "empty subject label"));
            }
            let key = key_of(&m.subject_label, &prefix);
            if let Some(previous) = set.by_key.get(&key) {
                if previous.object_id != m.object_id {
                    return Err(line_error(
                        origin,
                        line,
                        format!(
                            "`{}` is curated as {} here but as {} on line {}; keep one",
                            m.subject_label, m.object_id, previous.object_id, lines[&key]
                        ),
                    ));
                }
                return Ok(());
            }
            lines.insert(key.clone(), line);
            set.by_key.insert(key, m);
            Ok(())
        };
        if is_sssom {
            let mapping_set = MappingSet::parse(body, origin)?;
            for (m, &line) in mapping_set.mappings.iter().zip(&mapping_set.lines) {
                let Some(label) = m.subject_label.clone() else {
                    return Err(line_error(
                        origin,
                        line,
                        "no `subject_label`: curated mappings are keyed by the label",
                    ));
                };
                if m.object_id == sssom::NO_TERM_FOUND {
                    continue;
                }
                add(
                    CuratedMapping {
                        subject_label: label,
                        object_id: m.object_id.clone(),
                        object_label: m.object_label.clone(),
                        predicate_id: m.predicate_id.clone(),
                        justification: m.mapping_justification.clone(),
                        author_id: m.author_id.clone(),
                        author_label: m.author_label.clone(),
                        mapping_date: m
                            .mapping_date
                            .clone()
                            .or_else(|| mapping_set.metadata.mapping_date.clone()),
                        comment: m.comment.clone(),
                    },
                    line,
                )?;
            }
        } else {
            let mut reader = csv::ReaderBuilder::new()
                .delimiter(b'\t')
                .has_headers(false)
                .flexible(true)
                .from_reader(body.as_bytes());
            for (i, record) in reader.records().enumerate() {
                let record = record.map_err(|e| line_error(origin, i + 1, e.to_string()))?;
                let line = record.position().map_or(i + 1, |p| p.line() as usize);
                let cells: Vec<&str> = record.iter().map(str::trim).collect();
                if cells.iter().all(|c| c.is_empty()) {
                    continue;
                }
                let header =
                    |c: &str, names: &[&str]| names.iter().any(|n| c.eq_ignore_ascii_case(n));
                if i == 0
                    && cells.len() == 2
                    && header(cells[0], &["label", "subject_label", "input", "value"])
                    && header(cells[1], &["id", "object_id", "ontology_id", "term_id"])
                {
                    continue;
                }
                if cells.len() != 2 || cells[1].is_empty() {
                    return Err(line_error(
                        origin,
                        line,
                        format!(
                            "expected 2 tab-separated columns (label, id), found {}",
                            cells.iter().filter(|c| !c.is_empty()).count()
                        ),
                    ));
                }
                add(CuratedMapping::new(cells[0], cells[1]), line)?;
            }
        }
        Ok(set)
    }

    /// Reads a curated file ([`parse`](Self::parse)).
    pub fn load(path: &Path) -> Result<CuratedSet> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
        CuratedSet::parse(&text, path)
    }

    /// [`load`](Self::load), or an empty set when `path` does not exist.
    pub fn load_or_empty(path: &Path) -> Result<CuratedSet> {
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CuratedSet::new()),
            _ => CuratedSet::load(path),
        }
    }

    /// Adds or replaces the mapping of its label in its ontology; returns the
    /// one it replaced. Fails on an object that is not a known ontology's CURIE
    /// or an empty label.
    pub fn insert(&mut self, mapping: CuratedMapping) -> Result<Option<CuratedMapping>> {
        let prefix = mapping.prefix().to_string();
        if OntologyKind::from_source_prefix(&prefix).is_none() {
            return Err(Error::invalid_input(format!(
                "`{}` is not a {} id",
                mapping.object_id,
                known_prefixes()
            )));
        }
        if normalize_label(&mapping.subject_label).is_empty() {
            return Err(Error::invalid_input("the curated label is empty"));
        }
        Ok(self
            .by_key
            .insert(key_of(&mapping.subject_label, &prefix), mapping))
    }

    /// Removes the mappings of `label` (normalised), of one ontology prefix or
    /// of all; returns what it removed.
    pub fn remove(&mut self, label: &str, prefix: Option<&str>) -> Vec<CuratedMapping> {
        let label = normalize_label(label);
        let keys: Vec<(String, String)> = self
            .by_key
            .keys()
            .filter(|(l, p)| *l == label && prefix.is_none_or(|q| p.eq_ignore_ascii_case(q)))
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| self.by_key.remove(&k))
            .collect()
    }

    /// Adds every mapping of `other`, replacing this set's mapping of the same
    /// label and ontology.
    pub fn extend(&mut self, other: CuratedSet) {
        self.by_key.extend(other.by_key);
    }

    /// The mappings of `text` (normalised as exact matching does), one per ontology.
    pub fn lookup<'s>(&'s self, text: &str) -> impl Iterator<Item = &'s CuratedMapping> + 's {
        let label = normalize_label(text);
        self.by_key
            .range((label.clone(), String::new())..)
            .take_while(move |((l, _), _)| *l == label)
            .map(|(_, m)| m)
    }

    /// Where `mapping` points in `ontology`: its term, or the replacement of an
    /// obsolete one. `Err` holds the change that makes it unusable (obsolete
    /// without replacement, or absent) — such a mapping is never answered.
    pub fn target<'o>(
        mapping: &CuratedMapping,
        ontology: &'o Ontology,
    ) -> std::result::Result<CuratedTarget<'o>, ObjectChange> {
        let change = object_change(ontology, &mapping.object_id, None);
        let term = ontology.get(&mapping.object_id);
        match (&change, term) {
            (ObjectChange::Unchanged | ObjectChange::LabelChanged { .. }, Some(t)) => {
                Ok(CuratedTarget::Live(t))
            }
            (ObjectChange::Replaced { replaced_by, .. }, Some(obsolete)) => {
                match ontology.get(replaced_by) {
                    Some(replacement) => Ok(CuratedTarget::Redirected {
                        obsolete,
                        replacement,
                    }),
                    // Replaced by a term of another ontology.
                    None => Err(change),
                }
            }
            _ => Err(change),
        }
    }

    /// The mappings of `ontology`'s prefix that point to an obsolete or absent
    /// term there, with what happened to each.
    pub fn check(&self, ontology: &Ontology) -> Vec<(&CuratedMapping, ObjectChange)> {
        let Some(prefix) = ontology.kind().map(|k| k.source_prefix()) else {
            return Vec::new();
        };
        self.iter()
            .filter(|m| m.prefix().eq_ignore_ascii_case(prefix))
            .filter_map(|m| {
                let change = object_change(ontology, &m.object_id, None);
                (change != ObjectChange::Unchanged).then_some((m, change))
            })
            .collect()
    }

    /// The set as an SSSOM mapping set (literal subjects), with `mapping_set_id` as given.
    pub fn to_sssom(&self, mapping_set_id: &str) -> MappingSet {
        let mut curie_map = BTreeMap::new();
        for m in self.iter() {
            let p = m.prefix().to_string();
            curie_map
                .entry(p.clone())
                .or_insert_with(|| sssom::obo_iri_prefix(&p));
        }
        MappingSet {
            metadata: SetMetadata {
                curie_map,
                mapping_set_id: mapping_set_id.to_string(),
                mapping_set_description: Some("Curated mappings of lobster-vector".into()),
                license: sssom::LICENSE_UNSPECIFIED.to_string(),
                mapping_tool: Some("lobster-vector".into()),
                mapping_tool_version: Some(crate::VERSION.to_string()),
                ..SetMetadata::default()
            },
            mappings: self.iter().map(CuratedMapping::to_sssom).collect(),
            lines: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> &'static Path {
        Path::new("curated.tsv")
    }

    #[test]
    fn two_column_tsv_with_and_without_header() {
        let set = CuratedSet::parse("label\tid\nCD8 T\tCL:0000625\nMono\tCL:0000576\n", origin())
            .unwrap();
        assert_eq!(set.len(), 2);
        let found: Vec<&str> = set.lookup("cd8  T").map(|m| m.object_id.as_str()).collect();
        assert_eq!(found, vec!["CL:0000625"]);
        assert_eq!(
            set.lookup("CD8 T").next().unwrap().justification,
            MANUAL_CURATION
        );
        let bare = CuratedSet::parse("CD8 T\tCL:0000625\n", origin()).unwrap();
        assert_eq!(bare.len(), 1);
    }

    #[test]
    fn one_label_may_be_curated_once_per_ontology() {
        let set =
            CuratedSet::parse("heart\tUBERON:0000948\nheart\tMONDO:0005267\n", origin()).unwrap();
        let mut ids: Vec<&str> = set.lookup("Heart").map(|m| m.object_id.as_str()).collect();
        ids.sort_unstable();
        assert_eq!(ids, vec!["MONDO:0005267", "UBERON:0000948"]);
    }

    #[test]
    fn bad_lines_are_named_and_nothing_is_kept() {
        for (text, line, needle) in [
            ("a\tCL:1\nb\n", 2, "2 tab-separated columns"),
            ("a\tCL:1\nb\tFOO:2\n", 2, "unknown prefix `FOO`"),
            ("a\tCL:1\nb\tCL:2\nA\tCL:3\n", 3, "line 1"),
            ("a\tnot-a-curie\n", 1, "not a CURIE"),
        ] {
            let e = CuratedSet::parse(text, origin()).unwrap_err().to_string();
            assert!(
                e.contains(&format!("line {line}")) && e.contains(needle),
                "{text:?}: {e}"
            );
        }
        // The same label and object twice is one mapping, not an error.
        let set = CuratedSet::parse("a\tCL:1\nA\tCL:1\n", origin()).unwrap();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn sssom_round_trip_keeps_author_and_justification() {
        let mut set = CuratedSet::new();
        let mut m = CuratedMapping::new("CD14+ Mono", "CL:0002057");
        m.author_label = Some("Jane Doe".into());
        m.mapping_date = Some("2026-12-01".into());
        set.insert(m.clone()).unwrap();
        let text = set
            .to_sssom("https://example.org/curated")
            .to_tsv()
            .unwrap();
        let again = CuratedSet::parse(&text, origin()).unwrap();
        assert_eq!(again, set);
        assert_eq!(again.lookup("cd14+ mono").next(), Some(&m));
    }

    #[test]
    fn sssom_rows_without_label_or_with_undeclared_prefix_fail() {
        let text = "#curie_map:\n#  CL: http://purl.obolibrary.org/obo/CL_\n#mapping_set_id: https://example.org/s\n#license: https://w3id.org/sssom/license/unspecified\nsubject_id\tpredicate_id\tobject_id\tmapping_justification\nCL:1\tskos:exactMatch\tCL:2\tsemapv:ManualMappingCuration\n";
        let e = CuratedSet::parse(text, origin()).unwrap_err().to_string();
        assert!(e.contains("line 6") && e.contains("subject_label"), "{e}");
        let undeclared = text
            .replace("subject_id\t", "subject_label\tsubject_type\t")
            .replace("CL:1\t", "CL 1\trdfs literal\t")
            .replace("CL:2", "UBERON:2");
        let e = CuratedSet::parse(&undeclared, origin())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 6") && e.contains("curie_map"), "{e}");
    }

    #[test]
    fn insert_and_remove() {
        let mut set = CuratedSet::new();
        assert!(set.insert(CuratedMapping::new("x", "FOO:1")).is_err());
        assert!(set.insert(CuratedMapping::new(" ", "CL:1")).is_err());
        assert_eq!(set.insert(CuratedMapping::new("x", "CL:1")).unwrap(), None);
        let old = set.insert(CuratedMapping::new("X", "CL:2")).unwrap();
        assert_eq!(old.map(|m| m.object_id), Some("CL:1".into()));
        set.insert(CuratedMapping::new("x", "UBERON:1")).unwrap();
        assert_eq!(set.remove("x", Some("cl")).len(), 1);
        assert_eq!(set.len(), 1);
        assert_eq!(set.remove("x", None).len(), 1);
        assert!(set.is_empty());
    }
}
