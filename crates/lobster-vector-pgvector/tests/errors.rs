//! Hostile input and broken connections: SQL metacharacters are stored
//! verbatim or rejected, never executed; a wrong password, an unreachable or
//! silent host and a database without the extension each give a clear error
//! within the connect timeout, and no error contains the password.

mod common;

use std::time::{Duration, Instant};

use lobster_vector_core::{Error, Metadata, Record, VectorStore};
use lobster_vector_pgvector::{PgOptions, PgStore};
use serde_json::json;

fn chain(e: &Error) -> String {
    let mut s = format!("{e} | {e:?}");
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(&format!(" | {inner}"));
        src = inner.source();
    }
    s
}

#[test]
fn sql_metacharacters_are_stored_verbatim() {
    let Some(store) = common::store(PgOptions::default()) else {
        return;
    };
    let c = common::unique("meta.chars-x");
    let nasty = [
        "'; DROP TABLE lobster_vector_collections; --",
        "Robert'); DELETE FROM lobster_vector_collections; --",
        "\"quoted\" id",
        "back\\slash $1 $$dollar$$ %s ? :name",
        "E'\\x00' ; SELECT pg_sleep(10)",
        "ünïcödé 🧬 \u{202e}",
    ];
    let recs: Vec<Record> = nasty
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut m = Metadata::new();
            m.insert(s.to_string(), json!({"nested": s, "list": [s, 1, null]}));
            let mut v = vec![0.1_f32; 8];
            v[i] = 1.0;
            Record::new(*s, v).with_document(*s).with_metadata(m)
        })
        .collect();
    store.upsert(&c, &recs).expect("upsert");
    // COPY path too.
    let copy_store = common::store(PgOptions {
        copy_at_least: 1,
        ..PgOptions::default()
    })
    .expect("store");
    let c2 = common::unique("meta_copy");
    copy_store.upsert(&c2, &recs).expect("upsert via COPY");
    for (store, c) in [(&store, &c), (&copy_store, &c2)] {
        assert_eq!(store.count(c).expect("count"), nasty.len());
        for r in &recs {
            let hit = store.search(c, &r.vector, 1).expect("search").remove(0);
            assert_eq!(hit.id, r.id);
            assert_eq!(hit.document, r.document);
            assert_eq!(hit.metadata, r.metadata);
        }
        let ids: Vec<String> = nasty[..2].iter().map(|s| s.to_string()).collect();
        assert_eq!(store.delete(c, &ids).expect("delete"), 2);
        assert_eq!(store.count(c).expect("count"), nasty.len() - 2);
    }
    let mut m = Metadata::new();
    m.insert("artifact".into(), json!({"x": "'); DROP TABLE x; --"}));
    store.set_collection_metadata(&c, m.clone()).expect("meta");
    assert_eq!(store.collection_info(&c).expect("info").metadata, m);
    // The catalog survived.
    assert!(store.list_collections().expect("list").contains(&c));
    // Collection names with metacharacters are rejected before any SQL.
    for bad in [
        "a\"; DROP TABLE x; --",
        "x'y'z",
        "lobster_vector_collections; --",
        "a b",
    ] {
        let e = store
            .upsert(bad, &recs[..1])
            .expect_err("bad collection name");
        assert!(matches!(e, Error::InvalidInput { .. }), "{bad}: {e:?}");
        assert!(matches!(store.count(bad), Err(Error::InvalidInput { .. })));
    }
    // NUL cannot be stored by PostgreSQL: a clear InvalidInput, nothing written.
    let before = store.count(&c).expect("count");
    for r in [
        Record::new("nul-doc", vec![1.0; 8]).with_document("a\0b"),
        Record::new("nul-meta", vec![1.0; 8]).with_metadata({
            let mut m = Metadata::new();
            m.insert("k".into(), json!(["x\0y"]));
            m
        }),
    ] {
        let e = store
            .upsert(&c, &[Record::new("fine", vec![0.5; 8]), r])
            .expect_err("NUL");
        assert!(matches!(e, Error::InvalidInput { .. }), "{e:?}");
    }
    assert_eq!(store.count(&c).expect("count"), before);
    store.drop_collection(&c).expect("drop");
    copy_store.drop_collection(&c2).expect("drop");
}

