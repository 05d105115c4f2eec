//! `y = x·W + b` with `W` packed once at load time.
//!
//! A BERT forward pass on a CPU is almost all products of activations
//! (`m` tokens × `k`) with fixed weight matrices (`k` × `n`). General GEMM
//! libraries re-pack the weights on every call and block for large square
//! problems; here each weight matrix is stored as column panels of 16
//! (`k` × 16, contiguous), so an AVX2/FMA micro-kernel streams one panel
//! from L1/L2 while it reads 6 activation rows, holding a 6×16 tile of the
//! output in 12 registers, and starts from the bias. The activation
//! (GELU, …) can be applied as the tile is stored, saving a pass.
//!
//! Without AVX2/FMA (or off x86-64) a portable kernel over the same layout
//! is used. Public for its benchmark (`benches/matmul.rs`); the embedders
//! are the API.

use rayon::prelude::*;

use crate::kernels;
pub use crate::kernels::Activation;

/// Output columns per panel.
const NR: usize = 16;
/// Activation rows per micro-kernel call.
const MR: usize = 6;
/// Activation rows per cache block (a multiple of MR).
const MC: usize = 144;
/// Depth per cache block: a `KC × 16` weight slice plus an `MR × KC` strip
/// stay in L1.
const KC: usize = 256;

/// A weight matrix `k × n` and bias `n`, packed in panels of 16 columns.
#[derive(Clone)]
pub struct PackedLinear {
    k: usize,
    n: usize,
    /// `panels × k × NR` (the last panel zero-padded).
    packed: Vec<f32>,
    /// `panels × NR` (zero-padded).
    bias: Vec<f32>,
}

impl std::fmt::Debug for PackedLinear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PackedLinear({}×{})", self.k, self.n)
    }
}

