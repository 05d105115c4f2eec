//! An HNSW graph (Malkov & Yashunin) over unit vectors with cosine distance
//! `1 − dot`, laid out for search speed: all vectors in one row-major array,
//! their 8-bit codes in another ([`codes`]), all level-0 link lists in a
//! third (fixed `2m + 1` words per node), the few upper-level lists apart.
//! Walks (insertion and search) score the codes, prefetching the unvisited
//! neighbours' codes before scoring them; a search ranks its final
//! candidates again by the exact `f32` vectors. Keys are the caller's `u64`s;
//! nodes are dense `u32`s in insertion order. Deleted keys stay as routing
//! nodes, flagged and never returned. A saved graph (see [`file`]) can be
//! searched straight from a memory map and is copied into memory by the
//! first insertion.

mod build;
pub(crate) mod codes;
pub(crate) mod file;
mod search;

use std::collections::HashMap;
use std::sync::atomic::AtomicU32;
use std::sync::{Mutex, PoisonError};

use memmap2::Mmap;

use lobster_vector_core::flat::kernel;
use lobster_vector_core::Metric;

use build::{Builder, Top};
use search::{LinkLists, Visited, Walk};

/// Highest level a node can get.
const MAX_LEVEL: usize = 15;

/// Graph shape fixed when the graph is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shape {
    pub dim: usize,
    /// Links per node on upper levels; `2m` on level 0.
    pub m: usize,
}

/// A section of plain words: owned, or a range of a shared memory map.
#[derive(Debug)]
enum Section<T> {
    Owned(Vec<T>),
    Mapped {
        map: std::sync::Arc<Mmap>,
        offset: usize,
        len: usize,
    },
}

/// Types that may be read straight from mapped little-endian bytes.
trait Plain: Copy {}
impl Plain for f32 {}
impl Plain for i8 {}
impl Plain for u32 {}

impl<T: Plain> Section<T> {
    fn as_slice(&self) -> &[T] {
        match self {
            Section::Owned(v) => v,
            Section::Mapped { map, offset, len } => {
                let bytes = &map[*offset..*offset + len * size_of::<T>()];
                assert_eq!(
                    bytes.as_ptr() as usize % align_of::<T>(),
                    0,
                    "a mapped section is aligned for its type"
                );
                // SAFETY: `file::view` only creates sections whose byte range lies
                // inside the map and starts at an offset aligned for `T` (the map
                // itself is page-aligned); `T` is a plain number type for which every
                // bit pattern is valid; the map outlives the borrow (it is owned by
                // `self`) and is never written.
                unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<T>(), *len) }
            }
        }
    }

    fn to_mut(&mut self) -> &mut Vec<T> {
        if let Section::Mapped { .. } = self {
            *self = Section::Owned(self.as_slice().to_vec());
        }
        match self {
            Section::Owned(v) => v,
            Section::Mapped { .. } => unreachable!("converted above"),
        }
    }
}

/// The graph. Searches take `&self` and may run concurrently; insertions
/// take `&mut self`.
#[derive(Debug)]
pub(crate) struct Graph {
    shape: Shape,
    keys: Vec<u64>,
    nodes: HashMap<u64, u32>,
    deleted: Vec<bool>,
    dead: usize,
    levels: Vec<u8>,
    upper_at: Vec<u32>,
    upper: Vec<u32>,
    vectors: Section<f32>,
    /// 8-bit codes of the vectors and their inverse scales (see [`codes`]).
    codes: Section<i8>,
    inv: Section<f32>,
    level0: Section<u32>,
    top: Top,
    /// Visit marks of finished searches, reused by the next ones.
    visited: Mutex<Vec<Visited>>,
}

