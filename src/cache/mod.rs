//! Shared binary caches: signed, content-checked entries of derivation outputs that teams push to a
//! cache (a directory, an HTTP server, an OCI registry) and substitute instead of building.
//!
//! - [`archive`]: the canonical, versioned archive of an output's store objects (zstd-compressed).
//! - [`entry`]: the signed metadata record of one derivation output.
//! - [`sign`]: Ed25519 keys (`NAME:base64`) and signatures.
//! - [`check`]: what a substituted entry declares, checked against the bytes it brought.
//! - [`backend`]: the one trait every cache location implements ([`file`], [`http`], [`oci`]).
//! - [`server`]: `himg cache serve`, an HTTP cache with per-team tokens.
//! - [`substitute`]: fetching entries into the store during a build, and pushing them.

pub mod archive;
pub mod backend;
pub mod check;
pub mod entry;
pub mod file;
pub mod http;
pub mod oci;
pub mod server;
pub mod sign;
pub mod substitute;

pub use backend::{Backend, open_backend};
pub use entry::{Entry, SignedEntry};
pub use sign::{PublicKey, SecretKey, TrustedKeys};

/// What can go wrong with a cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{0}")]
    Store(#[from] himg_store::StoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed archive: {0}")]
    Archive(String),
    #[error("malformed cache entry: {0}")]
    Entry(String),
    #[error("bad key: {0}")]
    Key(String),
    #[error("refused entry {key} from {cache}: {reason}")]
    Refused {
        key: String,
        cache: String,
        reason: String,
    },
    #[error(
        "unsupported cache URL `{0}` (use file://DIR, http(s)://HOST/PATH or oci://REGISTRY/REPO)"
    )]
    Url(String),
    #[error("cache {cache}: {message}")]
    Backend { cache: String, message: String },
    #[error("cache {cache} refused the request ({status}): {message}")]
    Denied {
        cache: String,
        status: u16,
        message: String,
    },
    #[error("{0}")]
    Registry(#[from] crate::registry::RegistryError),
}

impl CacheError {
    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> Self {
        CacheError::Io {
            path: path.to_string(),
            source,
        }
    }
}
