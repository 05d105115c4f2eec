//! The ontology model: terms, synonyms, obsolete redirects.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::graph::Adjacency;
use super::normalize::ExactTable;
use super::OntologyKind;
use crate::{Error, Result};

/// How closely a synonym means its term (OBO's synonym scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SynonymScope {
    /// Same meaning as the term.
    Exact,
    /// Related but not the same meaning.
    Related,
    /// Narrower than the term.
    Narrow,
    /// Broader than the term.
    Broad,
}

impl SynonymScope {
    /// The lowercase name: `"exact"`, `"related"`, `"narrow"` or `"broad"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Related => "related",
            Self::Narrow => "narrow",
            Self::Broad => "broad",
        }
    }
}

/// A synonym of a term. `scope` is `None` where the source does not say
/// (the cellxgene JSON files list synonyms without scope).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Synonym {
    /// The synonym text, trimmed.
    pub text: String,
    /// Its scope where the source gives one.
    pub scope: Option<SynonymScope>,
}

/// One ontology term (class) as its source describes it.
///
/// Loaders keep these invariants: `id` is a non-empty CURIE such as
/// `CL:0000625` (ids written as OBO PURLs or `obo.CL_0000625` are rewritten to
/// CURIEs, here and in `parents`, `replaced_by` and `consider`); `label` is
/// trimmed and may be empty (in the real data only deprecated terms have no
/// label); synonyms are
/// trimmed, non-empty, unique within the term and never equal to the label;
/// `parents` are unique and in source order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    /// The CURIE, e.g. `CL:0000625`.
    pub id: String,
    /// The primary label (`name` in OBO).
    pub label: String,
    /// The textual definition (`def` in OBO, `description` in cellxgene JSON).
    pub definition: Option<String>,
    /// Synonyms, in source order.
    pub synonyms: Vec<Synonym>,
    /// Direct parents: OBO `is_a` (plus the genus of `intersection_of` when it
    /// is not already an `is_a`); cellxgene ancestors at distance 1 (which there
    /// include `part_of` parents, e.g. UBERON colon → large intestine).
    /// May name ids outside this ontology.
    pub parents: Vec<String>,
    /// Whether the term is obsolete (OBO `is_obsolete`, cellxgene `deprecated`).
    pub deprecated: bool,
    /// The term that replaces this obsolete one, if the source names one.
    pub replaced_by: Option<String>,
    /// Terms to consider instead of this obsolete one.
    pub consider: Vec<String>,
}

impl Term {
    /// A live term with a label and nothing else.
    pub fn new(id: impl Into<String>, label: impl Into<String>) -> Term {
        Term {
            id: id.into(),
            label: label.into(),
            definition: None,
            synonyms: Vec::new(),
            parents: Vec::new(),
            deprecated: false,
            replaced_by: None,
            consider: Vec::new(),
        }
    }

    /// The label without the `obsolete ` prefix that sources put on the labels
    /// of deprecated terms (ASCII case ignored); the label itself otherwise.
    pub fn label_without_obsolete_prefix(&self) -> &str {
        strip_obsolete_prefix(&self.label)
    }

    /// The text at an entry slot: 0 is the label, `k + 1` synonym `k`.
    pub fn entry_text(&self, slot: u32) -> Option<&str> {
        match slot {
            0 => Some(self.label.as_str()),
            k => self.synonyms.get(k as usize - 1).map(|s| s.text.as_str()),
        }
    }
}

/// Most synonyms one term may have: a source with more is refused (no real
/// ontology comes near; the largest CL, UBERON and MONDO terms have under 100).
pub const MAX_SYNONYMS_PER_TERM: usize = 10_000;

/// `synonyms` without empty texts, the label and repeats (first one kept),
/// in their order; linear in their number.
pub(crate) fn distinct_synonyms(
    label: &str,
    synonyms: impl IntoIterator<Item = Synonym>,
) -> Vec<Synonym> {
    let mut seen: HashSet<String> = HashSet::new();
    synonyms
        .into_iter()
        .filter(|s| !s.text.is_empty() && s.text != label && seen.insert(s.text.clone()))
        .collect()
}

