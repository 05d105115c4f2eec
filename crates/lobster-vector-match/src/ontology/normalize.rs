//! Label normalisation and the exact-match index.

use std::borrow::Cow;
use std::hash::{BuildHasher, RandomState};

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use super::model::strip_obsolete_prefix;
use super::{Ontology, SynonymScope, Term};

/// Normalises a label or query for exact matching. Two texts match exactly
/// when their normalised forms are equal. Steps, in order:
///
/// 1. Unicode NFKC (full-width letters, ligatures, non-breaking spaces → plain forms);
/// 2. hyphens, underscores and Unicode dashes (U+2010–U+2015, U+2212) → space;
/// 3. split on whitespace, rejoin with single spaces (so leading, trailing and
///    repeated whitespace go);
/// 4. lowercase (Unicode);
/// 5. singularise the **last word** only, conservatively:
///    - `cells` → `cell` always (`CD8+ T cells` = `CD8+ T cell`);
///    - otherwise only a word of at least 4 ASCII letters, written in lower
///      or title case (so acronyms such as `AIDS` keep their `s`), ending in
///      `cytes` or `phages` (`lymphocytes`, `macrophages`), or in `s` after
///      one of the consonants `b c d f g h k l m n r t v w y`
///      (`neurons`, `fibroblasts`, `kidneys`), loses that `s`. Words ending
///      in `ss`, a vowel + `s` (`pancreas`, `diabetes`, `herpes`, `pelvis`,
///      `tetanus`) or `ps` (`biceps`, `mumps`) are left alone.
///
/// Commas, `+` and other punctuation are kept. The rule is applied to the
/// index and the query alike, so a false singular (`rickets` → `ricket`)
/// only matters where two concepts collide. Measured on the cellxgene 1.11.1
/// files (live labels and synonyms): the `cells` rule merges no texts of
/// different terms; the generic rule merges 0 in CL, 15 in UBERON and 6 in
/// MONDO, each a singular term and a collective plural one (`lung` vs
/// `lungs`, a synonym of "pair of lungs"; `neural tube defect` vs
/// `neural tube defects`). [`ExactIndex::lookup`] returns both, labels first.
pub fn normalize_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out);
    out
}

/// [`normalize_label`] into a reused buffer (cleared first).
fn normalize_into(text: &str, out: &mut String) {
    out.clear();
    let text: Cow<str> = if text.is_ascii() {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.nfkc().collect())
    };
    let mut last_start = 0;
    let mut last_is_plain = false;
    for word in text
        .split(|c: char| c.is_whitespace() || is_hyphen(c))
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        last_start = out.len();
        if word.is_ascii() {
            out.extend(word.chars().map(|c| c.to_ascii_lowercase()));
        } else {
            out.extend(word.chars().flat_map(char::to_lowercase));
        }
        last_is_plain = is_plain_word(word);
    }
    if drops_plural_s(&out[last_start..], last_is_plain) {
        out.pop();
    }
}

fn is_hyphen(c: char) -> bool {
    matches!(c, '-' | '_' | '\u{2010}'..='\u{2015}' | '\u{2212}')
}

/// A word of at least 4 ASCII letters in lower or title case: acronyms
/// (`AIDS`, `CD4s`) keep their final `s`.
fn is_plain_word(word: &str) -> bool {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) if first.is_ascii_alphabetic() => {
            word.len() >= 4 && chars.all(|c| c.is_ascii_lowercase())
        }
        _ => false,
    }
}

/// Whether the (lowercased) last word loses its final `s`; see [`normalize_label`].
fn drops_plural_s(word: &str, plain: bool) -> bool {
    if word == "cells" {
        return true;
    }
    let Some(stem) = word.strip_suffix('s') else {
        return false;
    };
    plain
        && (word.ends_with("cytes")
            || word.ends_with("phages")
            || stem
                .bytes()
                .last()
                .is_some_and(|b| b"bcdfghklmnrtvwy".contains(&b)))
}

/// Whether an exact-match entry is a term's label or one of its synonyms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// The term's primary label.
    Label,
    /// One of its synonyms.
    Synonym,
}

impl EntryKind {
    /// `"label"` or `"synonym"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Label => "label",
            Self::Synonym => "synonym",
        }
    }
}

