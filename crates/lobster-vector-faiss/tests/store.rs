//! FAISS-specific behaviour: exact parity with FlatStore, saving and loading,
//! interrupted saves, damaged files, the writer lock, trained and HNSW indexes.

use std::path::Path;

use lobster_vector_core::store::as_slices;
use lobster_vector_core::testing::data::{clustered_split, ids, records};
use lobster_vector_core::{Error, FlatStore, Metadata, VectorStore};
use lobster_vector_faiss::{FaissOptions, FaissStore};

fn at(dir: &Path) -> FaissOptions {
    FaissOptions {
        path: Some(dir.to_path_buf()),
        ..FaissOptions::default()
    }
}

#[test]
fn flat_index_matches_flat_store_exactly() {
    let (base, queries) = clustered_split(11, 3_000, 60, 96, 24, 0.6);
    let recs = records("r", &base);
    let faiss = FaissStore::in_memory();
    let flat = FlatStore::new();
    for chunk in recs.chunks(700) {
        faiss.upsert("parity", chunk).unwrap();
        flat.upsert("parity", chunk).unwrap();
    }
    let ours = faiss
        .search_batch("parity", &as_slices(&queries), 10)
        .unwrap();
    for (q, got) in queries.iter().zip(&ours) {
        let want = flat.search("parity", q, 10).unwrap();
        assert_eq!(got.len(), 10);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g.distance - w.distance).abs() < 1e-5,
                "{} {} vs {} {}",
                g.id,
                g.distance,
                w.id,
                w.distance
            );
        }
        // Ties aside, the same ids in the same order.
        let same = got.iter().zip(&want).filter(|(g, w)| g.id == w.id).count();
        assert!(same >= 9, "{:?} vs {:?}", ids(got), ids(&want));
        assert_eq!(got[0].document.as_deref(), want[0].document.as_deref());
        assert_eq!(got[0].metadata, want[0].metadata);
    }
}

#[test]
fn a_flushed_store_reopens_with_everything() {
    let dir = tempfile::tempdir().unwrap();
    let (base, queries) = clustered_split(3, 500, 5, 32, 8, 0.5);
    let recs = records("x", &base);
    let before;
    {
        let s = FaissStore::open(at(dir.path())).unwrap();
        s.upsert("kept", &recs).unwrap();
        s.delete("kept", &["x0".into(), "x1".into()]).unwrap();
        let mut info = Metadata::new();
        info.insert("embedding_model".into(), "all-MiniLM-L6-v2".into());
        s.set_collection_metadata("kept", info).unwrap();
        s.upsert("other", &recs[..3]).unwrap();
        assert!(s.drop_collection("other").unwrap());
        s.flush().unwrap();
        before = s.search_batch("kept", &as_slices(&queries), 7).unwrap();
    }
    let s = FaissStore::open(at(dir.path())).unwrap();
    assert_eq!(s.list_collections().unwrap(), vec!["kept".to_string()]);
    assert_eq!(s.count("kept").unwrap(), 498);
    let info = s.collection_info("kept").unwrap();
    assert_eq!(info.dimension, Some(32));
    assert_eq!(info.metadata["embedding_model"], "all-MiniLM-L6-v2");
    let after = s.search_batch("kept", &as_slices(&queries), 7).unwrap();
    assert_eq!(after, before);
    // Vectors come back (unit length) with their documents, in label order.
    let page = s.read_page("kept", 0, 3).unwrap();
    assert_eq!(ids_of(&page), ["x2", "x3", "x4"]);
    let norm: f32 = page[0].vector.iter().map(|x| x * x).sum();
    assert!((norm - 1.0).abs() < 1e-5);
    let hit = &s.search("kept", &page[0].vector, 1).unwrap()[0];
    assert_eq!(hit.id, "x2");
    assert_eq!(hit.document.as_deref(), Some("doc x2"));
    // Only the current generation's files remain.
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["kept.1.faiss", "kept.1.rows.json", "lock", "manifest.json"]
    );
}

fn ids_of(records: &[lobster_vector_core::Record]) -> Vec<&str> {
    records.iter().map(|r| r.id.as_str()).collect()
}

#[test]
fn changes_after_the_last_save_are_lost_whole_and_leftovers_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _) = clustered_split(5, 300, 0, 16, 4, 0.5);
    let recs = records("c", &base);
    let s = FaissStore::open(at(dir.path())).unwrap();
    s.upsert("crash", &recs[..100]).unwrap();
    s.flush().unwrap();
    s.upsert("crash", &recs[100..]).unwrap();
    // A save interrupted before its manifest: files of the next generation
    // (one of them half written) and a temp file.
    std::fs::write(dir.path().join("crash.2.faiss"), b"half an index").unwrap();
    std::fs::write(dir.path().join("crash.2.rows.json.tmp"), b"[{").unwrap();
    // The process dies without saving.
    std::mem::forget(s);
    // The forgotten store still holds the lock; a new process would not.
    let s = FaissStore::open(at(dir.path())).unwrap();
    assert_eq!(s.count("crash").unwrap(), 100);
    let hits = s.search("crash", &recs[5].vector, 1).unwrap();
    assert_eq!(hits[0].id, "c5");
}

