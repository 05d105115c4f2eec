//! Input rules shared by every backend: collection names, records, queries.
//!
//! Backends call these before touching storage so a rejected batch changes nothing.

use std::collections::HashSet;

use crate::{Error, Record, Result};

/// Checks Chroma's collection-name rule: 3–63 chars of `[A-Za-z0-9._-]`,
/// starting and ending alphanumeric, no `..`.
pub fn collection_name(name: &str) -> Result<()> {
    let fail = |why: &str| {
        Err(Error::invalid_input(format!(
            "collection name {:?} {why} (names are 3-63 characters of A-Z a-z 0-9 . _ -, \
             starting and ending with a letter or digit, without `..`)",
            name.chars().take(80).collect::<String>()
        )))
    };
    let len = name.chars().count();
    if !(3..=63).contains(&len) {
        return fail(&format!("has {len} characters"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return fail(&format!("contains {c:?}"));
    }
    let bytes = name.as_bytes();
    if !bytes[0].is_ascii_alphanumeric() || !bytes[bytes.len() - 1].is_ascii_alphanumeric() {
        return fail("does not start and end with a letter or digit");
    }
    if name.contains("..") {
        return fail("contains `..`");
    }
    Ok(())
}

/// Checks one vector: non-empty, finite, not all zero. `what` names it in errors.
pub fn vector(what: &str, v: &[f32]) -> Result<()> {
    if v.is_empty() {
        return Err(Error::invalid_input(format!("{what} is empty")));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid_input(format!(
            "{what} has a non-finite value ({}) at position {i}",
            v[i]
        )));
    }
    if v.iter().all(|x| *x == 0.0) {
        return Err(Error::invalid_input(format!(
            "{what} is all zeros (cosine distance is undefined)"
        )));
    }
    Ok(())
}

/// Checks a batch: ids non-empty and unique, vectors valid, all of one
/// dimension equal to `expected` when the collection already has one.
/// Returns the batch's dimension (`None` for an empty batch).
pub fn records(records: &[Record], expected: Option<usize>) -> Result<Option<usize>> {
    let mut seen = HashSet::with_capacity(records.len());
    let mut dim = expected;
    for (i, r) in records.iter().enumerate() {
        if r.id.is_empty() {
            return Err(Error::invalid_input(format!("record #{i} has an empty id")));
        }
        if r.id.contains('\0') {
            return Err(Error::invalid_input(format!(
                "record #{i} id contains a NUL character"
            )));
        }
        if !seen.insert(r.id.as_str()) {
            return Err(Error::invalid_input(format!(
                "duplicate id {:?} in one batch (record #{i})",
                r.id
            )));
        }
        vector(&format!("record {:?} vector", r.id), &r.vector)?;
        match dim {
            Some(d) if d != r.vector.len() => {
                return Err(Error::DimensionMismatch {
                    expected: d,
                    got: r.vector.len(),
                })
            }
            _ => dim = Some(r.vector.len()),
        }
    }
    Ok(dim)
}

/// Checks a query vector against the collection dimension.
pub fn query(v: &[f32], expected: usize) -> Result<()> {
    vector("query vector", v)?;
    if v.len() != expected {
        return Err(Error::DimensionMismatch {
            expected,
            got: v.len(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collection_names() {
        for ok in [
            "abc",
            "cell_ontology_v2026_03_26",
            "a.b-c_d",
            &"x".repeat(63),
        ] {
            assert!(collection_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "",
            "a..b",
            "a/b",
            "-abc",
            "abc-",
            "a b c",
            "ab\0c",
            &"x".repeat(64),
            &"y".repeat(300),
        ] {
            assert!(
                matches!(collection_name(bad), Err(Error::InvalidInput { .. })),
                "{bad:?}"
            );
        }
    }
}
