//! Helpers shared by the benchmarks: latency percentiles and the `.npy`
//! vector files the benchmark scratch directory holds.

use std::path::Path;

use crate::{Error, Result};

/// Linear-interpolated percentile `p` (0–100, NumPy's default) of unsorted
/// samples; NaN when there are none.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return f64::NAN;
    }
    let pos = p / 100.0 * (s.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

/// The median of unsorted samples.
pub fn median(samples: &[f64]) -> f64 {
    percentile(samples, 50.0)
}

/// A 2-d little-endian `float32` C-order `.npy` file: (row-major values, rows, columns).
pub fn read_npy_f32(path: &Path) -> Result<(Vec<f32>, usize, usize)> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    let bad = || Error::Parse {
        path: path.to_path_buf(),
        location: None,
        message: "not a 2-d <f4 C-order .npy file".into(),
    };
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" || bytes[6] != 1 {
        return Err(bad());
    }
    let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header =
        std::str::from_utf8(bytes.get(10..10 + hlen).ok_or_else(bad)?).map_err(|_| bad())?;
    if !header.contains("'descr': '<f4'") || !header.contains("'fortran_order': False") {
        return Err(bad());
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(bad)?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| bad())?;
    let [rows, cols] = dims[..] else {
        return Err(bad());
    };
    let data = &bytes[10 + hlen..];
    if data.len() != rows * cols * 4 {
        return Err(bad());
    }
    let out = data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((out, rows, cols))
}
