//! What can go wrong while reading an image back: every message names the file, blob or path at fault.

use std::path::PathBuf;

/// Errors of [`crate::image`]: opening a layout or archive, reading and verifying blobs, walking
/// layers, unpacking a root filesystem.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// A filesystem operation failed.
    #[error("cannot {op} `{}`", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The path is neither an OCI layout directory nor an oci-archive or docker-archive tar.
    #[error("`{}` is not an OCI image layout, oci-archive or docker-archive: {reason}", path.display())]
    NotAnImage { path: PathBuf, reason: String },

    /// A JSON document (index, manifest, config, docker `manifest.json`) is malformed.
    #[error("{what} is not valid JSON")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// A descriptor names a blob the layout or archive does not hold.
    #[error("blob {digest} is referenced but missing from `{}`", container.display())]
    BlobMissing { digest: String, container: PathBuf },

    /// A blob's bytes do not hash to the digest that names it (a tampered or corrupt blob).
    #[error("blob {digest} in `{}` does not match its digest (its content hashes to {actual})", container.display())]
    BlobDigestMismatch {
        digest: String,
        actual: String,
        container: PathBuf,
    },

    /// A blob is not the size its descriptor declares.
    #[error("blob {digest} in `{}` is {actual} bytes, its descriptor says {expected}", container.display())]
    BlobSizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
        container: PathBuf,
    },

    /// A digest string is not `sha256:<64 hex>`.
    #[error("unsupported or malformed digest `{digest}` (only sha256 is read)")]
    BadDigest { digest: String },

    /// The uncompressed layer does not hash to the config's `diff_id`.
    #[error("layer {digest} uncompresses to {actual}, but the config's diff_id is {expected}")]
    DiffIdMismatch {
        digest: String,
        expected: String,
        actual: String,
    },

    /// The manifest and the config disagree on the number of layers.
    #[error(
        "image {digest}: the manifest lists {layers} layers but the config has {diff_ids} diff_ids"
    )]
    LayerCountMismatch {
        digest: String,
        layers: usize,
        diff_ids: usize,
    },

    /// A layer's media type is not a tar, tar+gzip or tar+zstd layer.
    #[error("layer {digest} has unsupported media type `{media_type}`")]
    UnsupportedMediaType { digest: String, media_type: String },

    /// The layer is not a readable tar stream (or its compression is broken).
    #[error("cannot read layer {digest}")]
    LayerRead {
        digest: String,
        #[source]
        source: std::io::Error,
    },

    /// A tar entry of a kind layers cannot carry (sparse files, …).
    #[error("layer {digest}: entry `{path}` has unsupported tar type {kind}")]
    UnsupportedEntry {
        digest: String,
        path: String,
        kind: String,
    },

    /// An entry name or hardlink target climbs out of the root (`..`) or is not UTF-8.
    #[error("layer {digest}: refusing entry `{path}`: {reason}")]
    UnsafePath {
        digest: String,
        path: String,
        reason: &'static str,
    },

    /// A symlink used as a directory on the way to an entry would lead outside the root.
    #[error(
        "layer {digest}: refusing `{path}`: it goes through the symlink `{link}` which {reason}"
    )]
    EscapingLink {
        digest: String,
        path: String,
        link: String,
        reason: &'static str,
    },

    /// A hardlink points at nothing, or at something that is not a regular file.
    #[error("layer {digest}: hardlink `{path}` points at `{target}`, {reason}")]
    BadHardlink {
        digest: String,
        path: String,
        target: String,
        reason: &'static str,
    },

    /// An entry lies below a path that is not a directory.
    #[error("layer {digest}: `{path}` lies below `{parent}`, which is not a directory")]
    ParentNotDirectory {
        digest: String,
        path: String,
        parent: String,
    },

    /// `extract_rootfs` was given a destination that already has content.
    #[error("refusing to unpack into `{}`: it exists and is not an empty directory", path.display())]
    DestinationNotEmpty { path: PathBuf },

    /// The view passed in does not come from this source (a layer it names is not here).
    #[error("the image view {digest} does not belong to `{}`", container.display())]
    ForeignView { digest: String, container: PathBuf },

    /// A file read back does not have the content the view recorded for it.
    #[error("`{path}` in layer {digest} does not have the content the image view records")]
    ContentMismatch { path: String, digest: String },

    /// An OCI structure (config) could not be parsed.
    /// A stored layer scan does not belong to the layer it is merged as.
    #[error("the layer scan of {scan} was given for layer {layer}; run `himg store verify`")]
    ScanMismatch { layer: String, scan: String },

    #[error(transparent)]
    Oci(#[from] crate::oci::OciError),
}

/// Wraps an [`std::io::Error`] from a filesystem operation with what was done and where.
pub(crate) fn io_err(
    op: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.into();
    move |source| ImageError::Io { op, path, source }
}
