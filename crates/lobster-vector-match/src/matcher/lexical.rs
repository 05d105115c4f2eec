//! The lexical channel: every live label and synonym of an ontology indexed
//! by its [`tokens`](super::text::tokens) (word BM25, order-free, with prefix
//! expansion of query words) and by character trigrams (TF-IDF cosine), plus
//! the initialisms the abbreviation channel looks up.
//!
//! Built from the ontology alone, deterministically, so every backend gets the
//! same channel.

use std::collections::HashMap;
use std::ops::Range;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::text;
use crate::ontology::Ontology;

/// One indexed text: a term's label (slot 0) or synonym `slot - 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Index of the term in [`Ontology::terms`].
    pub term: u32,
    /// 0 for the label, `k + 1` for synonym `k`.
    pub slot: u32,
    /// Token ids, in text order.
    pub tokens: Vec<u32>,
}

impl Entry {
    /// Whether this entry is the term's label.
    pub fn is_label(&self) -> bool {
        self.slot == 0
    }
}

/// A query read by the index: its tokens with their known alternatives.
#[derive(Debug, Clone, Default)]
pub struct QueryTokens {
    /// Per query token: its idf weight and the vocabulary tokens it matches
    /// (itself, then words it is a prefix of) with a match weight.
    pub words: Vec<QueryWord>,
    /// Character trigram ids with TF-IDF weights, and their norm.
    pub grams: Vec<(u32, f32)>,
    pub gram_norm: f32,
    /// Lowercased words of the query that read as abbreviations.
    pub abbreviations: Vec<String>,
}

/// One token of a query.
#[derive(Debug, Clone)]
pub struct QueryWord {
    /// The token as [`text::tokens`] reads it.
    pub text: String,
    /// Whether the query writes it as an abbreviation (`SCG`, `HEV`).
    pub abbreviation: bool,
    pub idf: f32,
    pub matches: Vec<(u32, f32)>,
}

/// Weight of a vocabulary word the query word is only a prefix of.
const PREFIX_WEIGHT: f32 = 0.8;
/// Weight of a vocabulary word sharing a long prefix with the query word
/// (`hypertension` ~ `hypertensive`, `ischemia` ~ `ischemic`).
const STEM_WEIGHT: f32 = 0.7;
/// The shortest shared prefix that makes two words stem-alike, and the share
/// of the shorter word it must cover.
const STEM_MIN: usize = 6;
const STEM_SHARE: f32 = 0.7;
/// Weight of entry words covered by a query abbreviation of their initials
/// (`SCG` ~ `superior cervical ganglion`).
const INITIALS_WEIGHT: f32 = 0.9;
/// Weight of a word the ontology itself uses in place of the query word.
const SUBSTITUTE_WEIGHT: f32 = 0.85;
/// Terms whose label and synonyms must swap two words before they count as substitutes.
const MIN_SUBSTITUTIONS: u32 = 3;
/// Most vocabulary words one query prefix expands to.
const MAX_EXPANSIONS: usize = 48;
/// BM25 parameters.
const K1: f32 = 1.2;
const B: f32 = 0.75;
/// Trigram postings longer than this are skipped at query time (their idf is low).
const MAX_GRAM_POSTINGS: usize = 20_000;

/// The lexical index of one ontology.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LexicalIndex {
    entries: Vec<Entry>,
    /// Per term: the range of its entries.
    term_entries: Vec<(u32, u32)>,
    vocab: HashMap<String, u32>,
    /// Vocabulary by id.
    words: Vec<String>,
    /// Vocabulary sorted by text, for prefix ranges.
    sorted_vocab: Vec<(String, u32)>,
    idf: Vec<f32>,
    word_postings: Vec<Vec<u32>>,
    avg_len: f32,
    grams: HashMap<u64, u32>,
    gram_idf: Vec<f32>,
    gram_postings: Vec<Vec<(u32, f32)>>,
    gram_norms: Vec<f32>,
    initialisms: HashMap<String, Vec<u32>>,
    /// Words the ontology's own label/synonym pairs swap for each other
    /// (`disease` ↔ `disorder`, `renal` ↔ `kidney`), learned by [`LexicalIndex::build`].
    substitutes: HashMap<u32, Vec<u32>>,
    /// Per word: how often a synonym keeps it when the label has it
    /// (`alpha`, `beta`, `human` are often left out), learned by [`LexicalIndex::build`].
    keep_rate: Vec<f32>,
}

