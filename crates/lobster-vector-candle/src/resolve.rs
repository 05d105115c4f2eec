//! Where a provider's model directory is found.

use std::path::{Path, PathBuf};

use lobster_vector_core::{Error, Result};

/// A model this crate serves: its configuration name, Hugging Face id and
/// folder under `<assets>/models/`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProviderInfo {
    pub name: &'static str,
    pub model_id: &'static str,
    pub asset_folder: &'static str,
    /// The environment variable that names an explicit directory.
    pub env_var: &'static str,
    /// Whether `scripts/setup.sh` fetches this model.
    pub fetched_by_setup: bool,
}

pub(crate) const PROVIDERS: &[ProviderInfo] = &[
    ProviderInfo {
        name: "minilm",
        model_id: "sentence-transformers/all-MiniLM-L6-v2",
        asset_folder: "all-MiniLM-L6-v2",
        env_var: "LOBSTER_MINILM_MODEL",
        fetched_by_setup: true,
    },
    ProviderInfo {
        name: "sapbert",
        model_id: "cambridgeltl/SapBERT-from-PubMedBERT-fulltext",
        asset_folder: "SapBERT-from-PubMedBERT-fulltext",
        env_var: "LOBSTER_SAPBERT_MODEL",
        fetched_by_setup: false,
    },
];

/// The reranker model (`LOBSTER_RERANKER=cross_encoder`).
pub(crate) const CROSS_ENCODER: ProviderInfo = ProviderInfo {
    name: "cross_encoder",
    model_id: "cross-encoder/ms-marco-MiniLM-L-6-v2",
    asset_folder: "ms-marco-MiniLM-L-6-v2",
    env_var: "LOBSTER_CROSS_ENCODER_MODEL",
    fetched_by_setup: false,
};

/// The embedding provider named `provider` (`minilm`, `sapbert`).
pub(crate) fn provider_info(provider: &str) -> Result<&'static ProviderInfo> {
    PROVIDERS
        .iter()
        .find(|p| p.name == provider)
        .ok_or_else(|| Error::InvalidConfig {
            key: "embedding provider".into(),
            value: provider.into(),
            valid: PROVIDERS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// An embedding provider or `cross_encoder`.
fn model_info(name: &str) -> Result<&'static ProviderInfo> {
    if name == CROSS_ENCODER.name {
        return Ok(&CROSS_ENCODER);
    }
    provider_info(name)
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn home() -> Option<PathBuf> {
    env_path("HOME")
}

/// The project's asset directory, filled by `scripts/setup.sh`:
/// `$LOBSTER_ASSETS_DIR` when set and non-empty, otherwise
/// `$HOME/.lobster/assets` (`.lobster/assets` relative to the working
/// directory when `HOME` is unset). The directory need not exist.
pub fn assets_dir() -> PathBuf {
    env_path("LOBSTER_ASSETS_DIR")
        .unwrap_or_else(|| home().unwrap_or_default().join(".lobster").join("assets"))
}

/// The Hugging Face hub cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`.
fn hf_hub_cache() -> Option<PathBuf> {
    if let Some(p) = env_path("HF_HUB_CACHE") {
        return Some(p);
    }
    if let Some(p) = env_path("HF_HOME") {
        return Some(p.join("hub"));
    }
    if let Some(p) = env_path("XDG_CACHE_HOME") {
        return Some(p.join("huggingface").join("hub"));
    }
    home().map(|h| h.join(".cache").join("huggingface").join("hub"))
}

/// What a complete model directory lacks (empty when it is complete).
fn missing_files(dir: &Path) -> Vec<&'static str> {
    ["config.json", "model.safetensors", "tokenizer.json"]
        .into_iter()
        .filter(|f| !dir.join(f).is_file())
        .collect()
}

/// Finds the model directory of `provider` (`minilm`, `sapbert` or `cross_encoder`).
///
/// Order: `explicit` (a directory the caller took from
/// `LOBSTER_MINILM_MODEL` / `LOBSTER_SAPBERT_MODEL` or a flag; it is used
/// as given, and an incomplete one is an error rather than a reason to look
/// elsewhere) → `<assets_dir()>/models/<name>` → the Hugging Face cache
/// (`<hub>/models--<org>--<name>/snapshots/<rev>`, the revision `refs/main`
/// names first). A directory counts when it holds `config.json`,
/// `model.safetensors` and `tokenizer.json`.
///
/// Last, the model is downloaded from the Hugging Face hub (`HF_ENDPOINT`,
/// default `https://huggingface.co`; `HF_TOKEN` if set) into that cache with
/// the `hf-hub` crate — unless `HF_HUB_OFFLINE=1` or the hub does not answer
/// a TCP connect within 3 s. When nothing is found the [`Error::Model`]
/// message lists every place tried and the command that fetches the model.
pub fn resolve_model_dir(provider: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    resolve(provider, explicit, true)
}

/// [`resolve_model_dir`] without the download step: only looks at local files.
pub fn find_model_dir(provider: &str, explicit: Option<&Path>) -> Result<PathBuf> {
    resolve(provider, explicit, false)
}

fn resolve(provider: &str, explicit: Option<&Path>, allow_download: bool) -> Result<PathBuf> {
    let info = model_info(provider)?;
    if let Some(dir) = explicit {
        let missing = missing_files(dir);
        if !dir.is_dir() {
            return Err(Error::Model {
                message: format!(
                    "model directory `{}` given for provider `{provider}` does not exist",
                    dir.display()
                ),
            });
        }
        if !missing.is_empty() {
            return Err(Error::Model {
                message: format!(
                    "model directory `{}` given for provider `{provider}` lacks {}",
                    dir.display(),
                    missing.join(", ")
                ),
            });
        }
        return Ok(dir.to_path_buf());
    }

    let mut tried: Vec<String> = Vec::new();
    let consider = |dir: &Path, tried: &mut Vec<String>| -> bool {
        let missing = missing_files(dir);
        if missing.is_empty() {
            return true;
        }
        tried.push(if dir.is_dir() {
            format!("{} (lacks {})", dir.display(), missing.join(", "))
        } else {
            format!("{} (absent)", dir.display())
        });
        false
    };

    let asset = assets_dir().join("models").join(info.asset_folder);
    if consider(&asset, &mut tried) {
        return Ok(asset);
    }

    if let Some(hub) = hf_hub_cache() {
        let repo = hub.join(format!("models--{}", info.model_id.replace('/', "--")));
        let snapshots = repo.join("snapshots");
        let mut candidates: Vec<PathBuf> = Vec::new();
        if let Ok(rev) = std::fs::read_to_string(repo.join("refs").join("main")) {
            candidates.push(snapshots.join(rev.trim()));
        }
        if let Ok(entries) = std::fs::read_dir(&snapshots) {
            let mut others: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir() && !candidates.contains(p))
                .collect();
            others.sort();
            candidates.extend(others);
        }
        if candidates.is_empty() {
            tried.push(format!("{}/* (absent)", snapshots.display()));
        }
        for dir in candidates {
            if consider(&dir, &mut tried) {
                return Ok(dir);
            }
        }
    }

    if allow_download {
        match download(info) {
            Ok(dir) => return Ok(dir),
            Err(why) => tried.push(why),
        }
    }

    Err(Error::ModelMissing {
        provider: provider.into(),
        model_id: info.model_id.into(),
        tried: tried.join("; "),
        env_var: info.env_var,
        fetched_by_setup: info.fetched_by_setup,
    })
}

