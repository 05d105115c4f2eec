//! The exact kernels of `FlatStore`: one query's scan and a batch's blocked
//! products, k = 20 over 32,000 random unit vectors of 384 floats.
//!
//! `cargo bench -p lobster-vector-core --bench flat`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use lobster_vector_core::flat::kernel;
use lobster_vector_core::testing::data::clustered;

const DIM: usize = 384;
const K: usize = 20;

fn rows(seed: u64, n: usize) -> Vec<f32> {
    // Many clusters and a wide spread: close to isotropic, like a large ontology.
    clustered(seed, n, DIM, 512, 1.0).concat()
}

fn flat(c: &mut Criterion) {
    let data = rows(42, 32_000);
    let queries = rows(4242, 256);
    let mut group = c.benchmark_group("flat_32k_x_384");
    group.throughput(Throughput::Elements(1));
    group.bench_function("top_k", |b| {
        b.iter(|| kernel::top_k(&data, DIM, &queries[..DIM], K))
    });
    for m in [16, 256] {
        group.throughput(Throughput::Elements(m as u64));
        group.bench_with_input(BenchmarkId::new("top_k_batch", m), &m, |b, &m| {
            b.iter(|| kernel::top_k_batch(&data, DIM, &queries[..m * DIM], K))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(std::time::Duration::from_secs(8));
    targets = flat
}
criterion_main!(benches);
