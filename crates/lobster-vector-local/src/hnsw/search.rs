//! The search primitives every graph walk shares: candidate ordering, visit
//! marks, link access and the beam search of one level.

use std::borrow::Cow;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use lobster_vector_core::flat::kernel;
use lobster_vector_core::Metric;

use super::codes::{self, Code};

/// A node and its distance to the query; ordered by distance, then node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Near {
    pub dist: f32,
    pub node: u32,
}

impl Eq for Near {}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.dist
            .total_cmp(&other.dist)
            .then(self.node.cmp(&other.node))
    }
}

/// Read access to link words: plain slices while only searches run, atomics
/// while a parallel insert rewrites lists under per-node locks.
pub(crate) trait Words: Sync {
    fn word(&self, i: usize) -> u32;
}

impl Words for [u32] {
    #[inline(always)]
    fn word(&self, i: usize) -> u32 {
        self[i]
    }
}

impl Words for [AtomicU32] {
    #[inline(always)]
    fn word(&self, i: usize) -> u32 {
        self[i].load(Relaxed)
    }
}

/// Where a node's link list for one level lives: `words[at]` is the count,
/// `words[at + 1 ..= at + count]` the neighbours.
pub(crate) struct LinkLists<'a, W: Words + ?Sized> {
    /// Level 0: `2m + 1` words per node.
    pub level0: &'a W,
    /// Levels ≥ 1: `m + 1` words per level, per node that has them.
    pub upper: &'a W,
    /// Per node: offset of its level-1 list in `upper` (`u32::MAX`: none).
    pub upper_at: &'a [u32],
    /// Per node: its top level.
    pub levels: &'a [u8],
    pub m: usize,
}

impl<W: Words + ?Sized> LinkLists<'_, W> {
    /// `(words, offset of the count)` of `node`'s list at `level`.
    #[inline(always)]
    pub fn list(&self, node: u32, level: usize) -> (&W, usize) {
        if level == 0 {
            (self.level0, node as usize * (2 * self.m + 1))
        } else {
            let at = self.upper_at[node as usize] as usize + (level - 1) * (self.m + 1);
            (self.upper, at)
        }
    }

    /// The neighbours of `node` at `level` in `out` (none if `node` does not
    /// reach that level).
    #[inline(always)]
    pub fn neighbours(&self, node: u32, level: usize, out: &mut Vec<u32>) {
        out.clear();
        if level > 0
            && self
                .levels
                .get(node as usize)
                .is_none_or(|&l| (l as usize) < level)
        {
            return;
        }
        let (words, at) = self.list(node, level);
        let cap = if level == 0 { 2 * self.m } else { self.m };
        let count = (words.word(at) as usize).min(cap);
        out.extend((1..=count).map(|j| words.word(at + j)));
    }
}

/// Visit marks for one walk at a time: a node is visited when its tag equals
/// the current mark, so a reset is one increment.
#[derive(Debug, Default)]
pub(crate) struct Visited {
    tags: Vec<u16>,
    mark: u16,
}

impl Visited {
    /// Forgets all visits; makes room for `n` nodes.
    pub fn reset(&mut self, n: usize) {
        if self.tags.len() < n {
            self.tags.resize(n, 0);
        }
        self.mark = self.mark.wrapping_add(1);
        if self.mark == 0 {
            self.tags.fill(0);
            self.mark = 1;
        }
    }

    /// Marks `node`; returns whether it was marked already.
    #[inline(always)]
    pub fn test_and_set(&mut self, node: u32) -> bool {
        let t = &mut self.tags[node as usize];
        let seen = *t == self.mark;
        *t = self.mark;
        seen
    }
}

/// Hints the CPU to start loading `node`'s code.
#[inline(always)]
fn prefetch(codes: &[i8], dim: usize, node: u32) {
    #[cfg(target_arch = "x86_64")]
    {
        let at = node as usize * dim;
        if at < codes.len() {
            // SAFETY: prefetching is a hint that never faults; the address is
            // inside `codes` (checked above).
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                let p = codes.as_ptr().add(at);
                _mm_prefetch::<_MM_HINT_T0>(p);
                _mm_prefetch::<_MM_HINT_T0>(p.add(64));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (codes, dim, node);
    }
}

/// The graph data one walk reads.
pub(crate) struct Walk<'a, W: Words + ?Sized> {
    /// Row-major unit vectors.
    pub vectors: &'a [f32],
    /// Their 8-bit codes (row-major) and inverse scales (see [`codes`](super::codes)).
    pub codes: &'a [i8],
    pub inv: &'a [f32],
    pub dim: usize,
    pub links: LinkLists<'a, W>,
    /// The code dot product, chosen for this CPU when the walk starts.
    pub dot: codes::DotI8,
}

