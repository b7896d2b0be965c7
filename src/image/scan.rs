//! One layer read once into a reusable record, and records merged into an image's root filesystem.
//!
//! [`scan_layer`] streams a layer blob (its digests checked, see `walk`) into a [`LayerScan`]: every
//! tar entry in order with the sha256 of each regular file — and, when asked, [`ContentFacts`]
//! (sha1, secrets) — plus the bytes of the few files analyses read ([`is_kept`]: the dpkg database,
//! copyright files, `os-release`, `/etc/passwd`). [`merge_scans`] applies scans in layer order with
//! the same rules as unpacking (whiteouts, opaque directories, symlinked parents). A scan is a pure
//! function of the layer blob, so builds store it as a derivation output: an image whose one layer
//! changed is analysed by scanning that layer alone.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::blobs::{Blobs, Container};
use super::dpkg;
use super::error::ImageError;
use super::merge::{Applied, Merger};
use super::model::{ContentFacts, FileEntry, FileKind, LayerView};
use super::secrets;
use super::walk::{Flow, RawEntry, RawKind, walk_layer};

/// Version of the scan record; part of the scan derivation's key.
pub const SCAN_RULES: u32 = 1;

/// What one layer blob holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerScan {
    /// The compressed blob digest `sha256:<hex>` the scan was made from.
    pub digest: String,
    /// Every entry in tar order.
    pub entries: Vec<ScanEntry>,
    /// Contents of the [`is_kept`] files this layer writes, by path as written.
    #[serde(with = "base64_map")]
    pub kept: BTreeMap<String, Vec<u8>>,
}

/// One tar entry with what its content hashes to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanEntry {
    pub(crate) raw: RawEntry,
    /// `sha256:<hex>` of a regular file.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub facts: Option<ContentFacts>,
}

/// Contents of an image's [`is_kept`] files, by path.
pub type KeptFiles = BTreeMap<String, Vec<u8>>;

/// The merged files of an image and the contents of its [`is_kept`] files.
pub type Merged = (BTreeMap<String, FileEntry>, KeptFiles);

/// Whether analyses read this file (path relative to `/`): the dpkg database, a package's
/// `usr/share/doc/NAME/copyright`, `os-release`, `etc/passwd`.
pub fn is_kept(path: &str) -> bool {
    dpkg::is_dpkg_file(path)
        || matches!(path, "etc/os-release" | "usr/lib/os-release" | "etc/passwd")
        || path
            .strip_prefix("usr/share/doc/")
            .and_then(|rest| rest.strip_suffix("/copyright"))
            .is_some_and(|name| !name.is_empty() && !name.contains('/'))
}

/// Reads `layer` out of `blobs` (digest, size and `diff_id` checked); with `facts`, also the sha1
/// and secret scan of every regular file.
pub(crate) fn scan_layer(
    blobs: &Blobs,
    layer: &LayerView,
    facts: bool,
) -> Result<LayerScan, ImageError> {
    let mut entries = Vec::new();
    let mut kept = BTreeMap::new();
    let read_err = |source| ImageError::LayerRead {
        digest: layer.digest.clone(),
        source,
    };
    walk_layer(blobs, layer, &mut |raw, reader| {
        let mut entry = ScanEntry {
            raw,
            sha256: None,
            facts: None,
        };
        if entry.raw.kind == RawKind::File {
            let keep = is_kept(&entry.raw.path);
            if keep || (facts && entry.raw.size <= secrets::SCAN_LIMIT) {
                let mut buf = Vec::with_capacity(usize::try_from(entry.raw.size).unwrap_or(0));
                reader.read_to_end(&mut buf).map_err(read_err)?;
                entry.sha256 = Some(super::read::sha256_str(&buf));
                if facts {
                    entry.facts = Some(ContentFacts {
                        sha1: hex::encode(Sha1::digest(&buf)),
                        secret: secrets::secret_in(&buf).map(str::to_owned),
                    });
                }
                if keep {
                    kept.insert(entry.raw.path.clone(), buf);
                }
            } else {
                let mut sha256 = Sha256::new();
                let mut sha1 = facts.then(Sha1::new);
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let n = reader.read(&mut buf).map_err(read_err)?;
                    if n == 0 {
                        break;
                    }
                    sha256.update(&buf[..n]);
                    if let Some(h) = sha1.as_mut() {
                        h.update(&buf[..n]);
                    }
                }
                entry.sha256 = Some(format!("sha256:{}", hex::encode(sha256.finalize())));
                entry.facts = sha1.map(|h| ContentFacts {
                    sha1: hex::encode(h.finalize()),
                    secret: None,
                });
            }
        }
        entries.push(entry);
        Ok(Flow::Continue)
    })?;
    Ok(LayerScan {
        digest: layer.digest.clone(),
        entries,
        kept,
    })
}

