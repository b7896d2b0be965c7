//! The himg store: a content-addressed local store in which the composer caches the outputs
//! of derivations, so that only what changed is rebuilt.
//!
//! - **Objects** are files named by their hash: blobs (file contents, BLAKE3), trees
//!   (directory listings, BLAKE3 of a canonical encoding, see [`Tree`]) and OCI blobs
//!   (SHA-256). They are written to a temp file and renamed into place, so they appear
//!   complete or not at all.
//! - **Metadata** lives in SQLite ([`Store`] draws the layout): which derivation key produced
//!   which output, what each output references, cached layers, GC roots, and a stat cache of
//!   source-file hashes. A row is committed only after the objects it names are on disk.
//! - **Maintenance**: [`Store::gc`] keeps what roots reach, [`Store::verify`] re-hashes
//!   everything, [`Store::repair`] removes what is broken.
//!
//! The store knows nothing about Debian, OCI images or the himg language: it stores bytes,
//! trees and rows that the composer defines.
//!
//! Architecture invariant: after a process is killed at any point, `verify()` reports no
//! problem and every operation works on the next open.

mod checked;
mod db;
mod error;
mod gc;
mod id;
mod objects;
mod store;
mod tree;
mod verify;

pub use checked::CheckedReader;
pub use error::{RowError, StoreError};
pub use gc::GcReport;
pub use id::{
    B3Digest, InvalidId, NIX_BASE32_ALPHABET, ObjectRef, OutputPath, Sha256Digest, nix_base32,
};
pub use objects::{BlobWriter, OciBlobWriter, hash_file, sha256_file};
pub use store::{
    BuildGuard, DerivationLock, LAYOUT_DIR, LayerRecord, OutputRecord, RACY_WINDOW_NS, RootRecord,
    Store, canonical_json,
};
pub use tree::{Node, TREE_FORMAT_VERSION, Tree, TreeEntry, TreeError, validate_name};
pub use verify::{Issue, ObjectStats, Problem, RepairReport, StoreInfo, Subject, VerifyReport};

/// The newest metadata schema version this build understands.
pub const SCHEMA_VERSION: i64 = db::SCHEMA_VERSION;

#[cfg(test)]
mod tests {
    #[test]
    fn store_is_send_and_sync() {
        fn assert<T: Send + Sync>() {}
        assert::<super::Store>();
    }
}
