//! Command-line definitions. Every configuration flag also reads its
//! environment variable; flags win over the environment.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "lobster-vector",
    version,
    about = "Map biomedical free text to MONDO, UBERON and Cell Ontology concepts by semantic vector search",
    long_about = None,
    after_help = "Examples:\n  lobster-vector build --ontology all\n  lobster-vector search \"heart attack\" --ontology disease\n  lobster-vector search \"CD8+ T cells\" --ontology cell_type -k 3 --json\n  lobster-vector import --from chromadb --collection NAME --to local\n  lobster-vector info\n  lobster-vector store check"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Vector backend: local, memory, pgvector, faiss, chromadb
    #[arg(
        long,
        global = true,
        env = "LOBSTER_VECTOR_BACKEND",
        value_name = "NAME"
    )]
    pub backend: Option<String>,
    /// Directory of the local store [default: ~/.lobster/vector_store]
    #[arg(
        long,
        global = true,
        env = "LOBSTER_VECTOR_STORE_PATH",
        value_name = "DIR"
    )]
    pub store_path: Option<PathBuf>,
    /// Embedding provider: minilm, sapbert, openai
    #[arg(
        long = "provider",
        global = true,
        env = "LOBSTER_EMBEDDING_PROVIDER",
        value_name = "NAME"
    )]
    pub provider: Option<String>,
    /// Worker threads for search and inference [default: all cores]
    #[arg(long, global = true, env = "LOBSTER_THREADS", value_name = "N")]
    pub threads: Option<usize>,
    /// More log output (-v info, -vv debug); LOBSTER_LOG takes a tracing filter
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr; no progress bars
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the resolved configuration (secrets masked) and what this build contains
    Info(InfoArgs),
    /// List the collections in the configured store, with counts
    Collections(CollectionsArgs),
    /// Build ontology collections from the real MONDO, UBERON and Cell Ontology sources
    Build(BuildArgs),
    /// Adapt the embedding model to the ontology sources (their synonyms train it); build with it afterwards
    Adapt(AdaptArgs),
    /// Find the concepts closest to a text
    Search(SearchArgs),
    /// Map a whole column of a TSV/CSV file (or plain lines) to one ontology, for review or as SSSOM
    Map(MapArgs),
    /// Keep curated mappings (label -> concept) that every match answers first
    #[command(subcommand)]
    Curate(CurateCommand),
    /// Check mappings made against an older ontology release and write them updated
    Remap(RemapArgs),
    /// Show one term: label, definition, synonyms, parents, obsolete status
    Lookup(LookupArgs),
    /// Show a term's parents, children, siblings, and ancestors/descendants to a depth
    Neighbors(NeighborsArgs),
    /// Print embedding vectors of texts (for debugging and piping)
    Embed(EmbedArgs),
    /// Maintain the local store: check, compact, back up (backend `local` only)
    #[command(subcommand)]
    Store(StoreCommand),
    /// Copy a collection from one backend to another, e.g. a Chroma directory
    /// served by `chroma run --path DIR` into the local store
    Import(ImportArgs),
    /// Serve the HTTP API, with the MCP tools under /mcp, from one long-running process
    Serve(ServeArgs),
    /// Serve the MCP tools over stdin/stdout (for an agent that starts the server itself)
    Mcp(McpArgs),
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Check SQLite's integrity and that every collection's index holds exactly SQLite's records; exits non-zero on any disagreement
    Check(StoreCheckArgs),
    /// Rebuild every index from SQLite, drop the space of deleted entries, VACUUM the database
    Compact(StoreCompactArgs),
    /// Write a consistent copy of the store into DEST while it stays in use
    Backup(StoreBackupArgs),
}

