//! Ontology loading, normalisation, exact matching, obsolete redirects and the
//! term graph: on small fixtures with known answers, on malformed input, and
//! on the real cellxgene files when `scripts/setup.sh` has fetched them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use lobster_vector_core::testing::service_unavailable;
use lobster_vector_core::{Error, Result};
use lobster_vector_match::ontology::graph::{Graph, Related};
use lobster_vector_match::ontology::{
    normalize_label, EntryKind, ExactIndex, Ontology, OntologyKind, SynonymScope, Term,
};
use sha2::{Digest, Sha256};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "lobster-onto-test-{}-{tag}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write fixture");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ids(list: &[Related]) -> Vec<(&str, u32)> {
    list.iter().map(|r| (r.id.as_str(), r.distance)).collect()
}

fn obsolete_ids<'a>(index: &ExactIndex<'a>, text: &str) -> Vec<&'a str> {
    index
        .lookup_obsolete(text)
        .into_iter()
        .map(|t| t.id.as_str())
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ---------------------------------------------------------------------------
// OBO fixture

#[test]
fn obo_fixture_loads_with_metadata_and_terms() -> Result<()> {
    let path = fixture("mini_cl.obo");
    let ont = Ontology::load(&path)?;
    assert_eq!(ont.name(), "cell_ontology");
    assert_eq!(ont.kind(), Some(OntologyKind::CellOntology));
    assert_eq!(ont.version(), "v2026-03-26");
    assert_eq!(
        OntologyKind::CellOntology.collection_name(ont.version()),
        "cell_ontology_v2026_03_26"
    );
    let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    assert_eq!(ont.source_sha256(), sha256_hex(&bytes));
    assert_eq!(ont.source_path(), path.as_path());
    assert_eq!(ont.len(), 16);
    assert_eq!(ont.live_terms().count(), 13);

    let cd8 = ont.term("CL:0000625")?;
    assert_eq!(cd8.label, "CD8-positive, alpha-beta T cell");
    assert_eq!(
        cd8.definition.as_deref(),
        Some("A T cell expressing an alpha-beta T cell receptor and the CD8 coreceptor.")
    );
    assert_eq!(cd8.parents, vec!["CL:0000791".to_string()]);
    assert!(!cd8.deprecated);

    let t = ont.term("CL:0000084")?;
    let scopes: Vec<_> = t
        .synonyms
        .iter()
        .map(|s| (s.text.as_str(), s.scope))
        .collect();
    assert_eq!(
        scopes,
        vec![
            ("T-cell", Some(SynonymScope::Exact)),
            ("T lymphocyte", Some(SynonymScope::Related)),
            ("mature T cell", Some(SynonymScope::Narrow)),
            ("thymus-derived cell", Some(SynonymScope::Broad)),
        ]
    );
    // A diamond: two is_a parents; `relationship: part_of` is not a parent.
    assert_eq!(
        ont.term("CL:0000791")?.parents,
        vec!["CL:0000789".to_string(), "CL:0002419".to_string()]
    );
    // `intersection_of` genus counts as a parent when there is no is_a.
    assert_eq!(
        ont.term("CL:0000897")?.parents,
        vec!["CL:0000624".to_string()]
    );

    let obsolete = ont.term("CL:0000001")?;
    assert!(obsolete.deprecated);
    assert_eq!(obsolete.replaced_by.as_deref(), Some("CL:0000000"));
    assert_eq!(
        ont.term("CL:0000003")?.consider,
        vec!["CL:0000000".to_string(), "CL:0000540".to_string()]
    );

    let err = ont.term("CL:9999999").expect_err("unknown id");
    assert!(matches!(err, Error::TermNotFound { .. }), "{err}");
    assert!(ont.get("CL:9999999").is_none());

    let by_label: Vec<&str> = ExactIndex::new(&ont)
        .lookup("T-Cells")
        .into_iter()
        .filter(|m| m.kind == EntryKind::Label)
        .map(|m| m.id)
        .collect();
    assert_eq!(by_label, vec!["CL:0000084"]);
    Ok(())
}

