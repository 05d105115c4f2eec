//! Mapping results for review: each value's [`Status`] and the results as an
//! SSSOM mapping set.

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::sssom::{
    self, Mapping, MappingSet, SetMetadata, CLOSE_MATCH, COSINE_SIMILARITY, EXACT_MATCH,
    LEXICAL_MATCHING, LITERAL, MANUAL_CURATION, NO_TERM_FOUND, SEMANTIC_SIMILARITY,
};
use crate::matcher::ACCEPT_THRESHOLD;
use crate::ontology::OntologyKind;
use crate::service::{MatchType, OntologyMatch, ResolvedCollection};

/// What a curator does with a value's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The best row is curated, exact, or ranked with a confidence of at
    /// least [`ACCEPT_THRESHOLD`] (and `min_score`).
    Accepted,
    /// The best row's confidence is below the accept threshold but at least `min_score`.
    Review,
    /// No row, or the best is below `min_score`.
    Unmapped,
}

impl Status {
    /// The status of a value whose rows (best first) are `rows`.
    pub fn of(rows: &[OntologyMatch], min_score: f32) -> Status {
        match rows.first() {
            Some(m) if m.score < min_score => Status::Unmapped,
            Some(m) if m.match_type.is_exact() || m.score >= ACCEPT_THRESHOLD => Status::Accepted,
            Some(_) => Status::Review,
            None => Status::Unmapped,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Accepted => "accepted",
            Status::Review => "review",
            Status::Unmapped => "unmapped",
        }
    }
}

/// Identity and provenance of an SSSOM set written for a `map` run.
#[derive(Debug, Clone, PartialEq)]
pub struct SetInfo {
    /// The ontology's CURIE prefix (`CL`).
    pub prefix: String,
    /// The release the objects come from (`v2026-03-26`).
    pub ontology_version: String,
    /// The licence of the mappings; [`sssom::LICENSE_UNSPECIFIED`] when nobody said.
    pub license: String,
    /// `YYYY-MM-DD`.
    pub mapping_date: String,
}

impl SetInfo {
    /// The info of a set of mappings into `resolved`, dated today.
    pub fn for_collection(resolved: &ResolvedCollection, license: &str) -> SetInfo {
        // The artifact names the ontology (`cell_ontology`); its ids' prefix is the kind's.
        let prefix = OntologyKind::from_alias(&resolved.artifact.ontology).map_or_else(
            |_| resolved.artifact.ontology.to_ascii_uppercase(),
            |k| k.source_prefix().to_string(),
        );
        SetInfo {
            prefix,
            ontology_version: resolved.artifact.source_version.clone(),
            license: license.to_string(),
            mapping_date: today(),
        }
    }
}

fn metadata_str(m: &OntologyMatch, key: &str) -> Option<String> {
    m.metadata
        .get(key)
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// One SSSOM mapping for a result row of `value`.
pub fn mapping_of(value: &str, m: &OntologyMatch, status: Status) -> Mapping {
    let (predicate, justification) = match m.match_type {
        MatchType::Curated => (
            metadata_str(m, "predicate_id").unwrap_or_else(|| EXACT_MATCH.into()),
            metadata_str(m, "justification").unwrap_or_else(|| MANUAL_CURATION.into()),
        ),
        t if t.is_exact() => (EXACT_MATCH.into(), LEXICAL_MATCHING.into()),
        MatchType::Lexical | MatchType::Abbreviation => {
            (CLOSE_MATCH.into(), LEXICAL_MATCHING.into())
        }
        _ => (CLOSE_MATCH.into(), SEMANTIC_SIMILARITY.into()),
    };
    let cosine = m.metadata.get("vector_score").and_then(|v| v.as_f64());
    Mapping {
        subject_label: Some(value.to_string()),
        subject_type: Some(LITERAL.into()),
        predicate_id: predicate,
        object_id: m.ontology_id.clone(),
        object_label: Some(m.term.clone()),
        mapping_justification: justification,
        author_label: metadata_str(m, "author_label"),
        author_id: metadata_str(m, "author_id"),
        confidence: Some(crate::service::output_score(m.score)),
        match_string: Some(m.matched_text.clone()),
        similarity_score: cosine.filter(|c| (0.0..=1.0).contains(c)),
        similarity_measure: cosine.map(|_| COSINE_SIMILARITY.into()),
        comment: Some(status.as_str().into()),
        ..Mapping::default()
    }
}

/// The SSSOM row of a value left unmapped.
pub fn unmapped(value: &str) -> Mapping {
    Mapping {
        subject_label: Some(value.to_string()),
        subject_type: Some(LITERAL.into()),
        predicate_id: CLOSE_MATCH.into(),
        object_id: NO_TERM_FOUND.into(),
        mapping_justification: SEMANTIC_SIMILARITY.into(),
        comment: Some(Status::Unmapped.as_str().into()),
        ..Mapping::default()
    }
}

/// The results of a `map` run as one SSSOM set: per value, its rows (best
/// first, all of them) or one `sssom:NoTermFound` row; `comment` holds the
/// value's [`Status`]. The set id is a `urn:uuid:` derived from the values,
/// the rows and `info`, so the same run gives the same id.
pub fn mapping_set<'a>(
    results: impl IntoIterator<Item = (&'a str, &'a [OntologyMatch])>,
    min_score: f32,
    info: &SetInfo,
) -> MappingSet {
    let mut mappings = Vec::new();
    for (value, rows) in results {
        let status = Status::of(rows, min_score);
        if status == Status::Unmapped {
            mappings.push(unmapped(value));
        } else {
            mappings.extend(rows.iter().map(|m| mapping_of(value, m, status)));
        }
    }
    let mut curie_map = BTreeMap::new();
    curie_map.insert(info.prefix.clone(), sssom::obo_iri_prefix(&info.prefix));
    if mappings.iter().any(|m| m.similarity_measure.is_some()) {
        curie_map.insert(sssom::WIKIDATA.0.into(), sssom::WIKIDATA.1.into());
    }
    let mut digest = Sha256::new();
    for part in [&info.prefix, &info.ontology_version, &info.license] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    for m in &mappings {
        for part in [
            m.subject_label.as_deref().unwrap_or_default(),
            &m.object_id,
            &m.confidence.map(|c| format!("{c:.4}")).unwrap_or_default(),
        ] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
    }
    let metadata = SetMetadata {
        curie_map,
        mapping_set_id: format!("urn:uuid:{}", uuid_of(&digest.finalize())),
        mapping_set_description: Some(format!(
            "Mappings by lobster-vector to {} {}. `comment` holds each value's review status: \
             accepted (curated, exact, or confidence >= {ACCEPT_THRESHOLD}), review, unmapped.",
            info.prefix, info.ontology_version
        )),
        license: info.license.clone(),
        mapping_tool: Some("lobster-vector".into()),
        mapping_tool_version: Some(crate::VERSION.into()),
        object_source_version: Some(info.ontology_version.clone()),
        mapping_date: Some(info.mapping_date.clone()),
        ..SetMetadata::default()
    };
    MappingSet {
        metadata,
        mappings,
        lines: Vec::new(),
    }
}

