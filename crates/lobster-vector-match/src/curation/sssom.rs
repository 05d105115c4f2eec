//! SSSOM/TSV (<https://w3id.org/sssom/spec>): a mapping set is a YAML
//! metadata block, every line commented with `#`, followed by a TSV table
//! with one mapping per row.
//!
//! [`MappingSet::parse`] reads any SSSOM/TSV file (columns it does not model
//! are kept in [`Mapping::extra`] and written back); [`MappingSet::to_tsv`]
//! writes one that `sssom-py` parses and validates without errors.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// `predicate_id` of a mapping to the same concept.
pub const EXACT_MATCH: &str = "skos:exactMatch";
/// `predicate_id` of a mapping to a concept close enough to be used instead.
pub const CLOSE_MATCH: &str = "skos:closeMatch";
/// `mapping_justification` of a mapping found by comparing strings.
pub const LEXICAL_MATCHING: &str = "semapv:LexicalMatching";
/// `mapping_justification` of a mapping found by a similarity score above a threshold.
pub const SEMANTIC_SIMILARITY: &str = "semapv:SemanticSimilarityThresholdMatching";
/// `mapping_justification` of a mapping a person chose.
pub const MANUAL_CURATION: &str = "semapv:ManualMappingCuration";
/// `object_id` of a row whose subject has no mapping.
pub const NO_TERM_FOUND: &str = "sssom:NoTermFound";
/// `subject_type` of a subject that is a string, not an entity with an id.
pub const LITERAL: &str = "rdfs literal";
/// `similarity_measure` of a cosine similarity (Wikidata's item for it;
/// declare [`WIKIDATA`] in the curie_map).
pub const COSINE_SIMILARITY: &str = "wikidata:Q1784941";
/// The `wikidata` prefix and its IRI.
pub const WIKIDATA: (&str, &str) = ("wikidata", "http://www.wikidata.org/entity/");
/// `license` of a set whose licence nobody stated (SSSOM's own placeholder).
pub const LICENSE_UNSPECIFIED: &str = "https://w3id.org/sssom/license/unspecified";

/// The prefixes every SSSOM file may use without declaring them.
pub const BUILTIN_PREFIXES: [(&str, &str); 8] = [
    ("linkml", "https://w3id.org/linkml/"),
    ("owl", "http://www.w3.org/2002/07/owl#"),
    ("rdf", "http://www.w3.org/1999/02/22-rdf-syntax-ns#"),
    ("rdfs", "http://www.w3.org/2000/01/rdf-schema#"),
    ("semapv", "https://w3id.org/semapv/vocab/"),
    ("skos", "http://www.w3.org/2004/02/skos/core#"),
    ("sssom", "https://w3id.org/sssom/"),
    ("xsd", "http://www.w3.org/2001/XMLSchema#"),
];

/// The IRI prefix of an OBO Foundry ontology's CURIE prefix (`CL` →
/// `http://purl.obolibrary.org/obo/CL_`).
pub fn obo_iri_prefix(prefix: &str) -> String {
    format!("http://purl.obolibrary.org/obo/{prefix}_")
}

/// The mapping-set metadata lobster-vector reads and writes; other keys are
/// kept in `extra`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SetMetadata {
    #[serde(default)]
    pub curie_map: BTreeMap<String, String>,
    #[serde(default)]
    pub mapping_set_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_set_description: Option<String>,
    #[serde(default)]
    pub license: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_tool: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_tool_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_source_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping_date: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// One mapping (a TSV row). Empty cells are `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Mapping {
    pub subject_id: Option<String>,
    pub subject_label: Option<String>,
    /// [`LITERAL`] when the subject is a string without an id.
    pub subject_type: Option<String>,
    pub predicate_id: String,
    pub object_id: String,
    pub object_label: Option<String>,
    pub mapping_justification: String,
    pub author_id: Option<String>,
    pub author_label: Option<String>,
    pub mapping_date: Option<String>,
    pub confidence: Option<f64>,
    pub match_string: Option<String>,
    pub similarity_score: Option<f64>,
    pub similarity_measure: Option<String>,
    pub comment: Option<String>,
    /// Columns not modelled above, by name.
    pub extra: BTreeMap<String, String>,
}

/// A parsed SSSOM/TSV file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MappingSet {
    pub metadata: SetMetadata,
    pub mappings: Vec<Mapping>,
    /// The 1-based file line of each mapping (empty for a set built in memory).
    pub lines: Vec<usize>,
}