#[derive(Debug, Args)]
pub struct StoreCheckArgs {
    /// Print a JSON report instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StoreCompactArgs {
    /// Print a JSON report instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StoreBackupArgs {
    /// Destination directory (must not exist, or be empty)
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
    /// Replace DEST if it already holds a lobster-vector store
    #[arg(long)]
    pub force: bool,
    /// Print a JSON report instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Backend to read from: chromadb (the source must be able to list its records)
    #[arg(long, value_name = "NAME")]
    pub from: String,
    /// Backend to write to [default: the configured backend]
    #[arg(long, value_name = "NAME")]
    pub to: Option<String>,
    /// The collection to copy
    #[arg(long, short = 'c', value_name = "NAME")]
    pub collection: String,
    /// Name of the copy [default: the same name]
    #[arg(long = "as", value_name = "NAME")]
    pub target: Option<String>,
    /// For a source without lobster-vector artifact metadata: the provider
    /// whose model made its vectors (minilm, sapbert, openai). Required then,
    /// since querying with another model would give wrong neighbours silently.
    #[arg(long, value_name = "NAME")]
    pub embedding_provider: Option<String>,
    /// Records read and written per page
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Replace the target collection if it exists
    #[arg(long)]
    pub force: bool,
    /// Print a JSON report instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// mondo|disease, uberon|tissue, cell_ontology|cell_type|cl, or all
    #[arg(long, short = 'o', default_value = "all")]
    pub ontology: String,
    /// Build from this file (.json, .json.zst or .obo) instead of the newest one in the asset directory
    #[arg(long, value_name = "FILE")]
    pub source: Option<PathBuf>,
    /// Rebuild even if the same source and model already built the collection
    #[arg(long)]
    pub force: bool,
    /// Texts embedded and written per batch
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub batch_size: u32,
    /// Only fit the matcher (ranker and calibration) of an already built collection again, without re-embedding
    #[arg(long, conflicts_with = "force")]
    pub refit: bool,
    /// Seed of the held-out synonyms the matcher is fitted on
    #[arg(long, default_value_t = 17)]
    pub seed: u64,
    /// Matcher features to leave out of the ranker (comma-separated names), for ablations
    #[arg(long, value_name = "FEATURES", value_delimiter = ',', hide = true)]
    pub matcher_without: Vec<String>,
    /// Print a JSON report instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AdaptArgs {
    /// mondo|disease, uberon|tissue, cell_ontology|cell_type|cl, or all
    #[arg(long, short = 'o', default_value = "all")]
    pub ontology: String,
    /// Train on this file (.json, .json.zst or .obo) instead of the newest sources in the asset directory; repeat for several
    #[arg(long, value_name = "FILE")]
    pub source: Vec<PathBuf>,
    /// Where to write the adapted model [default: <assets>/models/all-MiniLM-L6-v2-adapted]
    #[arg(long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Replace the output directory when it exists
    #[arg(long)]
    pub force: bool,
    /// How many of the encoder's top layers train (the others stay as they are)
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=48))]
    pub train_layers: u32,
    /// Passes over the concepts
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub epochs: u32,
    /// Synonym pairs per training step (the other pairs of a step are its negatives)
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(2..=4096))]
    pub batch_size: u32,
    /// Peak learning rate
    #[arg(long, default_value_t = 1e-4)]
    pub learning_rate: f64,
    /// Seed of the pair draws and the concept order
    #[arg(long, default_value_t = 17)]
    pub seed: u64,
    /// The `build --seed` the model will be built with: the synonyms that build holds out to fit its matcher are left out of training
    #[arg(long, default_value_t = 17)]
    pub fit_seed: u64,
    /// Stop after this many steps
    #[arg(long, value_name = "N")]
    pub max_steps: Option<usize>,
    /// Print a JSON report instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct MapArgs {
    /// Input file: .tsv, .csv (with a header row) or plain text (one value per line); `-` for stdin
    #[arg(long, short = 'i', value_name = "FILE")]
    pub input: PathBuf,
    /// Column to map (TSV/CSV) [default: the first column]
    #[arg(long, short = 'c', value_name = "NAME")]
    pub column: Option<String>,
    /// mondo|disease, uberon|tissue, cell_ontology|cell_type|cl, or an exact collection name
    #[arg(long, short = 'o')]
    pub ontology: String,
    /// Output file (.tsv, .csv, .jsonl or .sssom.tsv by extension) [default: TSV on stdout]
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Output format [default: from the output's extension, else tsv]
    #[arg(long, value_enum)]
    pub format: Option<MapFormat>,
    /// Curated mappings (SSSOM/TSV, or label<TAB>id) answered first, over the store's own
    #[arg(long, value_name = "FILE")]
    pub curated: Option<PathBuf>,
    /// Leave out the store's curated mappings (`lobster-vector curate`)
    #[arg(long)]
    pub no_curated: bool,
    /// Licence (a URL) stated in SSSOM output
    #[arg(long, value_name = "URL", default_value = lobster_vector::curation::sssom::LICENSE_UNSPECIFIED)]
    pub license: String,
    /// Leave values whose best confidence is below this unmapped (0..1; see the README for the accept threshold)
    #[arg(long, default_value_t = 0.0, value_parser = parse_unit_interval)]
    pub min_score: f32,
    /// Write the N best concepts of each value (with a `rank` column), not only the best
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub candidates: u32,
    /// Only concepts under this term (e.g. CL:0000084 for T cells)
    #[arg(long, value_name = "ID")]
    pub within: Option<String>,
    /// Reranker: none, cross_encoder, cohere
    #[arg(long, env = "LOBSTER_RERANKER", value_name = "NAME")]
    pub reranker: Option<String>,
}