impl LexicalIndex {
    /// Indexes every live term's label and synonyms (empty texts skipped).
    pub fn build(ontology: &Ontology) -> LexicalIndex {
        // Texts in term order, tokenised in parallel, then numbered in that order.
        let mut slots: Vec<(u32, u32, &str)> = Vec::new();
        let mut bounds: Vec<(u32, u32)> = Vec::with_capacity(ontology.len());
        for (t, term) in ontology.terms().iter().enumerate() {
            let start = slots.len() as u32;
            if !term.deprecated && !term.label.trim().is_empty() {
                let all = std::iter::once((0u32, term.label.as_str())).chain(
                    term.synonyms
                        .iter()
                        .enumerate()
                        .map(|(k, s)| (k as u32 + 1, s.text.as_str())),
                );
                slots.extend(
                    all.filter(|(_, text)| !text.trim().is_empty())
                        .map(|(slot, text)| (t as u32, slot, text)),
                );
            }
            bounds.push((start, slots.len() as u32));
        }
        let tokenised: Vec<Vec<String>> = slots
            .par_iter()
            .map(|&(_, _, text)| text::tokens(text))
            .collect();
        let mut vocab: HashMap<String, u32> = HashMap::new();
        let mut entries = Vec::with_capacity(slots.len());
        let texts: Vec<&str> = slots.iter().map(|s| s.2).collect();
        for (&(term, slot, _), words) in slots.iter().zip(tokenised) {
            let ids = words
                .into_iter()
                .map(|w| {
                    let next = vocab.len() as u32;
                    *vocab.entry(w).or_insert(next)
                })
                .collect();
            entries.push(Entry {
                term,
                slot,
                tokens: ids,
            });
        }
        let term_entries = bounds;
        let n = entries.len().max(1) as f32;
        let mut word_postings: Vec<Vec<u32>> = vec![Vec::new(); vocab.len()];
        let mut total_len = 0usize;
        for (e, entry) in entries.iter().enumerate() {
            total_len += entry.tokens.len();
            for &w in &entry.tokens {
                let p = &mut word_postings[w as usize];
                if p.last() != Some(&(e as u32)) {
                    p.push(e as u32);
                }
            }
        }
        let idf = word_postings
            .iter()
            .map(|p| bm25_idf(n, p.len() as f32))
            .collect();
        let mut sorted_vocab: Vec<(String, u32)> =
            vocab.iter().map(|(w, &i)| (w.clone(), i)).collect();
        sorted_vocab.sort();

        // Character trigrams over the token form.
        let mut grams: HashMap<u64, u32> = HashMap::new();
        let mut entry_grams: Vec<Vec<(u32, f32)>> = Vec::with_capacity(entries.len());
        let words: Vec<String> = {
            let mut v = vec![String::new(); vocab.len()];
            for (w, &i) in &vocab {
                v[i as usize] = w.clone();
            }
            v
        };
        let word_grams: Vec<Vec<u64>> = words.par_iter().map(|w| word_grams(w)).collect();
        let mut scratch: Vec<u64> = Vec::new();
        for entry in &entries {
            scratch.clear();
            for &w in &entry.tokens {
                scratch.extend_from_slice(&word_grams[w as usize]);
            }
            let counts = count_sorted(&mut scratch);
            let mut row: Vec<(u32, f32)> = counts
                .into_iter()
                .map(|(g, c)| {
                    let next = grams.len() as u32;
                    (*grams.entry(g).or_insert(next), c as f32)
                })
                .collect();
            row.sort_by_key(|&(g, _)| g);
            entry_grams.push(row);
        }
        let mut df = vec![0u32; grams.len()];
        for row in &entry_grams {
            for &(g, _) in row {
                df[g as usize] += 1;
            }
        }
        let gram_idf: Vec<f32> = df
            .iter()
            .map(|&d| (n / d.max(1) as f32).ln() + 1.0)
            .collect();
        let mut gram_postings: Vec<Vec<(u32, f32)>> = vec![Vec::new(); grams.len()];
        let mut gram_norms = Vec::with_capacity(entries.len());
        for (e, row) in entry_grams.iter().enumerate() {
            let mut norm = 0.0f32;
            for &(g, c) in row {
                let w = (1.0 + c.ln()) * gram_idf[g as usize];
                norm += w * w;
                gram_postings[g as usize].push((e as u32, w));
            }
            gram_norms.push(norm.sqrt().max(f32::MIN_POSITIVE));
        }

        let mut initialisms: HashMap<String, Vec<u32>> = HashMap::new();
        let heads = head_words(&texts);
        for (e, text) in texts.iter().enumerate() {
            for i in text::initialisms(text, &heads) {
                let list = initialisms.entry(i).or_default();
                if list.last() != Some(&(e as u32)) {
                    list.push(e as u32);
                }
            }
        }
        let keep_rate = learn_keep_rates(&entries, &term_entries, vocab.len());
        let substitutes = learn_substitutes(&entries, &term_entries);
        LexicalIndex {
            keep_rate,
            substitutes,
            avg_len: total_len as f32 / n,
            entries,
            term_entries,
            vocab,
            words,
            sorted_vocab,
            idf,
            word_postings,
            grams,
            gram_idf,
            gram_postings,
            gram_norms,
            initialisms,
        }
    }

