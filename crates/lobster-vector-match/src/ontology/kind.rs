//! The three ontologies lobster-vector knows by name, their aliases and
//! collection names.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One of the ontologies lobster-vector builds collections for.
///
/// Serialises as its canonical [`name`](Self::name) (`"mondo"`, `"uberon"`,
/// `"cell_ontology"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OntologyKind {
    /// MONDO, the disease ontology.
    Mondo,
    /// UBERON, the cross-species anatomy (tissue) ontology.
    Uberon,
    /// The Cell Ontology (CL), cell types.
    CellOntology,
}

impl OntologyKind {
    /// Every kind, in the order they are listed to users.
    pub const ALL: [OntologyKind; 3] = [Self::Mondo, Self::Uberon, Self::CellOntology];

    /// The canonical name: `"mondo"`, `"uberon"` or `"cell_ontology"`; also the
    /// prefix of its collection names.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mondo => "mondo",
            Self::Uberon => "uberon",
            Self::CellOntology => "cell_ontology",
        }
    }

    /// The CURIE prefix of its term ids, which is also the prefix of the
    /// cellxgene file names: `"MONDO"`, `"UBERON"` or `"CL"`.
    pub fn source_prefix(self) -> &'static str {
        match self {
            Self::Mondo => "MONDO",
            Self::Uberon => "UBERON",
            Self::CellOntology => "CL",
        }
    }

    /// Resolves a name or alias, ignoring ASCII case and surrounding whitespace:
    /// `mondo`/`disease`, `uberon`/`tissue`, `cell_ontology`/`cell_type`/`cl`.
    ///
    /// # Errors
    /// [`Error::UnknownOntology`] listing the valid names and aliases.
    pub fn from_alias(alias: &str) -> Result<Self> {
        let lower = alias.trim().to_ascii_lowercase();
        match lower.as_str() {
            "mondo" | "disease" => Ok(Self::Mondo),
            "uberon" | "tissue" => Ok(Self::Uberon),
            "cell_ontology" | "cell_type" | "cl" => Ok(Self::CellOntology),
            _ => Err(Error::UnknownOntology {
                name: alias.to_string(),
                valid: "mondo (disease), uberon (tissue), cell_ontology (cell_type, cl)".into(),
            }),
        }
    }

    /// The kind whose [`source_prefix`](Self::source_prefix) is `prefix`
    /// (ASCII case ignored), if any.
    pub fn from_source_prefix(prefix: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.source_prefix().eq_ignore_ascii_case(prefix))
    }

    /// The collection name for `version`: `<name>_<version part>`, e.g.
    /// `cell_ontology_v2026_03_26` for `"v2026-03-26"`.
    ///
    /// The version part is the version lowercased, every character outside
    /// `[a-z0-9_]` replaced by `_`, and leading/trailing `_` removed (so the
    /// name ends with a letter or digit as store names must); an empty result
    /// becomes `unversioned`. The result is not length-checked: a very long
    /// version gives a name the stores reject.
    pub fn collection_name(self, version: &str) -> String {
        format!("{}_{}", self.name(), version_part(version))
    }

    /// Splits a collection name made by [`collection_name`](Self::collection_name)
    /// into its kind and version part (e.g. `("v2026_03_26")`). `None` when the
    /// name does not start with a kind's name and `_`, or the rest is empty or
    /// holds characters outside `[a-z0-9_]`.
    /// A rebuild's [incarnation](split_incarnation) suffix is not part of the
    /// version.
    pub fn parse_collection_name(name: &str) -> Option<(OntologyKind, String)> {
        let (name, _) = split_incarnation(name);
        Self::ALL.into_iter().find_map(|kind| {
            let rest = name.strip_prefix(kind.name())?.strip_prefix('_')?;
            let valid = !rest.is_empty()
                && rest
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            valid.then(|| (kind, rest.to_string()))
        })
    }

    /// Of `names`, the collection of this kind with the newest version, or
    /// `None` when none parses (with
    /// [`parse_collection_name`](Self::parse_collection_name)) to this kind.
    ///
    /// Versions compare in natural order ([`compare_versions`]): runs of
    /// digits as numbers, everything else as text, so
    /// `v2026_03_26 > v2025_12_01` and `v3_10_0 > v3_9_0`.
    pub fn newest_collection<'a, I>(self, names: I) -> Option<&'a str>
    where
        I: IntoIterator<Item = &'a str>,
    {
        names
            .into_iter()
            .filter_map(|name| match Self::parse_collection_name(name) {
                Some((kind, version)) if kind == self => Some((name, version)),
                _ => None,
            })
            .max_by(|a, b| compare_versions(&a.1, &b.1).then_with(|| a.0.cmp(b.0)))
            .map(|(name, _)| name)
    }
}

impl fmt::Display for OntologyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for OntologyKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::from_alias(s)
    }
}

