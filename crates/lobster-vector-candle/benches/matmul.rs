//! The packed products a MiniLM forward pass runs on: the attention
//! projections (384 → 384), the feed-forward up (384 → 1536, GELU fused) and
//! down (1536 → 384) products, for a batch of 64 token rows and for one
//! query's 8 rows.
//!
//! `cargo bench -p lobster-vector-candle --bench matmul`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lobster_vector_candle::matmul::{Activation, PackedLinear};

fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i.wrapping_mul(2_654_435_761).wrapping_add(seed) % 2_001) as f32 - 1_000.0) / 1e4
        })
        .collect()
}

fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("packed_linear");
    for (name, k, n, act) in [
        ("384x384", 384, 384, None),
        ("384x1536_gelu", 384, 1_536, Some(Activation::Gelu)),
        ("1536x384", 1_536, 384, None),
    ] {
        let layer = PackedLinear::new(&values(k * n, 1), &values(n, 2), k, n);
        for m in [8, 64] {
            let x = values(m * k, 3);
            let mut out = vec![0.0_f32; m * n];
            group.throughput(Throughput::Elements((2 * m * k * n) as u64));
            group.bench_with_input(BenchmarkId::new(name, m), &m, |b, &m| {
                b.iter(|| layer.forward(&mut out, &x, m, act, true))
            });
        }
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = matmul
}
criterion_main!(benches);