#[test]
fn obsolete_terms_redirect() -> Result<()> {
    let ont = Ontology::load(fixture("mini_cl.obo"))?;
    let direct = ont.resolve_obsolete("CL:0000001").expect("obsolete");
    assert_eq!(direct.replaced_by.as_deref(), Some("CL:0000000"));
    // CL:0000010 → CL:0000001 (obsolete) → CL:0000000.
    let chained = ont.resolve_obsolete("CL:0000010").expect("obsolete");
    assert_eq!(chained.replaced_by.as_deref(), Some("CL:0000000"));
    let consider = ont.resolve_obsolete("CL:0000003").expect("obsolete");
    assert_eq!(consider.replaced_by, None);
    assert_eq!(consider.consider, vec!["CL:0000000", "CL:0000540"]);
    assert!(ont.resolve_obsolete("CL:0000084").is_none(), "live term");
    assert!(ont.resolve_obsolete("CL:9999999").is_none(), "unknown id");

    let index = ExactIndex::new(&ont);
    // Obsolete labels are not live matches, but redirect with or without the prefix.
    assert!(index.lookup("primary cultured cell").is_empty());
    assert_eq!(
        obsolete_ids(&index, "Primary cultured cells"),
        ["CL:0000001"]
    );
    assert_eq!(obsolete_ids(&index, "obsolete native cell"), ["CL:0000003"]);
    assert!(obsolete_ids(&index, "T cell").is_empty());
    // Synonyms of obsolete terms are not indexed at all.
    assert!(index.lookup("cell in culture").is_empty());
    Ok(())
}

#[test]
fn exact_index_matches_labels_first() -> Result<()> {
    let ont = Ontology::load(fixture("mini_cl.obo"))?;
    let index = ExactIndex::new(&ont);

    let hits = index.lookup("CD8+ T cells");
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].id, "CL:0000625");
    assert_eq!(hits[0].matched_text, "CD8+ T cell");
    assert_eq!(hits[0].kind, EntryKind::Synonym);
    assert_eq!(hits[0].scope, Some(SynonymScope::Exact));

    // "T-cell" (synonym) normalises like the label: one hit, the label.
    let hits = index.lookup("  t-CELL ");
    assert_eq!(hits.len(), 1);
    assert_eq!((hits[0].id, hits[0].kind), ("CL:0000084", EntryKind::Label));
    assert_eq!(hits[0].matched_text, "T cell");

    // Label of one term and broad synonym of another: label first.
    let hits: Vec<_> = index
        .lookup("hematopoietic cells")
        .iter()
        .map(|m| (m.id, m.kind, m.scope))
        .collect();
    assert_eq!(
        hits,
        vec![
            ("CL:0000988", EntryKind::Label, None),
            ("CL:0000542", EntryKind::Synonym, Some(SynonymScope::Broad)),
        ]
    );
    // "mature T cell": a label, and a narrow synonym of T cell.
    let hits: Vec<_> = index
        .lookup("Mature T-cells")
        .iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(hits, vec!["CL:0002419", "CL:0000084"]);

    assert_eq!(
        index.lookup("CD8-positive, alpha-beta T-lymphocytes")[0].id,
        "CL:0000625"
    );
    assert!(index.lookup("").is_empty());
    assert!(index.lookup("nothing like this").is_empty());
    Ok(())
}

