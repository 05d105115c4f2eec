//! The curation workflow through the real binary, on the real MiniLM model
//! and the real CL and MONDO releases: `map` statuses and SSSOM output,
//! curated mappings answered before exact and semantic matches, obsolete
//! curated ids redirected, bad curated files refused whole, `remap`
//! reporting every kind of change; also term ids in their usual spellings.
//! Skips without the assets; fails instead when
//! LOBSTER_TEST_REQUIRE_SERVICES=1.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{cl_store, lv};
use lobster_vector::curation::{MappingSet, Status};
use lobster_vector::ontology::{Ontology, OntologyKind, OntologyLibrary};
use lobster_vector_core::testing::service_unavailable;
use serde_json::Value;

/// A copy of the shared CL store, so curations made here stay here.
fn fresh_store() -> Option<(tempfile::TempDir, PathBuf)> {
    let source = cl_store()?;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("store");
    copy_dir(source, &dir);
    let _ = std::fs::remove_file(dir.join("curated.sssom.tsv"));
    Some((tmp, dir))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "exit {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `map` of `values` as JSON lines, parsed.
fn map_rows(store: &Path, dir: &Path, values: &[&str], extra: &[&str]) -> Vec<Value> {
    let input = dir.join("values.txt");
    std::fs::write(&input, values.join("\n") + "\n").expect("write values");
    let output = dir.join("out.jsonl");
    let mut args = vec![
        "map",
        "-i",
        input.to_str().expect("utf-8"),
        "-o",
        "cell_type",
        "--candidates",
        "3",
        "--output",
        output.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    ok(lv(store).args(&args).output().expect("run map"));
    std::fs::read_to_string(&output)
        .expect("read output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

/// `search TEXT -o cell_type -k K --json`: the rows.
fn search(store: &Path, text: &str, k: u32) -> Vec<Value> {
    let out = ok(lv(store)
        .args([
            "search",
            text,
            "-o",
            "cell_type",
            "-k",
            &k.to_string(),
            "--json",
        ])
        .output()
        .expect("run search"));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    v["results"]["cell_ontology"]
        .as_array()
        .unwrap_or_else(|| panic!("no rows: {v}"))
        .clone()
}

fn first<'a>(rows: &'a [Value], value: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["input"] == value)
        .unwrap_or_else(|| panic!("no row for {value}"))
}

fn ontology(kind: OntologyKind) -> Option<std::sync::Arc<Ontology>> {
    let assets = std::env::var_os("LOBSTER_ASSETS_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".lobster/assets")))?;
    match OntologyLibrary::new(vec![assets.join("ontologies")]).newest(kind) {
        Ok(o) => Some(o),
        Err(e) => service_unavailable(&format!("the real {} source ({e})", kind.name())),
    }
}

#[test]
fn curated_mappings_answer_before_exact_and_semantic_matches() {
    let Some((tmp, store)) = fresh_store() else {
        return;
    };
    let values = ["T cells", "CD8+ T cells", "foo bar baz"];
    let before = map_rows(&store, tmp.path(), &values, &[]);
    assert_eq!(first(&before, "T cells")["ontology_id"], "CL:0000084");
    assert_eq!(first(&before, "T cells")["match_type"], "exact_label");
    assert_eq!(first(&before, "T cells")["status"], "accepted");
    assert_eq!(first(&before, "CD8+ T cells")["match_type"], "semantic");
    assert_ne!(first(&before, "foo bar baz")["status"], "accepted");

    // Curate against both the exact and the semantic answer.
    ok(lv(&store)
        .args([
            "curate",
            "add",
            "t cells",
            "CL:0000625",
            "--author",
            "Jane Doe",
        ])
        .output()
        .expect("curate add"));
    ok(lv(&store)
        .args(["curate", "add", "CD8+ T-cells", "CL:0000624"])
        .output()
        .expect("curate add"));
    let after = map_rows(&store, tmp.path(), &values, &[]);
    for (value, id) in [("T cells", "CL:0000625"), ("CD8+ T cells", "CL:0000624")] {
        let row = first(&after, value);
        assert_eq!(row["ontology_id"], id, "{value}: {row}");
        assert_eq!(row["match_type"], "curated");
        assert_eq!(row["score"], 1.0);
        assert_eq!(row["status"], "accepted");
        // One row per concept: the curated concept is not repeated below.
        let ids: Vec<&Value> = after
            .iter()
            .filter(|r| r["input"] == value)
            .map(|r| &r["ontology_id"])
            .collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(ids.iter().filter(|i| **i == id).count(), 1, "{ids:?}");
    }
    // --no-curated gives the uncurated answers back.
    let plain = map_rows(&store, tmp.path(), &values, &["--no-curated"]);
    assert_eq!(first(&plain, "T cells")["ontology_id"], "CL:0000084");

    // `search --json` answers the store's curations too, with their provenance.
    let rows = search(&store, "T cells", 1);
    let row = &rows[0];
    assert_eq!(row["ontology_id"], "CL:0000625", "{row}");
    assert_eq!(row["metadata"]["author_label"], "Jane Doe");
    assert_eq!(
        row["metadata"]["justification"],
        "semapv:ManualMappingCuration"
    );

    // SSSOM output: curated rows keep their justification and author.
    let sssom = tmp.path().join("out.sssom.tsv");
    let input = tmp.path().join("values.txt");
    let out = ok(lv(&store)
        .args([
            "map",
            "-i",
            input.to_str().expect("utf-8"),
            "-o",
            "cell_type",
            "--output",
            sssom.to_str().expect("utf-8"),
        ])
        .output()
        .expect("map sssom"));
    assert!(stderr(&out).contains("accepted"), "{}", stderr(&out));
    let set = MappingSet::load(&sssom).expect("valid SSSOM");
    assert_eq!(set.metadata.mapping_tool.as_deref(), Some("lobster-vector"));
    assert!(set.metadata.object_source_version.is_some());
    let curated = set
        .mappings
        .iter()
        .find(|m| m.subject_label.as_deref() == Some("T cells"))
        .expect("T cells row");
    assert_eq!(curated.object_id, "CL:0000625");
    assert_eq!(
        curated.mapping_justification,
        "semapv:ManualMappingCuration"
    );
    assert_eq!(curated.author_label.as_deref(), Some("Jane Doe"));
    assert_eq!(curated.comment.as_deref(), Some(Status::Accepted.as_str()));

    // remove, then list.
    ok(lv(&store)
        .args(["curate", "remove", "T CELLS", "-o", "cell_type"])
        .output()
        .expect("remove"));
    let out = ok(lv(&store)
        .args(["curate", "list", "--json"])
        .output()
        .expect("list"));
    let list: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let ids: Vec<&str> = list
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|m| m["object_id"].as_str())
        .collect();
    assert_eq!(ids, vec!["CL:0000624"]);
}

/// The first obsolete term of `o` whose replacement is a live term of `o`.
fn replaced_term(o: &Ontology) -> (String, String) {
    o.terms()
        .iter()
        .filter(|t| t.deprecated)
        .find_map(|t| {
            let r = o.resolve_obsolete(&t.id)?.replaced_by?;
            o.get(&r)
                .filter(|t| !t.deprecated)
                .map(|_| (t.id.clone(), r))
        })
        .expect("an obsolete term with a replacement")
}

#[test]
fn an_obsolete_curated_id_is_redirected_and_flagged() {
    let Some((tmp, store)) = fresh_store() else {
        return;
    };
    let Some(cl) = ontology(OntologyKind::CellOntology) else {
        return;
    };
    let (obsolete, replacement) = replaced_term(&cl);
    let dead_end = cl
        .terms()
        .iter()
        .find(|t| {
            t.deprecated
                && cl
                    .resolve_obsolete(&t.id)
                    .is_some_and(|r| r.replaced_by.is_none())
        })
        .map(|t| t.id.clone())
        .expect("an obsolete term without replacement");
    let file = tmp.path().join("curated.tsv");
    std::fs::write(
        &file,
        format!("label\tid\nmy old curation\t{obsolete}\nmy dead curation\t{dead_end}\n"),
    )
    .expect("write");
    let out = ok(lv(&store)
        .args(["curate", "import", file.to_str().expect("utf-8")])
        .output()
        .expect("import"));
    let warnings = stderr(&out);
    assert!(
        warnings.contains(&obsolete) && warnings.contains(&replacement),
        "{warnings}"
    );
    assert!(
        warnings.contains(&dead_end) && warnings.contains("not used"),
        "{warnings}"
    );

    let rows = search(&store, "my old curation", 2);
    let row = &rows[0];
    assert_eq!(row["ontology_id"], replacement.as_str(), "{row}");
    assert_eq!(row["match_type"], "curated");
    assert_eq!(row["metadata"]["curated_id"], obsolete.as_str());
    assert_eq!(row["metadata"]["redirect"], "replaced_by");

    // The dead end is never answered as curated.
    for row in &search(&store, "my dead curation", 3) {
        assert_ne!(row["match_type"], "curated", "{row}");
        assert_ne!(row["ontology_id"], dead_end.as_str(), "{row}");
    }
}

#[test]
fn bad_curated_files_name_the_line_and_import_nothing() {
    let Some((tmp, store)) = fresh_store() else {
        return;
    };
    ok(lv(&store)
        .args(["curate", "add", "Mono", "CL:0000576"])
        .output()
        .expect("add"));
    let before = std::fs::read_to_string(store.join("curated.sssom.tsv")).expect("curated file");
    let sssom_head = "#curie_map:\n#  CL: http://purl.obolibrary.org/obo/CL_\n#mapping_set_id: https://example.org/x\n#license: https://w3id.org/sssom/license/unspecified\n";
    let cases = [
        ("missing-column.tsv", "a\tCL:0000084\nb\n".to_string(), "line 2"),
        (
            "unknown-prefix.tsv",
            "a\tCL:0000084\nb\tFOO:0000001\n".to_string(),
            "unknown prefix `FOO`",
        ),
        (
            "duplicate.tsv",
            "label\tid\nB cell\tCL:0000236\nb-cell\tCL:0000084\n".to_string(),
            "line 3",
        ),
        (
            "no-justification.sssom.tsv",
            format!("{sssom_head}subject_label\tsubject_type\tpredicate_id\tobject_id\nx\trdfs literal\tskos:exactMatch\tCL:0000084\n"),
            "mapping_justification",
        ),
        (
            "undeclared.sssom.tsv",
            format!("{sssom_head}subject_label\tsubject_type\tpredicate_id\tobject_id\tmapping_justification\nx\trdfs literal\tskos:exactMatch\tCL:0000084\tsemapv:ManualMappingCuration\ny\trdfs literal\tskos:exactMatch\tUBERON:0000948\tsemapv:ManualMappingCuration\n"),
            "line 7",
        ),
    ];
    for (name, text, needle) in cases {
        let file = tmp.path().join(name);
        std::fs::write(&file, text).expect("write");
        let out = lv(&store)
            .args(["curate", "import", file.to_str().expect("utf-8")])
            .output()
            .expect("import");
        assert!(!out.status.success(), "{name} was imported");
        let err = stderr(&out);
        assert!(err.contains(needle) && err.contains(name), "{name}: {err}");
        let after = std::fs::read_to_string(store.join("curated.sssom.tsv")).expect("curated file");
        assert_eq!(after, before, "{name} changed the curated set");
        // `map --curated` refuses it before any work, too.
        let out = lv(&store)
            .args([
                "map",
                "-i",
                "-",
                "-o",
                "cell_type",
                "--curated",
                file.to_str().expect("utf-8"),
            ])
            .output()
            .expect("map");
        assert!(
            !out.status.success() && stderr(&out).contains(needle),
            "{name}"
        );
    }
    // An id the ontology does not have is refused by `curate add`.
    let out = lv(&store)
        .args(["curate", "add", "x", "CL:9999999"])
        .output()
        .expect("add");
    assert!(!out.status.success() && stderr(&out).contains("CL:9999999"));
}

/// Writes a mapping set "made against an older release" of `o`: one mapping
/// per kind of change, and returns it with the expected change per subject.
fn older_release_mappings(o: &Ontology, dir: &Path) -> (PathBuf, Vec<(String, &'static str)>) {
    let prefix = o.kind().expect("known kind").source_prefix();
    let live: Vec<_> = o.live_terms().take(2).collect();
    let (replaced, _) = replaced_term(o);
    let obsolete_with = |consider: bool| {
        o.terms().iter().find(|t| {
            t.deprecated
                && o.resolve_obsolete(&t.id)
                    .is_some_and(|r| r.replaced_by.is_none() && r.consider.is_empty() != consider)
        })
    };
    let mut rows: Vec<(String, String, String, &'static str)> = vec![
        (
            format!("{prefix} same"),
            live[0].id.clone(),
            live[0].label.clone(),
            "unchanged",
        ),
        (
            format!("{prefix} renamed"),
            live[1].id.clone(),
            "a label it once had".into(),
            "label_changed",
        ),
        (
            format!("{prefix} replaced"),
            replaced.clone(),
            "old label".into(),
            "replaced",
        ),
        (
            format!("{prefix} gone"),
            format!("{prefix}:9999999"),
            "removed".into(),
            "missing",
        ),
    ];
    if let Some(t) = obsolete_with(true) {
        rows.push((
            format!("{prefix} consider"),
            t.id.clone(),
            t.label.clone(),
            "obsolete_consider",
        ));
    }
    if let Some(t) = obsolete_with(false) {
        rows.push((
            format!("{prefix} dead"),
            t.id.clone(),
            t.label.clone(),
            "obsolete",
        ));
    }
    let mut text = format!(
        "#curie_map:\n#  {prefix}: http://purl.obolibrary.org/obo/{prefix}_\n#  UBERON: http://purl.obolibrary.org/obo/UBERON_\n#mapping_set_id: https://example.org/old\n#license: https://w3id.org/sssom/license/unspecified\n#object_source_version: an-older-release\nsubject_label\tsubject_type\tpredicate_id\tobject_id\tobject_label\tmapping_justification\n"
    );
    for (subject, id, label, _) in &rows {
        text.push_str(&format!(
            "{subject}\trdfs literal\tskos:exactMatch\t{id}\t{label}\tsemapv:ManualMappingCuration\n"
        ));
    }
    // A mapping into another ontology is passed through untouched.
    text.push_str("other\trdfs literal\tskos:exactMatch\tUBERON:0000948\theart\tsemapv:ManualMappingCuration\n");
    let path = dir.join(format!("{prefix}-old.sssom.tsv"));
    std::fs::write(&path, text).expect("write");
    (path, rows.into_iter().map(|(s, _, _, c)| (s, c)).collect())
}

#[test]
fn remap_reports_each_change_against_the_current_cl_and_mondo() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut kinds_seen = std::collections::BTreeSet::new();
    for (kind, alias) in [
        (OntologyKind::CellOntology, "cell_type"),
        (OntologyKind::Mondo, "disease"),
    ] {
        let Some(o) = ontology(kind) else {
            return;
        };
        let (input, expected) = older_release_mappings(&o, tmp.path());
        let output = tmp.path().join(format!("{alias}-new.sssom.tsv"));
        let out = ok(lv(tmp.path())
            .args([
                "remap",
                input.to_str().expect("utf-8"),
                "-o",
                alias,
                "--output",
                output.to_str().expect("utf-8"),
                "--json",
            ])
            .output()
            .expect("remap"));
        let report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        let rows = report["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), expected.len(), "{report}");
        for (subject, change) in &expected {
            let row = rows
                .iter()
                .find(|r| r["subject"] == subject.as_str())
                .unwrap_or_else(|| panic!("no row for {subject}"));
            assert_eq!(row["change"], *change, "{row}");
            kinds_seen.insert(*change);
        }
        let updated = MappingSet::load(&output).expect("updated SSSOM parses");
        assert_eq!(
            updated.metadata.object_source_version.as_deref(),
            Some(o.version())
        );
        let by_subject = |s: &str| {
            updated
                .mappings
                .iter()
                .find(|m| m.subject_label.as_deref() == Some(s))
                .expect("mapping")
        };
        let prefix = kind.source_prefix();
        let (old, new) = replaced_term(&o);
        let m = by_subject(&format!("{prefix} replaced"));
        assert_eq!(m.object_id, new);
        assert!(m.comment.as_deref().unwrap_or_default().contains(&old));
        let renamed = by_subject(&format!("{prefix} renamed"));
        assert_eq!(
            renamed.object_label.as_deref(),
            o.get(&renamed.object_id).map(|t| t.label.as_str())
        );
        assert_eq!(by_subject("other").object_id, "UBERON:0000948");
    }
    for kind in [
        "unchanged",
        "label_changed",
        "replaced",
        "missing",
        "obsolete_consider",
    ] {
        assert!(kinds_seen.contains(kind), "no {kind} case in CL or MONDO");
    }
}

#[test]
fn lookup_and_neighbors_accept_the_usual_id_spellings() {
    if ontology(OntologyKind::CellOntology).is_none() {
        return;
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    for spelling in [
        "CL:0000625",
        "cl:0000625",
        "CL_0000625",
        "http://purl.obolibrary.org/obo/CL_0000625",
    ] {
        for command in ["lookup", "neighbors"] {
            let out = ok(lv(tmp.path())
                .args([command, spelling, "--json"])
                .output()
                .expect("run"));
            let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
            assert_eq!(v["id"], "CL:0000625", "{command} {spelling}: {v}");
        }
    }
    let long = format!("CL:{}", "9".repeat(100_000));
    let out = lv(tmp.path())
        .args(["lookup", &long])
        .output()
        .expect("run");
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.len() < 400,
        "{} bytes",
        err.len()
    );
}
