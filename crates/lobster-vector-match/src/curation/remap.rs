//! How a mapping made against one ontology release stands in another:
//! [`object_change`] for one object id, [`remap`] for a whole mapping set.

use serde::Serialize;

use super::sssom::{Mapping, MappingSet, NO_TERM_FOUND};
use crate::ontology::Ontology;

/// What happened to a mapping's object between the release it was made
/// against and `ontology`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ObjectChange {
    /// The term is live and its label is the one the mapping recorded (or the
    /// mapping recorded none).
    Unchanged,
    /// The term is live under another label.
    LabelChanged {
        old_label: String,
        new_label: String,
    },
    /// The term is obsolete and replaced: `replaced_by` is the live end of its
    /// replacement chain (`label` empty when it lies in another ontology).
    Replaced { replaced_by: String, label: String },
    /// The term is obsolete without a replacement; the ontology suggests these terms.
    ObsoleteConsider { consider: Vec<String> },
    /// The term is obsolete with neither a replacement nor terms to consider.
    Obsolete,
    /// The id is not in this ontology release at all.
    Missing,
}

impl ObjectChange {
    /// The snake_case name reports print.
    pub fn as_str(&self) -> &'static str {
        match self {
            ObjectChange::Unchanged => "unchanged",
            ObjectChange::LabelChanged { .. } => "label_changed",
            ObjectChange::Replaced { .. } => "replaced",
            ObjectChange::ObsoleteConsider { .. } => "obsolete_consider",
            ObjectChange::Obsolete => "obsolete",
            ObjectChange::Missing => "missing",
        }
    }

    /// The live id a mapping should point to now, if there is one.
    pub fn live_id<'a>(&'a self, object_id: &'a str) -> Option<&'a str> {
        match self {
            ObjectChange::Unchanged | ObjectChange::LabelChanged { .. } => Some(object_id),
            ObjectChange::Replaced { replaced_by, .. } => Some(replaced_by),
            _ => None,
        }
    }
}

/// How `object_id` (recorded with `recorded_label`, if any) stands in `ontology`.
/// Labels are compared as written, ignoring surrounding space and ASCII case.
pub fn object_change(
    ontology: &Ontology,
    object_id: &str,
    recorded_label: Option<&str>,
) -> ObjectChange {
    let Some(term) = ontology.get(object_id) else {
        return ObjectChange::Missing;
    };
    if !term.deprecated {
        return match recorded_label.map(str::trim) {
            Some(old) if !old.is_empty() && !old.eq_ignore_ascii_case(term.label.trim()) => {
                ObjectChange::LabelChanged {
                    old_label: old.to_string(),
                    new_label: term.label.clone(),
                }
            }
            _ => ObjectChange::Unchanged,
        };
    }
    match ontology.resolve_obsolete(object_id) {
        Some(r) => match r.replaced_by {
            Some(id) => ObjectChange::Replaced {
                label: ontology
                    .get(&id)
                    .map(|t| t.label.clone())
                    .unwrap_or_default(),
                replaced_by: id,
            },
            None if !r.consider.is_empty() => ObjectChange::ObsoleteConsider {
                consider: r.consider,
            },
            None => ObjectChange::Obsolete,
        },
        None => ObjectChange::Obsolete,
    }
}

/// One row of a [`remap`] report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RemapRow {
    /// The 1-based line of the mapping in its file (0 for a set built in memory).
    pub line: usize,
    pub subject: String,
    pub object_id: String,
    #[serde(flatten)]
    pub change: ObjectChange,
}

/// A re-mapped set and what changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Remapped {
    /// The set against `ontology`: replaced objects point to their replacement,
    /// changed labels are the current ones, `object_source_version` is the
    /// current release; obsolete objects without replacement are kept and say
    /// so in `comment`. Mappings of other ontologies are kept as they were.
    pub set: MappingSet,
    /// One row per mapping of `ontology` (mappings of other ontologies and
    /// `sssom:NoTermFound` rows are not reported).
    pub rows: Vec<RemapRow>,
}

fn append_comment(m: &mut Mapping, note: String) {
    m.comment = Some(match m.comment.take() {
        Some(c) if !c.is_empty() => format!("{c}; {note}"),
        _ => note,
    });
}

/// Checks every mapping of `set` whose object belongs to `ontology` (its id
/// prefix is one of the ontology's) against this release.
pub fn remap(set: &MappingSet, ontology: &Ontology) -> Remapped {
    let prefixes = id_prefixes(ontology);
    let version = ontology.version();
    let mut out = set.clone();
    let mut rows = Vec::new();
    for (i, m) in out.mappings.iter_mut().enumerate() {
        let ours = super::sssom::curie_prefix(&m.object_id)
            .is_some_and(|p| prefixes.iter().any(|q| q == p));
        if !ours || m.object_id == NO_TERM_FOUND {
            continue;
        }
        let change = object_change(ontology, &m.object_id, m.object_label.as_deref());
        let old_id = m.object_id.clone();
        match &change {
            ObjectChange::Unchanged => {}
            ObjectChange::LabelChanged { new_label, .. } => {
                m.object_label = Some(new_label.clone());
            }
            ObjectChange::Replaced { replaced_by, label } => {
                m.object_id = replaced_by.clone();
                m.object_label = (!label.is_empty()).then(|| label.clone());
                append_comment(
                    m,
                    format!("{old_id} is obsolete in {version}; replaced by {replaced_by}"),
                );
            }
            ObjectChange::ObsoleteConsider { consider } => append_comment(
                m,
                format!(
                    "{old_id} is obsolete in {version}; consider {}",
                    consider.join(", ")
                ),
            ),
            ObjectChange::Obsolete => append_comment(
                m,
                format!("{old_id} is obsolete in {version} without replacement"),
            ),
            ObjectChange::Missing => {
                append_comment(m, format!("{old_id} is not in {version}"));
            }
        }
        rows.push(RemapRow {
            line: set.lines.get(i).copied().unwrap_or(0),
            subject: m
                .subject_label
                .clone()
                .or_else(|| m.subject_id.clone())
                .unwrap_or_default(),
            object_id: old_id,
            change,
        });
    }
    out.metadata.object_source_version = Some(version.to_string());
    for p in &prefixes {
        out.metadata
            .curie_map
            .entry(p.clone())
            .or_insert_with(|| super::sssom::obo_iri_prefix(p));
    }
    Remapped { set: out, rows }
}

