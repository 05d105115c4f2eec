//! Candidate generation over every channel and the features the ranker reads.

use std::collections::HashMap;

use super::lexical::LexicalIndex;
use super::structure::TermStructure;
use crate::ontology::Ontology;

/// The names of the features, in vector order (stored with a fitted model
/// so a model from another feature set is never applied).
pub const FEATURES: [&str; 23] = [
    "dense_cosine",
    "dense_missing",
    "dense_gap",
    "dense_reciprocal_rank",
    "dense_label",
    "bm25_relative",
    "trigram",
    "trigram_gap",
    "query_coverage",
    "entry_coverage",
    "same_words",
    "initialism",
    "initialism_share",
    "log_descendants",
    "depth",
    "descendant_support",
    "descendant_count",
    "ancestor_of_top",
    "log_entries",
    "channels",
    "lexical_label",
    "trigram_top",
    "bm25_top",
];

/// Number of features.
pub const N_FEATURES: usize = FEATURES.len();

/// Entries each lexical channel contributes.
const LEXICAL_POOL: usize = 30;
/// Entries of one concept scored for coverage.
const MAX_ENTRIES_SCORED: usize = 64;
/// Descendants this many levels down lend support.
const SUPPORT_DEPTH: usize = 2;

/// Which channels found a candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Channels {
    pub dense: bool,
    pub lexical: bool,
    pub abbreviation: bool,
}

/// One candidate concept of a query with its features.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Term index in the ontology.
    pub term: u32,
    /// The entry that best explains the match (dense best, else lexical best).
    pub entry: u32,
    /// Cosine similarity of the concept's best dense entry, if the dense channel found it.
    pub cosine: Option<f32>,
    pub channels: Channels,
    pub features: [f32; N_FEATURES],
}

/// A dense hit resolved to an entry of the lexical index.
#[derive(Debug, Clone, Copy)]
pub struct DenseHit {
    pub entry: u32,
    pub cosine: f32,
}

/// The candidate generator of one ontology (cheap view).
#[derive(Debug, Clone, Copy)]
pub struct CandidateGenerator<'o> {
    ontology: &'o Ontology,
    lexical: &'o LexicalIndex,
    structure: &'o TermStructure,
}

impl<'o> CandidateGenerator<'o> {
    pub fn new(ontology: &'o Ontology) -> Self {
        CandidateGenerator {
            ontology,
            lexical: ontology.lexical(),
            structure: ontology.structure(),
        }
    }