/// One exact hit from [`ExactIndex::lookup`], borrowing from the ontology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExactMatch<'a> {
    /// The matching term's id.
    pub id: &'a str,
    /// The label or synonym, as the source writes it, that normalised equal to the query.
    pub matched_text: &'a str,
    /// Label or synonym.
    pub kind: EntryKind,
    /// The synonym's scope where the source gives one (`None` for labels).
    pub scope: Option<SynonymScope>,
}

/// Exact (normalised) matching over one ontology: every live term's label
/// and synonyms, and deprecated terms' labels for redirects.
///
/// A cheap view: the table behind it is built on the first
/// [`ExactIndex::new`] for an [`Ontology`] and kept inside it (MONDO, ~88k
/// texts: see the crate's figures), so later views cost nothing.
#[derive(Debug, Clone, Copy)]
pub struct ExactIndex<'a> {
    ontology: &'a Ontology,
    table: &'a ExactTable,
}

impl<'a> ExactIndex<'a> {
    /// The index of `ontology`, building its table on first use: each live
    /// term's label and synonyms under [`normalize_label`] (a synonym that
    /// normalises like the term's label or an earlier synonym is skipped), and
    /// each deprecated term's label with and without its `obsolete ` prefix.
    pub fn new(ontology: &'a Ontology) -> ExactIndex<'a> {
        ExactIndex {
            ontology,
            table: ontology.exact_table(),
        }
    }

    /// Live terms whose label or a synonym normalises like `text`, at most
    /// one entry per term: labels first, then synonyms by scope (exact,
    /// unscoped, related, narrow, broad), then by id. Empty when nothing
    /// matches or `text` normalises to nothing.
    pub fn lookup(&self, text: &str) -> Vec<ExactMatch<'a>> {
        let key = normalize_label(text);
        if key.is_empty() {
            return Vec::new();
        }
        let terms = self.ontology.terms();
        let mut scratch = String::new();
        let mut found: Vec<ExactMatch<'a>> = Vec::new();
        for entry in self.table.candidates(&self.table.live, &key) {
            let term = &terms[entry.term as usize];
            let Some(matched) = slot_text(term, entry.slot) else {
                continue;
            };
            normalize_into(matched, &mut scratch);
            if scratch != key || found.iter().any(|m| m.id == term.id) {
                continue;
            }
            let (kind, scope) = match entry.slot {
                LABEL => (EntryKind::Label, None),
                k => (
                    EntryKind::Synonym,
                    term.synonyms.get(k as usize - 1).and_then(|s| s.scope),
                ),
            };
            found.push(ExactMatch {
                id: &term.id,
                matched_text: matched,
                kind,
                scope,
            });
        }
        found.sort_by(|a, b| {
            (a.kind, scope_rank(a.scope), a.id).cmp(&(b.kind, scope_rank(b.scope), b.id))
        });
        found
    }

    /// Deprecated terms whose label, with or without its `obsolete ` prefix,
    /// normalises like `text`, by id. Resolve them with
    /// [`Ontology::resolve_obsolete`]. Check [`lookup`](Self::lookup) first: a
    /// live term may carry the same label.
    pub fn lookup_obsolete(&self, text: &str) -> Vec<&'a Term> {
        let key = normalize_label(text);
        if key.is_empty() {
            return Vec::new();
        }
        let terms = self.ontology.terms();
        let mut scratch = String::new();
        let mut found: Vec<&'a Term> = Vec::new();
        for entry in self.table.candidates(&self.table.obsolete, &key) {
            let term = &terms[entry.term as usize];
            let Some(matched) = slot_text(term, entry.slot) else {
                continue;
            };
            normalize_into(matched, &mut scratch);
            if scratch == key && !found.iter().any(|t| t.id == term.id) {
                found.push(term);
            }
        }
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found
    }

    /// Number of label and synonym texts indexed for live terms.
    pub fn len(&self) -> usize {
        self.table.live.len()
    }

    /// Whether no live text is indexed.
    pub fn is_empty(&self) -> bool {
        self.table.live.is_empty()
    }
}

/// Slot of a term's label; synonym `k` is slot `k + 1`.
const LABEL: u32 = 0;
/// Slot of a deprecated term's label without its `obsolete ` prefix.
const STRIPPED_LABEL: u32 = u32::MAX;

