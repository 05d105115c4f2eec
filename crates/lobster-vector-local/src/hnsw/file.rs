//! The graph's file format, written by [`Graph::to_bytes`] and searched in
//! place by [`view`]. All numbers little-endian; every section starts at a
//! multiple of 64 bytes:
//!
//! ```text
//! header (64 bytes): magic "LVHNSW02", dim u32, m u32, nodes u64,
//!                    upper words u64, entry u64 (u64::MAX: none), max level u32
//! keys      u64 × nodes
//! levels    u8  × nodes
//! upper_at  u32 × nodes          offset of a node's level-1 list (u32::MAX: none)
//! upper     u32 × upper words    per level ≥ 1: count + m links
//! inv       f32 × nodes          inverse scales of the codes
//! codes     i8  × nodes × dim    8-bit codes of the vectors (see `codes`)
//! vectors   f32 × nodes × dim    row-major unit vectors
//! level0    u32 × nodes × (2m+1) per node: count + 2m links
//! ```
//!
//! Deleted flags are not part of the file (the caller keeps them apart).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use memmap2::Mmap;

use super::build::Top;
use super::{Graph, Section, Shape, MAX_LEVEL};

const MAGIC: &[u8; 8] = b"LVHNSW02";
const HEADER: usize = 64;
const ALIGN: usize = 64;

/// Largest `m` a graph (and a file) may have.
pub(crate) const MAX_M: usize = 1_024;