/// The modelled columns, in the order [`MappingSet::to_tsv`] writes them.
const COLUMNS: [&str; 15] = [
    "subject_id",
    "subject_label",
    "subject_type",
    "predicate_id",
    "object_id",
    "object_label",
    "mapping_justification",
    "author_id",
    "author_label",
    "mapping_date",
    "confidence",
    "match_string",
    "similarity_score",
    "similarity_measure",
    "comment",
];

impl Mapping {
    fn get(&self, column: &str) -> Option<String> {
        let score = |x: Option<f64>| x.map(|v| format!("{v:.4}"));
        match column {
            "subject_id" => self.subject_id.clone(),
            "subject_label" => self.subject_label.clone(),
            "subject_type" => self.subject_type.clone(),
            "predicate_id" => Some(self.predicate_id.clone()),
            "object_id" => Some(self.object_id.clone()),
            "object_label" => self.object_label.clone(),
            "mapping_justification" => Some(self.mapping_justification.clone()),
            "author_id" => self.author_id.clone(),
            "author_label" => self.author_label.clone(),
            "mapping_date" => self.mapping_date.clone(),
            "confidence" => score(self.confidence),
            "match_string" => self.match_string.clone(),
            "similarity_score" => score(self.similarity_score),
            "similarity_measure" => self.similarity_measure.clone(),
            "comment" => self.comment.clone(),
            other => self.extra.get(other).cloned(),
        }
        .filter(|v| !v.is_empty())
    }

    /// Sets a column from a TSV cell; `Err` holds why the cell is invalid.
    fn set(&mut self, column: &str, value: &str) -> std::result::Result<(), String> {
        let text = || (!value.is_empty()).then(|| value.to_string());
        let number = || -> std::result::Result<Option<f64>, String> {
            if value.is_empty() {
                return Ok(None);
            }
            match value.parse::<f64>() {
                Ok(x) if (0.0..=1.0).contains(&x) => Ok(Some(x)),
                _ => Err(format!(
                    "`{column}` must be a number from 0 to 1, not `{value}`"
                )),
            }
        };
        match column {
            "subject_id" => self.subject_id = text(),
            "subject_label" => self.subject_label = text(),
            "subject_type" => self.subject_type = text(),
            "predicate_id" => self.predicate_id = value.to_string(),
            "object_id" => self.object_id = value.to_string(),
            "object_label" => self.object_label = text(),
            "mapping_justification" => self.mapping_justification = value.to_string(),
            "author_id" => self.author_id = text(),
            "author_label" => self.author_label = text(),
            "mapping_date" => self.mapping_date = text(),
            "confidence" => self.confidence = number()?,
            "match_string" => self.match_string = text(),
            "similarity_score" => self.similarity_score = number()?,
            "similarity_measure" => self.similarity_measure = text(),
            "comment" => self.comment = text(),
            other => {
                if !value.is_empty() {
                    self.extra.insert(other.to_string(), value.to_string());
                }
            }
        }
        Ok(())
    }

    /// The CURIE-valued cells, for prefix checks.
    fn curies(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("subject_id", self.subject_id.as_deref()),
            ("predicate_id", Some(self.predicate_id.as_str())),
            ("object_id", Some(self.object_id.as_str())),
            (
                "mapping_justification",
                Some(self.mapping_justification.as_str()),
            ),
        ]
        .into_iter()
        .filter_map(|(c, v)| Some((c, v?)))
    }
}

/// The prefix of a CURIE (`CL` of `CL:0000625`); `None` for an IRI or a bare word.
pub fn curie_prefix(curie: &str) -> Option<&str> {
    let (prefix, local) = curie.split_once(':')?;
    let valid = !prefix.is_empty()
        && !local.starts_with("//")
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
    valid.then_some(prefix)
}

fn parse_error(origin: &Path, line: Option<usize>, message: impl Into<String>) -> Error {
    Error::Parse {
        path: origin.to_path_buf(),
        location: line.map(|l| format!("line {l}")),
        message: message.into(),
    }
}

