//! `FlatStore`: the exact in-memory index (backend `memory`).
//!
//! Vectors are L2-normalised on insert and stored contiguously (row-major
//! `f32`); a string id maps to a row; upsert overwrites a row in place and
//! delete swap-removes (no holes, no rebuild). Distance is `1 - dot`, which on
//! unit vectors equals cosine distance and `squared_l2 / 2`.

pub mod kernel;

use std::collections::{BTreeMap, HashMap};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::{
    metric::normalize, validate, CollectionInfo, Error, Hit, Metadata, Metric, Record, Result,
    VectorStore,
};

/// One collection's rows.
#[derive(Debug, Default)]
struct FlatCollection {
    dim: Option<usize>,
    vectors: Vec<f32>,
    ids: Vec<String>,
    documents: Vec<Option<String>>,
    metadata: Vec<Metadata>,
    row_of: HashMap<String, usize>,
    info: Metadata,
}

impl FlatCollection {
    fn len(&self) -> usize {
        self.ids.len()
    }

    fn row(&self, i: usize) -> &[f32] {
        let d = self.dim.unwrap_or(0);
        &self.vectors[i * d..(i + 1) * d]
    }

    fn upsert(&mut self, records: &[Record], dim: usize) {
        self.dim = Some(dim);
        for r in records {
            let mut v = r.vector.clone();
            normalize(&mut v);
            match self.row_of.get(&r.id) {
                Some(&i) => {
                    self.vectors[i * dim..(i + 1) * dim].copy_from_slice(&v);
                    self.documents[i] = r.document.clone();
                    self.metadata[i] = r.metadata.clone();
                }
                None => {
                    self.row_of.insert(r.id.clone(), self.ids.len());
                    self.ids.push(r.id.clone());
                    self.vectors.extend_from_slice(&v);
                    self.documents.push(r.document.clone());
                    self.metadata.push(r.metadata.clone());
                }
            }
        }
    }

    fn remove(&mut self, id: &str) -> bool {
        let Some(i) = self.row_of.remove(id) else {
            return false;
        };
        let d = self.dim.unwrap_or(0);
        let last = self.ids.len() - 1;
        if i != last {
            self.vectors.copy_within(last * d..(last + 1) * d, i * d);
            self.row_of.insert(self.ids[last].clone(), i);
        }
        self.vectors.truncate(last * d);
        self.ids.swap_remove(i);
        self.documents.swap_remove(i);
        self.metadata.swap_remove(i);
        true
    }

    fn hits(&self, top: Vec<(f32, u32)>) -> Vec<Hit> {
        top.into_iter()
            .map(|(dot, row)| {
                let i = row as usize;
                Hit {
                    id: self.ids[i].clone(),
                    distance: Metric::Cosine.distance_from_unit_dot(dot),
                    document: self.documents[i].clone(),
                    metadata: self.metadata[i].clone(),
                }
            })
            .collect()
    }
}

/// The exact in-memory vector store.
#[derive(Debug, Default)]
pub struct FlatStore {
    collections: RwLock<BTreeMap<String, FlatCollection>>,
}

impl FlatStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, FlatCollection>> {
        self.collections
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, FlatCollection>> {
        self.collections
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The unit vector stored for `id`, if any (for tests and exports).
    pub fn vector(&self, collection: &str, id: &str) -> Option<Vec<f32>> {
        let guard = self.read();
        let c = guard.get(collection)?;
        c.row_of.get(id).map(|&i| c.row(i).to_vec())
    }
}

fn get<'a>(map: &'a BTreeMap<String, FlatCollection>, name: &str) -> Result<&'a FlatCollection> {
    validate::collection_name(name)?;
    map.get(name).ok_or_else(|| Error::CollectionNotFound {
        name: name.to_string(),
    })
}

fn unit_query(query: &[f32], dim: Option<usize>) -> Result<Option<Vec<f32>>> {
    match dim {
        None => {
            validate::vector("query vector", query)?;
            Ok(None)
        }
        Some(d) => {
            validate::query(query, d)?;
            let mut q = query.to_vec();
            normalize(&mut q);
            Ok(Some(q))
        }
    }
}

impl VectorStore for FlatStore {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn upsert(&self, collection: &str, records: &[Record]) -> Result<()> {
        validate::collection_name(collection)?;
        let mut map = self.write();
        let expected = map.get(collection).and_then(|c| c.dim);
        let dim = validate::records(records, expected)?;
        let c = map.entry(collection.to_string()).or_default();
        if let Some(dim) = dim {
            c.upsert(records, dim);
        }
        Ok(())
    }

