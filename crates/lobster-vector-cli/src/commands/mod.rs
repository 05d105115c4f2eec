//! One module per subcommand; `run` resolves the configuration and dispatches.

mod adapt;
mod build;
mod collections;
mod curate;
mod embed;
mod import;
mod info;
mod lookup;
mod map;
mod search;
mod serve;
mod store;

use std::sync::Arc;

use std::path::Path;

use anyhow::{bail, Context, Result};
use lobster_vector::curation::CuratedStore;
use lobster_vector::local::DB_FILE;
use lobster_vector::{ontology::OntologyLibrary, Config, Overrides, SearchService};
use lobster_vector::{Backend, VectorStore};

use crate::cli::{Cli, Command, GlobalArgs};

/// What every command gets: the resolved configuration and the global flags.
pub struct Ctx<'a> {
    pub config: Config,
    pub global: &'a GlobalArgs,
}

impl Ctx<'_> {
    /// The search service over the configured store, which must exist,
    /// answering the store's curated mappings first; the embedder loads on
    /// first use.
    pub fn service(&self) -> Result<SearchService> {
        let curated = self.curated_store().load()?;
        Ok(self
            .search_service(StoreAccess::Existing)?
            .with_curated(Some(Arc::new(curated))))
    }

    /// The search service without curated mappings; `Create` opens a local
    /// store that does not exist yet (`build`), `Existing` refuses it.
    pub fn search_service(&self, access: StoreAccess) -> Result<SearchService> {
        let store = self.open_store(access)?;
        let reranker = lobster_vector::open_reranker(&self.config)?;
        let config = self.config.clone();
        Ok(
            SearchService::with_lazy_embedder(store, move || {
                lobster_vector::open_embedder(&config)
            })
            .with_reranker(reranker)
            .with_ontologies(Some(Arc::new(self.ontologies()))),
        )
    }

    /// The configured store. Under `Existing` a local store that does not
    /// exist is an error (a mistyped path never creates an empty store) and
    /// one this process cannot write opens read-only.
    pub fn open_store(&self, access: StoreAccess) -> Result<Arc<dyn VectorStore>> {
        let c = &self.config;
        let store = match access {
            StoreAccess::Existing => {
                if c.backend == Backend::Local {
                    require_local_store(&c.store_path)?;
                }
                lobster_vector::open_existing_store(c)
            }
            StoreAccess::Create => lobster_vector::open_store(c),
        };
        store.with_context(|| format!("cannot open the `{}` store", c.backend))
    }

    /// The store's curated mappings (`curated.sssom.tsv` in the store directory).
    pub fn curated_store(&self) -> CuratedStore {
        CuratedStore::in_dir(&self.config.store_path)
    }

    /// Ontology sources: the asset directory's `ontologies/` (compiled files in `compiled/`).
    pub fn ontologies(&self) -> OntologyLibrary {
        OntologyLibrary::in_assets(&self.config.assets_dir)
    }
}

/// Whether a command may create the local store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAccess {
    /// Reading commands: the store must exist.
    Existing,
    /// `build` and `import`: a missing store is created.
    Create,
}

/// Fails unless `path` holds a local store database.
pub fn require_local_store(path: &Path) -> Result<()> {
    if !path.join(DB_FILE).is_file() {
        bail!(
            "no local store at `{}` (no {DB_FILE}); set --store-path or LOBSTER_VECTOR_STORE_PATH, \
             or create one with `lobster-vector build`",
            path.display()
        );
    }
    Ok(())
}

pub fn run(cli: Cli) -> Result<()> {
    let overrides = Overrides {
        backend: cli.global.backend.clone(),
        store_path: cli.global.store_path.clone(),
        embedding_provider: cli.global.provider.clone(),
        reranker: match &cli.command {
            Command::Search(a) => a.reranker.clone(),
            Command::Map(a) => a.reranker.clone(),
            _ => None,
        },
        threads: cli.global.threads,
    };
    let config = Config::resolve(&overrides)?;
    if let Some(threads) = config.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .context("cannot start the worker thread pool")?;
    }
    let ctx = Ctx {
        config,
        global: &cli.global,
    };
    match &cli.command {
        Command::Info(args) => info::run(&ctx, args),
        Command::Collections(args) => collections::run(&ctx, args),
        Command::Build(args) => build::run(&ctx, args),
        Command::Adapt(args) => adapt::run(&ctx, args),
        Command::Search(args) => search::run(&ctx, args),
        Command::Map(args) => map::run(&ctx, args),
        Command::Curate(cmd) => curate::run(&ctx, cmd),
        Command::Remap(args) => curate::remap(&ctx, args),
        Command::Lookup(args) => lookup::lookup(&ctx, args),
        Command::Neighbors(args) => lookup::neighbors(&ctx, args),
        Command::Embed(args) => embed::run(&ctx, args),
        Command::Store(cmd) => store::run(&ctx, cmd),
        Command::Import(args) => import::run(&ctx, args),
        Command::Serve(args) => serve::http(&ctx, args),
        Command::Mcp(args) => serve::mcp(&ctx, args),
    }
}