    /// Whether every id the index holds points inside it and it covers the
    /// `terms` terms of its ontology: what a saved index must pass before it
    /// is used (linear in its size).
    pub(crate) fn is_consistent(&self, terms: usize) -> bool {
        let n_entries = self.entries.len() as u32;
        let n_words = self.words.len();
        let n_grams = self.gram_idf.len();
        let word_ok = |w: &u32| (*w as usize) < n_words;
        let entry_ok = |e: &u32| *e < n_entries;
        self.term_entries.len() == terms
            && self
                .term_entries
                .iter()
                .all(|&(a, b)| a <= b && b <= n_entries)
            && self
                .entries
                .iter()
                .all(|e| (e.term as usize) < terms && e.tokens.iter().all(word_ok))
            && self.vocab.len() == n_words
            && self.vocab.values().all(word_ok)
            && self.sorted_vocab.len() == n_words
            && self.sorted_vocab.iter().all(|(_, w)| word_ok(w))
            && self.idf.len() == n_words
            && self.keep_rate.len() == n_words
            && self.word_postings.len() == n_words
            && self.word_postings.iter().flatten().all(entry_ok)
            && self.grams.len() == n_grams
            && self.grams.values().all(|g| (*g as usize) < n_grams)
            && self.gram_postings.len() == n_grams
            && self
                .gram_postings
                .iter()
                .flatten()
                .all(|(e, _)| entry_ok(e))
            && self.gram_norms.len() == self.entries.len()
            && self.initialisms.values().flatten().all(entry_ok)
            && self
                .substitutes
                .iter()
                .all(|(w, subs)| word_ok(w) && subs.iter().all(word_ok))
    }

    #[cfg(test)]
    pub(crate) fn entries_mut_for_test(&mut self) -> &mut [Entry] {
        &mut self.entries
    }