/// Scans the layer blob `digest` of a bare blob directory (`DIR/sha256/<hex>`, the store's OCI
/// blobs), with content facts.
pub fn scan_blob(
    dir: &Path,
    digest: &str,
    media_type: &str,
    size: u64,
    diff_id: &str,
) -> Result<LayerScan, ImageError> {
    let blobs = Blobs {
        container: Container::BlobDir(dir.to_owned()),
        aliases: BTreeMap::new(),
    };
    let layer = LayerView {
        digest: digest.to_owned(),
        media_type: media_type.to_owned(),
        size,
        diff_id: diff_id.to_owned(),
        content_size: 0,
        created_by: None,
        paths: Vec::new(),
        deletions: Vec::new(),
    };
    scan_layer(&blobs, &layer, true)
}

/// Applies `scans` (one per layer, bottom first) in order; fills each layer's paths, deletions and
/// content size.
pub(crate) fn merge_scans(
    layers: &mut [LayerView],
    scans: &[LayerScan],
) -> Result<Merged, ImageError> {
    if layers.len() != scans.len() {
        return Err(ImageError::ScanMismatch {
            layer: format!("{} layers", layers.len()),
            scan: format!("{} scans", scans.len()),
        });
    }
    let mut merger = Merger::default();
    let mut captured: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (i, (slot, scan)) in layers.iter_mut().zip(scans).enumerate() {
        if scan.digest != slot.digest {
            return Err(ImageError::ScanMismatch {
                layer: slot.digest.clone(),
                scan: scan.digest.clone(),
            });
        }
        let mut paths: BTreeSet<String> = BTreeSet::new();
        let mut deletions: BTreeSet<String> = BTreeSet::new();
        let mut content = 0u64;
        for e in &scan.entries {
            match merger.apply(i, &slot.digest, &e.raw)? {
                Applied::Wrote {
                    path,
                    new_parents,
                    removed,
                    ..
                } => {
                    for (r, _) in &removed {
                        captured.remove(r);
                        paths.remove(r);
                    }
                    paths.extend(new_parents);
                    paths.insert(path.clone());
                    match &e.raw.kind {
                        RawKind::File => {
                            content += e.raw.size;
                            if let Some(bytes) = scan.kept.get(&e.raw.path)
                                && is_kept(&path)
                            {
                                captured.insert(path.clone(), bytes.clone());
                            }
                            if let Some(f) = merger.files.get_mut(&path) {
                                f.sha256.clone_from(&e.sha256);
                                f.facts.clone_from(&e.facts);
                            }
                        }
                        RawKind::Hardlink(_) => {
                            let target = match merger.files.get(&path).map(|f| &f.kind) {
                                Some(FileKind::Hardlink { target }) => Some(target.clone()),
                                _ => None,
                            };
                            if let Some(bytes) = target.and_then(|t| captured.get(&t).cloned())
                                && is_kept(&path)
                            {
                                captured.insert(path.clone(), bytes);
                            }
                        }
                        _ => {}
                    }
                }
                Applied::Removed { deleted, removed } => {
                    for (r, _) in &removed {
                        captured.remove(r);
                    }
                    if e.raw.kind == RawKind::Whiteout {
                        deletions.insert(deleted);
                    } else {
                        deletions.extend(removed.into_iter().map(|(r, _)| r));
                    }
                }
                Applied::Nothing => {}
            }
        }
        slot.paths = paths.into_iter().collect();
        slot.deletions = deletions.into_iter().collect();
        slot.content_size = content;
    }
    Ok((merger.files, captured))
}

/// Kept file contents as base64 strings in the JSON record.
mod base64_map {
    use std::collections::BTreeMap;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<String, Vec<u8>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let encoded: BTreeMap<&str, String> = map
            .iter()
            .map(|(k, v)| (k.as_str(), STANDARD.encode(v)))
            .collect();
        encoded.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
        let encoded = BTreeMap::<String, String>::deserialize(d)?;
        encoded
            .into_iter()
            .map(|(k, v)| {
                STANDARD
                    .decode(v)
                    .map(|bytes| (k, bytes))
                    .map_err(serde::de::Error::custom)
            })
            .collect()
    }
}