impl PackedLinear {
    /// Packs `w`, a `k × n` row-major matrix (`[in, out]`), and `bias` (`n`).
    pub fn new(w: &[f32], bias: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "PackedLinear: weight length");
        Self::pack(bias, k, n, |kk, col| w[kk * n + col])
    }

    /// Packs `w` given in PyTorch's `nn.Linear` layout, `n × k` row-major
    /// (`[out, in]`), and `bias` (`n`): the same layer as [`new`](Self::new)
    /// of its transpose, without materialising the transpose.
    pub fn from_out_in(w: &[f32], bias: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "PackedLinear: weight length");
        Self::pack(bias, k, n, |kk, col| w[col * k + kk])
    }

    fn pack(bias: &[f32], k: usize, n: usize, w: impl Fn(usize, usize) -> f32) -> Self {
        assert_eq!(bias.len(), n, "PackedLinear: bias length");
        let panels = n.div_ceil(NR);
        let mut packed = vec![0f32; panels * k * NR];
        let mut b = vec![0f32; panels * NR];
        for p in 0..panels {
            let cols = NR.min(n - p * NR);
            let dst = &mut packed[p * k * NR..(p + 1) * k * NR];
            for c in 0..cols {
                for kk in 0..k {
                    dst[kk * NR + c] = w(kk, p * NR + c);
                }
            }
            b[p * NR..p * NR + cols].copy_from_slice(&bias[p * NR..p * NR + cols]);
        }
        Self {
            k,
            n,
            packed,
            bias: b,
        }
    }

    /// Output width `n`.
    #[cfg(test)]
    pub fn out_features(&self) -> usize {
        self.n
    }

    /// `dst[m×n] = act(x[m×k]·W + b)`, row-major. With `par`, column panels
    /// are spread over the current rayon pool; otherwise single-threaded.
    /// Panics when a slice length disagrees with `m` (an internal bug).
    pub fn forward(
        &self,
        dst: &mut [f32],
        x: &[f32],
        m: usize,
        act: Option<Activation>,
        par: bool,
    ) {
        let (k, n) = (self.k, self.n);
        assert_eq!(x.len(), m * k, "PackedLinear: input length");
        assert_eq!(dst.len(), m * n, "PackedLinear: output length");
        if m == 0 {
            return;
        }
        let panels = n.div_ceil(NR);
        let threads = rayon::current_num_threads();
        let out = SendPtr(dst.as_mut_ptr());
        if par && threads > 1 && panels > 1 {
            // Contiguous ranges of panels per task: each task writes only the
            // columns of its own panels.
            let tasks = (threads * 2).min(panels);
            (0..tasks).into_par_iter().for_each(|t| {
                let (p0, p1) = (panels * t / tasks, panels * (t + 1) / tasks);
                // SAFETY: tasks cover disjoint panel ranges, hence disjoint
                // output columns; `dst` outlives the parallel loop.
                unsafe { self.run(out, x, m, p0..p1, act) };
            });
        } else {
            // SAFETY: one task covering every panel of a uniquely borrowed dst.
            unsafe { self.run(out, x, m, 0..panels, act) };
        }
    }

    /// Computes the columns of `panels` for all `m` rows.
    ///
    /// Blocked as BLIS does: `MC` rows × `KC` depth of the activations are
    /// packed into `MR`-row strips (interleaved by depth, so the kernel
    /// reads one contiguous stream), then every panel's `KC × 16` slice is
    /// multiplied with every strip while both sit in L1/L2.
    ///
    /// # Safety
    /// `dst` points to an `m × n` row-major buffer valid for writes of the
    /// columns of `panels`, which no other thread touches during the call;
    /// `x.len() == m * k`.
    unsafe fn run(
        &self,
        dst: SendPtr,
        x: &[f32],
        m: usize,
        panels: std::ops::Range<usize>,
        act: Option<Activation>,
    ) {
        let (k, n) = (self.k, self.n);
        let kc_max = KC.min(k.max(1));
        let mc = MC.min(m.div_ceil(MR) * MR);
        let mut apack = vec![0f32; mc * kc_max];
        let mut r0 = 0;
        while r0 < m {
            let r1 = (r0 + mc).min(m);
            let mut k0 = 0;
            loop {
                let k1 = (k0 + kc_max).min(k);
                let kc = k1 - k0;
                // Pack rows r0..r1, depth k0..k1: strip g holds rows
                // r0 + g·MR.., element (kk, r) at g·MR·kc + kk·MR + r.
                for (g, strip) in apack.chunks_mut(MR * kc).enumerate() {
                    let rs = r0 + g * MR;
                    if rs >= r1 {
                        break;
                    }
                    let rows = MR.min(r1 - rs);
                    for r in 0..rows {
                        let src = &x[(rs + r) * k + k0..(rs + r) * k + k1];
                        for (kk, v) in src.iter().enumerate() {
                            strip[kk * MR + r] = *v;
                        }
                    }
                }
                let first = k0 == 0;
                let last = k1 == k;
                for p in panels.clone() {
                    let b = &self.packed[p * k * NR + k0 * NR..p * k * NR + k1 * NR];
                    let bias = &self.bias[p * NR..(p + 1) * NR];
                    let cols = NR.min(n - p * NR);
                    let mut rs = r0;
                    let mut g = 0;
                    while rs < r1 {
                        let rows = MR.min(r1 - rs);
                        let a = &apack[g * MR * kc..(g + 1) * MR * kc];
                        // SAFETY: rows rs..rs+rows and columns
                        // p*NR..p*NR+cols of dst are in bounds and owned by
                        // this call (see above).
                        unsafe {
                            let c = dst.0.add(rs * n + p * NR);
                            let step = Step {
                                init: if first {
                                    Init::Bias(bias)
                                } else {
                                    Init::Accumulate
                                },
                                act: if last { act } else { None },
                            };
                            tile(rows, kc, a, b, c, n, cols, step);
                        }
                        rs += rows;
                        g += 1;
                    }
                }
                if last {
                    break;
                }
                k0 = k1;
            }
            r0 = r1;
        }
    }
}

/// Where a tile's accumulators start.
#[derive(Clone, Copy)]
enum Init<'a> {
    /// From the bias (first depth block).
    Bias(&'a [f32]),
    /// From what the output already holds (later depth blocks).
    Accumulate,
}

/// What a tile does besides multiplying.
#[derive(Clone, Copy)]
struct Step<'a> {
    init: Init<'a>,
    /// Applied before the final store (last depth block only).
    act: Option<Activation>,
}