/// Files a sentence-transformers or cross-encoder directory may have beside the required three.
const OPTIONAL_FILES: &[&str] = &[
    "modules.json",
    "sentence_bert_config.json",
    "1_Pooling/config.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
];

/// The hub endpoint (`HF_ENDPOINT` or huggingface.co).
fn hub_endpoint() -> String {
    std::env::var("HF_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .unwrap_or_else(|| "https://huggingface.co".into())
        .trim_end_matches('/')
        .to_string()
}

/// Whether a TCP connection to the endpoint's host opens within 3 s.
fn reachable(endpoint: &str) -> std::result::Result<(), String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let (rest, port) = match endpoint.split_once("://") {
        Some(("http", rest)) => (rest, 80),
        Some((_, rest)) => (rest, 443),
        None => (endpoint, 443),
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    let target = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:{port}")
    };
    let addrs = target
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {target}: {e}"))?;
    let mut last = format!("no address for {target}");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(3)) {
            Ok(_) => return Ok(()),
            Err(e) => last = format!("{addr}: {e}"),
        }
    }
    Err(last)
}

/// Downloads the model into the Hugging Face cache; `Err` says why not, for the list of places tried.
fn download(info: &ProviderInfo) -> std::result::Result<PathBuf, String> {
    let endpoint = hub_endpoint();
    let place = format!("download of {} from {endpoint}", info.model_id);
    if std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        return Err(format!("{place} (skipped: HF_HUB_OFFLINE is set)"));
    }
    reachable(&endpoint).map_err(|e| format!("{place} (hub unreachable: {e})"))?;
    let mut builder = hf_hub::api::sync::ApiBuilder::from_env()
        .with_progress(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if let Some(cache) = hf_hub_cache() {
        builder = builder.with_cache_dir(cache);
    }
    let api = builder
        .build()
        .map_err(|e| format!("{place} (cannot start the client: {e})"))?;
    let repo = api.model(info.model_id.to_string());
    tracing::info!(model = info.model_id, %endpoint, "downloading model");
    let mut config = None;
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        let path = repo
            .get(file)
            .map_err(|e| format!("{place} (failed on {file}: {e})"))?;
        config.get_or_insert(path);
    }
    for file in OPTIONAL_FILES {
        if let Err(e) = repo.get(file) {
            tracing::debug!(file, error = %e, "optional model file not downloaded");
        }
    }
    config
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .ok_or_else(|| format!("{place} (no snapshot directory)"))
}
