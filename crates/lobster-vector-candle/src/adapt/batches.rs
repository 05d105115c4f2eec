//! Which synonym pairs train together: every concept once per epoch, in
//! seeded order, each batch filled along chains of nearest neighbours so
//! that the in-batch negatives are the concepts the model confuses.

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// One training example: two names of one concept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Pair {
    /// Index of the concept.
    pub concept: u32,
    /// Indices into the concept's names.
    pub anchor: u32,
    pub positive: u32,
}

/// A seeded draw in `0..n` for `(a, b)`.
fn draw(seed: u64, a: u64, b: u64, n: usize) -> usize {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&a.to_le_bytes());
    key[8..].copy_from_slice(&b.to_le_bytes());
    (xxh3_64_with_seed(&key, seed) % n as u64) as usize
}

/// The batches of epoch `epoch`.
///
/// `names[c]` is how many distinct names concept `c` has (at least two),
/// `neighbour[c]` the concept nearest to it (by the base model), or `c`
/// itself when it has none. Every concept appears exactly once, in batches
/// of `batch_size` (the last may be smaller); a concept's pair is two
/// different names drawn from the seed, the epoch and the concept.
pub(crate) fn epoch_batches(
    names: &[usize],
    neighbour: &[u32],
    batch_size: usize,
    seed: u64,
    epoch: u64,
) -> Vec<Vec<Pair>> {
    let n = names.len();
    let epoch_seed = seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_by_key(|&c| (draw(epoch_seed, c as u64, 0, usize::MAX), c));
    let mut used = vec![false; n];
    let mut batches = Vec::with_capacity(n.div_ceil(batch_size.max(1)));
    let mut batch = Vec::with_capacity(batch_size);
    let pair = |c: u32| {
        let k = names[c as usize];
        let anchor = draw(epoch_seed, c as u64, 1, k);
        // A second name, different from the first.
        let positive = (anchor + 1 + draw(epoch_seed, c as u64, 2, k - 1)) % k;
        Pair {
            concept: c,
            anchor: anchor as u32,
            positive: positive as u32,
        }
    };
    for &start in &order {
        let mut c = start;
        while !used[c as usize] {
            used[c as usize] = true;
            batch.push(pair(c));
            if batch.len() == batch_size.max(1) {
                batches.push(std::mem::take(&mut batch));
                // A new batch starts a new chain.
                break;
            }
            c = neighbour[c as usize];
        }
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_concept_once_per_epoch_with_two_different_names() {
        let names = vec![2, 3, 5, 2, 4, 2, 2];
        let neighbour = vec![3, 0, 6, 1, 4, 2, 5];
        let batches = epoch_batches(&names, &neighbour, 3, 7, 0);
        let mut seen: Vec<u32> = batches.iter().flatten().map(|p| p.concept).collect();
        assert_eq!(batches.iter().map(Vec::len).max(), Some(3));
        seen.sort_unstable();
        assert_eq!(seen, (0..7).collect::<Vec<_>>());
        for p in batches.iter().flatten() {
            let k = names[p.concept as usize] as u32;
            assert!(
                p.anchor < k && p.positive < k && p.anchor != p.positive,
                "{p:?}"
            );
        }
    }

    #[test]
    fn a_batch_follows_the_neighbour_chain_and_epochs_differ() {
        let names = vec![2; 6];
        // 0 → 1 → 2 → 3 → 4 → 5 → 0
        let neighbour = vec![1, 2, 3, 4, 5, 0];
        let batches = epoch_batches(&names, &neighbour, 6, 1, 0);
        assert_eq!(batches.len(), 1);
        let chain: Vec<u32> = batches[0].iter().map(|p| p.concept).collect();
        let first = chain[0];
        let expected: Vec<u32> = (0..6).map(|i| (first + i) % 6).collect();
        assert_eq!(chain, expected);
        // Same seed and epoch: same batches; another epoch: another order.
        assert_eq!(batches, epoch_batches(&names, &neighbour, 6, 1, 0));
        let orders: std::collections::HashSet<u32> = (0..8)
            .map(|e| epoch_batches(&names, &neighbour, 6, 1, e)[0][0].concept)
            .collect();
        assert!(orders.len() > 1, "{orders:?}");
    }
}
