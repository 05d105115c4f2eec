//! The one place the workspace's hand-written kernels learn which SIMD
//! instructions the CPU runs. Detection happens once per process; kernels
//! that run in a loop pick their implementation once per scan from here.

use std::sync::OnceLock;

/// Whether the CPU runs AVX2 and FMA: the precondition of every
/// `#[target_feature(enable = "avx2,fma")]` kernel in the workspace.
/// Detected on the first call.
#[inline]
pub fn has_avx2_fma() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_is_stable_and_agrees_with_std() {
        let first = has_avx2_fma();
        assert_eq!(has_avx2_fma(), first);
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            first,
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
        );
        #[cfg(not(target_arch = "x86_64"))]
        assert!(!first);
    }
}
