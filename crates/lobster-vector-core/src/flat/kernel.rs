//! Exact top-k kernels over contiguous row-major `f32` matrices of unit vectors.
//!
//! Single query: a SIMD dot-product scan (AVX2+FMA chosen at run time) with a
//! bounded selection per rayon task. Batches: blocked matrix products
//! (`gemm`) of query tiles against data tiles, tiles spread over rayon.

use rayon::prelude::*;

/// Rows scanned by one task of a single-query search.
const SCAN_CHUNK_ROWS: usize = 16_384;
/// Data rows per tile in batch search.
const BATCH_DATA_TILE: usize = 2_048;
/// Queries per tile in batch search.
const BATCH_QUERY_TILE: usize = 128;

/// The `k` largest dot products seen so far, as `(dot, row)`.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    /// Min-heap by dot (the worst kept entry at the root).
    heap: Vec<(f32, u32)>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        Self {
            k,
            heap: Vec::with_capacity(k + 1),
        }
    }

    /// The smallest dot product that would still enter.
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k {
            f32::NEG_INFINITY
        } else {
            self.heap[0].0
        }
    }

    #[inline]
    fn worse(a: (f32, u32), b: (f32, u32)) -> bool {
        // Lower dot is worse; on ties the higher row is worse (deterministic order).
        a.0 < b.0 || (a.0 == b.0 && a.1 > b.1)
    }

    /// Offers a candidate.
    #[inline]
    pub fn push(&mut self, dot: f32, row: u32) {
        if self.k == 0 {
            return;
        }
        let item = (dot, row);
        if self.heap.len() < self.k {
            self.heap.push(item);
            let mut i = self.heap.len() - 1;
            while i > 0 {
                let p = (i - 1) / 2;
                if Self::worse(self.heap[i], self.heap[p]) {
                    self.heap.swap(i, p);
                    i = p;
                } else {
                    break;
                }
            }
        } else if Self::worse(self.heap[0], item) {
            self.heap[0] = item;
            let n = self.heap.len();
            let mut i = 0;
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut m = i;
                if l < n && Self::worse(self.heap[l], self.heap[m]) {
                    m = l;
                }
                if r < n && Self::worse(self.heap[r], self.heap[m]) {
                    m = r;
                }
                if m == i {
                    break;
                }
                self.heap.swap(i, m);
                i = m;
            }
        }
    }

    /// Folds another selection into this one.
    pub fn merge(mut self, other: TopK) -> TopK {
        for (d, r) in other.heap {
            self.push(d, r);
        }
        self
    }

    /// `(dot, row)` best first.
    pub fn into_sorted(mut self) -> Vec<(f32, u32)> {
        self.heap
            .sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        self.heap
    }
}

#[inline(always)]
fn dot_lanes<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    const L: usize = 16;
    let mut acc = [0.0_f32; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..L {
            acc[i] = if FMA {
                x[i].mul_add(y[i], acc[i])
            } else {
                acc[i] + x[i] * y[i]
            };
        }
    }
    let mut tail = 0.0;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    let mut s = [0.0_f32; 8];
    for i in 0..8 {
        s[i] = acc[i] + acc[i + 8];
    }
    (s[0] + s[4]) + (s[1] + s[5]) + ((s[2] + s[6]) + (s[3] + s[7])) + tail
}

#[inline(always)]
fn scan_lanes<const FMA: bool>(
    rows: &[f32],
    dim: usize,
    query: &[f32],
    first_row: u32,
    top: &mut TopK,
) {
    for (i, row) in rows.chunks_exact(dim).enumerate() {
        let d = dot_lanes::<FMA>(row, query);
        if d > top.threshold() {
            top.push(d, first_row + i as u32);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn scan_avx2(rows: &[f32], dim: usize, query: &[f32], first_row: u32, top: &mut TopK) {
    scan_lanes::<true>(rows, dim, query, first_row, top)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_lanes::<true>(a, b)
}

/// Dot product of two equal-length slices.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "dot product of slices of different lengths"
    );
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        return unsafe { dot_avx2(a, b) };
    }
    dot_lanes::<false>(a, b)
}

fn scan(rows: &[f32], dim: usize, query: &[f32], first_row: u32, top: &mut TopK) {
    #[cfg(target_arch = "x86_64")]
    if crate::cpu::has_avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked above).
        unsafe { scan_avx2(rows, dim, query, first_row, top) };
        return;
    }
    scan_lanes::<false>(rows, dim, query, first_row, top)
}

