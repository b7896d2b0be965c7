//! Plain data describing one single-architecture image as its layers define it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::oci::ImageConfig;

/// One image (one manifest, one architecture) read back from an OCI layout or archive.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageView {
    /// The image name (`org.opencontainers.image.ref.name`), when the layout names it.
    pub name: Option<String>,
    /// Manifest digest, `sha256:<hex>`.
    pub digest: String,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
    /// The image config (architecture, runtime config, history).
    pub config: ImageConfig,
    /// Layers, bottom first.
    pub layers: Vec<LayerView>,
    /// The merged root filesystem after applying every layer (whiteouts honoured). Keys are paths
    /// relative to `/` without a leading slash (`usr/bin/python3`); directories included; sorted.
    pub files: BTreeMap<String, FileEntry>,
    /// Debian packages recorded in `var/lib/dpkg/status` (plus `status.d/*`), sorted by name then
    /// architecture. Empty for images without packages.
    pub packages: Vec<InstalledPackage>,
}

/// One layer as stored in the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerView {
    /// Compressed blob digest `sha256:<hex>` (the manifest's layer descriptor).
    pub digest: String,
    pub media_type: String,
    /// Compressed size in bytes.
    pub size: u64,
    /// Uncompressed tar digest (the config's `diff_id`).
    pub diff_id: String,
    /// Sum of the sizes of the regular files this layer writes.
    pub content_size: u64,
    /// The `created_by` of this layer's history entry (himg writes the layer's name there).
    pub created_by: Option<String>,
    /// Paths this layer writes (same spelling as [`ImageView::files`]), sorted.
    pub paths: Vec<String>,
    /// Paths this layer deletes with whiteouts, sorted.
    pub deletions: Vec<String>,
}

/// One entry of the merged root filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileEntry {
    pub kind: FileKind,
    /// Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Size in bytes for regular files, 0 otherwise.
    pub size: u64,
    /// `sha256:<hex>` of a regular file's content.
    pub sha256: Option<String>,
    /// What a content scan found in a regular file (when the image was read with facts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facts: Option<ContentFacts>,
    /// Index into [`ImageView::layers`] of the layer that last wrote this path.
    pub layer: usize,
}

impl FileEntry {
    /// A directory no layer names but `layer` needs as a parent (root's, `0o755`).
    pub(crate) fn implicit_dir(layer: usize) -> Self {
        Self {
            kind: FileKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            sha256: None,
            facts: None,
            layer,
        }
    }
}

/// Facts about a regular file's content, gathered while its layer is read (so that SBOMs and
/// policies need not read the file again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ContentFacts {
    /// Hex sha1 (SPDX file checksums).
    pub sha1: String,
    /// What kind of secret the file holds, for files the secret scan reads
    /// ([`super::secrets::SCAN_LIMIT`] bytes or less).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// The type of a filesystem entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum FileKind {
    File,
    Dir,
    Symlink {
        target: String,
    },
    /// A hard link to another path of the image (path spelled as in [`ImageView::files`]).
    Hardlink {
        target: String,
    },
    CharDevice,
    BlockDevice,
    Fifo,
}

/// One Debian package recorded as installed in the image's dpkg database.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct InstalledPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    /// Source package name (the `Source:` field without its version; the binary name when absent).
    pub source: String,
    /// Source version (from `Source: name (version)`, else the binary version).
    pub source_version: String,
    /// `Depends` and `Pre-Depends` as written, one entry per comma-separated clause.
    pub depends: Vec<String>,
    /// `Provides` as written, one entry per clause.
    pub provides: Vec<String>,
    /// `Multi-Arch`, when recorded (`same`, `foreign`, `allowed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multi_arch: Option<String>,
    /// `Installed-Size` in KiB, when recorded.
    pub installed_size_kib: Option<u64>,
    /// Paths the package owns (from `var/lib/dpkg/info/NAME[:ARCH].list`), spelled as in
    /// [`ImageView::files`], sorted; empty when the image has no list file for it.
    pub files: Vec<String>,
    /// Index into [`ImageView::layers`] of the layer that holds most of the package's files.
    pub layer: Option<usize>,
}