    /// Every indexed entry.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entries of term `term` (an index into [`Ontology::terms`]).
    pub fn entries_of(&self, term: u32) -> std::ops::Range<usize> {
        let (a, b) = self
            .term_entries
            .get(term as usize)
            .copied()
            .unwrap_or((0, 0));
        a as usize..b as usize
    }

    /// The entry of `term` at `slot`, if indexed.
    pub fn entry_at(&self, term: u32, slot: u32) -> Option<u32> {
        self.entries_of(term)
            .find(|&e| self.entries[e].slot == slot)
            .map(|e| e as u32)
    }

    /// Reads a query.
    pub fn query(&self, text: &str) -> QueryTokens {
        let abbreviations: Vec<String> = text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| text::looks_like_abbreviation(w))
            .map(str::to_lowercase)
            .collect();
        let words: Vec<QueryWord> = text::tokens(text)
            .into_iter()
            .map(|w| {
                let mut word = self.query_word(&w);
                word.abbreviation = abbreviations.contains(&w);
                word
            })
            .collect();
        let counts = gram_counts(text::tokens(text).iter().map(String::as_str));
        let mut norm = 0.0f32;
        let grams: Vec<(u32, f32)> = counts
            .into_iter()
            .filter_map(|(g, c)| {
                let id = *self.grams.get(&g)?;
                let w = (1.0 + (c as f32).ln()) * self.gram_idf[id as usize];
                norm += w * w;
                Some((id, w))
            })
            .collect();
        QueryTokens {
            words,
            grams,
            gram_norm: norm.sqrt(),
            abbreviations,
        }
    }

    fn query_word(&self, word: &str) -> QueryWord {
        let mut matches = Vec::new();
        let exact = self.vocab.get(word).copied();
        if let Some(id) = exact {
            matches.push((id, 1.0));
        }
        if word.chars().count() >= 3 {
            let start = self
                .sorted_vocab
                .partition_point(|(w, _)| w.as_str() < word);
            matches.extend(
                self.sorted_vocab[start..]
                    .iter()
                    .take_while(|(w, _)| w.starts_with(word))
                    .filter(|(w, _)| w != word)
                    .take(MAX_EXPANSIONS)
                    .map(|(_, id)| (*id, PREFIX_WEIGHT)),
            );
        }
        if word.is_ascii() && word.len() >= STEM_MIN {
            let head = &word[..STEM_MIN];
            let start = self
                .sorted_vocab
                .partition_point(|(w, _)| w.as_str() < head);
            let mut n = 0;
            for (w, id) in self.sorted_vocab[start..]
                .iter()
                .take_while(|(w, _)| w.starts_with(head))
            {
                if n >= MAX_EXPANSIONS {
                    break;
                }
                if matches.iter().any(|(m, _)| m == id) {
                    continue;
                }
                let shared = w
                    .bytes()
                    .zip(word.bytes())
                    .take_while(|(a, b)| a == b)
                    .count();
                let shorter = w.len().min(word.len());
                if shared as f32 >= STEM_SHARE * shorter as f32 {
                    matches.push((*id, STEM_WEIGHT));
                    n += 1;
                }
            }
        }
        if let Some(id) = exact {
            if let Some(subs) = self.substitutes.get(&id) {
                for &s in subs {
                    if !matches.iter().any(|(m, _)| *m == s) {
                        matches.push((s, SUBSTITUTE_WEIGHT));
                    }
                }
            }
        }
        let idf = match exact {
            Some(id) => self.idf[id as usize],
            None => matches
                .iter()
                .map(|&(id, _)| self.idf[id as usize])
                .fold(None, |a: Option<f32>, b| Some(a.map_or(b, |a| a.min(b))))
                .unwrap_or_else(|| bm25_idf(self.entries.len() as f32, 0.0)),
        };
        QueryWord {
            text: word.to_string(),
            abbreviation: false,
            idf,
            matches,
        }
    }

    /// The `limit` entries with the highest BM25 score for `q`, best first
    /// (ties by entry), leaving out the entries in `exclude`.
    pub fn bm25(&self, q: &QueryTokens, limit: usize, exclude: &Range<u32>) -> Vec<(u32, f32)> {
        let mut total: HashMap<u32, f32> = HashMap::new();
        let mut this: HashMap<u32, f32> = HashMap::new();
        for word in &q.words {
            this.clear();
            for &(w, weight) in &word.matches {
                let idf = self.idf[w as usize] * weight;
                for &e in &self.word_postings[w as usize] {
                    let len = self.entries[e as usize].tokens.len() as f32;
                    let s = idf * (K1 + 1.0) / (1.0 + K1 * (1.0 - B + B * len / self.avg_len));
                    let slot = this.entry(e).or_insert(0.0);
                    if s > *slot {
                        *slot = s;
                    }
                }
            }
            for (&e, &s) in &this {
                *total.entry(e).or_insert(0.0) += s;
            }
        }
        top(total, limit, exclude)
    }

    /// The `limit` entries closest to `q` by trigram TF-IDF cosine, best first.
    pub fn trigram(&self, q: &QueryTokens, limit: usize, exclude: &Range<u32>) -> Vec<(u32, f32)> {
        let mut dot: HashMap<u32, f32> = HashMap::new();
        for &(g, w) in &q.grams {
            let postings = &self.gram_postings[g as usize];
            if postings.len() > MAX_GRAM_POSTINGS {
                continue;
            }
            for &(e, ew) in postings {
                *dot.entry(e).or_insert(0.0) += w * ew;
            }
        }
        let qn = q.gram_norm.max(f32::MIN_POSITIVE);
        let scored = dot
            .into_iter()
            .map(|(e, d)| (e, d / (qn * self.gram_norms[e as usize])))
            .collect();
        top(scored, limit, exclude)
    }

    /// Trigram cosine of `q` and one entry.
    pub fn trigram_similarity(&self, q: &QueryTokens, entry: u32) -> f32 {
        let words = self.entry_words(entry);
        let counts = gram_counts(words.iter().copied());
        let mut dot = 0.0f32;
        let mut norm = 0.0f32;
        let qmap: HashMap<u32, f32> = q.grams.iter().copied().collect();
        for (g, c) in counts {
            if let Some(&id) = self.grams.get(&g) {
                let w = (1.0 + (c as f32).ln()) * self.gram_idf[id as usize];
                norm += w * w;
                if let Some(qw) = qmap.get(&id) {
                    dot += qw * w;
                }
            }
        }
        if norm <= 0.0 || q.gram_norm <= 0.0 {
            return 0.0;
        }
        dot / (norm.sqrt() * q.gram_norm)
    }

    fn entry_words(&self, entry: u32) -> Vec<&str> {
        self.entries[entry as usize]
            .tokens
            .iter()
            .map(|&t| self.words[t as usize].as_str())
            .collect()
    }

    /// Word coverage of a query and an entry: the idf-weighted share of the
    /// query's words found in the entry, and of the entry's words found in
    /// the query (a prefix match counts `PREFIX_WEIGHT`, 0.8). A query word
    /// also covers consecutive entry words it joins (`gammadelta` ~ `gamma
    /// delta`, `nonclassical` ~ `non classical`), and a query abbreviation the
    /// consecutive entry words whose initials it spells (`SCG` ~ `superior
    /// cervical ganglion`, weight `INITIALS_WEIGHT`).
    pub fn coverage(&self, q: &QueryTokens, entry: u32) -> (f32, f32) {
        let tokens = &self.entries[entry as usize].tokens;
        let mut q_total = 0.0f32;
        let mut q_hit = 0.0f32;
        let mut e_hit = vec![0.0f32; tokens.len()];
        for word in &q.words {
            q_total += word.idf;
            let mut best = 0.0f32;
            for (i, t) in tokens.iter().enumerate() {
                if let Some(&(_, w)) = word.matches.iter().find(|(id, _)| id == t) {
                    best = best.max(w);
                    e_hit[i] = e_hit[i].max(w);
                }
            }
            if best < 1.0 {
                if let Some(run) = self.joined_run(&word.text, tokens) {
                    best = 1.0;
                    e_hit[run].iter_mut().for_each(|h| *h = 1.0);
                } else if word.abbreviation && best < INITIALS_WEIGHT {
                    if let Some(run) = self.initials_run(&word.text, tokens) {
                        best = INITIALS_WEIGHT;
                        e_hit[run]
                            .iter_mut()
                            .for_each(|h| *h = h.max(INITIALS_WEIGHT));
                    }
                }
            }
            q_hit += best * word.idf;
        }
        // An entry word the ontology's own synonyms often leave out weighs less.
        let weight = |t: u32| self.idf[t as usize] * self.keep_rate[t as usize];
        let e_total: f32 = tokens.iter().map(|&t| weight(t)).sum();
        let e_cov: f32 = tokens
            .iter()
            .zip(&e_hit)
            .map(|(&t, &h)| h * weight(t))
            .sum();
        let qc = if q_total > 0.0 { q_hit / q_total } else { 0.0 };
        let ec = if e_total > 0.0 { e_cov / e_total } else { 0.0 };
        (qc, ec)
    }

    /// The first run of two or more consecutive `tokens` that, written
    /// together, are `word`.
    fn joined_run(&self, word: &str, tokens: &[u32]) -> Option<Range<usize>> {
        self.spelled_run(word, tokens, |w| w)
    }

    /// The first run of two or more consecutive `tokens` whose
    /// [initials](text::initial) spell `abbreviation`.
    fn initials_run(&self, abbreviation: &str, tokens: &[u32]) -> Option<Range<usize>> {
        self.spelled_run(abbreviation, tokens, text::initial)
    }

    /// The first run of two or more consecutive `tokens` whose `part`s,
    /// written together, are `text`.
    fn spelled_run(
        &self,
        text: &str,
        tokens: &[u32],
        part: impl Fn(&str) -> &str,
    ) -> Option<Range<usize>> {
        (0..tokens.len()).find_map(|start| {
            let mut rest = text;
            for (end, &t) in tokens.iter().enumerate().skip(start) {
                rest = rest.strip_prefix(part(self.words[t as usize].as_str()))?;
                if rest.is_empty() {
                    return (end > start).then_some(start..end + 1);
                }
            }
            None
        })
    }

    /// The words the ontology swaps for `word` (learned by [`LexicalIndex::build`] from its label/synonym pairs).
    pub fn substitutes_of(&self, word: &str) -> Vec<&str> {
        self.vocab
            .get(word)
            .and_then(|id| self.substitutes.get(id))
            .map(|s| s.iter().map(|&i| self.words[i as usize].as_str()).collect())
            .unwrap_or_default()
    }

    /// Entries whose initialism is one of the query's abbreviations, with
    /// the number of distinct terms sharing that initialism.
    pub fn initialism_matches(&self, q: &QueryTokens, exclude: &Range<u32>) -> Vec<(u32, usize)> {
        let mut out = Vec::new();
        for a in &q.abbreviations {
            if let Some(list) = self.initialisms.get(a) {
                let mut terms: Vec<u32> = list
                    .iter()
                    .map(|&e| self.entries[e as usize].term)
                    .collect();
                terms.sort_unstable();
                terms.dedup();
                out.extend(
                    list.iter()
                        .filter(|&&e| !exclude.contains(&e))
                        .map(|&e| (e, terms.len())),
                );
            }
        }
        out
    }
}

