//! What a term lookup and a neighbourhood query answer, as serialisable
//! values shared by every front end (CLI `--json`, Python, HTTP, MCP).

use serde::Serialize;

use super::graph::{Graph, Related};
use super::{Ontology, Synonym};
use crate::Result;

/// A term named by id, with its label (empty when the id is not in the ontology).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TermRef {
    pub id: String,
    pub label: String,
}

impl TermRef {
    fn new(o: &Ontology, id: &str) -> Self {
        Self {
            id: id.to_string(),
            label: o.get(id).map(|t| t.label.clone()).unwrap_or_default(),
        }
    }
}

/// One term: label, definition, synonyms, parents, obsolete status and replacement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TermReport {
    pub id: String,
    pub label: String,
    pub definition: Option<String>,
    pub synonyms: Vec<Synonym>,
    pub parents: Vec<TermRef>,
    pub obsolete: bool,
    /// The live replacement of an obsolete term (end of its `replaced_by` chain).
    pub replaced_by: Option<TermRef>,
    /// Terms an obsolete term's curators suggest considering instead.
    pub consider: Vec<String>,
    pub ontology: String,
    pub ontology_version: String,
}

impl TermReport {
    /// The report of `id` in `o`.
    ///
    /// # Errors
    /// [`crate::Error::TermNotFound`] when `o` has no term `id`.
    pub fn of(o: &Ontology, id: &str) -> Result<Self> {
        let t = o.term(id.trim())?;
        let redirect = o.resolve_obsolete(&t.id);
        Ok(Self {
            id: t.id.clone(),
            label: t.label.clone(),
            definition: t.definition.clone(),
            synonyms: t.synonyms.clone(),
            parents: t.parents.iter().map(|p| TermRef::new(o, p)).collect(),
            obsolete: t.deprecated,
            replaced_by: redirect
                .as_ref()
                .and_then(|r| r.replaced_by.as_deref())
                .map(|r| TermRef::new(o, r)),
            consider: redirect.map(|r| r.consider).unwrap_or_default(),
            ontology: o.name().to_string(),
            ontology_version: o.version().to_string(),
        })
    }
}

/// The terms around one term: direct parents, children and siblings, and
/// ancestors and descendants up to `depth` edges away.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Neighborhood {
    pub id: String,
    pub label: String,
    pub depth: usize,
    pub parents: Vec<Related>,
    pub children: Vec<Related>,
    pub siblings: Vec<Related>,
    pub ancestors: Vec<Related>,
    pub descendants: Vec<Related>,
    pub ontology: String,
    pub ontology_version: String,
}

impl Neighborhood {
    /// The neighbourhood of `id` in `o`, ancestors and descendants to `depth`.
    ///
    /// # Errors
    /// [`crate::Error::TermNotFound`] when `o` has no term `id`.
    pub fn of(o: &Ontology, id: &str, depth: usize) -> Result<Self> {
        let term = o.term(id)?;
        let id = term.id.as_str();
        let g = Graph::new(o);
        Ok(Self {
            id: id.to_string(),
            label: term.label.clone(),
            depth,
            parents: g.parents(id)?,
            children: g.children(id)?,
            siblings: g.siblings(id)?,
            ancestors: g.ancestors(id, depth)?,
            descendants: g.descendants(id, depth)?,
            ontology: o.name().to_string(),
            ontology_version: o.version().to_string(),
        })
    }
}
