//! CPU kernels of the BERT forward pass over row-major `f32` buffers, other
//! than the matrix products (see [`crate::matmul`]): residual + LayerNorm,
//! activations, and attention over packed sequences. Each function either
//! runs serially or spreads rows over the current rayon pool, as `par`
//! says, and is compiled for AVX2/FMA as well, chosen at run time.

use rayon::prelude::*;

/// Rows per rayon task in the row-wise kernels.
const ROWS_PER_TASK: usize = 16;

/// Runs `f` compiled for AVX2/FMA when the CPU has them (the body of `f`
/// is inlined into a function with those target features), else as is.
#[inline(always)]
pub fn dispatch<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn with_avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if lobster_vector_core::cpu::has_avx2_fma() {
            // SAFETY: the CPU supports AVX2 and FMA.
            return unsafe { with_avx2(f) };
        }
    }
    f()
}

/// In place, row by row: `x = LayerNorm(x + residual) * gamma + beta`
/// (biased variance, as PyTorch). `residual` may be empty (no residual).
pub fn add_layer_norm(
    x: &mut [f32],
    residual: &[f32],
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    par: bool,
) {
    let h = gamma.len();
    assert_eq!(beta.len(), h, "layer_norm: beta length");
    assert_eq!(x.len() % h, 0, "layer_norm: x length");
    assert!(
        residual.is_empty() || residual.len() == x.len(),
        "layer_norm: residual length"
    );
    let run = |(xs, rs): (&mut [f32], &[f32])| {
        dispatch(|| {
            for (i, row) in xs.chunks_exact_mut(h).enumerate() {
                if !rs.is_empty() {
                    for (a, b) in row.iter_mut().zip(&rs[i * h..(i + 1) * h]) {
                        *a += *b;
                    }
                }
                norm_row(row, gamma, beta, eps);
            }
        })
    };
    let chunk = ROWS_PER_TASK * h;
    if par && x.len() > chunk {
        if residual.is_empty() {
            x.par_chunks_mut(chunk).for_each(|xs| run((xs, &[])));
        } else {
            x.par_chunks_mut(chunk)
                .zip(residual.par_chunks(chunk))
                .for_each(run);
        }
    } else {
        run((x, residual));
    }
}

#[inline(always)]
fn norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let mut acc = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            let d = c[l] - mean;
            acc[l] += d * d;
        }
    }
    let var =
        (acc.iter().sum::<f32>() + rest.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>()) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// Sum with eight independent accumulators (vectorises).
#[inline(always)]
fn sum(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = xs.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            acc[l] += c[l];
        }
    }
    acc.iter().sum::<f32>() + rest.iter().sum::<f32>()
}

/// The hidden activations a BERT config may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Exact GELU, `x·Φ(x)` (`"gelu"`).
    Gelu,
    /// The tanh approximation (`"gelu_new"`, `"gelu_pytorch_tanh"`, `"gelu_fast"`).
    GeluTanh,
    /// `max(x, 0)`.
    Relu,
}

/// Applies the activation to a slice (inlined into the caller, so it is
/// vectorised for the caller's target features).
#[inline(always)]
pub fn activate_slice(xs: &mut [f32], act: Activation) {
    match act {
        Activation::Gelu => xs.iter_mut().for_each(|v| *v = gelu_erf(*v)),
        Activation::GeluTanh => xs.iter_mut().for_each(|v| *v = gelu_tanh(*v)),
        Activation::Relu => xs.iter_mut().for_each(|v| *v = v.max(0.0)),
    }
}

/// Exact GELU: `0.5·x·(1 + erf(x/√2))`.
#[inline(always)]
pub fn gelu_erf(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

#[inline(always)]
fn gelu_tanh(x: f32) -> f32 {
    const C: f32 = 0.797_884_6; // sqrt(2/pi)
    0.5 * x * (1.0 + (C * (x + 0.044_715 * x * x * x)).tanh())
}

/// `erf` for `f32`, branch-free so loops over it vectorise: a rational
/// approximation on [-4, 4] (the one Eigen and TensorFlow use; absolute
/// error about 1e-7, and `erf` is ±1 in `f32` beyond ±4).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329_2e-3;
    q = x2 * q + -1.426_474e-2;
    p / q
}

/// Self-attention over packed sequences (no padding anywhere).
///
/// `qkv` is `[tokens, 3·hidden]` (query, key, value of each token side by
/// side), `seqs` the `(first token, length)` of each sequence, and `ctx`
/// receives `[tokens, hidden]`: for every head, softmax(q·kᵀ/√d)·v over the
/// tokens of the token's own sequence — what a padded batch with an
/// attention mask computes, without the padded rows and columns.
pub fn attention(
    ctx: &mut [f32],
    qkv: &[f32],
    seqs: &[(usize, usize)],
    hidden: usize,
    heads: usize,
    par: bool,
) {
    let d = hidden / heads;
    assert_eq!(d * heads, hidden, "attention: heads must divide hidden");
    assert_eq!(qkv.len() / 3, ctx.len(), "attention: qkv/ctx lengths");
    let scale = 1.0 / (d as f32).sqrt();
    // Split ctx into tasks of at most TASK_ROWS query rows within one sequence.
    const TASK_ROWS: usize = 32;
    let mut tasks: Vec<(&mut [f32], usize, usize, usize)> = Vec::new();
    let mut rest = ctx;
    for &(start, len) in seqs {
        let mut row = 0;
        while row < len {
            let take = TASK_ROWS.min(len - row);
            let (head, tail) = rest.split_at_mut(take * hidden);
            tasks.push((head, start, len, row));
            rest = tail;
            row += take;
        }
    }
    let stride = 3 * hidden;
    let run = |(out, start, len, row0): (&mut [f32], usize, usize, usize)| {
        let seq = &qkv[start * stride..(start + len) * stride];
        dispatch(|| attend(out, seq, len, row0, hidden, heads, scale))
    };
    if par && tasks.len() > 1 {
        tasks.into_par_iter().for_each(run);
    } else {
        tasks.into_iter().for_each(run);
    }
}