/// Words that end at least this share of all texts are head words.
const HEAD_SHARE: f32 = 0.05;

/// The ontology's head words: those that end many of its labels and synonyms
/// (`cell` in CL, `disease` in MONDO).
fn head_words(texts: &[&str]) -> Vec<String> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for t in texts {
        if let Some(w) = text::last_word(t) {
            *counts.entry(w).or_insert(0) += 1;
        }
    }
    let min = (texts.len() as f32 * HEAD_SHARE).max(1.0) as usize;
    let mut heads: Vec<String> = counts
        .into_iter()
        .filter(|&(_, c)| c >= min)
        .map(|(w, _)| w)
        .collect();
    heads.sort();
    heads
}

/// Per word: the share of (label, synonym) pairs of one term with the word
/// in the label that keep it in the synonym, smoothed towards 1 (two
/// pseudo-pairs that keep it).
fn learn_keep_rates(entries: &[Entry], term_entries: &[(u32, u32)], words: usize) -> Vec<f32> {
    let mut kept = vec![2.0f32; words];
    let mut seen = vec![2.0f32; words];
    for &(a, b) in term_entries {
        let list = &entries[a as usize..b as usize];
        let Some(label) = list.iter().find(|e| e.is_label()) else {
            continue;
        };
        for syn in list.iter().filter(|e| !e.is_label()) {
            for &w in &label.tokens {
                seen[w as usize] += 1.0;
                if syn.tokens.contains(&w) {
                    kept[w as usize] += 1.0;
                }
            }
        }
    }
    kept.iter().zip(&seen).map(|(k, s)| k / s).collect()
}