    fn search(&self, collection: &str, query: &[f32], k: usize) -> Result<Vec<Hit>> {
        let map = self.read();
        let c = get(&map, collection)?;
        let Some(q) = unit_query(query, c.dim)? else {
            return Ok(Vec::new());
        };
        let dim = q.len();
        Ok(c.hits(kernel::top_k(&c.vectors, dim, &q, k)))
    }

    fn search_batch(
        &self,
        collection: &str,
        queries: &[&[f32]],
        k: usize,
    ) -> Result<Vec<Vec<Hit>>> {
        let map = self.read();
        let c = get(&map, collection)?;
        let mut flat = Vec::with_capacity(queries.len() * c.dim.unwrap_or(0));
        for q in queries {
            match unit_query(q, c.dim)? {
                Some(q) => flat.extend_from_slice(&q),
                None => return Ok(vec![Vec::new(); queries.len()]),
            }
        }
        let Some(dim) = c.dim else {
            return Ok(vec![Vec::new(); queries.len()]);
        };
        if queries.len() < 4 {
            return Ok(flat
                .chunks_exact(dim)
                .map(|q| c.hits(kernel::top_k(&c.vectors, dim, q, k)))
                .collect());
        }
        Ok(kernel::top_k_batch(&c.vectors, dim, &flat, k)
            .into_iter()
            .map(|t| c.hits(t))
            .collect())
    }

    fn delete(&self, collection: &str, ids: &[String]) -> Result<usize> {
        validate::collection_name(collection)?;
        let mut map = self.write();
        let c = map
            .get_mut(collection)
            .ok_or_else(|| Error::CollectionNotFound {
                name: collection.to_string(),
            })?;
        Ok(ids.iter().filter(|id| c.remove(id)).count())
    }

    fn count(&self, collection: &str) -> Result<usize> {
        Ok(get(&self.read(), collection)?.len())
    }

    fn has_collection(&self, collection: &str) -> Result<bool> {
        validate::collection_name(collection)?;
        Ok(self.read().contains_key(collection))
    }

    fn list_collections(&self) -> Result<Vec<String>> {
        Ok(self.read().keys().cloned().collect())
    }

    fn drop_collection(&self, collection: &str) -> Result<bool> {
        validate::collection_name(collection)?;
        Ok(self.write().remove(collection).is_some())
    }

    fn collection_info(&self, collection: &str) -> Result<CollectionInfo> {
        let map = self.read();
        let c = get(&map, collection)?;
        Ok(CollectionInfo {
            name: collection.to_string(),
            dimension: c.dim,
            count: c.len(),
            metadata: c.info.clone(),
        })
    }

    fn set_collection_metadata(&self, collection: &str, metadata: Metadata) -> Result<()> {
        validate::collection_name(collection)?;
        self.write().entry(collection.to_string()).or_default().info = metadata;
        Ok(())
    }

    /// Rows in storage order (insertion order until a delete moves the last
    /// row into the gap); vectors as stored, L2-normalised.
    fn read_page(&self, collection: &str, offset: usize, limit: usize) -> Result<Vec<Record>> {
        let map = self.read();
        let c = get(&map, collection)?;
        Ok((offset..c.len().min(offset.saturating_add(limit)))
            .map(|i| Record {
                id: c.ids[i].clone(),
                vector: c.row(i).to_vec(),
                document: c.documents[i].clone(),
                metadata: c.metadata[i].clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::conformance_suite!(FlatStore::new());

    #[test]
    fn delete_swap_remove_keeps_rows_consistent() {
        let s = FlatStore::new();
        let recs: Vec<Record> = (0..5)
            .map(|i| Record::new(format!("r{i}"), vec![1.0, i as f32 + 1.0]))
            .collect();
        s.upsert("abc", &recs).unwrap();
        assert_eq!(s.delete("abc", &["r1".into(), "nope".into()]).unwrap(), 1);
        for i in [0, 2, 3, 4] {
            let id = format!("r{i}");
            let mut want = vec![1.0, i as f32 + 1.0];
            normalize(&mut want);
            assert_eq!(s.vector("abc", &id).unwrap(), want, "{id}");
            assert_eq!(s.search("abc", &want, 1).unwrap()[0].id, id);
        }
    }
}