/// Level of a new node with key `key`: `⌊−ln(u)/ln(m)⌋` for `u` uniform in
/// (0, 1] drawn from the key (deterministic, independent of thread timing).
fn level_of(key: u64, m: usize) -> u8 {
    // SplitMix64.
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let u = ((z >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let level = -u.ln() / (m.max(2) as f64).ln();
    level.min(MAX_LEVEL as f64) as u8
}

fn as_atomic(words: &mut [u32]) -> &[AtomicU32] {
    assert_eq!(words.as_ptr() as usize % align_of::<AtomicU32>(), 0);
    // SAFETY: `AtomicU32` has the size and bit validity of `u32` and the
    // alignment is checked above; the exclusive borrow guarantees no other
    // access for the lifetime of the result.
    unsafe { &*(words as *mut [u32] as *const [AtomicU32]) }
}

impl Graph {
    /// An empty graph; `m` is clamped to `2..=1024`.
    pub fn new(shape: Shape) -> Self {
        Self {
            shape: Shape {
                dim: shape.dim,
                m: shape.m.clamp(2, file::MAX_M),
            },
            keys: Vec::new(),
            nodes: HashMap::new(),
            deleted: Vec::new(),
            dead: 0,
            levels: Vec::new(),
            upper_at: Vec::new(),
            upper: Vec::new(),
            vectors: Section::Owned(Vec::new()),
            codes: Section::Owned(Vec::new()),
            inv: Section::Owned(Vec::new()),
            level0: Section::Owned(Vec::new()),
            top: Top {
                entry: None,
                max_level: 0,
            },
            visited: Mutex::new(Vec::new()),
        }
    }

    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Nodes, deleted ones included.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Deleted nodes.
    pub fn dead(&self) -> usize {
        self.dead
    }

    /// Whether vectors or links are still read from a memory map.
    #[cfg(test)]
    pub fn is_mapped(&self) -> bool {
        matches!(self.vectors, Section::Mapped { .. })
            || matches!(self.level0, Section::Mapped { .. })
    }

    /// Whether `key` is a node (live or deleted).
    pub fn contains(&self, key: u64) -> bool {
        self.nodes.contains_key(&key)
    }

    /// Whether `key` is a live node.
    pub fn is_live(&self, key: u64) -> bool {
        self.nodes
            .get(&key)
            .is_some_and(|&n| !self.deleted[n as usize])
    }

    /// The keys of deleted nodes, ascending.
    pub fn deleted_keys(&self) -> Vec<u64> {
        let mut keys: Vec<u64> = (0..self.len())
            .filter(|&n| self.deleted[n])
            .map(|n| self.keys[n])
            .collect();
        keys.sort_unstable();
        keys
    }

    /// The stored vector of `key`.
    pub fn vector(&self, key: u64) -> Option<&[f32]> {
        let node = *self.nodes.get(&key)? as usize;
        let dim = self.shape.dim;
        self.vectors.as_slice().get(node * dim..(node + 1) * dim)
    }

    /// Flags `key` deleted; returns whether it was live.
    pub fn delete(&mut self, key: u64) -> bool {
        match self.nodes.get(&key) {
            Some(&n) if !self.deleted[n as usize] => {
                self.deleted[n as usize] = true;
                self.dead += 1;
                true
            }
            _ => false,
        }
    }

    /// Copies mapped sections into memory.
    pub fn make_owned(&mut self) {
        self.vectors.to_mut();
        self.codes.to_mut();
        self.inv.to_mut();
        self.level0.to_mut();
    }

    fn walk(&self) -> Walk<'_, [u32]> {
        Walk {
            vectors: self.vectors.as_slice(),
            codes: self.codes.as_slice(),
            inv: self.inv.as_slice(),
            dim: self.shape.dim,
            links: LinkLists {
                level0: self.level0.as_slice(),
                upper: &self.upper,
                upper_at: &self.upper_at,
                levels: &self.levels,
                m: self.shape.m,
            },
            dot: codes::DotI8::for_this_cpu(),
        }
    }

    /// Adds `(key, unit vector)` items whose keys are absent and whose vectors
    /// have the graph's dimension (the caller checks both), then links them:
    /// the first `serial` of them by this thread, the rest by `threads`
    /// threads. Returns the new nodes.
    pub fn add(
        &mut self,
        items: &[(u64, &[f32])],
        ef_construction: usize,
        serial: usize,
        threads: usize,
    ) -> Vec<u32> {
        let Shape { dim, m } = self.shape;
        let first = self.len() as u32;
        let vectors = self.vectors.to_mut();
        vectors.reserve(items.len() * dim);
        let codes = self.codes.to_mut();
        codes.reserve(items.len() * dim);
        let inv = self.inv.to_mut();
        let level0 = self.level0.to_mut();
        level0.resize(level0.len() + items.len() * (2 * m + 1), 0);
        for (i, (key, v)) in items.iter().enumerate() {
            debug_assert_eq!(v.len(), dim);
            vectors.extend_from_slice(v);
            inv.push(codes::encode_into(v, codes));
            let level = level_of(*key, m);
            self.keys.push(*key);
            self.nodes.insert(*key, first + i as u32);
            self.deleted.push(false);
            self.levels.push(level);
            if level == 0 {
                self.upper_at.push(u32::MAX);
            } else {
                self.upper_at.push(self.upper.len() as u32);
                self.upper
                    .resize(self.upper.len() + level as usize * (m + 1), 0);
            }
        }
        let nodes: Vec<u32> = (first..first + items.len() as u32).collect();
        self.link(&nodes, ef_construction, serial, threads);
        nodes
    }

    /// (Re-)links `nodes`, the first `serial` of them by this thread.
    pub fn link(&mut self, nodes: &[u32], ef_construction: usize, serial: usize, threads: usize) {
        self.make_owned();
        let walk = Walk {
            vectors: self.vectors.as_slice(),
            codes: self.codes.as_slice(),
            inv: self.inv.as_slice(),
            dim: self.shape.dim,
            links: LinkLists {
                level0: as_atomic(self.level0.to_mut()),
                upper: as_atomic(&mut self.upper),
                upper_at: &self.upper_at,
                levels: &self.levels,
                m: self.shape.m,
            },
            dot: codes::DotI8::for_this_cpu(),
        };
        let builder = Builder::new(walk, &self.levels, ef_construction, self.top);
        let (head, tail) = nodes.split_at(serial.min(nodes.len()));
        builder.insert_serial(head.iter().copied());
        builder.insert_parallel(tail, threads);
        self.top = builder.top();
    }

    /// Live nodes that no level-0 list links to, but for the entry point: no
    /// search can reach them. (The neighbour heuristic leaves a few such
    /// nodes when it prunes full lists.)
    pub fn orphans(&self) -> Vec<u32> {
        let n = self.len();
        let stride = 2 * self.shape.m + 1;
        let level0 = self.level0.as_slice();
        let mut linked = vec![false; n];
        for list in level0.chunks_exact(stride) {
            let count = (list[0] as usize).min(stride - 1);
            for &nb in &list[1..=count] {
                if let Some(l) = linked.get_mut(nb as usize) {
                    *l = true;
                }
            }
        }
        (0..n as u32)
            .filter(|&i| {
                !linked[i as usize] && !self.deleted[i as usize] && Some(i) != self.top.entry
            })
            .collect()
    }

    /// The keys whose node is not among the `k` nearest of a search for its
    /// own vector with candidate list `ef`: nodes a concurrent insert left
    /// unreachable (rare). Checked by `threads` threads.
    #[cfg(test)]
    pub fn unreachable(&self, nodes: &[u32], k: usize, ef: usize, threads: usize) -> Vec<u32> {
        let chunk = nodes.len().div_ceil(threads.max(1)).max(1);
        std::thread::scope(|s| {
            let workers: Vec<_> = nodes
                .chunks(chunk)
                .map(|part| {
                    s.spawn(move || {
                        let walk = self.walk();
                        part.iter()
                            .copied()
                            .filter(|&n| {
                                !self
                                    .search_nodes(walk.vector(n), k, ef, false)
                                    .iter()
                                    .any(|c| c.node == n)
                            })
                            .collect::<Vec<u32>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().unwrap_or_default())
                .collect()
        })
    }

    fn search_nodes(
        &self,
        q: &[f32],
        k: usize,
        ef: usize,
        skip_deleted: bool,
    ) -> Vec<search::Near> {
        let Some(mut ep) = self.top.entry else {
            return Vec::new();
        };
        let walk = self.walk();
        let mut visited = self
            .visited
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        let mut buf = Vec::new();
        let code = codes::encode(q);
        let mut d_ep = walk.distance(&code, ep);
        for l in (1..=self.top.max_level).rev() {
            walk.greedy(&code, &mut ep, &mut d_ep, l, &mut buf);
        }
        let deleted = (skip_deleted && self.dead > 0).then_some(&self.deleted[..]);
        let found = walk.beam(
            &code,
            ep,
            d_ep,
            ef.max(k),
            0,
            deleted,
            &mut visited,
            &mut buf,
        );
        self.visited
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(visited);
        // The walk ranked by codes; the candidates are ranked again exactly.
        let mut found: Vec<search::Near> = found
            .into_iter()
            .map(|c| search::Near {
                dist: walk.exact_distance(q, c.node),
                node: c.node,
            })
            .collect();
        found.sort_unstable();
        found.truncate(k);
        found
    }

    /// The (up to) `k` nearest live keys to `q` and their distances, nearest
    /// first, by HNSW search with candidate list `max(ef, k)`.
    pub fn search(&self, q: &[f32], k: usize, ef: usize) -> Vec<(u64, f32)> {
        self.search_nodes(q, k, ef, true)
            .into_iter()
            .map(|c| (self.keys[c.node as usize], c.dist))
            .collect()
    }

    /// The `k` nearest live keys to `q` by a full scan, nearest first.
    pub fn exact(&self, q: &[f32], k: usize) -> Vec<(u64, f32)> {
        let want = (k + self.dead).min(self.len());
        kernel::top_k(self.vectors.as_slice(), self.shape.dim, q, want)
            .into_iter()
            .filter(|&(_, n)| !self.deleted[n as usize])
            .take(k)
            .map(|(dot, n)| {
                (
                    self.keys[n as usize],
                    Metric::Cosine.distance_from_unit_dot(dot),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lobster_vector_core::testing::data;

    fn unit(seed: u64, n: usize, dim: usize) -> Vec<Vec<f32>> {
        let mut vecs = data::clustered(seed, n, dim, 64, 0.6);
        for v in &mut vecs {
            lobster_vector_core::metric::normalize(v);
        }
        vecs
    }

    fn graph(n: usize, dim: usize, threads: usize) -> (Graph, Vec<Vec<f32>>) {
        let vecs = unit(7, n, dim);
        let mut g = Graph::new(Shape { dim, m: 16 });
        let items: Vec<(u64, &[f32])> = vecs
            .iter()
            .enumerate()
            .map(|(i, v)| (1_000 + i as u64, v.as_slice()))
            .collect();
        g.add(&items, 100, 500, threads);
        (g, vecs)
    }

    fn recall(g: &Graph, queries: &[Vec<f32>], k: usize, ef: usize) -> f64 {
        let mut hit = 0;
        for q in queries {
            let exact: Vec<u64> = g.exact(q, k).into_iter().map(|h| h.0).collect();
            let approx = g.search(q, k, ef);
            hit += approx.iter().filter(|h| exact.contains(&h.0)).count();
        }
        hit as f64 / (queries.len() * k) as f64
    }

    #[test]
    fn serial_and_parallel_graphs_reach_high_recall() {
        for threads in [1, 2] {
            let (g, _) = graph(5_000, 48, threads);
            let queries = unit(99, 100, 48);
            let r = recall(&g, &queries, 10, 64);
            let wide = recall(&g, &queries, 10, 256);
            eprintln!("threads {threads}: recall@10 {r} at ef 64, {wide} at ef 256");
            assert!(r >= 0.93, "threads {threads}: recall@10 {r}");
            assert!(
                wide >= 0.99,
                "threads {threads}: recall@10 {wide} at ef 256"
            );
            assert_eq!(g.len(), 5_000);
        }
    }

    #[test]
    fn every_node_finds_itself_and_distances_are_cosine() {
        let all: Vec<u32> = (0..3_000).collect();
        // Linked by two threads, a node now and then ends up unreachable
        // (how many depends on the threads' interleaving: 0 to 4 seen; a
        // broken concurrent insert loses hundreds); by one thread, in this
        // data, none.
        let (parallel, _) = graph(3_000, 32, 2);
        let lost = parallel.unreachable(&all, 1, 64, 2).len();
        assert!(lost <= 15, "{lost} of 3,000 nodes do not find themselves");
        let (g, vecs) = graph(3_000, 32, 1);
        assert!(g.unreachable(&all, 1, 64, 2).is_empty());
        let hits = g.search(&vecs[5], 3, 64);
        assert_eq!(hits[0].0, 1_005);
        assert!(hits[0].1.abs() < 1e-5);
        let d = 1.0 - kernel::dot(&vecs[5], g.vector(hits[1].0).expect("a node"));
        assert!((hits[1].1 - d).abs() < 1e-6);
    }

    #[test]
    fn deleted_keys_are_never_returned() {
        let (mut g, vecs) = graph(3_000, 32, 1);
        for i in 0..1_500u64 {
            assert!(g.delete(1_000 + 2 * i));
        }
        assert!(!g.delete(1_000));
        assert_eq!(g.dead(), 1_500);
        for q in vecs.iter().step_by(37) {
            let hits = g.search(q, 10, 64);
            assert_eq!(hits.len(), 10);
            assert!(hits.iter().all(|h| h.0 % 2 == 1), "{hits:?}");
            let exact = g.exact(q, 10);
            assert!(exact.iter().all(|h| h.0 % 2 == 1));
        }
        assert_eq!(g.deleted_keys().len(), 1_500);
        assert!(!g.is_live(1_000) && g.is_live(1_001) && g.contains(1_000));
    }

    /// Removes every level-0 link to `node`.
    fn unlink(g: &mut Graph, node: u32) {
        let stride = 2 * g.shape.m + 1;
        for list in g.level0.to_mut().chunks_exact_mut(stride) {
            let count = list[0] as usize;
            let kept: Vec<u32> = list[1..=count]
                .iter()
                .copied()
                .filter(|&n| n != node)
                .collect();
            list[0] = kept.len() as u32;
            list[1..=kept.len()].copy_from_slice(&kept);
        }
    }

    #[test]
    fn orphans_are_found_and_linked_again() {
        let (mut g, vecs) = graph(1_000, 32, 1);
        let node = (0..1_000u32)
            .find(|&n| Some(n) != g.top.entry)
            .expect("a node");
        unlink(&mut g, node);
        assert_eq!(g.orphans(), vec![node]);
        g.link(&[node], 100, 1, 1);
        assert!(g.orphans().is_empty());
        let hits = g.search(&vecs[node as usize], 1, 64);
        assert_eq!(hits[0].0, 1_000 + u64::from(node));
        // A deleted node needs no links.
        unlink(&mut g, node);
        assert!(g.delete(1_000 + u64::from(node)));
        assert!(g.orphans().is_empty());
    }

    #[test]
    fn empty_and_tiny_graphs() {
        let mut g = Graph::new(Shape { dim: 4, m: 16 });
        assert!(g.search(&[1.0, 0.0, 0.0, 0.0], 5, 10).is_empty());
        g.add(&[(7, &[1.0, 0.0, 0.0, 0.0])], 100, 10, 1);
        let hits = g.search(&[0.0, 1.0, 0.0, 0.0], 5, 10);
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0, 7);
        assert!((hits[0].1 - 1.0).abs() < 1e-6);
    }

    #[test]
    fn levels_follow_the_geometric_law() {
        let n = 100_000u64;
        let above: usize = (0..n).filter(|&k| level_of(k, 16) >= 1).count();
        // P(level ≥ 1) = 1/16.
        let p = above as f64 / n as f64;
        assert!((p - 1.0 / 16.0).abs() < 0.005, "{p}");
    }
}