#[test]
fn graph_answers_on_the_fixture() -> Result<()> {
    let ont = Ontology::load(fixture("mini_cl.obo"))?;
    let g = Graph::new(&ont);

    assert_eq!(
        ids(&g.parents("CL:0000791")?),
        vec![("CL:0000789", 1), ("CL:0002419", 1)]
    );
    assert_eq!(g.parents("CL:0000000")?, vec![]);
    assert_eq!(
        ids(&g.children("CL:0000084")?),
        vec![("CL:0000789", 1), ("CL:0002419", 1)]
    );
    assert_eq!(
        ids(&g.children("CL:0000542")?),
        vec![("CL:0000084", 1), ("CL:0000236", 1)]
    );
    let parent = &g.parents("CL:0000625")?[0];
    assert_eq!(parent.label, "mature alpha-beta T cell");

    assert_eq!(ids(&g.siblings("CL:0000625")?), vec![("CL:0000624", 2)]);
    assert_eq!(ids(&g.siblings("CL:0000542")?), vec![("CL:0000235", 2)]);
    assert_eq!(ids(&g.siblings("CL:0000789")?), vec![("CL:0002419", 2)]);
    assert_eq!(g.siblings("CL:0000000")?, vec![]);

    // Depth 2 through the diamond: both branches at distance 2, once each.
    assert_eq!(
        ids(&g.ancestors("CL:0000625", 2)?),
        vec![("CL:0000791", 1), ("CL:0000789", 2), ("CL:0002419", 2)]
    );
    assert_eq!(
        ids(&g.ancestors("CL:0000625", usize::MAX)?),
        vec![
            ("CL:0000791", 1),
            ("CL:0000789", 2),
            ("CL:0002419", 2),
            ("CL:0000084", 3),
            ("CL:0000542", 4),
            ("CL:0000988", 5),
            ("CL:0000000", 6),
        ]
    );
    assert_eq!(g.ancestors("CL:0000625", 0)?, vec![]);
    assert_eq!(
        ids(&g.descendants("CL:0000084", 2)?),
        vec![("CL:0000789", 1), ("CL:0002419", 1), ("CL:0000791", 2)]
    );
    assert_eq!(
        ids(&g.descendants("CL:0000084", 4)?),
        vec![
            ("CL:0000789", 1),
            ("CL:0002419", 1),
            ("CL:0000791", 2),
            ("CL:0000624", 3),
            ("CL:0000625", 3),
            ("CL:0000897", 4),
        ]
    );

    // --within CL:0000084 (T cell)
    let within = g.subtree("CL:0000084")?;
    let mut members: Vec<&str> = within.iter().copied().collect();
    members.sort();
    assert_eq!(
        members,
        vec![
            "CL:0000084",
            "CL:0000624",
            "CL:0000625",
            "CL:0000789",
            "CL:0000791",
            "CL:0000897",
            "CL:0002419"
        ]
    );
    assert!(g.is_descendant_of("CL:0000625", "CL:0000084")?);
    assert!(g.is_descendant_of("CL:0000897", "CL:0000000")?);
    assert!(g.is_descendant_of("CL:0000084", "CL:0000084")?);
    assert!(!g.is_descendant_of("CL:0000235", "CL:0000084")?);
    assert!(!g.is_descendant_of("CL:0000084", "CL:0000625")?);

    for err in [
        g.parents("CL:9999999").expect_err("unknown"),
        g.siblings("nope").expect_err("unknown"),
        g.descendants("nope", 3).expect_err("unknown"),
        g.is_descendant_of("CL:0000625", "nope")
            .expect_err("unknown"),
        g.subtree("nope").map(|_| ()).expect_err("unknown"),
    ] {
        assert!(matches!(err, Error::TermNotFound { .. }), "{err}");
        assert!(err.to_string().contains("cell_ontology"), "{err}");
    }
    Ok(())
}

