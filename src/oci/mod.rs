//! OCI output: deterministic layer tars, image configs, manifests/indexes, and the files users get
//! (OCI image layouts, oci-archive and docker-archive tarballs).
//!
//! Data flows one way through this module:
//!
//! ```text
//! LayerEntry list + ContentSource ──write_layer──▶ layer blob (+ LayerDigests: diff_id, digest, sizes)
//! diff_ids + RuntimeConfig ──ImageConfig──canonical_json──▶ config blob
//! config + layer descriptors ──Manifest──canonical_json──▶ manifest blob  (──Index──▶ index blob)
//! blobs on disk + top descriptor ──NamedImage──▶ write_layout / write_oci_archive / write_docker_archive
//! ```
//!
//! Architecture invariants:
//! - Every byte this module writes is a function of its inputs only: no clocks, no host users,
//!   no hash-map iteration order (JSON goes through [`config::canonical_json`], which sorts keys).
//! - Compression settings (algorithm, level, backend, zstd worker mode) are part of a layer's blob
//!   digest; they are fixed constants here and covered by golden tests.
//! - sha256 is used at this boundary only ([`digest::Sha256Digest`]); the store may hash otherwise.

pub mod config;
pub mod digest;
pub mod layer;
pub mod layout;
pub mod manifest;
mod tarfmt;

use std::path::PathBuf;

pub use config::{
    ConfigOverrides, History, ImageConfig, RootFs, RuntimeConfig, canonical_json, epoch_to_rfc3339,
};
pub use digest::Sha256Digest;
pub use layer::{
    Compression, ContentSource, DirContent, EntryKind, LayerDigests, LayerEntry, LayerOptions,
    MemoryContent, write_layer, write_layer_with,
};
pub use layout::{
    Blob, NamedImage, blob_temp_path, docker_tag, prepare_layout, write_docker_archive,
    write_docker_archive_tagged, write_layout, write_oci_archive,
};
pub use manifest::{Descriptor, Index, Manifest, Platform, media_types};

/// Everything that can go wrong while producing OCI output. Paths and digests are carried so the
/// message alone says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    /// A layer entry path (or hardlink target) is not an absolute, normalised path.
    #[error("invalid layer path `{path}`: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    /// Two layer entries have the same path.
    #[error("duplicate layer entry `{path}`")]
    DuplicatePath { path: String },

    /// A mode has bits outside the permission/setuid/setgid/sticky bits (0o7777).
    #[error("invalid mode {mode:#o} for `{path}`: only permission bits (<= 0o7777) are allowed")]
    InvalidMode { path: String, mode: u32 },

    /// An entry lies below another entry that is not a directory.
    #[error("`{path}` lies below `{parent}`, which is not a directory in this layer")]
    ParentNotDirectory { path: String, parent: String },

    /// A symlink target is empty or contains a NUL byte.
    #[error("invalid symlink target `{target}` for `{path}`: {reason}")]
    InvalidLinkTarget {
        path: String,
        target: String,
        reason: &'static str,
    },

    /// A hardlink target is not an absolute, normalised path.
    #[error("invalid hardlink target `{target}` for `{path}`: {reason}")]
    InvalidHardlinkTarget {
        path: String,
        target: String,
        reason: &'static str,
    },

    /// A hardlink points at a path that is not in the same layer.
    #[error("hardlink `{path}` points at `{target}`, which is not in this layer")]
    HardlinkTargetMissing { path: String, target: String },

    /// A hardlink points at a directory or symlink.
    #[error("hardlink `{path}` points at `{target}`, which is not a regular file")]
    HardlinkTargetNotFile { path: String, target: String },

    /// Hardlinks point at each other in a cycle.
    #[error("hardlink `{path}` is part of a cycle of hardlinks")]
    HardlinkCycle { path: String },

    /// The content source could not open a file's content.
    #[error("cannot open the content of `{path}`")]
    ContentOpen {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// Reading a file's content failed.
    #[error("cannot read the content of `{path}`")]
    ContentRead {
        path: String,
        #[source]
        source: std::io::Error,
    },

    /// The content source yielded fewer bytes than the entry declared.
    #[error("content of `{path}` is {actual} bytes, but the entry declares {declared}")]
    ContentTooShort {
        path: String,
        declared: u64,
        actual: u64,
    },

    /// The content source yielded more bytes than the entry declared.
    #[error("content of `{path}` is longer than the {declared} bytes the entry declares")]
    ContentTooLong { path: String, declared: u64 },

    /// Writing the layer stream to its destination failed.
    #[error("cannot write the layer stream")]
    LayerWrite(#[source] std::io::Error),

    /// A string is not a `sha256:<64 lowercase hex>` digest.
    #[error("invalid digest `{value}`: a digest is `sha256:` followed by 64 lowercase hex digits")]
    InvalidDigest { value: String },

    /// JSON could not be produced or parsed.
    #[error("JSON error in {what}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// A filesystem operation failed.
    #[error("cannot {op} `{}`", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The output directory exists, is not empty, and is not an OCI image layout.
    #[error("refusing to write into `{}`: {reason}", dir.display())]
    NotAnOciLayout { dir: PathBuf, reason: String },

    /// A blob file on disk does not have the size its descriptor declares.
    #[error("blob {digest} at `{}` is {actual} bytes, expected {expected}", path.display())]
    BlobSizeMismatch {
        digest: Sha256Digest,
        path: PathBuf,
        expected: u64,
        actual: u64,
    },

    /// A blob file's content does not hash to its digest.
    #[error("blob {digest} at `{}` does not match its digest", path.display())]
    BlobDigestMismatch { digest: Sha256Digest, path: PathBuf },

    /// The same digest was given with two different sizes or is referenced with a wrong size.
    #[error("blob {digest} is declared with size {first} and with size {second}")]
    ConflictingBlob {
        digest: Sha256Digest,
        first: u64,
        second: u64,
    },

    /// A descriptor references a blob that the image does not provide.
    #[error("image `{image}`: blob {digest} is referenced but not provided")]
    BlobMissing { image: String, digest: Sha256Digest },

    /// Two images in one output have the same name.
    #[error("two images are named `{name}`")]
    DuplicateImageName { name: String },

    /// An image name is not usable as an OCI ref name or Docker reference.
    #[error("invalid image name `{name}`: {reason}")]
    InvalidRefName { name: String, reason: &'static str },

    /// A descriptor has a media type that cannot be used where it appears.
    #[error("blob {digest} has media type `{media_type}`, expected {expected}")]
    UnexpectedMediaType {
        digest: Sha256Digest,
        media_type: String,
        expected: &'static str,
    },

    /// A multi-arch image has no manifest for the requested platform.
    #[error("image `{image}` has no manifest for `{wanted}` (available: {available})")]
    PlatformNotFound {
        image: String,
        wanted: String,
        available: String,
    },

    /// docker-archive only carries uncompressed or gzip layers.
    #[error(
        "docker-archive cannot carry layer {digest} of media type `{media_type}`: \
         `docker load` reads only uncompressed or gzip layers; build the image with gzip layers"
    )]
    DockerArchiveCompression {
        digest: Sha256Digest,
        media_type: String,
    },
}

/// Wraps an [`std::io::Error`] from a filesystem operation with what was done and where.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> OciError {
    let path = path.into();
    move |source| OciError::Io { op, path, source }
}