/// Attention of the query rows `row0..` (as many as `out` holds) of one
/// sequence `seq` (`[len, 3·hidden]`).
#[inline(always)]
fn attend(
    out: &mut [f32],
    seq: &[f32],
    len: usize,
    row0: usize,
    hidden: usize,
    heads: usize,
    scale: f32,
) {
    let d = hidden / heads;
    let stride = 3 * hidden;
    let mut scores = vec![0f32; len];
    for (r, out_row) in out.chunks_exact_mut(hidden).enumerate() {
        let i = row0 + r;
        for h in 0..heads {
            let q = &seq[i * stride + h * d..i * stride + (h + 1) * d];
            let mut max = f32::NEG_INFINITY;
            for (j, s) in scores.iter_mut().enumerate() {
                let k = &seq[j * stride + hidden + h * d..j * stride + hidden + (h + 1) * d];
                *s = dot(q, k) * scale;
                max = max.max(*s);
            }
            let mut total = 0.0;
            for s in scores.iter_mut() {
                *s = (*s - max).exp();
                total += *s;
            }
            let inv = 1.0 / total;
            let o = &mut out_row[h * d..(h + 1) * d];
            o.fill(0.0);
            for (j, s) in scores.iter().enumerate() {
                let p = s * inv;
                let v =
                    &seq[j * stride + 2 * hidden + h * d..j * stride + 2 * hidden + (h + 1) * d];
                for (a, b) in o.iter_mut().zip(v) {
                    *a += p * b;
                }
            }
        }
    }
}

/// Dot product with eight independent accumulators (vectorises).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let ca = a.chunks_exact(8);
    let cb = b.chunks_exact(8);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_values() {
        // erf values to 9 digits.
        let cases = [
            (0.0f32, 0.0f64),
            (0.1, 0.112_462_916),
            (0.5, 0.520_499_878),
            (1.0, 0.842_700_793),
            (1.5, 0.966_105_146),
            (2.0, 0.995_322_265),
            (3.0, 0.999_977_910),
            (5.0, 1.0),
        ];
        for (x, want) in cases {
            assert!((erf(x) as f64 - want).abs() < 5e-7, "erf({x}) = {}", erf(x));
            assert!((erf(-x) as f64 + want).abs() < 5e-7);
        }
    }

    #[test]
    fn attention_of_single_token_is_its_value() {
        let hidden = 4;
        let qkv = [1.0, 2.0, 3.0, 4.0, 0.5, 0.5, 0.5, 0.5, 9.0, 8.0, 7.0, 6.0];
        let mut ctx = [0.0; 4];
        attention(&mut ctx, &qkv, &[(0, 1)], hidden, 2, false);
        assert_eq!(ctx, [9.0, 8.0, 7.0, 6.0]);
    }

    #[test]
    fn attention_matches_naive_softmax() {
        // Two sequences (3 and 2 tokens), hidden 4, 2 heads of width 2.
        let (hidden, heads) = (4, 2);
        let qkv: Vec<f32> = (0..5 * 12)
            .map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)
            .collect();
        let seqs = [(0, 3), (3, 2)];
        let mut ctx = vec![0.0; 5 * hidden];
        attention(&mut ctx, &qkv, &seqs, hidden, heads, true);
        for &(start, len) in &seqs {
            for i in start..start + len {
                for h in 0..heads {
                    let q = &qkv[i * 12 + h * 2..i * 12 + h * 2 + 2];
                    let s: Vec<f64> = (start..start + len)
                        .map(|j| {
                            let k = &qkv[j * 12 + 4 + h * 2..j * 12 + 4 + h * 2 + 2];
                            (q[0] * k[0] + q[1] * k[1]) as f64 / 2f64.sqrt()
                        })
                        .collect();
                    let z: f64 = s.iter().map(|v| v.exp()).sum();
                    for c in 0..2 {
                        let want: f64 = (start..start + len)
                            .map(|j| s[j - start].exp() / z * qkv[j * 12 + 8 + h * 2 + c] as f64)
                            .sum();
                        let got = ctx[i * hidden + h * 2 + c] as f64;
                        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
                    }
                }
            }
        }
    }

    #[test]
    fn layer_norm_centres_and_scales() {
        let mut x: Vec<f32> = (0..20).map(|i| i as f32).collect();
        let res = vec![1.0; 20];
        add_layer_norm(&mut x, &res, &[1.0; 10], &[0.0; 10], 0.0, false);
        for row in x.chunks(10) {
            let mean: f32 = row.iter().sum::<f32>() / 10.0;
            let var: f32 = row.iter().map(|v| v * v).sum::<f32>() / 10.0;
            assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5);
        }
    }
}
