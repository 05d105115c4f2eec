//! 8-bit codes of the graph's unit vectors, which every graph walk scores
//! instead of the `f32` vectors: a quarter of the memory traffic. Each vector
//! gets its own scale, `code = round(x · 127 / max|x|)`, so nothing clips and
//! the approximate dot product is `Σ code_a·code_b · inv_a · inv_b` with
//! `inv = max|x| / 127`. Final candidates are re-scored exactly.

use lobster_vector_core::Metric;

/// A vector's code and inverse scale.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Code<'a> {
    pub code: std::borrow::Cow<'a, [i8]>,
    pub inv: f32,
}

/// Encodes `v`: its codes are appended to `out`; returns the inverse scale.
pub(crate) fn encode_into(v: &[f32], out: &mut Vec<i8>) -> f32 {
    let max = v
        .iter()
        .fold(0.0_f32, |m, x| if x.abs() > m { x.abs() } else { m });
    if max == 0.0 || !max.is_finite() {
        out.extend(std::iter::repeat_n(0, v.len()));
        return 0.0;
    }
    let scale = 127.0 / max;
    out.extend(
        v.iter()
            .map(|x| (x * scale).round().clamp(-127.0, 127.0) as i8),
    );
    max / 127.0
}

/// The code of a query vector.
pub(crate) fn encode(v: &[f32]) -> Code<'static> {
    let mut code = Vec::with_capacity(v.len());
    let inv = encode_into(v, &mut code);
    Code {
        code: code.into(),
        inv,
    }
}

#[inline(always)]
fn dot_i8_lanes(a: &[i8], b: &[i8]) -> i32 {
    const L: usize = 32;
    let mut acc = [0_i32; L];
    let (ca, cb) = (a.chunks_exact(L), b.chunks_exact(L));
    let tail: i32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| i32::from(x) * i32::from(y))
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..L {
            acc[i] += i32::from(x[i]) * i32::from(y[i]);
        }
    }
    acc.iter().sum::<i32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_i8_avx2(a: &[i8], b: &[i8]) -> i32 {
    dot_i8_lanes(a, b)
}

/// The dot product of codes this CPU runs fastest, chosen once per walk
/// (see [`lobster_vector_core::cpu`]) so the graph's inner loop does not
/// re-check the CPU.
#[derive(Clone, Copy)]
pub(crate) struct DotI8(unsafe fn(&[i8], &[i8]) -> i32);

impl DotI8 {
    pub fn for_this_cpu() -> Self {
        #[cfg(target_arch = "x86_64")]
        if lobster_vector_core::cpu::has_avx2_fma() {
            return Self(dot_i8_avx2);
        }
        Self(dot_i8_lanes)
    }

    /// Dot product of two equal-length codes.
    #[inline(always)]
    pub fn dot(self, a: &[i8], b: &[i8]) -> i32 {
        assert_eq!(
            a.len(),
            b.len(),
            "dot product of codes of different lengths"
        );
        // SAFETY: `for_this_cpu` holds only a kernel whose target features
        // this CPU has.
        unsafe { (self.0)(a, b) }
    }

    /// The approximate cosine distance of two coded unit vectors.
    #[inline(always)]
    pub fn distance(self, a: &[i8], a_inv: f32, b: &[i8], b_inv: f32) -> f32 {
        Metric::Cosine.distance_from_unit_dot(self.dot(a, b) as f32 * a_inv * b_inv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lobster_vector_core::flat::kernel;
    use lobster_vector_core::testing::data;

    #[test]
    fn coded_dot_products_are_close_to_exact_ones() {
        let mut r = data::rng(3);
        let dot = DotI8::for_this_cpu();
        let unit = |r: &mut rand::rngs::StdRng| {
            let mut v = data::random_vector(r, 384);
            lobster_vector_core::metric::normalize(&mut v);
            v
        };
        for _ in 0..200 {
            let (a, b) = (unit(&mut r), unit(&mut r));
            let (ca, cb) = (encode(&a), encode(&b));
            let approx = 1.0 - dot.distance(&ca.code, ca.inv, &cb.code, cb.inv);
            let exact = kernel::dot(&a, &b);
            assert!((approx - exact).abs() < 2e-3, "{approx} vs {exact}");
            let self_dot = 1.0 - dot.distance(&ca.code, ca.inv, &ca.code, ca.inv);
            assert!((self_dot - 1.0).abs() < 2e-3, "{self_dot}");
        }
    }

    #[test]
    fn odd_lengths_zero_and_extreme_vectors() {
        let a: Vec<i8> = (0..37).map(|i| (i * 7 % 255 - 127) as i8).collect();
        let b: Vec<i8> = (0..37).map(|i| (i * 3 % 255 - 127) as i8).collect();
        let want: i32 = a.iter().zip(&b).map(|(&x, &y)| x as i32 * y as i32).sum();
        assert_eq!(DotI8::for_this_cpu().dot(&a, &b), want);
        assert_eq!(dot_i8_lanes(&a, &b), want);
        let zero = encode(&[0.0; 5]);
        assert_eq!(zero.inv, 0.0);
        assert_eq!(&zero.code[..], &[0; 5]);
        let c = encode(&[1.0, -1.0, 0.5]);
        assert_eq!(&c.code[..], &[127, -127, 64]);
    }
}