    pub fn lexical(&self) -> &'o LexicalIndex {
        self.lexical
    }

    /// Resolves a store hit id (`<term id>#label` or `<term id>#syn<k>`) to its entry.
    pub fn entry_of_hit(&self, id: &str) -> Option<u32> {
        let (term_id, slot) = id.rsplit_once('#')?;
        let slot = match slot {
            "label" => 0,
            s => s.strip_prefix("syn")?.parse::<u32>().ok()? + 1,
        };
        let term = self.ontology.index_of(term_id)? as u32;
        self.lexical.entry_at(term, slot)
    }

    /// Every candidate of `query` from the dense hits (best first) and the
    /// lexical and abbreviation channels, with features; `exclude` leaves a
    /// range of entries out of every channel (fitting on held-out synonyms
    /// or terms; empty at query time).
    pub fn candidates(
        &self,
        query: &str,
        dense: &[DenseHit],
        exclude: &std::ops::Range<u32>,
    ) -> Vec<Candidate> {
        let lex = self.lexical;
        let entries = lex.entries();
        let q = lex.query(query);
        let bm25 = lex.bm25(&q, LEXICAL_POOL, exclude);
        let trigram = lex.trigram(&q, LEXICAL_POOL, exclude);
        let initialisms = lex.initialism_matches(&q, exclude);

        let mut by_term: HashMap<u32, usize> = HashMap::new();
        let mut found: Vec<Found> = Vec::new();
        let mut slot = |term: u32, found: &mut Vec<Found>| -> usize {
            *by_term.entry(term).or_insert_with(|| {
                found.push(Found::new(term));
                found.len() - 1
            })
        };
        let mut dense_rank = 0usize;
        for h in dense.iter().filter(|h| !exclude.contains(&h.entry)) {
            let term = entries[h.entry as usize].term;
            let i = slot(term, &mut found);
            let f = &mut found[i];
            if f.cosine.is_none() {
                f.cosine = Some(h.cosine);
                f.dense_entry = Some(h.entry);
                f.dense_rank = dense_rank;
                dense_rank += 1;
            }
        }
        let top_bm25 = bm25.first().map_or(0.0, |x| x.1);
        for (rank, &(e, s)) in bm25.iter().enumerate() {
            let i = slot(entries[e as usize].term, &mut found);
            let f = &mut found[i];
            f.lexical = true;
            f.bm25 = f.bm25.max(s);
            f.bm25_top |= rank == 0;
        }
        let top_trigram = trigram.first().map_or(0.0, |x| x.1);
        for (rank, &(e, s)) in trigram.iter().enumerate() {
            let i = slot(entries[e as usize].term, &mut found);
            let f = &mut found[i];
            f.lexical = true;
            f.trigram = f.trigram.max(s);
            f.trigram_top |= rank == 0;
        }
        for &(e, share) in &initialisms {
            let i = slot(entries[e as usize].term, &mut found);
            let f = &mut found[i];
            f.abbreviation = true;
            f.initialism_share = f.initialism_share.max(1.0 / share.max(1) as f32);
            f.initialism_entry.get_or_insert(e);
        }

        let top_cos = dense.first().map_or(0.0, |h| h.cosine);
        let floor = dense.last().map_or(0.0, |h| h.cosine);
        let top_dense_term = dense.first().map(|h| entries[h.entry as usize].term);
        // Support: candidates' dense similarity lent to their close ancestors.
        let adj = self.ontology.adjacency();
        let mut support: HashMap<u32, (f32, u32)> = HashMap::new();
        let mut ancestors_of_top: Vec<u32> = Vec::new();
        for f in &found {
            let Some(c) = f.cosine else { continue };
            for (a, _) in crate::ontology::graph::walk(&adj.parents, f.term, SUPPORT_DEPTH) {
                let s = support.entry(a).or_insert((0.0, 0));
                s.0 += c;
                s.1 += 1;
            }
        }
        if let Some(t) = top_dense_term {
            ancestors_of_top
                .extend(crate::ontology::graph::walk(&adj.parents, t, usize::MAX).map(|(a, _)| a));
        }

        found
            .into_iter()
            .map(|f| {
                // The concept's entry that best covers the query.
                let mut best = (f32::MIN, 0.0f32, 0.0f32, u32::MAX);
                for e in lex.entries_of(f.term).take(MAX_ENTRIES_SCORED) {
                    let e = e as u32;
                    if exclude.contains(&e) {
                        continue;
                    }
                    let (qc, ec) = lex.coverage(&q, e);
                    let key = qc + ec;
                    if key > best.0 {
                        best = (key, qc, ec, e);
                    }
                }
                let (_, qcov, ecov, lex_entry) = best;
                let trigram = if lex_entry == u32::MAX {
                    f.trigram
                } else {
                    f.trigram.max(lex.trigram_similarity(&q, lex_entry))
                };
                let entry = f
                    .dense_entry
                    .or(f.initialism_entry.filter(|_| qcov < 0.5))
                    .or((lex_entry != u32::MAX).then_some(lex_entry))
                    .or(f.initialism_entry)
                    .unwrap_or(0);
                let cosine = f.cosine.unwrap_or(floor);
                let (sup, sup_n) = support.get(&f.term).copied().unwrap_or((0.0, 0));
                let n_entries = lex.entries_of(f.term).len();
                let channels = Channels {
                    dense: f.cosine.is_some(),
                    lexical: f.lexical,
                    abbreviation: f.abbreviation,
                };
                let features = [
                    cosine,
                    f32::from(u8::from(f.cosine.is_none())),
                    cosine - top_cos,
                    f.cosine.map_or(0.0, |_| 1.0 / (1.0 + f.dense_rank as f32)),
                    f32::from(u8::from(
                        f.dense_entry
                            .is_some_and(|e| entries[e as usize].is_label()),
                    )),
                    if top_bm25 > 0.0 {
                        f.bm25 / top_bm25
                    } else {
                        0.0
                    },
                    trigram,
                    trigram - top_trigram,
                    qcov,
                    ecov,
                    f32::from(u8::from(qcov > 0.999 && ecov > 0.999)),
                    f32::from(u8::from(f.abbreviation)),
                    f.initialism_share,
                    (1.0 + self.structure.descendants(f.term)).ln(),
                    (self.structure.depth(f.term) as f32 / 10.0).min(2.0),
                    (1.0 + sup).ln(),
                    (sup_n as f32 / 5.0).min(2.0),
                    f32::from(u8::from(ancestors_of_top.contains(&f.term))),
                    (1.0 + n_entries as f32).ln(),
                    (u8::from(channels.dense)
                        + u8::from(channels.lexical)
                        + u8::from(channels.abbreviation)) as f32
                        / 3.0,
                    f32::from(u8::from(
                        lex_entry != u32::MAX && entries[lex_entry as usize].is_label(),
                    )),
                    f32::from(u8::from(f.trigram_top)),
                    f32::from(u8::from(f.bm25_top)),
                ];
                Candidate {
                    term: f.term,
                    entry,
                    cosine: f.cosine,
                    channels,
                    features,
                }
            })
            .collect()
    }
}

/// What the channels found of one concept.
struct Found {
    term: u32,
    cosine: Option<f32>,
    dense_entry: Option<u32>,
    dense_rank: usize,
    lexical: bool,
    bm25: f32,
    bm25_top: bool,
    trigram: f32,
    trigram_top: bool,
    abbreviation: bool,
    initialism_share: f32,
    initialism_entry: Option<u32>,
}

impl Found {
    fn new(term: u32) -> Self {
        Found {
            term,
            cosine: None,
            dense_entry: None,
            dense_rank: 0,
            lexical: false,
            bm25: 0.0,
            bm25_top: false,
            trigram: 0.0,
            trigram_top: false,
            abbreviation: false,
            initialism_share: 0.0,
            initialism_entry: None,
        }
    }
}