#[test]
fn damaged_files_are_clear_errors_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _) = clustered_split(9, 50, 0, 8, 2, 0.5);
    {
        let s = FaissStore::open(at(dir.path())).unwrap();
        s.upsert("dmg", &records("d", &base)).unwrap();
    } // saved on drop
    let index = dir.path().join("dmg.1.faiss");
    let good = std::fs::read(&index).unwrap();
    std::fs::write(&index, &good[..good.len() / 2]).unwrap();
    let err = FaissStore::open(at(dir.path())).unwrap_err();
    assert!(matches!(err, Error::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("dmg.1.faiss"), "{err}");
    assert_eq!(std::fs::read(&index).unwrap().len(), good.len() / 2);

    std::fs::write(&index, &good).unwrap();
    std::fs::write(dir.path().join("manifest.json"), b"{ not json").unwrap();
    let err = FaissStore::open(at(dir.path())).unwrap_err();
    assert!(matches!(err, Error::Parse { .. }), "{err:?}");
    assert!(err.to_string().contains("manifest.json"), "{err}");
}

#[test]
fn a_second_writer_is_refused_and_sees_the_first_writers_save() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _) = clustered_split(1, 20, 0, 8, 2, 0.5);
    let recs = records("w", &base);
    let first = FaissStore::open(at(dir.path())).unwrap();
    let second = FaissStore::open(at(dir.path())).unwrap();
    first.upsert("shared", &recs[..10]).unwrap();
    let err = second.upsert("shared", &recs[10..]).unwrap_err();
    assert!(matches!(err, Error::StoreLocked { .. }), "{err:?}");
    assert!(!second.has_collection("shared").unwrap());
    first.flush().unwrap();
    drop(first);
    // Now free: the second writer first picks up what the first saved.
    second.upsert("shared", &recs[10..]).unwrap();
    assert_eq!(second.count("shared").unwrap(), 20);
}

#[test]
fn readers_never_save() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _) = clustered_split(2, 10, 0, 8, 2, 0.5);
    {
        let s = FaissStore::open(at(dir.path())).unwrap();
        s.upsert("readers", &records("r", &base)).unwrap();
    }
    let manifest = dir.path().join("manifest.json");
    let saved = std::fs::read(&manifest).unwrap();
    let writer = FaissStore::open(at(dir.path())).unwrap();
    writer.lock_for_writing().unwrap();
    {
        // A reader opened meanwhile searches and closes without touching the files.
        let reader = FaissStore::open(at(dir.path())).unwrap();
        assert_eq!(reader.count("readers").unwrap(), 10);
    }
    assert_eq!(std::fs::read(&manifest).unwrap(), saved);
}

#[test]
fn trained_indexes_train_on_the_first_batch() {
    let (base, queries) = clustered_split(4, 400, 3, 16, 4, 0.4);
    let recs = records("t", &base);
    let s = FaissStore::open(FaissOptions {
        index: "IVF4,Flat".into(),
        ..FaissOptions::default()
    })
    .unwrap();
    let err = s.upsert("ivf", &recs[..2]).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert!(err.to_string().contains("trained"), "{err}");
    assert!(!s.has_collection("ivf").unwrap());
    s.upsert("ivf", &recs).unwrap();
    assert_eq!(s.count("ivf").unwrap(), 400);
    let hits = s.search("ivf", &recs[7].vector, 1).unwrap();
    assert_eq!(hits[0].id, "t7");
    assert!(hits[0].distance.abs() < 1e-5);
    assert!(!s.search("ivf", &queries[0], 5).unwrap().is_empty());
}

#[test]
fn bad_options_are_refused_at_open() {
    let err = FaissStore::open(FaissOptions {
        index: "NoSuchIndex42".into(),
        ..FaissOptions::default()
    })
    .unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err:?}");
    assert!(err.to_string().contains("LOBSTER_FAISS_INDEX"), "{err}");

    let err = FaissStore::open(FaissOptions {
        parameters: "efSearch=64".into(),
        ..FaissOptions::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("LOBSTER_FAISS_PARAMS"), "{err}");
    let hnsw = FaissStore::open(FaissOptions {
        index: "HNSW16".into(),
        parameters: "efSearch = 64".into(),
        ..FaissOptions::default()
    });
    assert!(hnsw.is_ok(), "{hnsw:?}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let err = FaissStore::open(at(&file)).unwrap_err();
    assert!(matches!(err, Error::InvalidInput { .. }), "{err:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}
