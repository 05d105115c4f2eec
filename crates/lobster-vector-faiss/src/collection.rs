//! One collection: a FAISS `IndexIDMap2` plus the string ids, documents and
//! metadata its int64 labels stand for.

use std::collections::{BTreeMap, HashMap, HashSet};

use faiss::index::autotune::ParameterSpace;
use faiss::index::IndexImpl;
use faiss::selector::IdSelector;
use faiss::{index_factory, Idx, Index, MetricType};
use lobster_vector_core::{metric::normalize, Error, Hit, Metadata, Metric, Record, Result};
use serde::{Deserialize, Serialize};

use crate::BACKEND;

/// What a label stands for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Row {
    pub label: u64,
    pub id: String,
    pub document: Option<String>,
    pub metadata: Metadata,
}

/// A collection's state. Labels are never reused: an overwritten id gets a
/// fresh one, so a stale label can never name the wrong row.
pub(crate) struct Collection {
    /// The `index_factory` description under the id map.
    pub description: String,
    /// Search parameters set on every index this collection creates.
    pub parameters: String,
    pub dim: Option<usize>,
    /// Created with the first vectors.
    pub index: Option<IndexImpl>,
    labels: HashMap<String, u64>,
    rows: BTreeMap<u64, Row>,
    pub next_label: u64,
    pub info: Metadata,
    /// Generation of the files this state was last saved to (0: never).
    pub generation: u64,
    /// Changed since the last save.
    pub dirty: bool,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("description", &self.description)
            .field("dim", &self.dim)
            .field("count", &self.rows.len())
            .field("next_label", &self.next_label)
            .field("generation", &self.generation)
            .field("dirty", &self.dirty)
            .finish()
    }
}

pub(crate) fn faiss_error(action: &str, e: faiss::error::Error) -> Error {
    Error::backend(BACKEND, format!("FAISS could not {action}: {e}"))
}

/// Sets the `name=value,…` search `parameters` on `index`.
pub(crate) fn apply_parameters(index: &IndexImpl, parameters: &str) -> Result<()> {
    let bad = |why: String| Error::InvalidConfig {
        key: "LOBSTER_FAISS_PARAMS".into(),
        value: parameters.into(),
        valid: format!(
            "comma-separated name=value FAISS search parameters (efSearch=128, nprobe=16): {why}"
        ),
    };
    let pairs: Vec<&str> = parameters
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if pairs.is_empty() {
        return Ok(());
    }
    let space = ParameterSpace::new().map_err(|e| faiss_error("create a parameter space", e))?;
    for pair in pairs {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| bad(format!("`{pair}` has no `=`")))?;
        let value: f64 = value
            .trim()
            .parse()
            .map_err(|_| bad(format!("`{pair}` has no numeric value")))?;
        space
            .set_index_parameter(index, name.trim(), value)
            .map_err(|e| bad(format!("`{pair}` does not apply to this index: {e}")))?;
    }
    Ok(())
}

/// A new `IDMap2,<description>` index over inner product, `parameters` set.
pub(crate) fn new_index(dim: usize, description: &str, parameters: &str) -> Result<IndexImpl> {
    let d = u32::try_from(dim)
        .map_err(|_| Error::invalid_input(format!("dimension {dim} is too large for FAISS")))?;
    let index = index_factory(d, format!("IDMap2,{description}"), MetricType::InnerProduct)
        .map_err(|e| Error::InvalidConfig {
            key: "LOBSTER_FAISS_INDEX".into(),
            value: description.into(),
            valid: format!(
                "a FAISS index_factory description FAISS accepts for {dim}-d vectors \
                 (Flat, HNSW32, IVF1024,Flat, …): {e}"
            ),
        })?;
    apply_parameters(&index, parameters)?;
    Ok(index)
}

fn idx(labels: &[u64]) -> Vec<Idx> {
    labels.iter().map(|&l| Idx::new(l)).collect()
}