/// Word pairs that one term's label and synonyms swap, everything else
/// equal (`kidney disease` / `renal disease`), counted over terms; pairs seen
/// in at least [`MIN_SUBSTITUTIONS`] terms become substitutes of each other.
fn learn_substitutes(entries: &[Entry], term_entries: &[(u32, u32)]) -> HashMap<u32, Vec<u32>> {
    let mut counts: HashMap<(u32, u32), u32> = HashMap::new();
    let mut seen: Vec<(u32, u32)> = Vec::new();
    for &(a, b) in term_entries {
        let bags: Vec<Vec<u32>> = entries[a as usize..b as usize]
            .iter()
            .map(|e| {
                let mut t = e.tokens.clone();
                t.sort_unstable();
                t.dedup();
                t
            })
            .collect();
        seen.clear();
        for i in 0..bags.len() {
            for j in i + 1..bags.len() {
                let (x, y) = (&bags[i], &bags[j]);
                if x.len() != y.len() || x.len() < 2 {
                    continue;
                }
                let only_x: Vec<u32> = x.iter().filter(|t| !y.contains(t)).copied().collect();
                let only_y: Vec<u32> = y.iter().filter(|t| !x.contains(t)).copied().collect();
                if only_x.len() == 1 && only_y.len() == 1 {
                    let pair = (only_x[0].min(only_y[0]), only_x[0].max(only_y[0]));
                    if !seen.contains(&pair) {
                        seen.push(pair);
                    }
                }
            }
        }
        for &pair in &seen {
            *counts.entry(pair).or_insert(0) += 1;
        }
    }
    let mut pairs: Vec<(u32, u32)> = counts
        .into_iter()
        .filter(|&(_, c)| c >= MIN_SUBSTITUTIONS)
        .map(|(p, _)| p)
        .collect();
    pairs.sort_unstable();
    let mut out: HashMap<u32, Vec<u32>> = HashMap::new();
    for (a, b) in pairs {
        out.entry(a).or_default().push(b);
        out.entry(b).or_default().push(a);
    }
    out
}

