//! The adapted model directory: the base model's files, the trained
//! weights and a manifest, written beside the destination and renamed into
//! place only when complete.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use lobster_vector_core::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::encoder::TrainableTop;
use super::{candle_err, AdaptOptions};
use crate::model::{model_error, read_json};

/// The manifest's file name inside an adapted model directory.
pub const MANIFEST_FILE: &str = "lobster_adaptation.json";

/// The files of a sentence-transformers directory copied from the base
/// model (when present), besides the pooling and normalising modules.
const COPIED_FILES: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
];

/// A file the training read, by name and content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The file's name (no directory).
    pub file: String,
    /// Lowercase hex SHA-256 of its bytes.
    pub sha256: String,
}

/// How training went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Training {
    pub concepts: usize,
    pub steps: usize,
    pub first_loss: f32,
    pub last_loss: f32,
    pub seconds: f64,
}

/// What an adapted model is: written to [`MANIFEST_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdaptationManifest {
    /// The model id the adapted model reports: the base id plus a hash of
    /// the base weights, the sources and the options.
    pub model_id: String,
    /// The base model's id.
    pub base_model_id: String,
    /// SHA-256 of the base model's `model.safetensors`.
    pub base_weights_sha256: String,
    /// What the synonym sets were read from.
    pub sources: Vec<SourceRecord>,
    /// SHA-256 of the names trained on (each set's names, in order).
    #[serde(default)]
    pub names_sha256: String,
    /// The options trained with.
    pub options: AdaptOptions,
    /// Concepts that gave pairs.
    pub concepts: usize,
    /// Optimiser steps taken.
    pub steps: usize,
    /// Loss of the first step and mean loss of the last tenth of steps.
    pub first_loss: f32,
    pub last_loss: f32,
    /// Wall-clock seconds, from loading the base model to saving.
    pub seconds: f64,
}

impl AdaptationManifest {
    pub(crate) fn new(
        base_model_id: &str,
        base_dir: &Path,
        sources: &[SourceRecord],
        names_sha256: String,
        options: &AdaptOptions,
        training: Training,
    ) -> Result<Self> {
        let base_weights_sha256 = sha256_file(&base_dir.join("model.safetensors"))?;
        let key = serde_json::to_string(&(
            base_model_id,
            &base_weights_sha256,
            sources,
            &names_sha256,
            options,
        ))
        .map_err(|e| model_error(format!("cannot write the manifest: {e}")))?;
        let digest = hex(&Sha256::digest(key.as_bytes()));
        Ok(Self {
            model_id: format!("{base_model_id}+adapted-{}", &digest[..16]),
            base_model_id: base_model_id.to_string(),
            base_weights_sha256,
            sources: sources.to_vec(),
            names_sha256,
            options: options.clone(),
            concepts: training.concepts,
            steps: training.steps,
            first_loss: training.first_loss,
            last_loss: training.last_loss,
            seconds: training.seconds,
        })
    }

    /// The manifest of the model directory `dir`: `None` when it has none
    /// (it is not an adapted model).
    ///
    /// # Errors
    /// [`Error::Model`] when the manifest is unreadable or malformed.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        read_json(&dir.join(MANIFEST_FILE))
    }
}

/// SHA-256 of the names of `sets` (each name, then a separator per set).
pub(crate) fn names_sha256(sets: &[super::SynonymSet]) -> String {
    let mut hasher = Sha256::new();
    for set in sets {
        for name in &set.names {
            hasher.update(name.as_bytes());
            hasher.update([0u8]);
        }
        hasher.update([1u8]);
    }
    hex(&hasher.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Lowercase hex SHA-256 of a file.
pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io("cannot open", path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| Error::io("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Writes the adapted model to `output` (absent): the base model's files,
/// its weights with the trained tensors replaced, and the manifest. The
/// directory appears whole or not at all.
pub(crate) fn write_model(
    base_dir: &Path,
    top: &TrainableTop,
    manifest: &AdaptationManifest,
    output: &Path,
) -> Result<()> {
    let parent = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| Error::io("cannot create", &parent, e))?;
    let name = output
        .file_name()
        .ok_or_else(|| Error::invalid_input(format!("`{}` names no directory", output.display())))?
        .to_string_lossy()
        .into_owned();
    // Removed on any early return; renamed into place at the end.
    let staging_dir = tempfile::Builder::new()
        .prefix(&format!(".{name}.partial-"))
        .tempdir_in(&parent)
        .map_err(|e| Error::io("cannot create a directory in", &parent, e))?;
    let staging = staging_dir.path();

    let copy = |rel: &Path| -> Result<()> {
        let from = base_dir.join(rel);
        if !from.is_file() {
            return Ok(());
        }
        let to = staging.join(rel);
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("cannot create", dir, e))?;
        }
        std::fs::copy(&from, &to)
            .map(|_| ())
            .map_err(|e| Error::io("cannot copy", &from, e))
    };
    for f in COPIED_FILES {
        copy(Path::new(f))?;
    }
    for module in module_dirs(base_dir)? {
        let dir = base_dir.join(&module);
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::io("cannot list", &dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("cannot list", &dir, e))?;
            copy(&module.join(entry.file_name()))?;
        }
    }

    let weights = base_dir.join("model.safetensors");
    let mut tensors: HashMap<String, candle_core::Tensor> =
        candle_core::safetensors::load(&weights, &candle_core::Device::Cpu)
            .map_err(|e| candle_err("reading the base weights", e))?;
    for (name, trained) in top.named_tensors() {
        let dtype = tensors
            .get(&name)
            .map(|t| t.dtype())
            .ok_or_else(|| model_error(format!("the base weights lack `{name}`")))?;
        let t = trained
            .to_dtype(dtype)
            .map_err(|e| candle_err("converting the trained weights", e))?;
        tensors.insert(name, t);
    }
    candle_core::safetensors::save(&tensors, staging.join("model.safetensors"))
        .map_err(|e| candle_err("writing the weights", e))?;

    let text = serde_json::to_string_pretty(manifest)
        .map_err(|e| model_error(format!("cannot write the manifest: {e}")))?;
    let manifest_path = staging.join(MANIFEST_FILE);
    std::fs::write(&manifest_path, text)
        .map_err(|e| Error::io("cannot write", &manifest_path, e))?;

    std::fs::rename(staging, output).map_err(|e| Error::io("cannot move into place", output, e))?;
    // The directory is `output` now: nothing is left to remove.
    let _ = staging_dir.keep();
    Ok(())
}

/// The module folders of a sentence-transformers directory (pooling,
/// normalising, …) named in `modules.json`; `1_Pooling` when it has none.
fn module_dirs(base_dir: &Path) -> Result<Vec<PathBuf>> {
    #[derive(Deserialize)]
    struct Entry {
        path: String,
    }
    let entries: Vec<Entry> = read_json(&base_dir.join("modules.json"))?.unwrap_or_default();
    let mut dirs: Vec<PathBuf> = entries
        .into_iter()
        .filter(|e| !e.path.is_empty())
        .map(|e| PathBuf::from(e.path))
        // Only folders inside the model directory.
        .filter(|p| {
            p.components()
                .all(|c| matches!(c, std::path::Component::Normal(_)))
        })
        .filter(|p| base_dir.join(p).is_dir())
        .collect();
    if dirs.is_empty() && base_dir.join("1_Pooling").is_dir() {
        dirs.push(PathBuf::from("1_Pooling"));
    }
    Ok(dirs)
}