#[test]
fn obo_syntax_error_names_the_line() {
    let path = fixture("malformed.obo");
    let err = Ontology::load(&path).expect_err("malformed");
    match &err {
        Error::Parse {
            path: p, location, ..
        } => {
            assert_eq!(p, &path);
            let location = location.as_deref().unwrap_or_default();
            assert!(location.starts_with("line 12"), "{location}");
        }
        other => panic!("expected a parse error, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains("malformed.obo"), "{message}");
    assert!(message.contains("line 12"), "{message}");
}

#[test]
fn obo_zstd_loads_like_plain() -> Result<()> {
    let path = fixture("mini_cl.obo");
    let bytes = std::fs::read(&path).map_err(|e| Error::io("read", &path, e))?;
    let dir = TempDir::new("obo-zst");
    let compressed =
        zstd::encode_all(bytes.as_slice(), 3).map_err(|e| Error::io("compress", &path, e))?;
    let zst = dir.write("mini_cl.obo.zst", &compressed);
    let (plain, packed) = (Ontology::load(&path)?, Ontology::load(&zst)?);
    assert_eq!(plain.terms(), packed.terms());
    assert_eq!(packed.version(), "v2026-03-26");
    assert_eq!(packed.source_sha256(), sha256_hex(&compressed));
    Ok(())
}

#[test]
fn obo_without_data_version_is_unversioned() -> Result<()> {
    let dir = TempDir::new("obo-nover");
    let path = dir.write(
        "tiny.obo",
        b"format-version: 1.4\nontology: tst\n\n[Term]\nid: TST:1\nname: thing\n",
    );
    let ont = Ontology::load(&path)?;
    assert_eq!(
        (ont.name(), ont.kind(), ont.version()),
        ("tst", None, "unversioned")
    );
    assert_eq!(ont.term("TST:1")?.label, "thing");
    Ok(())
}

// ---------------------------------------------------------------------------
// cellxgene JSON, written by the test

const CELLXGENE_JSON: &str = r#"{
  "CL:0000000": {"ancestors": {}, "label": "cell", "description": "A cell.", "deprecated": false},
  "CL:0000084": {
    "ancestors": {"CL:0000542": 1, "CL:0000000": 2},
    "label": "T cell",
    "description": "  A lymphocyte with a T cell receptor.  ",
    "synonyms": ["T-cell", "T lymphocyte", "T cell", "T-cell", " "],
    "deprecated": "false"
  },
  "CL:0000542": {"ancestors": {"CL:0000000": 1}, "label": "lymphocyte", "deprecated": false,
                 "comments": ["ignored"], "term_tracker": "https://example.org/1"},
  "CL:0000001": {"ancestors": {}, "label": "obsolete primary cultured cell", "deprecated": true,
                 "replaced_by": "CL:0000000"},
  "CL:0000003": {"ancestors": {}, "label": "obsolete native cell", "deprecated": "True",
                 "consider": ["obo.CL_0000000", "http://purl.obolibrary.org/obo/CL_0000542", "False"]},
  "CL:0000004": {"ancestors": {}, "label": "", "deprecated": true, "replaced_by": "CL:0000001"},
  "CL:0000005": {"ancestors": {}, "label": "caf\u00e9 \"cell\"", "deprecated": false}
}"#;

#[test]
fn cellxgene_json_plain_and_zstd() -> Result<()> {
    let dir = TempDir::new("cxg");
    let plain = dir.write("CL-ontology-v2026-01-02.json", CELLXGENE_JSON.as_bytes());
    let compressed_bytes = zstd::encode_all(CELLXGENE_JSON.as_bytes(), 3)
        .map_err(|e| Error::io("compress", &plain, e))?;
    let compressed = dir.write("CL-ontology-v2026-01-02.json.zst", &compressed_bytes);

    let a = Ontology::load(&plain)?;
    let b = Ontology::load(&compressed)?;
    for ont in [&a, &b] {
        assert_eq!(ont.kind(), Some(OntologyKind::CellOntology));
        assert_eq!(ont.name(), "cell_ontology");
        assert_eq!(ont.version(), "v2026-01-02");
        assert_eq!(ont.len(), 7);
        assert_eq!(ont.live_terms().count(), 4);
    }
    assert_eq!(a.terms(), b.terms());
    // The checksum is of the file as stored.
    assert_eq!(a.source_sha256(), sha256_hex(CELLXGENE_JSON.as_bytes()));
    assert_eq!(b.source_sha256(), sha256_hex(&compressed_bytes));

    let t = a.term("CL:0000084")?;
    assert_eq!(t.parents, vec!["CL:0000542".to_string()]);
    assert_eq!(
        t.definition.as_deref(),
        Some("A lymphocyte with a T cell receptor.")
    );
    // Trimmed, de-duplicated, the label itself and blanks dropped, no scope.
    let synonyms: Vec<_> = t
        .synonyms
        .iter()
        .map(|s| (s.text.as_str(), s.scope))
        .collect();
    assert_eq!(synonyms, vec![("T-cell", None), ("T lymphocyte", None)]);
    assert!(!t.deprecated, "\"false\" as a string");
    assert_eq!(a.term("CL:0000005")?.label, "café \"cell\"");

    let native = a.term("CL:0000003")?;
    assert!(native.deprecated, "\"True\" as a string");
    assert_eq!(native.consider, vec!["CL:0000000", "CL:0000542"]);
    // CL:0000004 → CL:0000001 (obsolete) → CL:0000000
    let redirect = a.resolve_obsolete("CL:0000004").expect("obsolete");
    assert_eq!(redirect.replaced_by.as_deref(), Some("CL:0000000"));

    let g = Graph::new(&a);
    assert_eq!(
        ids(&g.ancestors("CL:0000084", 5)?),
        vec![("CL:0000542", 1), ("CL:0000000", 2)]
    );
    let index = ExactIndex::new(&a);
    assert_eq!(index.lookup("T cells")[0].id, "CL:0000084");
    assert_eq!(obsolete_ids(&index, "native cell"), ["CL:0000003"]);
    Ok(())
}

#[test]
fn cellxgene_json_without_versioned_name() -> Result<()> {
    let dir = TempDir::new("cxg-noname");
    let path = dir.write("terms.json", CELLXGENE_JSON.as_bytes());
    let ont = Ontology::load(&path)?;
    assert_eq!(ont.kind(), Some(OntologyKind::CellOntology));
    assert_eq!(ont.version(), "unversioned");
    Ok(())
}

#[test]
fn truncated_zstd_is_a_parse_error() -> Result<()> {
    let dir = TempDir::new("cxg-trunc");
    let full = zstd::encode_all(CELLXGENE_JSON.as_bytes(), 3)
        .map_err(|e| Error::io("compress", dir.0.as_path(), e))?;
    let path = dir.write("CL-ontology-v1.json.zst", &full[..full.len() / 2]);
    let err = Ontology::load(&path).expect_err("truncated");
    assert!(
        matches!(&err, Error::Parse { path: p, .. } if p == &path),
        "{err:?}"
    );
    assert!(err.to_string().contains("zstd"), "{err}");

    let garbage = dir.write("CL-ontology-v2.json.zst", b"this is not zstd at all");
    let err = Ontology::load(&garbage).expect_err("not zstd");
    assert!(matches!(err, Error::Parse { .. }), "{err:?}");
    Ok(())
}

#[test]
fn malformed_json_is_a_parse_error_with_location() {
    let dir = TempDir::new("cxg-bad");
    let cases: [(&str, &str, &str); 5] = [
        ("syntax", "{\n  \"CL:1\": {\"label\": \"a\",,}\n}", "line 2"),
        ("truncated", "{\"CL:1\": {\"label\": \"a\"", "line 1"),
        ("not-an-object", "[1, 2, 3]", "line 1"),
        (
            "wrong-type",
            "{\"CL:1\": {\"label\": \"a\"},\n \"CL:2\": {\"label\": 5}}",
            "CL:2",
        ),
        (
            "bad-flag",
            "{\"CL:1\": {\"label\": \"a\", \"deprecated\": \"maybe\"}}",
            "CL:1",
        ),
    ];
    for (tag, text, expect) in cases {
        let path = dir.write(&format!("CL-ontology-{tag}.json"), text.as_bytes());
        let err = Ontology::load(&path).expect_err(tag);
        match &err {
            Error::Parse {
                path: p, location, ..
            } => {
                assert_eq!(p, &path, "{tag}");
                let location = location.as_deref().unwrap_or_default();
                assert!(location.contains(expect), "{tag}: {location}");
            }
            other => panic!("{tag}: expected a parse error, got {other:?}"),
        }
        assert!(
            err.to_string().contains(&format!("CL-ontology-{tag}.json")),
            "{err}"
        );
    }
    let dup = dir.write("CL-ontology-dup.json", b"{\"CL:1\": {}, \"CL:1\": {}}");
    let err = Ontology::load(&dup).expect_err("duplicate");
    assert!(err.to_string().contains("appears twice"), "{err}");
}

#[test]
fn missing_file_and_unknown_extension() {
    let missing = Path::new("/nonexistent/dir/CL-ontology-v1.json.zst");
    match Ontology::load(missing) {
        Err(Error::Io { path, source, .. }) => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Io, got {other:?}"),
    }
    let err = Ontology::load("ontology.owl").expect_err("owl");
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
}

// ---------------------------------------------------------------------------
// Normalisation

#[test]
fn normalisation_cases() {
    let same = [
        ("CD8+ T cells", "CD8+ T cell"),
        ("T-Cell", "t cell"),
        ("T_cell", "T cell"),
        ("ＣＤ８＋ Ｔ cells", "cd8+ t cell"),
        ("   colon    mucosa\t", "colon mucosa"),
        (
            "Fibrillary Glomerulonephritis\u{a0}",
            "fibrillary glomerulonephritis",
        ),
        (
            "lymphoid tissue\u{2013}inducer cell",
            "lymphoid tissue-inducer cell",
        ),
        ("ﬁbroblasts", "fibroblast"),
        ("Neurons", "neuron"),
    ];
    for (a, b) in same {
        assert_eq!(normalize_label(a), normalize_label(b), "{a:?} vs {b:?}");
    }
    assert_eq!(normalize_label("CD8+ T cells"), "cd8+ t cell");
    assert_eq!(normalize_label("T-Cell"), "t cell");
    // Conservative plural rule: these keep their final s.
    for word in [
        "diabetes", "pancreas", "herpes", "abscess", "tetanus", "pelvis", "AIDS", "mumps",
    ] {
        assert_eq!(normalize_label(word), word.to_lowercase(), "{word}");
    }
    // Only the last word is singularised.
    assert_eq!(
        normalize_label("cells of the kidneys"),
        "cells of the kidney"
    );
    assert_eq!(normalize_label(" \t "), "");
}

// ---------------------------------------------------------------------------
// Real data (fetched by scripts/setup.sh)

/// The real source `name` from the assets; `None` (skip) without it, a
/// failure under `LOBSTER_TEST_REQUIRE_SERVICES=1`.
fn real_file(name: &str) -> Option<PathBuf> {
    let assets = std::env::var_os("LOBSTER_ASSETS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".lobster/assets")));
    let path = assets.map(|a| a.join("ontologies").join(name));
    match path {
        Some(p) if p.is_file() => Some(p),
        _ => service_unavailable(&format!(
            "the real ontology source {name} (bash scripts/setup.sh)"
        )),
    }
}

#[test]
fn real_cellxgene_ontologies() -> Result<()> {
    let files = [
        (
            "CL-ontology-v2026-03-26.json.zst",
            OntologyKind::CellOntology,
            3_596,
        ),
        (
            "UBERON-ontology-v2026-04-01.json.zst",
            OntologyKind::Uberon,
            16_358,
        ),
        (
            "MONDO-ontology-v2026-05-05.json.zst",
            OntologyKind::Mondo,
            31_958,
        ),
    ];
    for (name, kind, count) in files {
        let Some(path) = real_file(name) else {
            continue;
        };
        let started = Instant::now();
        let ont = Ontology::load(&path)?;
        println!("{name}: {} terms in {:?}", ont.len(), started.elapsed());
        assert_eq!(ont.kind(), Some(kind));
        assert_eq!(ont.len(), count, "{name}");
        assert_eq!(ont.source_sha256().len(), 64);
        for term in ont.live_terms() {
            assert!(!term.label.is_empty(), "live term {} has no label", term.id);
        }
        let graph = Graph::new(&ont);
        let index = ExactIndex::new(&ont);
        match kind {
            OntologyKind::CellOntology => {
                assert_eq!(ont.version(), "v2026-03-26");
                assert_eq!(
                    ont.term("CL:0000625")?.label,
                    "CD8-positive, alpha-beta T cell"
                );
                assert!(index
                    .lookup("CD8-positive, alpha-beta T cells")
                    .iter()
                    .any(|m| m.id == "CL:0000625" && m.kind == EntryKind::Label));
                assert!(graph.is_descendant_of("CL:0000625", "CL:0000084")?);
                assert!(!graph.is_descendant_of("CL:0000540", "CL:0000084")?);
                assert!(graph.subtree("CL:0000084")?.contains("CL:0000625"));
                assert_eq!(ids(&graph.parents("CL:0000625")?), vec![("CL:0000791", 1)]);
            }
            OntologyKind::Uberon => {
                let colon = index.lookup("Colon");
                assert_eq!(colon[0].id, "UBERON:0001155");
                assert_eq!(colon[0].kind, EntryKind::Label);
            }
            OntologyKind::Mondo => {
                let obsolete = ont
                    .terms()
                    .iter()
                    .find(|t| t.deprecated && t.replaced_by.is_some())
                    .expect("MONDO has obsolete terms with replacements");
                let redirect = ont.resolve_obsolete(&obsolete.id).expect("obsolete");
                let target = redirect.replaced_by.expect("a replacement");
                let live = ont.term(&target)?;
                assert!(!live.deprecated, "{} → {target} is live", obsolete.id);
                // A chain: MONDO:0000017 → MONDO:0011791 (obsolete) → a live term.
                let chained = ont.resolve_obsolete("MONDO:0000017").expect("obsolete");
                let end = chained.replaced_by.expect("replacement");
                assert!(!ont.term(&end)?.deprecated);
                assert_eq!(index.lookup("heart attack")[0].id, "MONDO:0005068");
            }
        }
    }
    Ok(())
}

#[test]
fn in_memory_ontology() -> Result<()> {
    let ont = Ontology::from_terms("x", None, "v1", vec![])?;
    assert!(ont.is_empty());
    assert_eq!(ont.source_sha256(), "");
    Ok(())
}

/// Everything a loaded ontology says of itself.
fn snapshot(
    o: &Ontology,
) -> (
    String,
    Option<OntologyKind>,
    String,
    String,
    PathBuf,
    Vec<Term>,
) {
    (
        o.name().to_string(),
        o.kind(),
        o.version().to_string(),
        o.source_sha256().to_string(),
        o.source_path().to_path_buf(),
        o.terms().to_vec(),
    )
}

fn compiled_files(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|l| l.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == extension));
    files.sort();
    files
}