pub(crate) fn strip_obsolete_prefix(label: &str) -> &str {
    const PREFIX: &str = "obsolete ";
    match label.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => label[PREFIX.len()..].trim_start(),
        _ => label,
    }
}

/// Where an obsolete term points, from [`Ontology::resolve_obsolete`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Redirect {
    /// The obsolete term asked about.
    pub id: String,
    /// The live replacement: the end of the `replaced_by` chain (followed
    /// through obsolete intermediates of this ontology). It may name a term of
    /// another ontology. `None` when the term has no replacement or the chain
    /// ends at an obsolete term without one.
    pub replaced_by: Option<String>,
    /// Terms to consider instead: the obsolete term's own `consider` list,
    /// followed by that of an obsolete dead end of its `replaced_by` chain.
    pub consider: Vec<String>,
}

/// A loaded ontology: metadata and terms, indexed by id.
///
/// Term ids are unique. Build one with [`Ontology::load`] (files) or
/// [`Ontology::from_terms`] (in memory). The exact-match table behind
/// [`ExactIndex`](super::ExactIndex) and the adjacency behind [`super::graph::Graph`] are built
/// on first use and kept with the ontology (thread-safe), so loading pays
/// only for parsing.
#[derive(Debug, Clone)]
pub struct Ontology {
    name: String,
    kind: Option<OntologyKind>,
    version: String,
    source_sha256: String,
    source_path: PathBuf,
    terms: Vec<Term>,
    by_id: HashMap<String, usize>,
    exact: OnceLock<ExactTable>,
    adjacency: OnceLock<Adjacency>,
    lexical: OnceLock<crate::matcher::lexical::LexicalIndex>,
    structure: OnceLock<crate::matcher::structure::TermStructure>,
    /// Where the compiled lexical index is read and written (see `matcher::compiled`).
    compiled_dir: Option<PathBuf>,
}

impl Ontology {
    /// Loads an ontology file, choosing the parser by file name:
    ///
    /// - `*.json` or `*.json.zst`: cellxgene ontology JSON, an object of term
    ///   id → `{label, description, synonyms, ancestors: {id: distance},
    ///   deprecated, replaced_by, consider, …}`; parents are the ancestors at
    ///   distance 1; `deprecated` may be a boolean or a string `"true"`/`"false"`;
    ///   unknown fields are ignored;
    /// - `*.obo` or `*.obo.zst`: OBO 1.4 (parsed with `fastobo`).
    ///
    /// cellxgene files are expected to be named `<PREFIX>-ontology-<version>.json[.zst]`
    /// (e.g. `CL-ontology-v2026-03-26.json.zst`): the version comes from the
    /// name and the kind from the prefix (`CL`, `UBERON`, `MONDO`; other
    /// prefixes load with `kind = None` and `name` = the prefix lowercased).
    /// Otherwise the version is `unversioned` and the prefix is the CURIE
    /// prefix of the first term.
    ///
    /// OBO: the name is the `ontology:` header, the version `v<YYYY-MM-DD>`
    /// when the `data-version` header holds a date (OBO Foundry releases
    /// write e.g. `releases/2026-03-26`; this matches the cellxgene file of the
    /// same release), the `data-version` verbatim otherwise, `unversioned`
    /// without one.
    ///
    /// When the kind is known, `name` is its canonical name (`cell_ontology`).
    /// The SHA-256 is of the file's bytes as stored (compressed for `.zst`),
    /// computed in the same pass that parses it.
    ///
    /// # Errors
    /// - [`Error::Io`] when the file cannot be opened or read;
    /// - [`Error::Parse`] with the path and, where known, the line (and
    ///   column) for malformed JSON or OBO, a truncated or corrupt zstd
    ///   stream, or a duplicate term id in JSON;
    /// - [`Error::InvalidInput`] for an unsupported file extension.
    pub fn load(path: impl AsRef<Path>) -> Result<Ontology> {
        super::source::load(path.as_ref(), None)
    }

    /// [`load`](Self::load), reading the file's compiled terms from
    /// `compiled_dir` when they are current (same source SHA-256, same code,
    /// intact) and writing them there when not; the ontology then also keeps
    /// its compiled lexical index there. The result equals what
    /// [`load`](Self::load) gives.
    ///
    /// # Errors
    /// As [`load`](Self::load); a compiled file that cannot be read or
    /// written is never an error.
    pub fn load_compiled(path: impl AsRef<Path>, compiled_dir: &Path) -> Result<Ontology> {
        let mut o = super::source::load(path.as_ref(), Some(compiled_dir))?;
        o.compiled_dir = Some(compiled_dir.to_path_buf());
        Ok(o)
    }

