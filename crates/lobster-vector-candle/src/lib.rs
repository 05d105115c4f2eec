//! BERT sentence embedders for lobster-vector: all-MiniLM-L6-v2 (`minilm`,
//! mean pooling + L2 normalise, 384-d) and SapBERT (`sapbert`, `[CLS]`
//! pooling, not normalised, 768-d), or any Hugging Face BERT directory.
//!
//! Output reproduces sentence-transformers (cosine ≥ 0.9999 per vector,
//! same tokens, same truncation). Weights are loaded with candle
//! (`model.safetensors`, memory-mapped, any float dtype); the forward pass
//! runs on `gemm` and rayon over sequences packed back to back, so padding
//! is never computed.
//!
//! ```no_run
//! use lobster_vector_candle::{BertEmbedder, BertOptions};
//! use lobster_vector_core::Embedder;
//! # fn main() -> lobster_vector_core::Result<()> {
//! let dir = lobster_vector_candle::resolve_model_dir("minilm", None)?;
//! let embedder = BertEmbedder::load(&dir, BertOptions::minilm().with_threads(2))?;
//! let v = embedder.embed_query("heart attack")?;
//! assert_eq!(v.len(), 384);
//! # Ok(()) }
//! ```
//!
//! Performance (2-core AVX2 machine, MONDO labels, ~9 tokens each): the
//! time is in the matrix products, so they run on weights packed once at
//! load into 16-column panels with a 6×16 AVX2/FMA micro-kernel (bias
//! and GELU fused into its store); sequences are packed without padding;
//! a call with many batches runs whole batches side by side, one per
//! thread, while a single query spreads each product's panels over the
//! threads. A naive candle-transformers pipeline spent most of its time in
//! candle's spinning thread pool competing with gemm's rayon threads.
//! Measure with `examples/embed_bench.rs`.
//!
//! [`adapt`](fn@adapt) trains the top layers of such a model on an ontology's
//! synonym pairs (candle's autograd and AdamW) and writes the result as a
//! model directory this embedder loads like any other.
//!
//! Threads: everything runs on rayon — the embedder's own pool when
//! [`BertOptions::threads`] is set, otherwise the pool the call runs in
//! (the global pool, which the binary sizes from `LOBSTER_THREADS`).

mod adapt;
mod batch;
mod cross_encoder;
mod embedder;
mod kernels;
pub mod matmul;
mod model;
mod resolve;

pub use adapt::{
    adapt, AdaptEvent, AdaptOptions, AdaptReport, AdaptationManifest, SourceRecord, SynonymSet,
    MANIFEST_FILE,
};
pub use cross_encoder::{CrossEncoder, CrossEncoderOptions};
pub use embedder::{BertEmbedder, BertOptions, Pooling, DEFAULT_BATCH_SIZE};
pub use resolve::{assets_dir, find_model_dir, resolve_model_dir};