fn slot_text(term: &Term, slot: u32) -> Option<&str> {
    match slot {
        LABEL => Some(&term.label),
        STRIPPED_LABEL => Some(strip_obsolete_prefix(&term.label)),
        k => term.synonyms.get(k as usize - 1).map(|s| s.text.as_str()),
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    term: u32,
    slot: u32,
}

/// The table behind [`ExactIndex`]: hashes of normalised texts, sorted, each
/// pointing at a term and a slot. Texts are not copied; a lookup re-normalises
/// the few candidates with the query's hash and compares the strings, so hash
/// collisions cannot produce a wrong match.
#[derive(Debug, Clone)]
pub(crate) struct ExactTable {
    hasher: RandomState,
    live: Vec<Entry>,
    obsolete: Vec<Entry>,
}

impl ExactTable {
    pub(crate) fn build(ontology: &Ontology) -> ExactTable {
        let hasher = RandomState::new();
        let mut live = Vec::new();
        let mut obsolete = Vec::new();
        let mut key = String::new();
        let mut term_hashes: Vec<u64> = Vec::new();
        for (t, term) in ontology.terms().iter().enumerate() {
            let t = t as u32;
            term_hashes.clear();
            let (count, out) = if term.deprecated {
                (2, &mut obsolete)
            } else {
                (term.synonyms.len() as u32 + 1, &mut live)
            };
            for i in 0..count {
                let slot = if term.deprecated && i == 1 {
                    STRIPPED_LABEL
                } else {
                    i
                };
                let Some(text) = slot_text(term, slot) else {
                    continue;
                };
                normalize_into(text, &mut key);
                if key.is_empty() {
                    continue;
                }
                let hash = hasher.hash_one(key.as_str());
                if !term_hashes.contains(&hash) {
                    term_hashes.push(hash);
                    out.push(Entry {
                        hash,
                        term: t,
                        slot,
                    });
                }
            }
        }
        live.sort_unstable_by_key(|e| e.hash);
        obsolete.sort_unstable_by_key(|e| e.hash);
        ExactTable {
            hasher,
            live,
            obsolete,
        }
    }

    fn candidates<'e>(&self, entries: &'e [Entry], key: &str) -> &'e [Entry] {
        let hash = self.hasher.hash_one(key);
        let start = entries.partition_point(|e| e.hash < hash);
        let len = entries[start..].partition_point(|e| e.hash == hash);
        &entries[start..start + len]
    }
}

fn scope_rank(scope: Option<SynonymScope>) -> u8 {
    match scope {
        Some(SynonymScope::Exact) => 0,
        None => 1,
        Some(SynonymScope::Related) => 2,
        Some(SynonymScope::Narrow) => 3,
        Some(SynonymScope::Broad) => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::normalize_label as n;

    #[test]
    fn plural_rule() {
        assert_eq!(n("CD8+ T cells"), n("CD8+ T cell"));
        assert_eq!(n("T-Cell"), "t cell");
        assert_eq!(n("neurons"), "neuron");
        assert_eq!(n("B lymphocytes"), "b lymphocyte");
        assert_eq!(n("alveolar macrophages"), "alveolar macrophage");
        assert_eq!(n("kidneys"), "kidney");
        for kept in [
            "pancreas", "diabetes", "herpes", "pelvis", "tetanus", "mumps", "AIDS", "abscess",
            "CD4s",
        ] {
            assert_eq!(n(kept), kept.to_lowercase(), "{kept}");
        }
        assert_eq!(n("Neurons"), "neuron");
        assert_eq!(n("CD8+ T CELLS"), "cd8+ t cell");
        assert_eq!(n("cells of the retina"), "cells of the retina");
    }

    #[test]
    fn unicode_and_spacing() {
        assert_eq!(n("ＣＤ８＋ Ｔ ｃｅｌｌｓ"), "cd8+ t cell");
        assert_eq!(n("  colon\u{a0}\t mucosa  "), "colon mucosa");
        assert_eq!(
            n("lymphoid tissue–inducer cell"),
            "lymphoid tissue inducer cell"
        );
        assert_eq!(n("snake_case-name"), "snake case name");
        assert_eq!(n("Böök syndrome"), "böök syndrome");
        assert_eq!(n(" - "), "");
    }
}