/// The `k` rows of `data` (row-major, `dim` columns) with the largest dot
/// product with `query`, best first, as `(dot, row)`.
pub fn top_k(data: &[f32], dim: usize, query: &[f32], k: usize) -> Vec<(f32, u32)> {
    let n = data.len() / dim.max(1);
    let k = k.min(n);
    if k == 0 {
        return Vec::new();
    }
    if n <= SCAN_CHUNK_ROWS || rayon::current_num_threads() == 1 {
        let mut top = TopK::new(k);
        scan(data, dim, query, 0, &mut top);
        return top.into_sorted();
    }
    data.par_chunks(SCAN_CHUNK_ROWS * dim)
        .enumerate()
        .map(|(c, rows)| {
            let mut top = TopK::new(k);
            scan(rows, dim, query, (c * SCAN_CHUNK_ROWS) as u32, &mut top);
            top
        })
        .reduce(|| TopK::new(k), TopK::merge)
        .into_sorted()
}

/// Row-major `a (m×d)` times `b (n×d)` transposed into `out (m×n)`.
fn matmul_transposed(a: &[f32], m: usize, b: &[f32], n: usize, d: usize, out: &mut [f32]) {
    assert!(
        a.len() >= m * d && b.len() >= n * d && out.len() >= m * n,
        "matrix slices shorter than their shapes"
    );
    // SAFETY: the slices hold m×d, n×d and m×n elements (asserted above) and
    // the strides below stay within them.
    unsafe {
        gemm::gemm(
            m,
            n,
            d,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            d as isize,
            b.as_ptr(),
            d as isize,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// [`top_k`] for many queries (row-major, `dim` columns), one list per query.
pub fn top_k_batch(data: &[f32], dim: usize, queries: &[f32], k: usize) -> Vec<Vec<(f32, u32)>> {
    let n = data.len() / dim.max(1);
    let m = queries.len() / dim.max(1);
    let k = k.min(n);
    if k == 0 || m == 0 {
        return vec![Vec::new(); m];
    }
    let tops = data
        .par_chunks(BATCH_DATA_TILE * dim)
        .enumerate()
        .map(|(c, rows)| {
            let nr = rows.len() / dim;
            let first = (c * BATCH_DATA_TILE) as u32;
            let mut tops = vec![TopK::new(k); m];
            let mut scores = vec![0.0_f32; BATCH_QUERY_TILE * nr];
            for (qt, qs) in queries.chunks(BATCH_QUERY_TILE * dim).enumerate() {
                let mq = qs.len() / dim;
                matmul_transposed(qs, mq, rows, nr, dim, &mut scores);
                for (qi, row_scores) in scores[..mq * nr].chunks_exact(nr).enumerate() {
                    let top = &mut tops[qt * BATCH_QUERY_TILE + qi];
                    for (j, &s) in row_scores.iter().enumerate() {
                        if s > top.threshold() {
                            top.push(s, first + j as u32);
                        }
                    }
                }
            }
            tops
        })
        .reduce(
            || vec![TopK::new(k); m],
            |a, b| a.into_iter().zip(b).map(|(x, y)| x.merge(y)).collect(),
        );
    tops.into_iter().map(TopK::into_sorted).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn naive(data: &[f32], dim: usize, q: &[f32], k: usize) -> Vec<(f32, u32)> {
        let mut all: Vec<(f32, u32)> = data
            .chunks_exact(dim)
            .enumerate()
            .map(|(i, r)| {
                (
                    r.iter()
                        .zip(q)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum::<f64>() as f32,
                    i as u32,
                )
            })
            .collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        all.truncate(k);
        all
    }

    #[test]
    fn single_and_batch_match_naive() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (n, dim) in [(5, 3), (40_000, 17), (3_000, 384)] {
            let data: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            let queries: Vec<f32> = (0..7 * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            let batch = top_k_batch(&data, dim, &queries, 10);
            for (qi, q) in queries.chunks_exact(dim).enumerate() {
                let want = naive(&data, dim, q, 10);
                for got in [top_k(&data, dim, q, 10), batch[qi].clone()] {
                    assert_eq!(got.len(), want.len());
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g.0 - w.0).abs() < 1e-4, "{g:?} vs {w:?}");
                    }
                    let gi: Vec<u32> = got.iter().map(|x| x.1).collect();
                    let wi: Vec<u32> = want.iter().map(|x| x.1).collect();
                    assert_eq!(gi, wi, "n={n} dim={dim}");
                }
            }
        }
    }

    #[test]
    fn dot_handles_tails() {
        let a: Vec<f32> = (0..37).map(|i| i as f32).collect();
        let b = vec![1.0_f32; 37];
        assert_eq!(dot(&a, &b), (0..37).sum::<i32>() as f32);
    }

    #[test]
    fn topk_keeps_best_and_clamps() {
        let mut t = TopK::new(3);
        for (i, d) in [0.1, 0.9, 0.5, 0.7, 0.2].iter().enumerate() {
            t.push(*d, i as u32);
        }
        assert_eq!(t.into_sorted(), vec![(0.9, 1), (0.7, 3), (0.5, 2)]);
        assert!(top_k(&[1.0, 0.0], 2, &[1.0, 0.0], 5).len() == 1);
    }
}