fn bm25_idf(n: f32, df: f32) -> f32 {
    ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
}

/// The best `limit` of `scores`, descending, ties by entry id.
fn top(scores: HashMap<u32, f32>, limit: usize, exclude: &Range<u32>) -> Vec<(u32, f32)> {
    let mut v: Vec<(u32, f32)> = scores
        .into_iter()
        .filter(|&(e, s)| !exclude.contains(&e) && s > 0.0)
        .collect();
    let by = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if v.len() > limit {
        v.select_nth_unstable_by(limit, by);
        v.truncate(limit);
    }
    v.sort_by(by);
    v
}

/// Character trigrams of one word padded with `#`, each packed into a
/// `u64` (three 21-bit code points).
fn word_grams(word: &str) -> Vec<u64> {
    let chars: Vec<u64> = std::iter::once('#')
        .chain(word.chars())
        .chain(std::iter::once('#'))
        .map(|c| u64::from(u32::from(c)))
        .collect();
    chars
        .windows(3)
        .map(|g| (g[0] << 42) | (g[1] << 21) | g[2])
        .collect()
}

/// Distinct values with their counts, in ascending order (sorts `grams`).
fn count_sorted(grams: &mut [u64]) -> Vec<(u64, u32)> {
    grams.sort_unstable();
    let mut out: Vec<(u64, u32)> = Vec::new();
    for &g in grams.iter() {
        match out.last_mut() {
            Some((last, c)) if *last == g => *c += 1,
            _ => out.push((g, 1)),
        }
    }
    out
}

