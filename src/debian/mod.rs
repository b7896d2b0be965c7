//! Debian packages as pinned derivations: apt repositories (signed indexes), versions and the resolver,
//! the lock file, and `.deb` unpacking into minimal, safe file sets.
//!
//! Data flows one way: `mirror` and `fetch` reach a repository, `keyring` and `release` verify its
//! InRelease and indexes, `index` parses them, `resolve` computes a closure, `locking` pins it in a
//! `lockfile`; at build time `build` fetches each pinned `.deb` by sha256, `unpack` and `minimize` turn
//! it into a `fileset`, and `system` generates what maintainer scripts would have made.

pub mod build;
pub mod cabundle;
pub mod clearsigned;
pub mod configure;
pub mod control;
pub mod deps;
pub mod dpkgdb;
pub mod elf;
pub mod fetch;
pub mod fileset;
pub mod index;
pub mod index_cache;
pub mod javacerts;
pub mod keyring;
pub mod ldcache;
pub mod lockfile;
pub mod locking;
pub mod minimize;
pub mod mirror;
pub mod parsed;
pub mod plan;
pub mod release;
pub mod resolve;
pub mod unpack;
pub mod version;
pub mod why;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

/// Errors of the Debian layer, each naming the failed link of the chain.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    #[error("running the maintainer scripts")]
    Configure(#[from] configure::ConfigureError),
    #[error("cannot read keyring `{path}`")]
    Keyring {
        path: PathBuf,
        #[source]
        source: himg_lang::SourceError,
    },
    #[error("repository `{repository}`, suite `{suite}`")]
    Release {
        repository: String,
        suite: String,
        #[source]
        source: Box<release::ReleaseError>,
    },
    #[error("cannot resolve the packages of image `{image}` for {arch}")]
    Resolve {
        image: String,
        arch: String,
        #[source]
        source: Box<resolve::ResolveError>,
    },
    #[error("{}", .0.version_message())]
    BaseVersion(Box<BaseConflict>),
    #[error("{}", .0.removal_message())]
    BaseRemoved(Box<BaseConflict>),
    #[error("`{request}` is not a package request (write `name`, `name (>= 1.0)` or `name=1.0`)")]
    BadRequest { request: String },
    #[error("`{a}` and `{b}` both ship `{path}` with different contents")]
    PathConflict { path: String, a: String, b: String },
    #[error("package `{package}`")]
    Unpack {
        package: String,
        #[source]
        source: Box<unpack::DebError>,
    },
    #[error(transparent)]
    KeyringFormat(#[from] keyring::KeyringError),
    #[error(transparent)]
    Minimize(#[from] minimize::MinimizeError),
    #[error(transparent)]
    Mirror(Box<mirror::MirrorError>),
    #[error(transparent)]
    Fetch(Box<fetch::FetchError>),
    #[error(transparent)]
    Control(#[from] control::ControlError),
    #[error(transparent)]
    Lock(#[from] lockfile::LockError),
    #[error(transparent)]
    Store(#[from] himg_store::StoreError),
    #[error("malformed file set in the store: {0}")]
    FileSet(String),
    #[error("I/O error on `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A package of a registry base that an image on it would replace or remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseConflict {
    pub image: String,
    pub arch: String,
    pub package: String,
    /// The base's version.
    pub installed: String,
    /// What the image needs instead (`(>= 2.0)`, `2.41-12`), or why it would go.
    pub wanted: String,
    /// What needs it (`requested`, `python3 depends on …`).
    pub needed_by: Option<String>,
    /// The base as written in `from`.
    pub reference: String,
}

impl BaseConflict {
    fn version_message(&self) -> String {
        let Self {
            image,
            arch,
            package,
            installed,
            wanted,
            needed_by,
            reference,
        } = self;
        let by = needed_by
            .as_ref()
            .map(|by| format!(" ({by})"))
            .unwrap_or_default();
        format!(
            "image `{image}` ({arch}) needs {package} {wanted}{by}, but its base `{reference}` has {package} {installed} installed, and himg does not replace a registry base's packages: request the base's version (`{package}={installed}`) or leave the version out, or build `from` a base image that has {package} {wanted}"
        )
    }

    fn removal_message(&self) -> String {
        let Self {
            image,
            arch,
            package,
            installed,
            wanted,
            reference,
            ..
        } = self;
        format!(
            "image `{image}` ({arch}) would remove {package} {installed}, which its base `{reference}` has installed ({wanted}); himg does not remove a registry base's packages: leave out the package that conflicts with it, or build `from` another base image"
        )
    }
}

impl From<mirror::MirrorError> for DebianError {
    fn from(e: mirror::MirrorError) -> Self {
        DebianError::Mirror(Box::new(e))
    }
}

impl From<fetch::FetchError> for DebianError {
    fn from(e: fetch::FetchError) -> Self {
        DebianError::Fetch(Box::new(e))
    }
}
