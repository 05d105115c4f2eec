//! Batching shared by the embedder and the cross-encoder: inputs sorted by
//! token count, batched with their neighbours, packed back to back (no
//! padding), results returned in the caller's order.

use lobster_vector_core::Result;
use rayon::prelude::*;
use tokenizers::Encoding;

/// Token ids, token type ids and `(first token, length)` of each sequence,
/// back to back, as [`crate::model::Bert::forward`] takes them.
pub(crate) struct Packed {
    pub ids: Vec<u32>,
    pub type_ids: Vec<u32>,
    pub seqs: Vec<(usize, usize)>,
}

/// Packs `encodings`; `with_types` keeps their token type ids (pairs).
pub(crate) fn pack(encodings: &[&Encoding], with_types: bool) -> Packed {
    let total: usize = encodings.iter().map(|e| e.get_ids().len()).sum();
    let mut packed = Packed {
        ids: Vec::with_capacity(total),
        type_ids: Vec::with_capacity(if with_types { total } else { 0 }),
        seqs: Vec::with_capacity(encodings.len()),
    };
    for e in encodings {
        packed.seqs.push((packed.ids.len(), e.get_ids().len()));
        packed.ids.extend_from_slice(e.get_ids());
        if with_types {
            packed.type_ids.extend_from_slice(e.get_type_ids());
        }
    }
    packed
}

/// Runs `run` over `encodings` sorted by length in batches of `batch_size`
/// and returns its per-input results in input order. `run` gets one batch
/// and whether to spread its work over the rayon pool.
///
/// With several batches per thread, whole batches run side by side, each
/// single-threaded (no synchronisation inside a forward pass); with fewer,
/// they run one after another, each spread over all threads.
pub(crate) fn run_sorted<T: Send>(
    encodings: &[Encoding],
    batch_size: usize,
    run: impl Fn(&[&Encoding], bool) -> Result<Vec<T>> + Sync,
) -> Result<Vec<T>> {
    let mut order: Vec<usize> = (0..encodings.len()).collect();
    order.sort_by_key(|&i| encodings[i].get_ids().len());
    let batches: Vec<Vec<&Encoding>> = order
        .chunks(batch_size.max(1))
        .map(|c| c.iter().map(|&i| &encodings[i]).collect())
        .collect();
    let threads = rayon::current_num_threads();
    let side_by_side = threads > 1 && batches.len() >= 2 * threads;
    let results: Vec<Vec<T>> = if side_by_side {
        batches
            .par_iter()
            .with_max_len(1)
            .map(|b| run(b, false))
            .collect::<Result<_>>()?
    } else {
        batches
            .iter()
            .map(|b| run(b, threads > 1))
            .collect::<Result<_>>()?
    };
    let mut slots: Vec<Option<T>> = (0..encodings.len()).map(|_| None).collect();
    for (i, v) in order.into_iter().zip(results.into_iter().flatten()) {
        slots[i] = Some(v);
    }
    slots
        .into_iter()
        .map(|v| {
            v.ok_or_else(|| lobster_vector_core::Error::Model {
                message: "a batch returned fewer results than inputs".into(),
            })
        })
        .collect()
}

/// A dedicated rayon pool of `threads` workers named `{name}-{i}`, or `None`
/// to run in the caller's pool.
pub(crate) fn thread_pool(
    threads: Option<usize>,
    name: &'static str,
) -> Result<Option<rayon::ThreadPool>> {
    threads
        .map(|n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .thread_name(move |i| format!("{name}-{i}"))
                .build()
                .map_err(|e| lobster_vector_core::Error::backend("rayon", e))
        })
        .transpose()
}