impl MappingSet {
    /// Reads an SSSOM/TSV text. `origin` names the file in errors.
    ///
    /// Fails, naming the line, on: malformed metadata YAML; a missing
    /// `predicate_id`, `object_id` or `mapping_justification` column or cell;
    /// a row without a subject (`subject_id`, or `subject_label` for a
    /// literal); a CURIE whose prefix is neither in `curie_map` nor built in;
    /// a `confidence` or `similarity_score` outside 0..1.
    pub fn parse(text: &str, origin: &Path) -> Result<MappingSet> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut yaml = String::new();
        let mut body_start = 0;
        let mut header_line = 1;
        for line in text.split_inclusive('\n') {
            match line.strip_prefix('#') {
                Some(rest) => {
                    yaml.push_str(rest);
                    body_start += line.len();
                    header_line += 1;
                }
                None => break,
            }
        }
        let metadata: SetMetadata = if yaml.trim().is_empty() {
            SetMetadata::default()
        } else {
            serde_yaml_ng::from_str(&yaml).map_err(|e| {
                parse_error(
                    origin,
                    e.location().map(|l| l.line()),
                    format!("the metadata block is not valid SSSOM YAML: {e}"),
                )
            })?
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(b'\t')
            .flexible(true)
            .from_reader(&text.as_bytes()[body_start..]);
        let columns: Vec<String> = reader
            .headers()
            .map_err(|e| parse_error(origin, Some(header_line), e.to_string()))?
            .iter()
            .map(|c| c.trim().to_string())
            .collect();
        for required in ["predicate_id", "object_id", "mapping_justification"] {
            if !columns.iter().any(|c| c == required) {
                return Err(parse_error(
                    origin,
                    Some(header_line),
                    format!(
                        "no `{required}` column; SSSOM needs subject_id (or subject_label), predicate_id, object_id and mapping_justification"
                    ),
                ));
            }
        }
        if !columns
            .iter()
            .any(|c| c == "subject_id" || c == "subject_label")
        {
            return Err(parse_error(
                origin,
                Some(header_line),
                "no `subject_id` or `subject_label` column",
            ));
        }
        let mut set = MappingSet {
            metadata,
            ..MappingSet::default()
        };
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map(|p| header_line + p.line() as usize - 1);
                parse_error(origin, line, e.to_string())
            })?;
            let line = header_line
                + record
                    .position()
                    .map_or(0, |p| p.line().saturating_sub(1) as usize);
            if record.iter().all(|c| c.trim().is_empty()) {
                continue;
            }
            if record.len() > columns.len() {
                return Err(parse_error(
                    origin,
                    Some(line),
                    format!(
                        "{} cells, but the header has {} columns",
                        record.len(),
                        columns.len()
                    ),
                ));
            }
            let mut m = Mapping::default();
            for (column, value) in columns.iter().zip(record.iter()) {
                m.set(column, value.trim())
                    .map_err(|e| parse_error(origin, Some(line), e))?;
            }
            set.check_mapping(&m)
                .map_err(|e| parse_error(origin, Some(line), e))?;
            set.mappings.push(m);
            set.lines.push(line);
        }
        Ok(set)
    }

    /// Why `m` is not a valid mapping of this set, if it is not.
    fn check_mapping(&self, m: &Mapping) -> std::result::Result<(), String> {
        for (column, value) in [
            ("predicate_id", &m.predicate_id),
            ("object_id", &m.object_id),
            ("mapping_justification", &m.mapping_justification),
        ] {
            if value.is_empty() {
                return Err(format!("empty `{column}`"));
            }
        }
        let literal = m.subject_type.as_deref() == Some(LITERAL);
        if m.subject_id.is_none() && !(literal && m.subject_label.is_some()) {
            return Err(format!(
                "no subject: give a `subject_id`, or a `subject_label` with subject_type `{LITERAL}`"
            ));
        }
        for (column, curie) in m.curies() {
            match curie_prefix(curie) {
                None => {
                    return Err(format!(
                        "`{column}` must be a CURIE (prefix:local id), not `{curie}`"
                    ))
                }
                Some(prefix) if !self.knows_prefix(prefix) => {
                    return Err(format!(
                        "the prefix `{prefix}` of `{curie}` ({column}) is not declared in the curie_map"
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Whether `prefix` is declared in the curie_map or built into SSSOM.
    pub fn knows_prefix(&self, prefix: &str) -> bool {
        self.metadata.curie_map.contains_key(prefix)
            || BUILTIN_PREFIXES.iter().any(|(p, _)| *p == prefix)
    }

    /// Reads an SSSOM/TSV file.
    pub fn load(path: &Path) -> Result<MappingSet> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("cannot read", path, e))?;
        MappingSet::parse(&text, path)
    }

    /// The set as SSSOM/TSV: the metadata block, then the modelled columns
    /// that any mapping fills (the required ones always) and the extra ones,
    /// in a fixed order. Scores have 4 decimals.
    pub fn to_tsv(&self) -> Result<String> {
        let yaml = serde_yaml_ng::to_string(&self.metadata)
            .map_err(|e| Error::invalid_input(format!("cannot write SSSOM metadata: {e}")))?;
        let mut out = String::new();
        for line in yaml.lines() {
            out.push('#');
            out.push_str(line);
            out.push('\n');
        }
        let required = ["predicate_id", "object_id", "mapping_justification"];
        let mut columns: Vec<String> = COLUMNS
            .iter()
            .filter(|c| required.contains(c) || self.mappings.iter().any(|m| m.get(c).is_some()))
            .map(|c| c.to_string())
            .collect();
        let extra: std::collections::BTreeSet<&String> =
            self.mappings.iter().flat_map(|m| m.extra.keys()).collect();
        columns.extend(extra.into_iter().cloned());
        let mut w = csv::WriterBuilder::new()
            .delimiter(b'\t')
            .from_writer(Vec::new());
        let io = |e: csv::Error| Error::invalid_input(format!("cannot write SSSOM: {e}"));
        w.write_record(&columns).map_err(io)?;
        for m in &self.mappings {
            w.write_record(columns.iter().map(|c| m.get(c).unwrap_or_default()))
                .map_err(io)?;
        }
        let body = w
            .into_inner()
            .map_err(|e| Error::invalid_input(format!("cannot write SSSOM: {e}")))?;
        out.push_str(&String::from_utf8_lossy(&body));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> &'static Path {
        Path::new("t.sssom.tsv")
    }

    const SAMPLE: &str = "# curie_map:\n#   CL: http://purl.obolibrary.org/obo/CL_\n# mapping_set_id: https://example.org/set\n# license: https://creativecommons.org/publicdomain/zero/1.0/\n# mapping_date: '2026-01-01'\nsubject_label\tsubject_type\tpredicate_id\tobject_id\tobject_label\tmapping_justification\tconfidence\treviewer\nCD8 T\trdfs literal\tskos:exactMatch\tCL:0000625\tCD8-positive, alpha-beta T cell\tsemapv:ManualMappingCuration\t0.95\tjane\n";

    #[test]
    fn parses_metadata_rows_and_extra_columns() {
        let set = MappingSet::parse(SAMPLE, origin()).unwrap();
        assert_eq!(set.metadata.mapping_set_id, "https://example.org/set");
        assert_eq!(
            set.metadata.curie_map.get("CL").map(String::as_str),
            Some("http://purl.obolibrary.org/obo/CL_")
        );
        assert_eq!(
            set.metadata.extra.get("mapping_date"),
            None,
            "mapping_date is modelled"
        );
        assert_eq!(set.metadata.mapping_date.as_deref(), Some("2026-01-01"));
        assert_eq!(set.mappings.len(), 1);
        assert_eq!(set.lines, vec![7]);
        let m = &set.mappings[0];
        assert_eq!(m.subject_label.as_deref(), Some("CD8 T"));
        assert_eq!(m.object_id, "CL:0000625");
        assert_eq!(m.confidence, Some(0.95));
        assert_eq!(m.extra.get("reviewer").map(String::as_str), Some("jane"));
    }

    #[test]
    fn round_trips_through_tsv() {
        let set = MappingSet::parse(SAMPLE, origin()).unwrap();
        let text = set.to_tsv().unwrap();
        let again = MappingSet::parse(&text, origin()).unwrap();
        assert_eq!(again.metadata, set.metadata);
        assert_eq!(again.mappings, set.mappings);
        assert!(text.starts_with("#curie_map:\n#  CL: "), "{text}");
    }

    #[test]
    fn errors_name_the_line() {
        let undeclared = SAMPLE.replace("CL:0000625", "XX:1");
        let e = MappingSet::parse(&undeclared, origin())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 7") && e.contains("`XX`"), "{e}");

        let no_column = SAMPLE.replace("mapping_justification", "justification");
        let e = MappingSet::parse(&no_column, origin())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 6") && e.contains("mapping_justification"),
            "{e}"
        );

        let bad_score = SAMPLE.replace("\t0.95\t", "\t1.5\t");
        let e = MappingSet::parse(&bad_score, origin())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 7") && e.contains("confidence"), "{e}");

        let no_subject = SAMPLE.replace("rdfs literal", "owl:Class");
        let e = MappingSet::parse(&no_subject, origin())
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 7") && e.contains("no subject"), "{e}");

        let bad_yaml = SAMPLE.replace("# license:", "#  - license: [");
        let e = MappingSet::parse(&bad_yaml, origin())
            .unwrap_err()
            .to_string();
        assert!(e.contains("metadata block"), "{e}");
    }

    #[test]
    fn curie_prefixes() {
        assert_eq!(curie_prefix("CL:0000625"), Some("CL"));
        assert_eq!(curie_prefix("http://purl.obolibrary.org/obo/CL_1"), None);
        assert_eq!(curie_prefix("plain"), None);
        assert_eq!(curie_prefix(":x"), None);
    }
}