    /// Builds an ontology from terms already in memory (tests, other
    /// sources). `source_sha256` is empty and `source_path` is empty.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when a term id is empty or repeated.
    pub fn from_terms(
        name: impl Into<String>,
        kind: Option<OntologyKind>,
        version: impl Into<String>,
        terms: Vec<Term>,
    ) -> Result<Ontology> {
        Self::assemble(
            name.into(),
            kind,
            version.into(),
            String::new(),
            PathBuf::new(),
            terms,
        )
    }

    pub(crate) fn assemble(
        name: String,
        kind: Option<OntologyKind>,
        version: String,
        source_sha256: String,
        source_path: PathBuf,
        terms: Vec<Term>,
    ) -> Result<Ontology> {
        let mut by_id = HashMap::with_capacity(terms.len());
        for (i, term) in terms.iter().enumerate() {
            if term.synonyms.len() > MAX_SYNONYMS_PER_TERM {
                return Err(Error::invalid_input(format!(
                    "term `{}` of {name} has {} synonyms; at most {MAX_SYNONYMS_PER_TERM} per term \
                     are accepted",
                    shorten(&term.id),
                    term.synonyms.len()
                )));
            }
            if term.id.is_empty() {
                return Err(Error::invalid_input(format!(
                    "term #{i} of {name} has an empty id"
                )));
            }
            if by_id.insert(term.id.clone(), i).is_some() {
                return Err(Error::invalid_input(format!(
                    "term id `{}` appears twice in {name}",
                    term.id
                )));
            }
        }
        Ok(Ontology {
            name,
            kind,
            version,
            source_sha256,
            source_path,
            terms,
            by_id,
            exact: OnceLock::new(),
            adjacency: OnceLock::new(),
            lexical: OnceLock::new(),
            structure: OnceLock::new(),
            compiled_dir: None,
        })
    }

    pub(crate) fn exact_table(&self) -> &ExactTable {
        self.exact.get_or_init(|| ExactTable::build(self))
    }

    pub(crate) fn adjacency(&self) -> &Adjacency {
        self.adjacency.get_or_init(|| Adjacency::build(self))
    }

    /// The lexical index of the live labels and synonyms, read from its
    /// compiled file or built on first use.
    pub fn lexical(&self) -> &crate::matcher::lexical::LexicalIndex {
        self.lexical.get_or_init(|| {
            crate::matcher::compiled::load_or_build(self, self.compiled_dir.as_deref())
        })
    }

    /// Depth and generality of every term, built on first use.
    pub fn structure(&self) -> &crate::matcher::structure::TermStructure {
        self.structure
            .get_or_init(|| crate::matcher::structure::TermStructure::build(self))
    }

    /// The position of `id` (spelled as [`get`](Self::get) accepts) in [`terms`](Self::terms).
    pub(crate) fn index_of(&self, id: &str) -> Option<usize> {
        match self.by_id.get(id) {
            Some(&i) => Some(i),
            None => self.by_id.get(canonical_term_id(id).as_ref()).copied(),
        }
    }

    /// The ontology's name: the kind's canonical name when known
    /// (`mondo`, `uberon`, `cell_ontology`), else what the source calls it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which of the known ontologies this is, if any.
    pub fn kind(&self) -> Option<OntologyKind> {
        self.kind
    }

    /// The source's version, e.g. `v2026-03-26` (see [`Ontology::load`]).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Lowercase hex SHA-256 of the source file (empty for [`Ontology::from_terms`]).
    pub fn source_sha256(&self) -> &str {
        &self.source_sha256
    }

    /// The file it was loaded from (empty for [`Ontology::from_terms`]).
    pub fn source_path(&self) -> &Path {
        &self.source_path
    }

    /// Every term, live and deprecated, in source order.
    pub fn terms(&self) -> &[Term] {
        &self.terms
    }

