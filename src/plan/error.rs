//! Errors of planning and realising derivations.

use std::path::PathBuf;

use himg_store::StoreError;

use crate::oci::OciError;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("registry base `{reference}` {problem}")]
    BaseImage { reference: String, problem: String },
    #[error("cannot read `{path}`")]
    ReadSource {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` changed while it was being copied into the store; run the build again")]
    SourceChanged { path: PathBuf },
    #[error("`{path}` is not valid UTF-8 inside a copied directory")]
    NonUtf8Path { path: PathBuf },
    #[error("invalid glob `{glob}`")]
    Glob {
        glob: String,
        #[source]
        source: globset::Error,
    },
    #[error(
        "unsupported file type at `{path}` (only files, directories and symlinks can be copied)"
    )]
    UnsupportedFileType { path: PathBuf },
    #[error(
        "image `{image}` has {count} layers, more than its budget of {budget} (the base image alone has {base})"
    )]
    LayerBudget {
        image: String,
        count: usize,
        budget: u32,
        base: usize,
    },
    #[error("`{path}` appears twice in layer `{layer}` of image `{image}`")]
    DuplicatePath {
        image: String,
        layer: String,
        path: String,
    },
    #[error("the store entry `{what}` is malformed; run `himg store verify`")]
    BadStoreEntry { what: String },
    #[error("the environment of build `{build}`, image `{image}`, {problem}")]
    BuildEnvironment {
        build: String,
        image: String,
        problem: String,
    },
    #[error("SOURCE_DATE_EPOCH=`{0}` is not a whole number of seconds")]
    BadEpoch(String),
    #[error("derivation `{name}` failed")]
    Derivation {
        name: String,
        #[source]
        source: Box<PlanError>,
    },
    #[error("image `{image}` has packages but no valid lock; run `himg lock`")]
    NotLocked { image: String },
    #[error(transparent)]
    Build(#[from] crate::builder::BuildError),
    #[error(transparent)]
    Debian(#[from] crate::debian::DebianError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("I/O error on `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
