//! The term hierarchy: parents, children, siblings, depth-bounded ancestors
//! and descendants, and subtree membership for `--within` filters.
//!
//! Plain adjacency arrays over term indices (compressed rows, no graph
//! library): every query is a breadth-first walk, and the arrays for MONDO
//! (32k terms, ~45k edges) are built in a few milliseconds, once per
//! [`Ontology`], on the first [`Graph::new`].

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::Ontology;
use crate::{Error, Result};

/// A term reached from another one, with the number of edges between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Related {
    /// The term's id.
    pub id: String,
    /// Its label.
    pub label: String,
    /// Edges walked to reach it (1 = direct parent or child; 2 for siblings).
    pub distance: u32,
}

/// The hierarchy of one ontology, built from [`super::Term::parents`]: a
/// cheap view borrowing the ontology.
///
/// Every term of the ontology, live or deprecated, is a node; parents that are
/// not terms of the ontology are left out. Cycles in bad data do not loop.
/// Results are ordered by distance, then id.
#[derive(Debug, Clone, Copy)]
pub struct Graph<'a> {
    ontology: &'a Ontology,
    adjacency: &'a Adjacency,
}

impl<'a> Graph<'a> {
    /// The graph of `ontology`, building its adjacency on first use.
    pub fn new(ontology: &'a Ontology) -> Graph<'a> {
        Graph {
            ontology,
            adjacency: ontology.adjacency(),
        }
    }

    /// Whether `id` is a node of the graph.
    pub fn contains(&self, id: &str) -> bool {
        self.ontology.index_of(id).is_some()
    }

    /// Direct parents of `id` (distance 1).
    ///
    /// # Errors
    /// [`Error::TermNotFound`] for an unknown id (so for every method below).
    pub fn parents(&self, id: &str) -> Result<Vec<Related>> {
        self.ancestors(id, 1)
    }

    /// Direct children of `id` (distance 1).
    pub fn children(&self, id: &str) -> Result<Vec<Related>> {
        self.descendants(id, 1)
    }

    /// Terms sharing at least one parent with `id`, excluding `id` itself;
    /// distance 2 (up to the shared parent and down). A root has none.
    pub fn siblings(&self, id: &str) -> Result<Vec<Related>> {
        let node = self.node(id)?;
        let adj = self.adjacency;
        let mut found: HashSet<u32> = HashSet::new();
        for &p in adj.parents.row(node) {
            found.extend(adj.children.row(p).iter().filter(|&&c| c != node));
        }
        Ok(self.related(found.into_iter().map(|n| (n, 2))))
    }

    /// Ancestors of `id` up to `depth` edges away (1 = parents), each at its
    /// shortest distance. `depth` 0 gives none; use `usize::MAX` for all.
    pub fn ancestors(&self, id: &str, depth: usize) -> Result<Vec<Related>> {
        let node = self.node(id)?;
        Ok(self.related(walk(&self.adjacency.parents, node, depth)))
    }

    /// Descendants of `id` up to `depth` edges away (1 = children), each at
    /// its shortest distance. `depth` 0 gives none; use `usize::MAX` for all.
    pub fn descendants(&self, id: &str, depth: usize) -> Result<Vec<Related>> {
        let node = self.node(id)?;
        Ok(self.related(walk(&self.adjacency.children, node, depth)))
    }

    /// Whether `id` is `ancestor` or one of its descendants at any depth.
    /// Walks up from `id`, so it costs the size of `id`'s ancestry.
    ///
    /// # Errors
    /// [`Error::TermNotFound`] when either id is unknown.
    pub fn is_descendant_of(&self, id: &str, ancestor: &str) -> Result<bool> {
        let node = self.node(id)?;
        let target = self.node(ancestor)?;
        if node == target {
            return Ok(true);
        }
        let mut seen = HashSet::from([node]);
        let mut stack = vec![node];
        while let Some(n) = stack.pop() {
            for &p in self.adjacency.parents.row(n) {
                if p == target {
                    return Ok(true);
                }
                if seen.insert(p) {
                    stack.push(p);
                }
            }
        }
        Ok(false)
    }

    /// The ids of `id` and all its descendants: the set a `--within ID`
    /// filter keeps. Membership tests are a hash lookup.
    pub fn subtree(&self, id: &str) -> Result<HashSet<&'a str>> {
        let node = self.node(id)?;
        let terms = self.ontology.terms();
        let mut set: HashSet<&'a str> = HashSet::from([terms[node as usize].id.as_str()]);
        set.extend(
            walk(&self.adjacency.children, node, usize::MAX)
                .map(|(n, _)| terms[n as usize].id.as_str()),
        );
        Ok(set)
    }