    /// Number of terms, live and deprecated.
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether it has no terms.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The term with this id (exact, case-sensitive CURIE).
    ///
    /// `id` may be spelled as users write it ([`canonical_term_id`]):
    /// `cl:0000625`, `CL_0000625` and the OBO PURL find `CL:0000625`.
    pub fn get(&self, id: &str) -> Option<&Term> {
        self.index_of(id).map(|i| &self.terms[i])
    }

    /// Like [`get`](Self::get), but a missing id is an error.
    ///
    /// # Errors
    /// [`Error::TermNotFound`] naming the id and this ontology.
    pub fn term(&self, id: &str) -> Result<&Term> {
        self.get(id).ok_or_else(|| Error::TermNotFound {
            id: shorten(id),
            ontology: self.name.clone(),
        })
    }

    /// Terms that are not deprecated, in source order.
    pub fn live_terms(&self) -> impl Iterator<Item = &Term> + '_ {
        self.terms.iter().filter(|t| !t.deprecated)
    }

    /// Where an obsolete term points: `None` when `id` is unknown or live.
    ///
    /// `replaced_by` is followed through obsolete terms of this ontology
    /// (cycle-safe) until it reaches a live term or an id outside this
    /// ontology; see [`Redirect`] for a chain ending at an obsolete term
    /// without replacement.
    pub fn resolve_obsolete(&self, id: &str) -> Option<Redirect> {
        let term = self.get(id)?;
        if !term.deprecated {
            return None;
        }
        let mut consider = term.consider.clone();
        let mut seen = vec![term.id.as_str()];
        let mut target = term.replaced_by.as_deref();
        while let Some(next) = target {
            let Some(next_term) = self.get(next) else {
                break; // another ontology's id: cannot follow further
            };
            if !next_term.deprecated {
                break;
            }
            if seen.contains(&next) {
                target = None; // a cycle of obsolete terms: no live replacement
                break;
            }
            seen.push(next);
            match next_term.replaced_by.as_deref() {
                Some(further) => target = Some(further),
                None => {
                    for c in &next_term.consider {
                        if !consider.contains(c) {
                            consider.push(c.clone());
                        }
                    }
                    target = None;
                }
            }
        }
        Some(Redirect {
            id: term.id.clone(),
            replaced_by: target.map(str::to_string),
            consider,
        })
    }
}

/// The CURIE of an id of a known ontology (MONDO, UBERON, CL) as users
/// spell it: surrounding space trimmed, the OBO PURL
/// (`http://purl.obolibrary.org/obo/CL_0000625`) and `CL_0000625` rewritten
/// to `CL:0000625`, and the prefix in its canonical case (`cl:0000625`).
/// Anything else is returned as given.
pub fn canonical_term_id(raw: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    // `normalize_id` trims and rewrites the PURL; this adds `CL_…` and the prefix case.
    let Some(id) = normalize_id(raw) else {
        return Cow::Borrowed(raw);
    };
    let split = id
        .split_once(':')
        .or_else(|| id.split_once('_').filter(|(_, rest)| !rest.contains(':')));
    let canonical = match split {
        Some((prefix, rest)) if !rest.is_empty() => super::OntologyKind::from_source_prefix(prefix)
            .map(|kind| format!("{}:{rest}", kind.source_prefix())),
        _ => None,
    };
    match canonical {
        Some(c) if c != raw => Cow::Owned(c),
        _ => Cow::Borrowed(raw),
    }
}

/// `text` for an error message: at most 80 characters, the rest elided.
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}… ({} bytes)", &text[..cut], text.len()),
        None => text.to_string(),
    }
}