fn pad(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Byte ranges of the sections of a file with these counts.
struct Layout {
    keys: usize,
    levels: usize,
    upper_at: usize,
    upper: usize,
    inv: usize,
    codes: usize,
    vectors: usize,
    level0: usize,
    end: usize,
}

impl Layout {
    fn new(shape: Shape, nodes: usize, upper_words: usize) -> Option<Self> {
        let keys = HEADER;
        let levels = keys.checked_add(pad(nodes.checked_mul(8)?))?;
        let upper_at = levels.checked_add(pad(nodes))?;
        let upper = upper_at.checked_add(pad(nodes.checked_mul(4)?))?;
        let inv = upper.checked_add(pad(upper_words.checked_mul(4)?))?;
        let codes = inv.checked_add(pad(nodes.checked_mul(4)?))?;
        let vectors = codes.checked_add(pad(nodes.checked_mul(shape.dim)?))?;
        let level0 = vectors.checked_add(pad(nodes.checked_mul(shape.dim)?.checked_mul(4)?))?;
        let end = level0.checked_add(nodes.checked_mul(2 * shape.m + 1)?.checked_mul(4)?)?;
        Some(Self {
            keys,
            levels,
            upper_at,
            upper,
            inv,
            codes,
            vectors,
            level0,
            end,
        })
    }
}

fn put(out: &mut Vec<u8>, at: usize, bytes: impl IntoIterator<Item = u8>) {
    debug_assert!(out.len() <= at);
    out.resize(at, 0);
    out.extend(bytes);
}

impl Graph {
    /// The graph in the file format.
    pub fn to_bytes(&self) -> Vec<u8> {
        let shape = self.shape;
        let n = self.len();
        let layout =
            Layout::new(shape, n, self.upper.len()).expect("sizes of an in-memory graph fit");
        let mut out = Vec::with_capacity(layout.end);
        out.extend_from_slice(MAGIC);
        out.extend((shape.dim as u32).to_le_bytes());
        out.extend((shape.m as u32).to_le_bytes());
        out.extend((n as u64).to_le_bytes());
        out.extend((self.upper.len() as u64).to_le_bytes());
        out.extend(self.top.entry.map_or(u64::MAX, u64::from).to_le_bytes());
        out.extend((self.top.max_level as u32).to_le_bytes());
        put(
            &mut out,
            layout.keys,
            self.keys.iter().flat_map(|k| k.to_le_bytes()),
        );
        put(&mut out, layout.levels, self.levels.iter().copied());
        put(
            &mut out,
            layout.upper_at,
            self.upper_at.iter().flat_map(|k| k.to_le_bytes()),
        );
        put(
            &mut out,
            layout.upper,
            self.upper.iter().flat_map(|k| k.to_le_bytes()),
        );
        put(
            &mut out,
            layout.inv,
            self.inv.as_slice().iter().flat_map(|k| k.to_le_bytes()),
        );
        put(
            &mut out,
            layout.codes,
            self.codes.as_slice().iter().map(|&c| c as u8),
        );
        put(
            &mut out,
            layout.vectors,
            self.vectors.as_slice().iter().flat_map(|k| k.to_le_bytes()),
        );
        put(
            &mut out,
            layout.level0,
            self.level0.as_slice().iter().flat_map(|k| k.to_le_bytes()),
        );
        debug_assert_eq!(out.len(), layout.end);
        out
    }
}

impl Graph {
    /// The whole file this graph views, while nothing has been copied out of it.
    pub fn mapped_file(&self) -> Option<&[u8]> {
        match (&self.vectors, &self.level0) {
            (Section::Mapped { map, .. }, Section::Mapped { .. }) => Some(map),
            _ => None,
        }
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Checks that every list in `words` (blocks of `cap + 1` words starting at
/// the given offsets) has a count ≤ `cap` and links to nodes < `nodes`.
fn check_lists(
    words: &[u32],
    blocks: impl Iterator<Item = usize>,
    cap: usize,
    nodes: usize,
) -> Result<(), String> {
    for at in blocks {
        let count = words[at] as usize;
        if count > cap {
            return Err(format!("a link list holds {count} links, more than {cap}"));
        }
        if let Some(bad) = words[at + 1..=at + count]
            .iter()
            .find(|&&l| l as usize >= nodes)
        {
            return Err(format!("a link points at node {bad} of {nodes}"));
        }
    }
    Ok(())
}

/// A graph that searches `map` (a file in the format above) in place,
/// checked for consistency first (sizes, link targets, levels). Keys and
/// upper levels are copied; vectors and level-0 links stay in the map.
pub(crate) fn view(map: Mmap) -> Result<Graph, String> {
    if cfg!(target_endian = "big") {
        return Err("index files are little-endian; this machine is not".into());
    }
    let b: &[u8] = &map;
    if b.len() < HEADER || &b[..8] != MAGIC {
        return Err("not an index file (bad magic)".into());
    }
    let shape = Shape {
        dim: u32_at(b, 8) as usize,
        m: u32_at(b, 12) as usize,
    };
    let to_usize =
        |v: u64| usize::try_from(v).map_err(|_| "a count does not fit in memory".to_string());
    let n = to_usize(u64_at(b, 16))?;
    let upper_words = to_usize(u64_at(b, 24))?;
    let entry = u64_at(b, 32);
    let max_level = u32_at(b, 40) as usize;
    if shape.dim == 0 || shape.m < 2 || shape.m > MAX_M || n > u32::MAX as usize - 1 {
        return Err(format!(
            "implausible header: dim {}, m {}, {n} nodes",
            shape.dim, shape.m
        ));
    }
    let layout = Layout::new(shape, n, upper_words).ok_or("section sizes overflow")?;
    if layout.end != b.len() {
        return Err(format!(
            "the file has {} bytes, its header implies {}",
            b.len(),
            layout.end
        ));
    }
    let keys: Vec<u64> = (0..n).map(|i| u64_at(b, layout.keys + 8 * i)).collect();
    let levels = b[layout.levels..layout.levels + n].to_vec();
    let upper_at: Vec<u32> = (0..n).map(|i| u32_at(b, layout.upper_at + 4 * i)).collect();
    let upper: Vec<u32> = (0..upper_words)
        .map(|i| u32_at(b, layout.upper + 4 * i))
        .collect();
    let mut nodes = HashMap::with_capacity(n);
    for (i, &k) in keys.iter().enumerate() {
        if nodes.insert(k, i as u32).is_some() {
            return Err(format!("key {k} appears twice"));
        }
    }
    let m = shape.m;
    let mut upper_blocks = Vec::new();
    for (i, (&level, &at)) in levels.iter().zip(&upper_at).enumerate() {
        let level = level as usize;
        if level > MAX_LEVEL || (level == 0) != (at == u32::MAX) {
            return Err(format!(
                "node {i} has a bad level {level} or list offset {at}"
            ));
        }
        for l in 0..level {
            let start = at as usize + l * (m + 1);
            if start + m + 1 > upper_words {
                return Err(format!(
                    "node {i}'s level-{} list lies outside the file",
                    l + 1
                ));
            }
            upper_blocks.push(start);
        }
    }
    check_lists(&upper, upper_blocks.into_iter(), m, n)?;
    let top = match entry {
        u64::MAX if n == 0 => Top {
            entry: None,
            max_level: 0,
        },
        e if (e as usize) < n && levels[e as usize] as usize == max_level => Top {
            entry: Some(e as u32),
            max_level,
        },
        e => return Err(format!("bad entry point {e} at level {max_level}")),
    };
    let map = Arc::new(map);
    let inv = Section::Mapped {
        map: map.clone(),
        offset: layout.inv,
        len: n,
    };
    let codes = Section::Mapped {
        map: map.clone(),
        offset: layout.codes,
        len: n * shape.dim,
    };
    let vectors = Section::Mapped {
        map: map.clone(),
        offset: layout.vectors,
        len: n * shape.dim,
    };
    let level0 = Section::Mapped {
        map,
        offset: layout.level0,
        len: n * (2 * m + 1),
    };
    check_lists(level0.as_slice(), (0..n).map(|i| i * (2 * m + 1)), 2 * m, n)?;
    Ok(Graph {
        shape,
        keys,
        nodes,
        deleted: vec![false; n],
        dead: 0,
        levels,
        upper_at,
        upper,
        vectors,
        codes,
        inv,
        level0,
        top,
        visited: Mutex::new(Vec::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn mapped(bytes: &[u8]) -> Mmap {
        let mut f = tempfile::tempfile().expect("a temp file");
        f.write_all(bytes).expect("written");
        // SAFETY: the temporary file is private to this test and not modified.
        unsafe { Mmap::map(&f) }.expect("mapped")
    }

    fn sample() -> Graph {
        let mut g = Graph::new(Shape { dim: 8, m: 4 });
        let vecs: Vec<Vec<f32>> = (0..300)
            .map(|i| {
                let mut v: Vec<f32> = (0..8)
                    .map(|j| ((i * 7 + j * 3) % 11) as f32 - 5.0)
                    .collect();
                lobster_vector_core::metric::normalize(&mut v);
                v
            })
            .collect();
        let items: Vec<(u64, &[f32])> = vecs
            .iter()
            .enumerate()
            .map(|(i, v)| (i as u64 * 3, v.as_slice()))
            .collect();
        g.add(&items, 40, 300, 1);
        g
    }

    #[test]
    fn a_viewed_graph_answers_as_the_original() {
        let g = sample();
        let bytes = g.to_bytes();
        let v = view(mapped(&bytes)).expect("a valid file");
        assert!(v.is_mapped());
        assert_eq!(v.to_bytes(), bytes);
        for key in [0u64, 3, 297, 600] {
            let q = g.vector(key).expect("a node").to_vec();
            assert_eq!(v.search(&q, 5, 20), g.search(&q, 5, 20));
            assert_eq!(v.vector(key), Some(&q[..]));
        }
        let mut owned = v;
        owned.make_owned();
        assert!(!owned.is_mapped());
        assert_eq!(owned.to_bytes(), bytes);
    }

    #[test]
    fn damaged_files_are_refused() {
        let bytes = sample().to_bytes();
        assert!(view(mapped(&bytes[..bytes.len() - 4])).is_err());
        assert!(view(mapped(&bytes[..10])).is_err());
        let mut bad_magic = bytes.clone();
        bad_magic[0] = b'X';
        assert!(view(mapped(&bad_magic)).is_err());
        // A link beyond the last node, in the last level-0 list.
        let mut bad_link = bytes.clone();
        let at = bytes.len() - 4 * 8;
        bad_link[at..at + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
        let last_count = bytes.len() - 4 * 9;
        bad_link[last_count..last_count + 4].copy_from_slice(&8u32.to_le_bytes());
        let err = view(mapped(&bad_link)).expect_err("a bad link");
        assert!(err.contains("node 1000000"), "{err}");
        let mut bad_count = bytes;
        bad_count[last_count..last_count + 4].copy_from_slice(&99u32.to_le_bytes());
        assert!(view(mapped(&bad_count)).is_err());
    }
}
