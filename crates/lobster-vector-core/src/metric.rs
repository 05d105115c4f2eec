//! Distance semantics, in one place.
//!
//! Every store returns **cosine distance** `d = 1 - cos(q, v)` (range 0..=2).
//! Only [`Metric::similarity`] turns a distance into the score users see.

use serde::{Deserialize, Serialize};

/// The distance a collection is searched with. Only cosine exists today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// `d = 1 - cos(q, v)`; for unit vectors `d = 1 - dot = squared_l2 / 2`.
    #[default]
    Cosine,
}

impl Metric {
    /// The name used in output (`distance_metric`) and in stored metadata.
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::Cosine => "cosine",
        }
    }

    /// The score shown to users: `clamp(1 - d, 0, 1)` rounded to 4 decimals.
    pub fn similarity(self, distance: f32) -> f32 {
        match self {
            Metric::Cosine => {
                let s = (1.0 - f64::from(distance)).clamp(0.0, 1.0);
                ((s * 10_000.0).round() / 10_000.0) as f32
            }
        }
    }

    /// Cosine distance from the dot product of two unit vectors.
    #[inline]
    pub fn distance_from_unit_dot(self, dot: f32) -> f32 {
        1.0 - dot
    }
}

impl std::fmt::Display for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Scales `v` to unit L2 norm in place; returns the original norm.
pub fn normalize(v: &mut [f32]) -> f32 {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        let inv = (1.0 / norm) as f32;
        v.iter_mut().for_each(|x| *x *= inv);
    }
    norm as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_clamps_and_rounds() {
        let m = Metric::Cosine;
        assert_eq!(m.similarity(0.0), 1.0);
        assert_eq!(m.similarity(0.25), 0.75);
        assert_eq!(m.similarity(0.123_456), 0.8765);
        assert_eq!(m.similarity(0.000_04), 1.0);
        assert_eq!(m.similarity(0.000_06), 0.9999);
        // d > 1 (opposed vectors) → 0; d < 0 from rounding error → 1.
        assert_eq!(m.similarity(1.3), 0.0);
        assert_eq!(m.similarity(2.0), 0.0);
        assert_eq!(m.similarity(-1e-6), 1.0);
    }

    #[test]
    fn distance_of_hand_computed_vectors() {
        // q = (1, 0), v = (0.6, 0.8): cos = 0.6, d = 0.4, score 0.6.
        let mut q = [2.0_f32, 0.0];
        let mut v = [3.0_f32, 4.0];
        normalize(&mut q);
        normalize(&mut v);
        let dot: f32 = q.iter().zip(&v).map(|(a, b)| a * b).sum();
        let d = Metric::Cosine.distance_from_unit_dot(dot);
        assert!((d - 0.4).abs() < 1e-6);
        assert_eq!(Metric::Cosine.similarity(d), 0.6);
        // Squared L2 over 2 gives the same distance on unit vectors.
        let l2: f32 = q.iter().zip(&v).map(|(a, b)| (a - b) * (a - b)).sum();
        assert!((l2 / 2.0 - d).abs() < 1e-6);
    }

    #[test]
    fn normalize_returns_norm() {
        let mut v = [3.0_f32, 4.0];
        assert_eq!(normalize(&mut v), 5.0);
        assert!((v[0] - 0.6).abs() < 1e-7 && (v[1] - 0.8).abs() < 1e-7);
        let mut z = [0.0_f32; 3];
        assert_eq!(normalize(&mut z), 0.0);
        assert_eq!(z, [0.0; 3]);
    }
}
