//! The cellxgene-ontology-guide JSON format: one object of term id → term.
//!
//! Parsed in one streaming pass from the decompressed bytes: strings are
//! borrowed where the JSON has no escapes, and of each term's `ancestors` map
//! (the bulk of the file) only the distance-1 keys are kept.

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::model::{distinct_synonyms, normalize_id};
use super::{Ontology, OntologyKind, Synonym, Term};
use crate::{Error, Result};

pub(super) fn parse(
    bytes: &[u8],
    path: &Path,
    file_name: &str,
    sha256: String,
) -> Result<Ontology> {
    let mut state = State::default();
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = de
        .deserialize_map(TermsVisitor { state: &mut state })
        .and_then(|()| de.end());
    if let Err(e) = parsed {
        return Err(json_error(path, &e, &state));
    }

    let (prefix, version) = match file_name_parts(file_name) {
        Some((prefix, version)) => (prefix.to_string(), version.to_string()),
        None => {
            let prefix = state
                .terms
                .first()
                .and_then(|t| t.id.split_once(':'))
                .map(|(p, _)| p.to_string())
                .unwrap_or_default();
            (prefix, "unversioned".to_string())
        }
    };
    let kind = OntologyKind::from_source_prefix(&prefix);
    let name = kind.map_or_else(|| prefix.to_ascii_lowercase(), |k| k.name().to_string());
    Ontology::assemble(name, kind, version, sha256, path.to_path_buf(), state.terms).map_err(|e| {
        Error::Parse {
            path: path.to_path_buf(),
            location: None,
            message: e.to_string(),
        }
    })
}

/// `CL-ontology-v2026-03-26.json.zst` → `("CL", "v2026-03-26")`.
fn file_name_parts(file_name: &str) -> Option<(&str, &str)> {
    let strip_ci = |s: &'_ str, suffix: &str| -> Option<usize> {
        let cut = s.len().checked_sub(suffix.len())?;
        s.get(cut..)
            .filter(|tail| tail.eq_ignore_ascii_case(suffix))
            .map(|_| cut)
    };
    let mut stem = file_name;
    if let Some(cut) = strip_ci(stem, ".zst") {
        stem = &stem[..cut];
    }
    let cut = strip_ci(stem, ".json")?;
    let (prefix, version) = stem[..cut].split_once("-ontology-")?;
    (!prefix.is_empty() && !version.is_empty()).then_some((prefix, version))
}

fn json_error(path: &Path, e: &serde_json::Error, state: &State) -> Error {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    let mut location = (e.line() > 0).then(|| format!("line {}, column {}", e.line(), e.column()));
    if !state.current.is_empty() {
        let context = if state.in_term {
            format!("term `{}`", state.current)
        } else {
            format!("after term `{}`", state.current)
        };
        location = Some(match location {
            Some(l) => format!("{l} ({context})"),
            None => context,
        });
    }
    Error::Parse {
        path: path.to_path_buf(),
        location,
        message,
    }
}

#[derive(Default)]
struct State {
    terms: Vec<Term>,
    /// The key of the term being (or last) parsed, for error messages.
    current: String,
    in_term: bool,
}

struct TermsVisitor<'s> {
    state: &'s mut State,
}

impl<'de> Visitor<'de> for TermsVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object mapping term ids to terms")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.state;
        if let Some(n) = map.size_hint() {
            state.terms.reserve(n);
        }
        while let Some(key) = map.next_key::<Text<'de>>()? {
            state.current.clear();
            state.current.push_str(&key.0);
            state.in_term = true;
            let raw: RawTerm<'de> = map.next_value()?;
            state.in_term = false;
            let id =
                normalize_id(&key.0).ok_or_else(|| de::Error::custom("a term has an empty id"))?;
            // Duplicate ids are reported by `Ontology::assemble`.
            state.terms.push(raw.into_term(id));
        }
        Ok(())
    }
}

/// A string borrowed from the input where it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

#[derive(Deserialize)]
struct RawTerm<'a> {
    #[serde(default, borrow)]
    label: Option<Text<'a>>,
    #[serde(default, borrow)]
    description: Option<Text<'a>>,
    #[serde(default, borrow)]
    synonyms: Option<Vec<Text<'a>>>,
    #[serde(default, borrow)]
    ancestors: Option<Parents<'a>>,
    #[serde(default, deserialize_with = "flag")]
    deprecated: bool,
    #[serde(default, borrow)]
    replaced_by: Option<Text<'a>>,
    #[serde(default, borrow)]
    consider: Option<Vec<Text<'a>>>,
}

impl RawTerm<'_> {
    fn into_term(self, id: String) -> Term {
        let label = self
            .label
            .map(|t| t.0.trim().to_string())
            .unwrap_or_default();
        let definition = self
            .description
            .map(|t| t.0.trim().to_string())
            .filter(|d| !d.is_empty());
        let synonyms = distinct_synonyms(
            &label,
            self.synonyms.into_iter().flatten().map(|t| Synonym {
                text: t.0.trim().to_string(),
                scope: None,
            }),
        );
        let mut parents: Vec<String> = Vec::new();
        for parent in self.ancestors.map(|p| p.0).into_iter().flatten() {
            if let Some(parent) = normalize_id(&parent.0) {
                if !parents.contains(&parent) {
                    parents.push(parent);
                }
            }
        }
        let mut consider: Vec<String> = Vec::new();
        for c in self.consider.into_iter().flatten() {
            if let Some(c) = normalize_id(&c.0) {
                if !consider.contains(&c) {
                    consider.push(c);
                }
            }
        }
        Term {
            id,
            label,
            definition,
            synonyms,
            parents,
            deprecated: self.deprecated,
            replaced_by: self.replaced_by.and_then(|t| normalize_id(&t.0)),
            consider,
        }
    }
}

/// The keys of an `ancestors` object whose distance is 1; other entries are
/// skipped without allocating.
struct Parents<'a>(Vec<Text<'a>>);

impl<'de: 'a, 'a> Deserialize<'de> for Parents<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ParentsVisitor;
        impl<'de> Visitor<'de> for ParentsVisitor {
            type Value = Parents<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of ancestor id → distance")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parents<'de>, A::Error> {
                let mut parents = Vec::new();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    let distance: f64 = map.next_value()?;
                    if distance == 1.0 {
                        parents.push(key);
                    }
                }
                Ok(Parents(parents))
            }
        }
        deserializer.deserialize_map(ParentsVisitor)
    }
}

/// `deprecated`: a boolean, a string `"true"`/`"false"` (any ASCII case, or
/// empty), 0/1, or null (false).
fn flag<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct FlagVisitor;
    impl<'de> Visitor<'de> for FlagVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a boolean or the string \"true\" or \"false\"")
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
            let v = v.trim();
            if v.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if v.eq_ignore_ascii_case("false") || v.is_empty() {
                Ok(false)
            } else {
                Err(E::invalid_value(de::Unexpected::Str(v), &self))
            }
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
            match v {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
            }
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
            match v {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(E::invalid_value(de::Unexpected::Signed(v), &self)),
            }
        }
        fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_none<E: de::Error>(self) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
            d.deserialize_any(FlagVisitor)
        }
    }
    deserializer.deserialize_any(FlagVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(
            file_name_parts("CL-ontology-v2026-03-26.json.zst"),
            Some(("CL", "v2026-03-26"))
        );
        assert_eq!(
            file_name_parts("MONDO-ontology-v2026-05-05.JSON"),
            Some(("MONDO", "v2026-05-05"))
        );
        assert_eq!(file_name_parts("terms.json"), None);
        assert_eq!(file_name_parts("CL-ontology-.json"), None);
    }
}