impl<W: Words + ?Sized> Walk<'_, W> {
    #[inline(always)]
    pub fn vector(&self, node: u32) -> &[f32] {
        let at = node as usize * self.dim;
        &self.vectors[at..at + self.dim]
    }

    /// The code of `node`, borrowed.
    #[inline(always)]
    pub fn code(&self, node: u32) -> Code<'_> {
        let at = node as usize * self.dim;
        Code {
            code: Cow::Borrowed(&self.codes[at..at + self.dim]),
            inv: self.inv[node as usize],
        }
    }

    /// Approximate distance of the coded query `q` to `node`.
    #[inline(always)]
    pub fn distance(&self, q: &Code<'_>, node: u32) -> f32 {
        let at = node as usize * self.dim;
        self.dot.distance(
            &q.code,
            q.inv,
            &self.codes[at..at + self.dim],
            self.inv[node as usize],
        )
    }

    /// Exact distance of the query `q` to `node`.
    #[inline(always)]
    pub fn exact_distance(&self, q: &[f32], node: u32) -> f32 {
        Metric::Cosine.distance_from_unit_dot(kernel::dot(q, self.vector(node)))
    }

    /// Greedy descent at `level` from `(ep, d_ep)` to a local minimum.
    pub fn greedy(
        &self,
        q: &Code<'_>,
        ep: &mut u32,
        d_ep: &mut f32,
        level: usize,
        buf: &mut Vec<u32>,
    ) {
        loop {
            let mut changed = false;
            self.links.neighbours(*ep, level, buf);
            for &nb in buf.iter() {
                let d = self.distance(q, nb);
                if d < *d_ep {
                    *d_ep = d;
                    *ep = nb;
                    changed = true;
                }
            }
            if !changed {
                return;
            }
        }
    }

    /// Beam search of `level` from `ep` with a candidate list of `ef`: the up
    /// to `ef` nearest nodes found that are not flagged in `deleted`, as a
    /// max-heap. Deleted nodes are still walked through.
    #[allow(clippy::too_many_arguments)]
    pub fn beam(
        &self,
        q: &Code<'_>,
        ep: u32,
        d_ep: f32,
        ef: usize,
        level: usize,
        deleted: Option<&[bool]>,
        visited: &mut Visited,
        buf: &mut Vec<u32>,
    ) -> BinaryHeap<Near> {
        let n = self.inv.len();
        visited.reset(n);
        let kept =
            |node: u32| deleted.is_none_or(|d| !d.get(node as usize).copied().unwrap_or(false));
        let mut candidates = BinaryHeap::with_capacity(ef * 2);
        let mut found = BinaryHeap::with_capacity(ef + 1);
        visited.test_and_set(ep);
        let mut bound = f32::INFINITY;
        if kept(ep) {
            found.push(Near {
                dist: d_ep,
                node: ep,
            });
            bound = d_ep;
        }
        candidates.push(Reverse(Near {
            dist: d_ep,
            node: ep,
        }));
        while let Some(Reverse(c)) = candidates.pop() {
            if c.dist > bound && (found.len() >= ef || deleted.is_none()) {
                break;
            }
            self.links.neighbours(c.node, level, buf);
            // Keep the unvisited neighbours and start loading all their
            // vectors before scoring the first.
            buf.retain(|&nb| !visited.test_and_set(nb));
            for &nb in buf.iter() {
                prefetch(self.codes, self.dim, nb);
            }
            for &nb in buf.iter() {
                let d = self.distance(q, nb);
                if found.len() < ef || d < bound {
                    candidates.push(Reverse(Near { dist: d, node: nb }));
                    if kept(nb) {
                        found.push(Near { dist: d, node: nb });
                        if found.len() > ef {
                            found.pop();
                        }
                        if let Some(top) = found.peek() {
                            bound = top.dist;
                        }
                    }
                }
            }
        }
        found
    }
}