/// What `map` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MapFormat {
    /// Tab-separated, one row per candidate, with a `status` column
    Tsv,
    /// Comma-separated, like tsv
    Csv,
    /// One JSON object per candidate
    Jsonl,
    /// SSSOM/TSV: a metadata block and one mapping per candidate
    Sssom,
}

#[derive(Debug, Subcommand)]
pub enum CurateCommand {
    /// Curate LABEL as the concept ID (replacing an earlier curation of LABEL in that ontology)
    Add(CurateAddArgs),
    /// Forget the curated mappings of LABEL
    Remove(CurateRemoveArgs),
    /// List the curated mappings
    List(CurateListArgs),
    /// Add every mapping of a file (SSSOM/TSV, or label<TAB>id); nothing is added when a line is bad
    Import(CurateImportArgs),
    /// Write the curated mappings as SSSOM/TSV
    Export(CurateExportArgs),
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lobster-vector curate add \"CD14+ Mono\" CL:0002057 --author \"Jane Doe\"\n  lobster-vector curate import reviewed.sssom.tsv\n  lobster-vector curate export --output curated.sssom.tsv"
)]
pub struct CurateAddArgs {
    /// The label as it appears in the data
    pub label: String,
    /// The concept, e.g. CL:0002057
    pub id: String,
    /// Who curated it (SSSOM author_label)
    #[arg(long, value_name = "NAME")]
    pub author: Option<String>,
    /// A note kept with the mapping
    #[arg(long)]
    pub comment: Option<String>,
}

#[derive(Debug, Args)]
pub struct CurateRemoveArgs {
    /// The label (normalised as exact matching does)
    pub label: String,
    /// Only its curation in this ontology (mondo, uberon, cell_ontology or an alias)
    #[arg(long, short = 'o')]
    pub ontology: Option<String>,
}

