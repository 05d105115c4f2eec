//! Curation: mapping results for review ([`review`]), the SSSOM/TSV exchange
//! format ([`sssom`]), curated mappings answered before any other match
//! ([`curated`]), and re-mapping a mapping set to a newer ontology release
//! ([`remap`](mod@remap)).

pub mod curated;
pub mod remap;
pub mod review;
pub mod sssom;
pub mod store;

pub use curated::{CuratedMapping, CuratedSet, CuratedTarget};
pub use remap::{object_change, remap, ObjectChange, RemapRow, Remapped};
pub use review::{mapping_set, SetInfo, Status};
pub use sssom::{Mapping, MappingSet, SetMetadata};
pub use store::{CuratedStore, CURATED_FILE};