#[test]
fn wrong_password_is_a_clear_error_without_the_password() {
    let Some(url) = common::url() else {
        return;
    };
    let wrong = "not-the-Pa55word-xyz";
    let e = PgStore::connect(&common::with_password(&url, wrong), PgOptions::default())
        .expect_err("wrong password");
    let text = chain(&e);
    assert!(text.contains("authentication failed"), "{text}");
    assert!(text.contains("127.0.0.1"), "{text}");
    assert!(!text.contains(wrong), "{text}");
    assert!(!text.contains(&common::password(&url)), "{text}");
    // The right store's Debug output does not show the password either.
    let store = PgStore::connect(&url, PgOptions::default()).expect("connect");
    let dbg = format!("{store:?}");
    assert!(!dbg.contains(&common::password(&url)), "{dbg}");
}

#[test]
fn refused_and_silent_hosts_fail_within_the_connect_timeout() {
    if common::url().is_none() {
        return;
    }
    // A port nobody listens on: refused at once.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let secret = "s3cret-refused";
    let e = PgStore::connect(
        &format!("postgres://u:{secret}@127.0.0.1:{port}/db?sslmode=disable"),
        PgOptions::default(),
    )
    .expect_err("refused");
    let text = chain(&e);
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains(secret), "{text}");
    // A listener that accepts TCP but never answers: the connect timeout applies.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let t = Instant::now();
    let e = PgStore::connect(
        &format!("postgres://u:{secret}@127.0.0.1:{port}/db?sslmode=disable&connect_timeout=2"),
        PgOptions::default(),
    )
    .expect_err("silent");
    // Not sooner than the timeout; the message says the timeout ended it.
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(1_900), "{took:?}");
    let text = chain(&e);
    assert!(text.contains("no answer within 2.0 s"), "{text}");
    assert!(!text.contains(secret), "{text}");
    drop(silent);
}

#[test]
fn database_without_the_extension_names_the_missing_privilege() {
    let Some(url) = common::url() else {
        return;
    };
    // As the superuser: a role that may not create extensions and a fresh
    // database (owned by the superuser) without pgvector.
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).expect("admin");
    let tag = common::unique("noext");
    let (role, db, pw) = (format!("r_{tag}"), format!("d_{tag}"), "plain-Pw-123");
    admin
        .batch_execute(&format!("CREATE ROLE \"{role}\" LOGIN PASSWORD '{pw}'"))
        .expect("create role");
    admin
        .batch_execute(&format!("CREATE DATABASE \"{db}\""))
        .expect("create database");
    let base = url.rsplit_once('/').expect("db in URL").0;
    let base = common::with_password(base, pw);
    let (scheme, rest) = base.split_once("://").expect("url");
    let host = rest.split_once('@').expect("@").1;
    let role_url = format!("{scheme}://{role}:{pw}@{host}/{db}");
    let e = PgStore::connect(&role_url, PgOptions::default()).expect_err("no extension");
    let text = chain(&e);
    assert!(text.contains("pgvector extension"), "{text}");
    assert!(text.contains("privilege"), "{text}");
    assert!(text.contains("CREATE EXTENSION vector"), "{text}");
    assert!(!text.contains(pw), "{text}");
    // Once a superuser created it, the same role works (tables in a schema it may use).
    let mut on_db = postgres::Client::connect(
        &format!("{}/{db}", url.rsplit_once('/').expect("db").0),
        postgres::NoTls,
    )
    .expect("admin on db");
    on_db
        .batch_execute(&format!(
            "CREATE EXTENSION vector; GRANT CREATE ON SCHEMA public TO \"{role}\""
        ))
        .expect("create extension");
    drop(on_db);
    let store = PgStore::connect(&role_url, PgOptions::default()).expect("works now");
    store
        .upsert("works", &[Record::new("a", vec![1.0, 0.0])])
        .expect("upsert");
    assert_eq!(store.count("works").expect("count"), 1);
    drop(store);
    admin
        .batch_execute(&format!("DROP DATABASE \"{db}\" WITH (FORCE)"))
        .expect("drop database");
    admin
        .batch_execute(&format!("DROP ROLE \"{role}\""))
        .expect("drop role");
}