/// Character trigrams of each word, with counts, in ascending order.
fn gram_counts<'w>(words: impl Iterator<Item = &'w str>) -> Vec<(u64, u32)> {
    let mut all: Vec<u64> = words.flat_map(word_grams).collect();
    count_sorted(&mut all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ontology::{Ontology, Term};

    fn index(labels: &[&str]) -> LexicalIndex {
        let terms = labels
            .iter()
            .enumerate()
            .map(|(i, label)| Term {
                id: format!("FX:{i:04}"),
                label: (*label).to_string(),
                definition: None,
                synonyms: vec![],
                parents: vec![],
                deprecated: false,
                replaced_by: None,
                consider: vec![],
            })
            .collect();
        let o = Ontology::from_terms("fixture", None, "v1", terms).expect("fixture");
        LexicalIndex::build(&o)
    }

    fn coverage(lex: &LexicalIndex, query: &str, term: u32) -> (f32, f32) {
        let entry = lex.entries_of(term).start as u32;
        lex.coverage(&lex.query(query), entry)
    }

    #[test]
    fn a_query_abbreviation_covers_the_entry_words_it_spells() {
        let lex = index(&[
            "superior cervical ganglion TH neuron",
            "neuron",
            "inferior mesenteric ganglion TH neuron",
        ]);
        let (qc, ec) = coverage(&lex, "SCG TH neuron", 0);
        assert!(
            qc >= INITIALS_WEIGHT - 1e-6 && ec >= INITIALS_WEIGHT - 1e-6,
            "{qc} {ec}"
        );
        // Other initials cover nothing.
        let (qc_other, ec_other) = coverage(&lex, "SCG TH neuron", 2);
        assert!(qc_other < qc && ec_other < ec, "{qc_other} {ec_other}");
        // Only a word written as an abbreviation is read as one.
        let (qc_lower, _) = coverage(&lex, "scg th neuron", 0);
        assert!(qc_lower < qc, "{qc_lower}");
        // One word never spells a run: the parent stays partly covered.
        let (qc_parent, ec_parent) = coverage(&lex, "SCG TH neuron", 1);
        assert!(qc_parent < qc && (ec_parent - 1.0).abs() < 1e-6);
    }

    #[test]
    fn a_query_word_covers_the_entry_words_it_joins() {
        let lex = index(&["gamma-delta T cell", "non-classical monocyte", "T cell"]);
        assert_eq!(coverage(&lex, "gammadelta T cell", 0), (1.0, 1.0));
        assert_eq!(coverage(&lex, "Nonclassical Monocytes", 1), (1.0, 1.0));
        let (qc, _) = coverage(&lex, "gammadelta T cell", 2);
        assert!(qc < 1.0, "{qc}");
        // A word that is only the start of a run covers nothing of it.
        let (qc, ec) = coverage(&lex, "nonclass monocyte", 1);
        assert!(qc < 1.0 && ec < 1.0, "{qc} {ec}");
    }
}