/// A `urn:uuid:` naming `data` (a version-8 UUID from its SHA-256).
pub fn urn_uuid(data: &[u8]) -> String {
    format!("urn:uuid:{}", uuid_of(&Sha256::digest(data)))
}

/// A version-8 (custom) UUID from the first 16 bytes of a digest.
fn uuid_of(digest: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Today's date in UTC, `YYYY-MM-DD`.
pub fn today() -> String {
    chrono::Utc::now().format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Metadata;

    fn row(score: f32, match_type: MatchType) -> OntologyMatch {
        let mut metadata = Metadata::new();
        metadata.insert("vector_score".into(), serde_json::json!(0.9123));
        OntologyMatch {
            term: "T cell".into(),
            ontology_id: "CL:0000084".into(),
            score,
            metadata,
            distance_metric: "cosine",
            matched_text: "T-cell".into(),
            match_type,
            ontology: "cell_ontology".into(),
            ontology_version: "v1".into(),
        }
    }

    #[test]
    fn status_follows_the_threshold_and_min_score() {
        assert_eq!(Status::of(&[], 0.0), Status::Unmapped);
        assert_eq!(
            Status::of(&[row(0.95, MatchType::Semantic)], 0.0),
            Status::Accepted
        );
        assert_eq!(
            Status::of(&[row(0.5, MatchType::Semantic)], 0.0),
            Status::Review
        );
        assert_eq!(
            Status::of(&[row(0.5, MatchType::Semantic)], 0.6),
            Status::Unmapped
        );
        assert_eq!(
            Status::of(&[row(0.85, MatchType::Semantic)], 0.9),
            Status::Unmapped
        );
        assert_eq!(
            Status::of(&[row(1.0, MatchType::ExactLabel)], 0.0),
            Status::Accepted
        );
    }

    #[test]
    fn sets_are_valid_sssom_with_a_stable_id() {
        let info = SetInfo {
            prefix: "CL".into(),
            ontology_version: "v1".into(),
            license: sssom::LICENSE_UNSPECIFIED.into(),
            mapping_date: "2026-12-03".into(),
        };
        let rows = [row(0.5, MatchType::Semantic), row(0.2, MatchType::Lexical)];
        let exact = [row(1.0, MatchType::ExactSynonym)];
        let results = [
            ("T cells", &rows[..]),
            ("T-cell", &exact[..]),
            ("foo", &[][..]),
        ];
        let set = mapping_set(results, 0.0, &info);
        assert_eq!(set.mappings.len(), 4);
        assert_eq!(set.mappings[0].predicate_id, CLOSE_MATCH);
        assert_eq!(set.mappings[0].mapping_justification, SEMANTIC_SIMILARITY);
        assert_eq!(set.mappings[0].similarity_score, Some(0.9123));
        assert_eq!(set.mappings[1].mapping_justification, LEXICAL_MATCHING);
        assert_eq!(set.mappings[2].predicate_id, EXACT_MATCH);
        assert_eq!(set.mappings[2].comment.as_deref(), Some("accepted"));
        assert_eq!(set.mappings[3].object_id, NO_TERM_FOUND);
        let text = set.to_tsv().unwrap();
        let again = MappingSet::parse(&text, std::path::Path::new("x")).unwrap();
        assert_eq!(again.mappings, set.mappings);
        assert!(again.metadata.mapping_set_id.starts_with("urn:uuid:"));
        assert_eq!(mapping_set(results, 0.0, &info).metadata, set.metadata);
        let other = mapping_set(results, 0.6, &info);
        assert_ne!(other.metadata.mapping_set_id, set.metadata.mapping_set_id);
    }
}
