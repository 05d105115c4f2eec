//! OBO 1.4 files, parsed frame by frame with `fastobo`.

use std::collections::HashMap;
use std::path::Path;

use fastobo::ast::{Frame, HeaderClause, Ident, TermClause, TermFrame};
use fastobo::error::{Error as OboError, SyntaxError};
use fastobo::parser::{Parser, SequentialParser};
use fastobo::syntax::pest::error::LineColLocation;

use super::model::{distinct_synonyms, normalize_id};
use super::{Ontology, OntologyKind, Synonym, SynonymScope, Term};
use crate::{Error, Result};

pub(super) fn parse(bytes: &[u8], path: &Path, sha256: String) -> Result<Ontology> {
    let mut header_name: Option<String> = None;
    let mut data_version: Option<String> = None;
    let mut terms: Vec<Term> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();

    for frame in SequentialParser::new(bytes) {
        match frame.map_err(|e| obo_error(path, e))? {
            Frame::Header(header) => {
                for clause in header.iter() {
                    match clause {
                        HeaderClause::Ontology(name) if header_name.is_none() => {
                            header_name = Some(name.as_str().trim().to_string());
                        }
                        HeaderClause::DataVersion(v) if data_version.is_none() => {
                            data_version = Some(v.as_str().trim().to_string());
                        }
                        _ => {}
                    }
                }
            }
            Frame::Term(frame) => {
                let term = term_from_frame(&frame);
                match index.get(&term.id) {
                    // OBO allows one term in several frames: merge them.
                    Some(&i) => merge(&mut terms[i], term),
                    None => {
                        index.insert(term.id.clone(), terms.len());
                        terms.push(term);
                    }
                }
            }
            Frame::Typedef(_) | Frame::Instance(_) => {}
        }
    }
    for term in &mut terms {
        term.synonyms = distinct_synonyms(&term.label, std::mem::take(&mut term.synonyms));
    }

    let header_name = header_name.unwrap_or_default();
    let kind = OntologyKind::from_alias(&header_name).ok().or_else(|| {
        let prefix = terms.first().and_then(|t| t.id.split_once(':'))?.0;
        OntologyKind::from_source_prefix(prefix)
    });
    let name = match kind {
        Some(kind) => kind.name().to_string(),
        None if !header_name.is_empty() => header_name,
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let version = data_version
        .as_deref()
        .map(version_from_data_version)
        .unwrap_or_else(|| "unversioned".to_string());
    Ontology::assemble(name, kind, version, sha256, path.to_path_buf(), terms).map_err(|e| {
        Error::Parse {
            path: path.to_path_buf(),
            location: None,
            message: e.to_string(),
        }
    })
}

/// `releases/2026-03-26` (or any value holding a `YYYY-MM-DD` date) →
/// `v2026-03-26`; otherwise the value itself (or `unversioned` when empty).
fn version_from_data_version(value: &str) -> String {
    let bytes = value.as_bytes();
    let is_date = |w: &[u8]| {
        w.len() == 10
            && w.iter().enumerate().all(|(i, &b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            })
    };
    if let Some(start) = (0..bytes.len().saturating_sub(9)).find(|&i| is_date(&bytes[i..i + 10])) {
        return format!("v{}", &value[start..start + 10]);
    }
    let value = value.trim();
    if value.is_empty() {
        "unversioned".to_string()
    } else {
        value.to_string()
    }
}

fn ident(id: &Ident) -> Option<String> {
    match id {
        Ident::Prefixed(p) => normalize_id(&format!("{}:{}", p.prefix(), p.local())),
        Ident::Unprefixed(u) => normalize_id(u.as_str()),
        Ident::Url(u) => normalize_id(u.as_str()),
    }
}

fn push_unique(list: &mut Vec<String>, value: Option<String>) {
    if let Some(value) = value {
        if !list.contains(&value) {
            list.push(value);
        }
    }
}

fn term_from_frame(frame: &TermFrame) -> Term {
    let mut term = Term::new(
        ident(frame.id().as_inner().as_id()).unwrap_or_default(),
        String::new(),
    );
    let mut genus: Vec<String> = Vec::new();
    for line in frame.clauses() {
        match line.as_inner() {
            TermClause::Name(name) => term.label = name.as_str().trim().to_string(),
            TermClause::Def(def) => {
                let text = def.text().as_str().trim();
                if !text.is_empty() {
                    term.definition = Some(text.to_string());
                }
            }
            TermClause::Synonym(syn) => term.synonyms.push(Synonym {
                text: syn.description().as_str().trim().to_string(),
                scope: Some(match syn.scope() {
                    fastobo::ast::SynonymScope::Exact => SynonymScope::Exact,
                    fastobo::ast::SynonymScope::Related => SynonymScope::Related,
                    fastobo::ast::SynonymScope::Narrow => SynonymScope::Narrow,
                    fastobo::ast::SynonymScope::Broad => SynonymScope::Broad,
                }),
            }),
            TermClause::IsA(parent) => push_unique(&mut term.parents, ident(parent.as_id())),
            TermClause::IntersectionOf(None, class) => {
                push_unique(&mut genus, ident(class.as_id()));
            }
            TermClause::IsObsolete(obsolete) => term.deprecated = *obsolete,
            TermClause::ReplacedBy(id) if term.replaced_by.is_none() => {
                term.replaced_by = ident(id.as_id());
            }
            TermClause::Consider(id) => push_unique(&mut term.consider, ident(id.as_id())),
            _ => {}
        }
    }
    // `intersection_of: GENUS` without a relation implies `is_a: GENUS`.
    for g in genus {
        push_unique(&mut term.parents, Some(g));
    }
    term
}

fn merge(into: &mut Term, other: Term) {
    if into.label.is_empty() {
        into.label = other.label;
    }
    if into.definition.is_none() {
        into.definition = other.definition;
    }
    // Repeats are removed once every frame is merged.
    into.synonyms.extend(other.synonyms);
    for p in other.parents {
        push_unique(&mut into.parents, Some(p));
    }
    into.deprecated |= other.deprecated;
    if into.replaced_by.is_none() {
        into.replaced_by = other.replaced_by;
    }
    for c in other.consider {
        push_unique(&mut into.consider, Some(c));
    }
}

fn obo_error(path: &Path, error: OboError) -> Error {
    let (location, message) = match error {
        OboError::SyntaxError {
            error: SyntaxError::ParserError { error },
        } => {
            let (line, column) = match error.line_col {
                LineColLocation::Pos(pos) | LineColLocation::Span(pos, _) => pos,
            };
            let text = error.line().trim_end();
            let message = if text.is_empty() {
                error.variant.message().into_owned()
            } else {
                format!("{} in `{text}`", error.variant.message())
            };
            (Some(format!("line {line}, column {column}")), message)
        }
        OboError::IOError { error } if error.kind() == std::io::ErrorKind::InvalidData => {
            (None, "the file is not valid UTF-8".to_string())
        }
        other => (None, other.to_string()),
    };
    Error::Parse {
        path: path.to_path_buf(),
        location,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_versions() {
        assert_eq!(
            version_from_data_version("releases/2026-03-26"),
            "v2026-03-26"
        );
        assert_eq!(
            version_from_data_version(
                "http://purl.obolibrary.org/obo/mondo/releases/2024-08-06/mondo.owl"
            ),
            "v2024-08-06"
        );
        assert_eq!(version_from_data_version("2026-03-26"), "v2026-03-26");
        assert_eq!(version_from_data_version("1.4"), "1.4");
        assert_eq!(version_from_data_version(" "), "unversioned");
    }
}