/// Rewrites the id spellings found in real sources to CURIEs:
/// `http://purl.obolibrary.org/obo/CL_0000001` and `obo.CL_0000001` become
/// `CL:0000001`; anything else is kept as given (trimmed). Empty strings and
/// the stray booleans `True`/`False` that appear in some `consider` lists give
/// `None`.
pub(crate) fn normalize_id(raw: &str) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() || s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("true") {
        return None;
    }
    let local = s
        .strip_prefix("http://purl.obolibrary.org/obo/")
        .or_else(|| s.strip_prefix("https://purl.obolibrary.org/obo/"))
        .or_else(|| s.strip_prefix("obo."));
    if let Some(local) = local {
        if let Some((prefix, rest)) = local.split_once('_') {
            if !prefix.is_empty() && !rest.is_empty() && !local.contains('/') {
                return Some(format!("{prefix}:{rest}"));
            }
        }
    }
    Some(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(id: &str, label: &str, deprecated: bool, replaced_by: Option<&str>) -> Term {
        Term {
            id: id.into(),
            label: label.into(),
            definition: None,
            synonyms: vec![],
            parents: vec![],
            deprecated,
            replaced_by: replaced_by.map(Into::into),
            consider: vec![],
        }
    }

    #[test]
    fn ids_are_normalised() {
        assert_eq!(
            normalize_id("http://purl.obolibrary.org/obo/BTO_0000895").as_deref(),
            Some("BTO:0000895")
        );
        assert_eq!(
            normalize_id("obo.CL_0011026").as_deref(),
            Some("CL:0011026")
        );
        assert_eq!(normalize_id(" CL:0000000 ").as_deref(), Some("CL:0000000"));
        assert_eq!(normalize_id("hgnc.5166").as_deref(), Some("hgnc.5166"));
        assert_eq!(normalize_id("False"), None);
        assert_eq!(normalize_id(""), None);
    }

    #[test]
    fn redirect_chains_and_cycles() -> Result<()> {
        let mut dead = term("X:5", "obsolete dead end", true, None);
        dead.consider = vec!["X:1".into()];
        let ont = Ontology::from_terms(
            "x",
            None,
            "v1",
            vec![
                term("X:1", "live", false, None),
                term("X:2", "obsolete two", true, Some("X:3")),
                term("X:3", "obsolete three", true, Some("X:1")),
                term("X:4", "obsolete four", true, Some("Y:9")),
                dead,
                term("X:6", "obsolete six", true, Some("X:5")),
                term("X:7", "obsolete seven", true, Some("X:8")),
                term("X:8", "obsolete eight", true, Some("X:7")),
            ],
        )?;
        let r = |id: &str| ont.resolve_obsolete(id).and_then(|r| r.replaced_by);
        assert_eq!(r("X:2").as_deref(), Some("X:1"));
        assert_eq!(r("X:4").as_deref(), Some("Y:9"));
        assert_eq!(r("X:7"), None);
        assert!(ont.resolve_obsolete("X:1").is_none());
        assert!(ont.resolve_obsolete("nope").is_none());
        let six = ont.resolve_obsolete("X:6");
        assert_eq!(six.as_ref().and_then(|r| r.replaced_by.clone()), None);
        assert_eq!(six.map(|r| r.consider), Some(vec!["X:1".to_string()]));
        Ok(())
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let err = Ontology::from_terms(
            "x",
            None,
            "v1",
            vec![term("X:1", "a", false, None), term("X:1", "b", false, None)],
        )
        .expect_err("duplicate");
        assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
    }
}

#[cfg(test)]
mod id_spelling_tests {
    use super::*;

    #[test]
    fn ids_are_found_in_the_usual_spellings() {
        let o = Ontology::from_terms(
            "cl",
            Some(OntologyKind::CellOntology),
            "v1",
            vec![Term::new("CL:0000625", "CD8 T")],
        )
        .unwrap();
        for spelling in [
            "CL:0000625",
            " cl:0000625 ",
            "CL_0000625",
            "Cl_0000625",
            "http://purl.obolibrary.org/obo/CL_0000625",
            "https://purl.obolibrary.org/obo/CL_0000625",
        ] {
            assert_eq!(
                o.get(spelling).map(|t| t.id.as_str()),
                Some("CL:0000625"),
                "{spelling}"
            );
        }
        for other in ["CL:625", "XX_0000625", "CL", "T cells", "CL_"] {
            assert!(o.get(other).is_none(), "{other}");
        }
        assert_eq!(canonical_term_id("GO:0008150"), "GO:0008150");
    }

    #[test]
    fn long_ids_are_shortened_in_errors() {
        let o = Ontology::from_terms("cl", None, "v1", vec![]).unwrap();
        let long = format!("CL:{}", "9".repeat(100_000));
        let e = o.term(&long).unwrap_err().to_string();
        assert!(e.len() < 200 && e.contains("100003 bytes"), "{e}");
    }
}
