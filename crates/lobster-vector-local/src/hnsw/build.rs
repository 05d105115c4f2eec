//! Linking new nodes into the graph: HNSW insertion with the neighbour
//! selection heuristic, by one thread or several. Several threads follow
//! hnswlib's scheme: each link list is rewritten under its node's lock (here
//! a lock stripe), readers see link words through atomics, and a node whose
//! level tops the graph holds the entry-point lock for its whole insertion.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::search::{Near, Visited, Walk};

/// Lock stripes guarding link lists: node `i` uses stripe `i % STRIPES`. A
/// thread never holds two stripes at once.
const STRIPES: usize = 1_024;

/// The graph's entry point and top level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Top {
    pub entry: Option<u32>,
    pub max_level: usize,
}

/// Per-thread working memory of insertions.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    visited: Visited,
    buf: Vec<u32>,
}

/// Inserts nodes whose vectors, levels and (empty) link lists are already in
/// place.
pub(crate) struct Builder<'a> {
    pub walk: Walk<'a, [AtomicU32]>,
    pub levels: &'a [u8],
    pub m: usize,
    pub ef_construction: usize,
    top: Mutex<Top>,
    stripes: Vec<Mutex<()>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<'a> Builder<'a> {
    pub fn new(
        walk: Walk<'a, [AtomicU32]>,
        levels: &'a [u8],
        ef_construction: usize,
        top: Top,
    ) -> Self {
        let m = walk.links.m;
        Self {
            walk,
            levels,
            m,
            ef_construction,
            top: Mutex::new(top),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    pub fn top(&self) -> Top {
        *lock(&self.top)
    }

    /// Inserts `nodes` in order by this thread.
    pub fn insert_serial(&self, nodes: impl IntoIterator<Item = u32>) {
        let mut scratch = Scratch::default();
        for node in nodes {
            self.insert(node, &mut scratch);
        }
    }

    /// Inserts `nodes` with `threads` threads taking the next node in turn.
    pub fn insert_parallel(&self, nodes: &[u32], threads: usize) {
        if threads <= 1 || nodes.len() < 2 {
            return self.insert_serial(nodes.iter().copied());
        }
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    let mut scratch = Scratch::default();
                    while let Some(&node) = nodes.get(next.fetch_add(1, Relaxed)) {
                        self.insert(node, &mut scratch);
                    }
                });
            }
        });
    }

    /// Links `node` (inserted or not) into every level it has: searches for
    /// its nearest nodes, replaces its own lists with a heuristic selection
    /// of them and adds itself to theirs.
    pub fn insert(&self, node: u32, s: &mut Scratch) {
        let walk = &self.walk;
        let q = walk.code(node);
        let level = self.levels[node as usize] as usize;
        let mut top = lock(&self.top);
        let Top { entry, max_level } = *top;
        let Some(mut ep) = entry.filter(|&e| e != node) else {
            *top = Top {
                entry: Some(node),
                max_level: level.max(max_level),
            };
            return;
        };
        // A node above the current top becomes the entry point once linked;
        // until then no other insertion may start from the old one.
        let raise = if level > max_level {
            Some(top)
        } else {
            drop(top);
            None
        };
        let mut d_ep = walk.distance(&q, ep);
        for l in (level + 1..=max_level).rev() {
            walk.greedy(&q, &mut ep, &mut d_ep, l, &mut s.buf);
        }
        for l in (0..=level.min(max_level)).rev() {
            let found = walk
                .beam(
                    &q,
                    ep,
                    d_ep,
                    self.ef_construction,
                    l,
                    None,
                    &mut s.visited,
                    &mut s.buf,
                )
                .into_sorted_vec();
            let found: Vec<Near> = found.into_iter().filter(|c| c.node != node).collect();
            if let Some(best) = found.first() {
                ep = best.node;
                d_ep = best.dist;
            }
            let chosen = self.select(&found, self.m);
            self.write_list(node, l, &chosen);
            for &nb in &chosen {
                self.connect(nb, node, l);
            }
        }
        if let Some(mut top) = raise {
            *top = Top {
                entry: Some(node),
                max_level: level,
            };
        }
    }

    /// hnswlib's neighbour heuristic: walking `candidates` nearest first,
    /// keeps one unless a kept node is closer to it than the query is; at most
    /// `max` nodes.
    fn select(&self, candidates: &[Near], max: usize) -> Vec<u32> {
        if candidates.len() <= max {
            return candidates.iter().map(|c| c.node).collect();
        }
        let mut chosen: Vec<u32> = Vec::with_capacity(max);
        for c in candidates {
            if chosen.len() >= max {
                break;
            }
            let v = self.walk.code(c.node);
            if chosen.iter().all(|&s| self.walk.distance(&v, s) >= c.dist) {
                chosen.push(c.node);
            }
        }
        chosen
    }

    fn capacity(&self, level: usize) -> usize {
        if level == 0 {
            2 * self.m
        } else {
            self.m
        }
    }

    fn stripe(&self, node: u32) -> MutexGuard<'_, ()> {
        lock(&self.stripes[node as usize % STRIPES])
    }

    /// The members of the list at `(words, at)`.
    fn members(&self, words: &[AtomicU32], at: usize, cap: usize) -> Vec<u32> {
        let count = (words[at].load(Relaxed) as usize).min(cap);
        (1..=count).map(|j| words[at + j].load(Relaxed)).collect()
    }

    /// Writes `members` as `owner`'s list at `(words, at)`; when more than
    /// `cap`, the heuristic picks which stay.
    fn store(&self, owner: u32, words: &[AtomicU32], at: usize, cap: usize, members: Vec<u32>) {
        let chosen = if members.len() <= cap {
            members
        } else {
            let v = self.walk.code(owner);
            let mut candidates: Vec<Near> = members
                .iter()
                .map(|&c| Near {
                    dist: self.walk.distance(&v, c),
                    node: c,
                })
                .collect();
            candidates.sort_unstable();
            self.select(&candidates, cap)
        };
        for (j, &l) in chosen.iter().enumerate() {
            words[at + 1 + j].store(l, Relaxed);
        }
        words[at].store(chosen.len() as u32, Relaxed);
    }

    /// Sets `node`'s list at `level` to `links` plus whatever other
    /// insertions linked into it meanwhile.
    fn write_list(&self, node: u32, level: usize, links: &[u32]) {
        let cap = self.capacity(level);
        let _g = self.stripe(node);
        let (words, at) = self.walk.links.list(node, level);
        let mut all = self.members(words, at, cap);
        all.extend_from_slice(links);
        all.sort_unstable();
        all.dedup();
        self.store(node, words, at, cap, all);
    }

    /// Adds `node` to `nb`'s list at `level`.
    fn connect(&self, nb: u32, node: u32, level: usize) {
        let cap = self.capacity(level);
        let _g = self.stripe(nb);
        let (words, at) = self.walk.links.list(nb, level);
        let mut current = self.members(words, at, cap);
        if !current.contains(&node) {
            current.push(node);
            self.store(nb, words, at, cap, current);
        }
    }
}