    fn node(&self, id: &str) -> Result<u32> {
        self.ontology
            .index_of(id)
            .map(|i| i as u32)
            .ok_or_else(|| Error::TermNotFound {
                id: super::model::shorten(id),
                ontology: self.ontology.name().to_string(),
            })
    }

    fn related(&self, nodes: impl Iterator<Item = (u32, u32)>) -> Vec<Related> {
        let terms = self.ontology.terms();
        let mut out: Vec<Related> = nodes
            .map(|(n, distance)| Related {
                id: terms[n as usize].id.clone(),
                label: terms[n as usize].label.clone(),
                distance,
            })
            .collect();
        out.sort_by(|a, b| a.distance.cmp(&b.distance).then_with(|| a.id.cmp(&b.id)));
        out
    }
}

/// Parent and child lists of every term, by term index.
#[derive(Debug, Clone)]
pub(crate) struct Adjacency {
    pub(crate) parents: Rows,
    pub(crate) children: Rows,
}

impl Adjacency {
    pub(crate) fn build(ontology: &Ontology) -> Adjacency {
        let terms = ontology.terms();
        let mut edges: Vec<(u32, u32)> = Vec::new(); // (child, parent)
        for (i, term) in terms.iter().enumerate() {
            let first = edges.len();
            for parent in &term.parents {
                if let Some(p) = ontology.index_of(parent) {
                    let edge = (i as u32, p as u32);
                    if p != i && !edges[first..].contains(&edge) {
                        edges.push(edge);
                    }
                }
            }
        }
        let parents = Rows::new(terms.len(), edges.iter().copied());
        let children = Rows::new(terms.len(), edges.iter().map(|&(c, p)| (p, c)));
        Adjacency { parents, children }
    }
}

/// Compressed rows: the targets of node `n` are `targets[offsets[n]..offsets[n + 1]]`,
/// in the order the edges were given.
#[derive(Debug, Clone)]
pub(crate) struct Rows {
    offsets: Vec<u32>,
    targets: Vec<u32>,
}

impl Rows {
    fn new(nodes: usize, edges: impl Iterator<Item = (u32, u32)> + Clone) -> Rows {
        let mut offsets = vec![0u32; nodes + 1];
        for (from, _) in edges.clone() {
            offsets[from as usize + 1] += 1;
        }
        for n in 0..nodes {
            offsets[n + 1] += offsets[n];
        }
        let mut fill = offsets.clone();
        let mut targets = vec![0u32; offsets[nodes] as usize];
        for (from, to) in edges {
            let slot = &mut fill[from as usize];
            targets[*slot as usize] = to;
            *slot += 1;
        }
        Rows { offsets, targets }
    }

    pub(crate) fn row(&self, node: u32) -> &[u32] {
        let n = node as usize;
        &self.targets[self.offsets[n] as usize..self.offsets[n + 1] as usize]
    }
}

/// Breadth-first walk along `rows` from `start` (excluded), up to `depth`
/// edges; yields each reached node once with its shortest distance.
pub(crate) fn walk(rows: &Rows, start: u32, depth: usize) -> impl Iterator<Item = (u32, u32)> {
    let mut dist: HashMap<u32, u32> = HashMap::new();
    let mut frontier = vec![start];
    let mut level: u32 = 0;
    while !frontier.is_empty() && (level as usize) < depth {
        level += 1;
        let mut next = Vec::new();
        for n in frontier {
            for &m in rows.row(n) {
                if m != start && !dist.contains_key(&m) {
                    dist.insert(m, level);
                    next.push(m);
                }
            }
        }
        frontier = next;
    }
    dist.into_iter()
}