fn version_part(version: &str) -> String {
    let mapped: String = version
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches('_');
    if trimmed.is_empty() {
        "unversioned".to_string()
    } else {
        trimmed.to_string()
    }
}

/// The name of a collection's `n`th rebuild: `<base>__r<n>` (`n` ≥ 1), or
/// `base` itself for `n` = 0. A rebuild is written under a free incarnation
/// name beside the live one, so searches keep answering from the old build
/// until the new one is finished.
pub fn incarnation_name(base: &str, n: u32) -> String {
    match n {
        0 => base.to_string(),
        n => format!("{base}__r{n}"),
    }
}

/// Splits a collection name into its base and incarnation number (0 when it
/// has no `__r<n>` suffix); the inverse of [`incarnation_name`].
pub fn split_incarnation(name: &str) -> (&str, u32) {
    if let Some((base, n)) = name.rsplit_once("__r") {
        if !base.is_empty()
            && !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && !n.starts_with('0')
        {
            if let Ok(n) = n.parse::<u32>() {
                return (base, n);
            }
        }
    }
    (name, 0)
}

/// Compares two version strings in natural order: both are split into runs
/// of ASCII digits and runs of other characters; digit runs compare as
/// numbers (leading zeros ignored), other runs as text, run by run; a
/// version that is a prefix of the other is older. Date-like versions
/// (`v2026-03-26`, `2026_03_26`) therefore order by date, and dotted
/// releases (`v3.9.0` < `v3.10.0`) by number.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (next_run(a), next_run(b)) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ra, rest_a)), Some((rb, rest_b))) => {
                let ord = match (is_digits(ra), is_digits(rb)) {
                    (true, true) => {
                        let (ta, tb) = (ra.trim_start_matches('0'), rb.trim_start_matches('0'));
                        ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
                    }
                    // A number sorts before text at the same position.
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => ra.cmp(rb),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
                a = rest_a;
                b = rest_b;
            }
        }
    }
}

fn is_digits(run: &str) -> bool {
    run.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

fn next_run(s: &str) -> Option<(&str, &str)> {
    let first = s.bytes().next()?;
    let digit = first.is_ascii_digit();
    let end = s
        .bytes()
        .position(|b| b.is_ascii_digit() != digit)
        .unwrap_or(s.len());
    Some(s.split_at(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_names() {
        for (alias, kind) in [
            ("mondo", OntologyKind::Mondo),
            ("Disease", OntologyKind::Mondo),
            ("UBERON", OntologyKind::Uberon),
            ("tissue", OntologyKind::Uberon),
            ("cell_ontology", OntologyKind::CellOntology),
            ("Cell_Type", OntologyKind::CellOntology),
            (" cl ", OntologyKind::CellOntology),
        ] {
            assert_eq!(OntologyKind::from_alias(alias).ok(), Some(kind), "{alias}");
        }
        let err = OntologyKind::from_alias("hpo").expect_err("hpo is unknown");
        assert!(err.to_string().contains("cell_ontology"), "{err}");
        assert_eq!(
            OntologyKind::from_source_prefix("cl"),
            Some(OntologyKind::CellOntology)
        );
        assert_eq!(OntologyKind::from_source_prefix("EFO"), None);
    }

    #[test]
    fn collection_names_round_trip() {
        let name = OntologyKind::CellOntology.collection_name("v2026-03-26");
        assert_eq!(name, "cell_ontology_v2026_03_26");
        assert_eq!(
            OntologyKind::parse_collection_name(&name),
            Some((OntologyKind::CellOntology, "v2026_03_26".to_string()))
        );
        assert_eq!(OntologyKind::Mondo.collection_name("V3.1-"), "mondo_v3_1");
        assert_eq!(
            OntologyKind::Mondo.collection_name("--"),
            "mondo_unversioned"
        );
        assert_eq!(OntologyKind::parse_collection_name("mondo_"), None);
        assert_eq!(OntologyKind::parse_collection_name("mondo_V1"), None);
        assert_eq!(OntologyKind::parse_collection_name("mondoish_v1"), None);
        assert_eq!(OntologyKind::parse_collection_name("cell_v1"), None);
    }

    #[test]
    fn newest_by_natural_version_order() {
        let names = [
            "mondo_v2025_09_02",
            "cell_ontology_v2099_01_01",
            "mondo_v2026_05_05",
            "mondo_v2026_01_31",
            "other",
        ];
        assert_eq!(
            OntologyKind::Mondo.newest_collection(names),
            Some("mondo_v2026_05_05")
        );
        assert_eq!(OntologyKind::Uberon.newest_collection(names), None);
        assert_eq!(compare_versions("v3_9_0", "v3_10_0"), Ordering::Less);
        assert_eq!(
            compare_versions("v2026_03_26", "v2026_03_26"),
            Ordering::Equal
        );
        assert_eq!(compare_versions("v1", "v1_1"), Ordering::Less);
    }
}