#[derive(Debug, Args)]
pub struct CurateListArgs {
    /// Only curations into this ontology
    #[arg(long, short = 'o')]
    pub ontology: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CurateImportArgs {
    /// SSSOM/TSV, or a two-column TSV of label and id
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct CurateExportArgs {
    /// Output file [default: stdout]
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lobster-vector remap old.sssom.tsv --ontology cell_type --output new.sssom.tsv\n  lobster-vector remap old.sssom.tsv -o disease --json"
)]
pub struct RemapArgs {
    /// SSSOM/TSV mappings made against an older release
    #[arg(value_name = "FILE")]
    pub input: PathBuf,
    /// mondo|disease, uberon|tissue, cell_ontology|cell_type|cl
    #[arg(long, short = 'o')]
    pub ontology: String,
    /// The release to check against [default: the newest source in the asset directory]
    #[arg(long, value_name = "FILE")]
    pub source: Option<PathBuf>,
    /// Write the updated mappings (SSSOM/TSV) here
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Print the report as JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LookupArgs {
    /// A term id, e.g. MONDO:0005068, CL:0000625, UBERON:0001155
    pub id: String,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct NeighborsArgs {
    /// A term id, e.g. CL:0000625
    pub id: String,
    /// How many levels of ancestors and descendants to show
    #[arg(long, short = 'd', default_value_t = 1)]
    pub depth: usize,
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  lobster-vector serve\n  curl -s localhost:8750/v1/match -H 'content-type: application/json' \\\n    -d '{\"terms\": \"CD8+ T cells\", \"ontology\": \"cell_type\", \"k\": 3}'\n  LOBSTER_SERVE_TOKEN=s3cret lobster-vector serve --addr 0.0.0.0:8750"
)]
pub struct ServeArgs {
    /// Address to listen on; any address but loopback needs --token
    #[arg(long, env = "LOBSTER_SERVE_ADDR", default_value = "127.0.0.1:8750")]
    pub addr: std::net::SocketAddr,
    /// Bearer token every request but /health must send (`Authorization: Bearer TOKEN`)
    #[arg(
        long,
        env = "LOBSTER_SERVE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
}

#[derive(Debug, Args)]
pub struct McpArgs {
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// Bounds on requests, shared by `serve` and `mcp`.
#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Requests computed at once; beyond it requests answer 429 (Retry-After)
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub max_concurrent: u32,
    /// Terms computed at once over all requests; beyond it requests answer 429
    #[arg(long, default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub max_terms_in_flight: u32,
    /// Most terms (or texts) in one request
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_terms: u32,
    /// Largest k
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_k: u32,
    /// Largest request body, bytes
    #[arg(long, default_value_t = 1 << 20, value_parser = clap::value_parser!(u32).range(1024..))]
    pub max_body_bytes: u32,
    /// Seconds a request may take before it answers 504
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub timeout: u32,
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// Texts to embed
    #[arg(required = true)]
    pub texts: Vec<String>,
    /// Print JSON ({model, provider, dimensions, vectors}) instead of one tab-separated vector per line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CollectionsArgs {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The text to map, e.g. "heart attack"
    pub text: String,
    /// Ontology (mondo|disease, uberon|tissue, cell_ontology|cell_type|cl), an exact collection name, or `all`
    #[arg(long, short = 'o', default_value = "all")]
    pub ontology: String,
    /// Number of concepts per ontology
    #[arg(short = 'k', long = "top-k", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub k: u32,
    /// Leave out rows whose confidence is below this (0..1; see the README for the accept threshold)
    #[arg(long, default_value_t = 0.0, value_parser = parse_unit_interval)]
    pub min_score: f32,
    /// Only concepts under this term (e.g. CL:0000084 for T cells)
    #[arg(long, value_name = "ID")]
    pub within: Option<String>,
    /// Reranker: none, cross_encoder, cohere
    #[arg(long, env = "LOBSTER_RERANKER", value_name = "NAME")]
    pub reranker: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

/// A score threshold: a number from 0 to 1.
pub fn parse_unit_interval(text: &str) -> Result<f32, String> {
    let x: f32 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if (0.0..=1.0).contains(&x) {
        Ok(x)
    } else {
        Err(format!("`{text}` is outside 0..1 (scores are confidences)"))
    }
}