#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: used only to hand disjoint parts of one output buffer to tasks.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// One output tile: `rows ≤ MR` rows × `cols ≤ NR` columns, depth `k`.
///
/// # Safety
/// `c` is valid for reads and writes at `c + i * ldc + j` for `i < rows`,
/// `j < cols`; `a` is a packed strip of `MR × k` values, `b` holds `k × NR`,
/// a bias `NR`.
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn tile(
    rows: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: *mut f32,
    ldc: usize,
    cols: usize,
    step: Step<'_>,
) {
    assert!(rows <= MR && cols <= NR, "a tile is at most MR × NR");
    assert!(
        a.len() == MR * k && b.len() == k * NR,
        "packed strips hold MR × k and k × NR values"
    );
    #[cfg(test)]
    let portable = tests::FORCE_PORTABLE.with(|f| f.get());
    #[cfg(not(test))]
    let portable = false;
    #[cfg(target_arch = "x86_64")]
    {
        if lobster_vector_core::cpu::has_avx2_fma() && !portable {
            // SAFETY: the CPU supports AVX2 and FMA (checked above); the
            // slice lengths and `c`'s extent are the caller's contract.
            unsafe {
                match rows {
                    6 => avx2::tile::<6>(k, a, b, c, ldc, cols, step),
                    5 => avx2::tile::<5>(k, a, b, c, ldc, cols, step),
                    4 => avx2::tile::<4>(k, a, b, c, ldc, cols, step),
                    3 => avx2::tile::<3>(k, a, b, c, ldc, cols, step),
                    2 => avx2::tile::<2>(k, a, b, c, ldc, cols, step),
                    _ => avx2::tile::<1>(k, a, b, c, ldc, cols, step),
                }
            }
            return;
        }
    }
    // SAFETY: forwarded caller contract.
    unsafe { portable_tile(rows, k, a, b, c, ldc, cols, step) }
}

