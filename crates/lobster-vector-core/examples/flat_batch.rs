//! Batch and single exact search of the flat kernel on random unit vectors.
//!
//! `cargo run --release -p lobster-vector-core --example flat_batch -- [N] [DIM] [QUERIES] [K]`

use std::time::Instant;

use lobster_vector_core::{flat::kernel, metric::normalize};
use rand::{Rng, SeedableRng};

fn unit_rows(seed: u64, n: usize, dim: usize) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut v: Vec<f32> = (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect();
    v.chunks_exact_mut(dim).for_each(|r| {
        normalize(r);
    });
    v
}

fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|a| a.parse().ok())
            .unwrap_or(d)
    };
    let (n, dim, m, k) = (arg(1, 32_000), arg(2, 384), arg(3, 1_000), arg(4, 20));
    let data = unit_rows(42, n, dim);
    let queries = unit_rows(4242, m, dim);
    let _ = kernel::top_k_batch(&data, dim, &queries, k);
    let mut batch = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r = kernel::top_k_batch(&data, dim, &queries, k);
        batch.push(t.elapsed().as_secs_f64());
        assert_eq!(r.len(), m);
    }
    batch.sort_by(f64::total_cmp);
    let mut single = Vec::new();
    for q in queries.chunks_exact(dim).take(200) {
        let t = Instant::now();
        let r = kernel::top_k(&data, dim, q, k);
        single.push(t.elapsed().as_secs_f64());
        assert_eq!(r.len(), k.min(n));
    }
    single.sort_by(f64::total_cmp);
    println!(
        "n={n} dim={dim} queries={m} k={k} threads={}: batch {:.0} queries/s, single p50 {:.3} ms",
        rayon::current_num_threads(),
        m as f64 / batch[2],
        single[single.len() / 2] * 1e3
    );
}