/// The CURIE prefixes of `ontology`'s term ids (its kind's prefix first).
pub fn id_prefixes(ontology: &Ontology) -> Vec<String> {
    let mut prefixes: Vec<String> = ontology
        .kind()
        .map(|k| k.source_prefix().to_string())
        .into_iter()
        .collect();
    for t in ontology.terms() {
        if let Some(p) = super::sssom::curie_prefix(&t.id) {
            if !prefixes.iter().any(|q| q == p) {
                prefixes.push(p.to_string());
            }
        }
    }
    prefixes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curation::sssom::{EXACT_MATCH, LITERAL, MANUAL_CURATION};
    use crate::ontology::{OntologyKind, Term};

    fn term(id: &str, label: &str) -> Term {
        Term::new(id, label)
    }

    fn obsolete(id: &str, replaced_by: Option<&str>, consider: &[&str]) -> Term {
        Term {
            deprecated: true,
            replaced_by: replaced_by.map(str::to_string),
            consider: consider.iter().map(|c| c.to_string()).collect(),
            ..term(id, &format!("obsolete {id}"))
        }
    }

    fn ontology() -> Ontology {
        Ontology::from_terms(
            "cl",
            Some(OntologyKind::CellOntology),
            "v2",
            vec![
                term("CL:1", "T cell"),
                term("CL:2", "B cell"),
                obsolete("CL:3", Some("CL:4"), &[]),
                // A chain: CL:4 is itself replaced by CL:2.
                obsolete("CL:4", Some("CL:2"), &[]),
                obsolete("CL:5", None, &["CL:1"]),
                obsolete("CL:6", None, &[]),
            ],
        )
        .unwrap()
    }

    #[test]
    fn each_kind_of_change() {
        let o = ontology();
        assert_eq!(
            object_change(&o, "CL:1", Some(" t CELL ")),
            ObjectChange::Unchanged
        );
        assert_eq!(object_change(&o, "CL:1", None), ObjectChange::Unchanged);
        assert_eq!(
            object_change(&o, "CL:1", Some("T lymphocyte")),
            ObjectChange::LabelChanged {
                old_label: "T lymphocyte".into(),
                new_label: "T cell".into()
            }
        );
        assert_eq!(
            object_change(&o, "CL:3", None),
            ObjectChange::Replaced {
                replaced_by: "CL:2".into(),
                label: "B cell".into()
            }
        );
        assert_eq!(
            object_change(&o, "CL:5", None),
            ObjectChange::ObsoleteConsider {
                consider: vec!["CL:1".into()]
            }
        );
        assert_eq!(object_change(&o, "CL:6", None), ObjectChange::Obsolete);
        assert_eq!(object_change(&o, "CL:7", None), ObjectChange::Missing);
    }

    #[test]
    fn remap_updates_the_set_and_reports_only_its_ontology() {
        let mapping = |subject: &str, id: &str| Mapping {
            subject_label: Some(subject.into()),
            subject_type: Some(LITERAL.into()),
            predicate_id: EXACT_MATCH.into(),
            object_id: id.into(),
            object_label: Some("old".into()),
            mapping_justification: MANUAL_CURATION.into(),
            ..Mapping::default()
        };
        let set = MappingSet {
            mappings: vec![
                mapping("a", "CL:3"),
                mapping("b", "UBERON:1"),
                mapping("c", "CL:6"),
            ],
            lines: vec![5, 6, 7],
            ..MappingSet::default()
        };
        let out = remap(&set, &ontology());
        let changes: Vec<(usize, &str)> = out
            .rows
            .iter()
            .map(|r| (r.line, r.change.as_str()))
            .collect();
        assert_eq!(changes, vec![(5, "replaced"), (7, "obsolete")]);
        assert_eq!(out.set.mappings[0].object_id, "CL:2");
        assert_eq!(out.set.mappings[0].object_label.as_deref(), Some("B cell"));
        assert_eq!(out.set.mappings[1], set.mappings[1]);
        assert_eq!(out.set.mappings[2].object_id, "CL:6");
        assert!(out.set.mappings[2]
            .comment
            .as_deref()
            .is_some_and(|c| c.contains("without replacement")));
        assert_eq!(
            out.set.metadata.object_source_version.as_deref(),
            Some("v2")
        );
        assert!(out.set.metadata.curie_map.contains_key("CL"));
    }
}