/// # Safety
/// As [`tile`].
#[allow(clippy::too_many_arguments)]
unsafe fn portable_tile(
    rows: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: *mut f32,
    ldc: usize,
    cols: usize,
    step: Step<'_>,
) {
    let mut acc = [[0f32; NR]; MR];
    for (i, row) in acc.iter_mut().enumerate().take(rows) {
        match step.init {
            Init::Bias(bias) => row.copy_from_slice(bias),
            Init::Accumulate => {
                // SAFETY: row i, columns < cols are inside c's extent.
                let prev = unsafe { std::slice::from_raw_parts(c.add(i * ldc), cols) };
                row[..cols].copy_from_slice(prev);
            }
        }
    }
    for kk in 0..k {
        let w = &b[kk * NR..(kk + 1) * NR];
        for (i, row) in acc.iter_mut().enumerate().take(rows) {
            let av = a[kk * MR + i];
            for (o, wv) in row.iter_mut().zip(w) {
                *o += av * wv;
            }
        }
    }
    for (i, row) in acc.iter_mut().enumerate().take(rows) {
        if let Some(act) = step.act {
            kernels::activate_slice(&mut row[..cols], act);
        }
        // SAFETY: row i, columns < cols are inside c's extent (contract).
        let out = unsafe { std::slice::from_raw_parts_mut(c.add(i * ldc), cols) };
        out.copy_from_slice(&row[..cols]);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Init, Step, MR, NR};
    use crate::kernels;

    /// The AVX2/FMA tile: `R` rows × 16 columns in 2·R registers.
    ///
    /// # Safety
    /// The CPU supports AVX2 and FMA, and the contract of [`super::tile`]
    /// holds with `rows == R`.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn tile<const R: usize>(
        k: usize,
        a: &[f32],
        b: &[f32],
        c: *mut f32,
        ldc: usize,
        cols: usize,
        step: Step<'_>,
    ) {
        let ap = a.as_ptr();
        let bp = b.as_ptr();
        // SAFETY (whole body): every pointer offset stays inside the slices
        // by the length contract (a: MR×k, b: k×NR, bias: NR), and loads and
        // stores of c stay in its R×cols extent (full-width vector accesses
        // only when cols == NR).
        unsafe {
            let mut lo = [_mm256_setzero_ps(); R];
            let mut hi = [_mm256_setzero_ps(); R];
            match step.init {
                Init::Bias(bias) => {
                    let b0 = _mm256_loadu_ps(bias.as_ptr());
                    let b1 = _mm256_loadu_ps(bias.as_ptr().add(8));
                    lo = [b0; R];
                    hi = [b1; R];
                }
                Init::Accumulate => {
                    for r in 0..R {
                        let mut row = [0f32; NR];
                        std::ptr::copy_nonoverlapping(c.add(r * ldc), row.as_mut_ptr(), cols);
                        lo[r] = _mm256_loadu_ps(row.as_ptr());
                        hi[r] = _mm256_loadu_ps(row.as_ptr().add(8));
                    }
                }
            }
            for kk in 0..k {
                let w0 = _mm256_loadu_ps(bp.add(kk * NR));
                let w1 = _mm256_loadu_ps(bp.add(kk * NR + 8));
                for r in 0..R {
                    let av = _mm256_broadcast_ss(&*ap.add(kk * MR + r));
                    lo[r] = _mm256_fmadd_ps(av, w0, lo[r]);
                    hi[r] = _mm256_fmadd_ps(av, w1, hi[r]);
                }
            }
            for r in 0..R {
                let out = c.add(r * ldc);
                if step.act.is_none() && cols == NR {
                    _mm256_storeu_ps(out, lo[r]);
                    _mm256_storeu_ps(out.add(8), hi[r]);
                } else {
                    let mut row = [0f32; NR];
                    _mm256_storeu_ps(row.as_mut_ptr(), lo[r]);
                    _mm256_storeu_ps(row.as_mut_ptr().add(8), hi[r]);
                    if let Some(act) = step.act {
                        kernels::activate_slice(&mut row, act);
                    }
                    std::ptr::copy_nonoverlapping(row.as_ptr(), out, cols);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Makes `tile` take the portable kernel on this thread.
        pub static FORCE_PORTABLE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    fn reference(x: &[f32], w: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut s = b[j] as f64;
                for kk in 0..k {
                    s += x[i * k + kk] as f64 * w[kk * n + j] as f64;
                }
                y[i * n + j] = s as f32;
            }
        }
        y
    }

    #[test]
    fn matches_reference_for_ragged_shapes() {
        for &(m, k, n) in &[
            (1, 3, 1),
            (4, 384, 40),
            (7, 17, 33),
            (13, 64, 16),
            (200, 50, 70),
            (260, 600, 48),
        ] {
            let x: Vec<f32> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
                .collect();
            let w: Vec<f32> = (0..k * n)
                .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
                .collect();
            let b: Vec<f32> = (0..n).map(|i| i as f32 * 0.01).collect();
            let want = reference(&x, &w, &b, m, k, n);
            let lin = PackedLinear::new(&w, &b, k, n);
            assert_eq!(lin.out_features(), n);
            for par in [false, true] {
                let mut y = vec![f32::NAN; m * n];
                lin.forward(&mut y, &x, m, None, par);
                for (g, e) in y.iter().zip(&want) {
                    assert!(
                        (g - e).abs() <= 1e-4 * (1.0 + e.abs()),
                        "{m}×{k}×{n}: {g} vs {e}"
                    );
                }
                let mut portable = vec![f32::NAN; m * n];
                FORCE_PORTABLE.with(|f| f.set(true));
                lin.forward(&mut portable, &x, m, None, false);
                FORCE_PORTABLE.with(|f| f.set(false));
                for (g, e) in portable.iter().zip(&want) {
                    assert!((g - e).abs() <= 1e-4 * (1.0 + e.abs()));
                }
            }
        }
    }

    #[test]
    fn packing_the_out_in_layout_equals_packing_its_transpose() {
        let (k, n) = (37, 41);
        let w: Vec<f32> = (0..k * n).map(|i| (i % 13) as f32 - 6.0).collect();
        let mut transposed = vec![0f32; k * n];
        for kk in 0..k {
            for col in 0..n {
                transposed[col * k + kk] = w[kk * n + col];
            }
        }
        let b: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let (a, t) = (
            PackedLinear::new(&w, &b, k, n),
            PackedLinear::from_out_in(&transposed, &b, k, n),
        );
        assert_eq!((a.packed, a.bias), (t.packed, t.bias));
    }

    #[test]
    fn applies_the_activation() {
        let (m, k, n) = (5, 8, 20);
        let x: Vec<f32> = (0..m * k).map(|i| (i as f32 - 20.0) / 10.0).collect();
        let w: Vec<f32> = (0..k * n).map(|i| ((i % 7) as f32 - 3.0) / 3.0).collect();
        let b = vec![0.1; n];
        let lin = PackedLinear::new(&w, &b, k, n);
        let mut plain = vec![0f32; m * n];
        lin.forward(&mut plain, &x, m, None, false);
        let mut fused = vec![0f32; m * n];
        lin.forward(&mut fused, &x, m, Some(Activation::Gelu), false);
        for (p, f) in plain.iter().zip(&fused) {
            assert!((kernels::gelu_erf(*p) - f).abs() < 1e-6);
        }
    }
}
