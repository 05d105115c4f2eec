//! Record and collection metadata as Chroma stores them (flat scalars; see
//! the [module contract](super)), and the fields read from its responses.

use lobster_vector_core::Metadata;
use serde_json::Value;

use super::{COLLECTION_METADATA_KEY, JSON_KEY_PREFIX};

/// The document and decoded metadata at position `i` of a response's
/// parallel `documents` and `metadatas` lists (absent → none, empty).
pub(super) fn payload_at(
    documents: Option<&Vec<Value>>,
    metadatas: Option<&Vec<Value>>,
    i: usize,
) -> (Option<String>, Metadata) {
    let document = documents
        .and_then(|d| d.get(i))
        .and_then(Value::as_str)
        .map(str::to_string);
    let metadata = metadatas
        .and_then(|m| m.get(i))
        .and_then(Value::as_object)
        .map(decode_metadata)
        .unwrap_or_default();
    (document, metadata)
}

/// The strings of a JSON array (anything else is skipped).
pub(super) fn string_array(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// A collection's vector space: its HNSW configuration, else the legacy
/// `hnsw:space` metadata key, else Chroma's default `l2`.
pub(super) fn space_of(collection: &Value) -> String {
    let configured = collection
        .pointer("/configuration_json/hnsw/space")
        .or_else(|| collection.pointer("/configuration_json/spann/space"))
        .or_else(|| collection.pointer("/metadata/hnsw:space"))
        .and_then(Value::as_str);
    configured.unwrap_or("l2").to_string()
}

/// Whether Chroma stores `key` as given (it rejects empty keys and keys
/// starting with `#` or `$`, and silently drops `chroma:` keys).
pub(super) fn native_key(key: &str) -> bool {
    !(key.is_empty()
        || key.starts_with('#')
        || key.starts_with('$')
        || key.starts_with("chroma:")
        || key.starts_with(JSON_KEY_PREFIX))
}

/// Record metadata as Chroma stores it (see the module's contract).
pub fn encode_metadata(m: &Metadata) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::with_capacity(m.len());
    for (k, v) in m {
        let scalar = match v {
            Value::String(_) | Value::Bool(_) => true,
            Value::Number(n) => n.is_i64() || n.is_f64(),
            _ => false,
        };
        if scalar && native_key(k) {
            out.insert(k.clone(), v.clone());
        } else {
            out.insert(
                format!("{JSON_KEY_PREFIX}{k}"),
                Value::String(v.to_string()),
            );
        }
    }
    out
}

/// The inverse of [`encode_metadata`]; a prefixed value that is not valid
/// JSON (written by another client) is kept as it is under its full key.
pub fn decode_metadata(m: &serde_json::Map<String, Value>) -> Metadata {
    let mut out = Metadata::with_capacity(m.len());
    for (k, v) in m {
        if let (Some(original), Value::String(text)) = (k.strip_prefix(JSON_KEY_PREFIX), v) {
            if let Ok(parsed) = serde_json::from_str::<Value>(text) {
                out.insert(original.to_string(), parsed);
                continue;
            }
        }
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Our collection-level metadata from Chroma's: the object stored under
/// [`COLLECTION_METADATA_KEY`], merged over any other (foreign) keys.
pub(super) fn decode_collection_metadata(collection: &Value) -> Metadata {
    let Some(native) = collection.get("metadata").and_then(Value::as_object) else {
        return Metadata::new();
    };
    let mut out = Metadata::new();
    let mut ours = None;
    for (k, v) in native {
        if k == COLLECTION_METADATA_KEY {
            ours = v
                .as_str()
                .and_then(|t| serde_json::from_str::<Metadata>(t).ok());
        } else if !k.starts_with("hnsw:") {
            out.insert(k.clone(), v.clone());
        }
    }
    let mut out = decode_metadata(&out);
    if let Some(ours) = ours {
        out.extend(ours);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn metadata_round_trips_through_flat_scalars() {
        let m: Metadata = serde_json::from_value(json!({
            "s": "it's \"q\"", "b": true, "i": -5, "f": 0.1, "two": 2.0,
            "big": u64::MAX, "null": null, "list": [1, "a"], "obj": {"x": {"y": [true]}},
            "": "empty key", "#h": 1, "$d": 2, "chroma:x": 3,
            "lobster_vector:json:k": "looks like ours",
        }))
        .expect("object");
        let encoded = encode_metadata(&m);
        for (k, v) in &encoded {
            assert!(native_key(k) || k.starts_with(JSON_KEY_PREFIX), "{k}");
            assert!(!v.is_object() && !v.is_array() && !v.is_null(), "{k}: {v}");
        }
        assert_eq!(encoded.get("i"), Some(&json!(-5)));
        assert_eq!(encoded.get("s"), Some(&json!("it's \"q\"")));
        assert_eq!(decode_metadata(&encoded), m);
    }

    #[test]
    fn foreign_prefixed_text_is_kept() {
        let mut m = serde_json::Map::new();
        m.insert(format!("{JSON_KEY_PREFIX}x"), json!("not json {"));
        let d = decode_metadata(&m);
        assert_eq!(
            d.get(&format!("{JSON_KEY_PREFIX}x")),
            Some(&json!("not json {"))
        );
    }

    #[test]
    fn collection_metadata_prefers_ours_and_hides_hnsw_keys() {
        let c = json!({"metadata": {
            "hnsw:space": "cosine", "source": "old",
            COLLECTION_METADATA_KEY: "{\"artifact\":{\"a\":1},\"source\":\"ours\"}",
        }});
        let m = decode_collection_metadata(&c);
        assert_eq!(m.get("artifact"), Some(&json!({"a": 1})));
        assert_eq!(m.get("source"), Some(&json!("ours")));
        assert!(!m.contains_key("hnsw:space"));
        assert!(decode_collection_metadata(&json!({"metadata": null})).is_empty());
    }

    #[test]
    fn space_comes_from_configuration_then_metadata() {
        assert_eq!(
            space_of(&json!({"configuration_json": {"hnsw": {"space": "cosine"}}})),
            "cosine"
        );
        assert_eq!(
            space_of(
                &json!({"configuration_json": {"hnsw": null}, "metadata": {"hnsw:space": "ip"}})
            ),
            "ip"
        );
        assert_eq!(space_of(&json!({})), "l2");
    }
}
