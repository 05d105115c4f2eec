//! How general each term is: its depth below the roots and the size of the
//! subtree under it (the generality features of the ranker).

use crate::ontology::Ontology;

/// Per term index: depth (edges from the nearest root) and descendant count.
#[derive(Debug, Clone)]
pub struct TermStructure {
    depth: Vec<u32>,
    descendants: Vec<f32>,
}

/// Counts above this are treated alike (the feature is a logarithm).
const MAX_COUNT: f32 = 1.0e6;

impl TermStructure {
    /// Walks the graph once. Descendants are counted along every path (a
    /// term reached twice counts twice), which keeps the walk linear; the
    /// ranker only sees the logarithm.
    pub fn build(ontology: &Ontology) -> TermStructure {
        let adj = ontology.adjacency();
        let n = ontology.len();
        // Depth: breadth-first from the roots.
        let mut depth = vec![u32::MAX; n];
        let mut frontier: Vec<u32> = (0..n as u32)
            .filter(|&t| adj.parents.row(t).is_empty())
            .collect();
        for &t in &frontier {
            depth[t as usize] = 0;
        }
        let mut level = 0;
        while !frontier.is_empty() {
            level += 1;
            let mut next = Vec::new();
            for t in frontier {
                for &c in adj.children.row(t) {
                    if depth[c as usize] == u32::MAX {
                        depth[c as usize] = level;
                        next.push(c);
                    }
                }
            }
            frontier = next;
        }
        for d in &mut depth {
            if *d == u32::MAX {
                *d = 0; // on a cycle without a root
            }
        }
        // Descendants: children before parents, by decreasing depth.
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by_key(|&t| std::cmp::Reverse(depth[t as usize]));
        let mut descendants = vec![0.0f32; n];
        for t in order {
            let sum: f32 = adj
                .children
                .row(t)
                .iter()
                .filter(|&&c| depth[c as usize] > depth[t as usize])
                .map(|&c| 1.0 + descendants[c as usize])
                .sum();
            descendants[t as usize] = sum.min(MAX_COUNT);
        }
        TermStructure { depth, descendants }
    }

    /// Edges from the nearest root.
    pub fn depth(&self, term: u32) -> u32 {
        self.depth.get(term as usize).copied().unwrap_or(0)
    }

    /// Descendants counted along every path, capped at a million.
    pub fn descendants(&self, term: u32) -> f32 {
        self.descendants.get(term as usize).copied().unwrap_or(0.0)
    }
}