#[test]
fn compiled_terms_load_exactly_like_the_source_and_are_never_trusted_blindly() -> Result<()> {
    let dir = TempDir::new("compiled");
    let compiled = dir.0.join("compiled");
    let compressed = zstd::encode_all(CELLXGENE_JSON.as_bytes(), 3).expect("compress");
    let json = dir.write("CL-ontology-v2026-01-02.json.zst", &compressed);
    let obo = dir.write(
        "mini.obo",
        &std::fs::read(fixture("mini_cl.obo")).expect("fixture"),
    );
    for source in [&json, &obo] {
        let parsed = snapshot(&Ontology::load(source)?);
        // The first load parses and writes the compiled terms; the second reads them.
        assert_eq!(
            snapshot(&Ontology::load_compiled(source, &compiled)?),
            parsed
        );
        let file = compiled_files(&compiled, "terms")
            .into_iter()
            .find(|p| {
                p.file_name().is_some_and(|n| {
                    n.to_string_lossy()
                        .starts_with(&*source.file_name().unwrap().to_string_lossy())
                })
            })
            .expect("a compiled terms file");
        let written = std::fs::metadata(&file).unwrap().modified().unwrap();
        assert_eq!(
            snapshot(&Ontology::load_compiled(source, &compiled)?),
            parsed
        );
        assert_eq!(
            std::fs::metadata(&file).unwrap().modified().unwrap(),
            written
        );

        // A damaged file is not used: the source is parsed again, the file rewritten.
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x20;
        std::fs::write(&file, &bytes).unwrap();
        assert_eq!(
            snapshot(&Ontology::load_compiled(source, &compiled)?),
            parsed
        );
        assert_ne!(std::fs::read(&file).unwrap(), bytes);
    }

    // The same file name with other content: its own compiled file, its own terms.
    let changed = CELLXGENE_JSON.replace("A lymphocyte with a T cell receptor.", "Changed.");
    let changed_bytes = zstd::encode_all(changed.as_bytes(), 3).expect("compress");
    std::fs::write(&json, &changed_bytes).unwrap();
    let reparsed = Ontology::load_compiled(&json, &compiled)?;
    assert_eq!(snapshot(&reparsed), snapshot(&Ontology::load(&json)?));
    assert_eq!(
        reparsed.term("CL:0000084")?.definition.as_deref(),
        Some("Changed.")
    );
    assert_eq!(compiled_files(&compiled, "terms").len(), 3);
    // Errors of the source stay errors of the source.
    std::fs::write(&json, &changed_bytes[..changed_bytes.len() / 2]).unwrap();
    let e = Ontology::load_compiled(&json, &compiled).expect_err("truncated");
    assert!(
        e.to_string().contains("truncated or corrupt zstd data"),
        "{e}"
    );
    Ok(())
}