impl Collection {
    pub fn new(description: &str, parameters: &str) -> Self {
        Self {
            description: description.to_string(),
            parameters: parameters.to_string(),
            dim: None,
            index: None,
            labels: HashMap::new(),
            rows: BTreeMap::new(),
            next_label: 0,
            info: Metadata::new(),
            generation: 0,
            dirty: true,
        }
    }

    /// A collection loaded from disk; `rows` must match the labels in `index`.
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        description: String,
        parameters: &str,
        dim: Option<usize>,
        index: Option<IndexImpl>,
        rows: Vec<Row>,
        next_label: u64,
        info: Metadata,
        generation: u64,
    ) -> Self {
        let labels = rows.iter().map(|r| (r.id.clone(), r.label)).collect();
        Self {
            description,
            parameters: parameters.to_string(),
            dim,
            index,
            labels,
            rows: rows.into_iter().map(|r| (r.label, r)).collect(),
            next_label,
            info,
            generation,
            dirty: false,
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.values()
    }

    /// Upserts validated `records` of dimension `dim`: overwritten ids are
    /// removed from the index, then every record is added under a fresh label.
    /// On a FAISS error the maps are left as they were.
    pub fn upsert(&mut self, records: &[Record], dim: usize) -> Result<()> {
        let mut flat = Vec::with_capacity(records.len() * dim);
        for r in records {
            let start = flat.len();
            flat.extend_from_slice(&r.vector);
            normalize(&mut flat[start..]);
        }
        let mut index = match self.index.take() {
            Some(index) => index,
            None => new_index(dim, &self.description, &self.parameters)?,
        };
        let result = self.add(&mut index, records, &flat);
        self.index = Some(index);
        result?;
        self.dim = Some(dim);
        self.dirty = true;
        Ok(())
    }

    fn add(&mut self, index: &mut IndexImpl, records: &[Record], flat: &[f32]) -> Result<()> {
        if !index.is_trained() {
            index.train(flat).map_err(|e| {
                Error::invalid_input(format!(
                    "the FAISS index `{}` must be trained on the collection's first batch, \
                     and training on these {} vectors failed (give a larger first batch or \
                     choose an index that needs no training, such as Flat): {e}",
                    self.description,
                    records.len()
                ))
            })?;
        }
        let old: Vec<u64> = records
            .iter()
            .filter_map(|r| self.labels.get(&r.id).copied())
            .collect();
        if !old.is_empty() {
            self.remove_labels(index, &old)?;
        }
        let fresh: Vec<u64> = (self.next_label..).take(records.len()).collect();
        index
            .add_with_ids(flat, &idx(&fresh))
            .map_err(|e| faiss_error("add vectors", e))?;
        for l in &old {
            self.rows.remove(l);
        }
        for (r, &label) in records.iter().zip(&fresh) {
            self.labels.insert(r.id.clone(), label);
            self.rows.insert(
                label,
                Row {
                    label,
                    id: r.id.clone(),
                    document: r.document.clone(),
                    metadata: r.metadata.clone(),
                },
            );
        }
        self.next_label += records.len() as u64;
        Ok(())
    }

    /// Removes `labels` from `index`: in place where the index supports it,
    /// else by replacing it with one rebuilt from the remaining vectors.
    fn remove_labels(&self, index: &mut IndexImpl, labels: &[u64]) -> Result<()> {
        let selector = IdSelector::batch(&idx(labels)).map_err(|e| faiss_error("select ids", e))?;
        // FAISS throws before changing anything when the index cannot remove.
        if index.remove_ids(&selector).is_err() {
            *index = self.rebuilt_without(index, labels)?;
        }
        Ok(())
    }

    /// A fresh index holding every row of this collection but `labels`.
    fn rebuilt_without(&self, index: &IndexImpl, labels: &[u64]) -> Result<IndexImpl> {
        let dim = index.d() as usize;
        let gone: HashSet<u64> = labels.iter().copied().collect();
        let keep: Vec<u64> = self
            .rows
            .keys()
            .copied()
            .filter(|l| !gone.contains(l))
            .collect();
        let mut vectors = vec![0f32; keep.len() * dim];
        for (i, &l) in keep.iter().enumerate() {
            index
                .reconstruct(Idx::new(l), &mut vectors[i * dim..(i + 1) * dim])
                .map_err(|e| Error::NotAvailable {
                    what: format!(
                        "overwriting or deleting vectors in a FAISS `{}` index",
                        self.description
                    ),
                    hint: format!(
                        "the index can neither remove vectors nor give them back ({e}); \
                             use LOBSTER_FAISS_INDEX=Flat or HNSW32"
                    ),
                })?;
        }
        let mut fresh = new_index(dim, &self.description, &self.parameters)?;
        if !keep.is_empty() {
            if !fresh.is_trained() {
                fresh
                    .train(&vectors)
                    .map_err(|e| faiss_error("retrain the index", e))?;
            }
            fresh
                .add_with_ids(&vectors, &idx(&keep))
                .map_err(|e| faiss_error("re-add vectors", e))?;
        }
        Ok(fresh)
    }

    /// Removes the rows of `ids` (unknown ids ignored); returns how many.
    pub fn delete(&mut self, ids: &[String]) -> Result<usize> {
        let mut labels: Vec<u64> = ids
            .iter()
            .filter_map(|id| self.labels.get(id).copied())
            .collect();
        labels.sort_unstable();
        labels.dedup();
        if labels.is_empty() {
            return Ok(0);
        }
        if let Some(mut index) = self.index.take() {
            let result = self.remove_labels(&mut index, &labels);
            self.index = Some(index);
            result?;
        }
        for l in &labels {
            if let Some(row) = self.rows.remove(l) {
                self.labels.remove(&row.id);
            }
        }
        self.dirty = true;
        Ok(labels.len())
    }

    /// The `k` nearest rows for each of the unit queries in `flat`
    /// (row-major, `dim` wide), nearest first.
    pub fn search(&mut self, flat: &[f32], dim: usize, k: usize) -> Result<Vec<Vec<Hit>>> {
        let nq = flat.len() / dim.max(1);
        let kk = k.min(self.rows.len());
        let Some(index) = self.index.as_mut().filter(|_| kk > 0) else {
            return Ok(vec![Vec::new(); nq]);
        };
        let found = index
            .search(flat, kk)
            .map_err(|e| faiss_error("search", e))?;
        Ok(found
            .labels
            .chunks(kk)
            .zip(found.distances.chunks(kk))
            .map(|(labels, dots)| {
                labels
                    .iter()
                    .zip(dots)
                    .filter_map(|(l, &dot)| {
                        let row = self.rows.get(&l.get()?)?;
                        Some(Hit {
                            id: row.id.clone(),
                            distance: Metric::Cosine.distance_from_unit_dot(dot),
                            document: row.document.clone(),
                            metadata: row.metadata.clone(),
                        })
                    })
                    .collect()
            })
            .collect())
    }

    /// Rows `offset..offset + limit` in label order, with their unit vectors.
    pub fn page(&self, offset: usize, limit: usize) -> Result<Vec<Record>> {
        let (Some(index), Some(dim)) = (self.index.as_ref(), self.dim) else {
            return Ok(Vec::new());
        };
        self.rows
            .values()
            .skip(offset)
            .take(limit)
            .map(|row| {
                let mut v = vec![0f32; dim];
                index
                    .reconstruct(Idx::new(row.label), &mut v)
                    .map_err(|e| faiss_error("read a vector back", e))?;
                let mut record = Record::new(row.id.clone(), v).with_metadata(row.metadata.clone());
                record.document = row.document.clone();
                Ok(record)
            })
            .collect()
    }
}
