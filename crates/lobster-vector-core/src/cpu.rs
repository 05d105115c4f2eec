//! The one place the workspace's hand-written kernels learn which SIMD
//! instructions the CPU runs. Detection happens once per process; kernels
//! that run in a loop pick their implementation once per scan from here.

use std::sync::OnceLock;

/// The instruction sets the kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// Plain Rust, auto-vectorised for the build target's baseline.
    Portable,
    /// x86_64 AVX2 with FMA.
    Avx2Fma,
}

/// The best [`Simd`] level this CPU supports, detected on first call.
pub fn simd() -> Simd {
    static LEVEL: OnceLock<Simd> = OnceLock::new();
    *LEVEL.get_or_init(detect)
}

/// Whether the CPU runs AVX2 and FMA: the precondition of every
/// `#[target_feature(enable = "avx2,fma")]` kernel in the workspace.
#[inline]
pub fn has_avx2_fma() -> bool {
    simd() == Simd::Avx2Fma
}

fn detect() -> Simd {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        return Simd::Avx2Fma;
    }
    Simd::Portable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_is_stable_and_agrees_with_std() {
        let first = simd();
        assert_eq!(simd(), first);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            has_avx2_fma(),
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        );
        #[cfg(not(target_arch = "x86_64"))]
        assert_eq!(first, Simd::Portable);
    }
}
