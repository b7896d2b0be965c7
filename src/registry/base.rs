//! Registry base images (`from = "HOST/REPO@sha256:…"`): pulled once into the store's OCI blobs, then
//! read from there, so a build whose bases are in the store needs no network.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use himg_store::{Sha256Digest as StoreDigest, Store};

use super::{BlobSink, Client, ClientOptions, Credentials, Reference, RegistryError};
use crate::oci::{Descriptor, ImageConfig, Index, Manifest, media_types};

/// One architecture of a registry base: what the composer builds on.
#[derive(Debug, Clone, PartialEq)]
pub struct BaseArch {
    /// The per-architecture manifest's digest.
    pub manifest: String,
    /// The base's config (runtime config, history, diff ids).
    pub config: ImageConfig,
    /// Its layers, bottom first, with their `diff_id`s.
    pub layers: Vec<(Descriptor, String)>,
    /// Its account files, so that accounts declared on top extend them instead of replacing them.
    pub accounts: BaseAccountFiles,
}

/// A base image's `/etc/passwd` and `/etc/group` (each `None` when the image has none).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BaseAccountFiles {
    pub passwd: Option<String>,
    pub group: Option<String>,
}

/// The cache of base account files under a store root, by manifest digest (reading them means
/// decompressing the base's layers once; `himg store gc` drops entries of bases it collects).
pub fn accounts_cache(store_root: &std::path::Path) -> crate::digest_cache::DigestCache {
    crate::digest_cache::DigestCache::new(store_root, "base-accounts")
}

/// The account files of the base image whose manifest is `digest` (its blobs in the store).
fn account_files(store: &Store, digest: &str) -> Result<BaseAccountFiles, String> {
    let cache = accounts_cache(store.root());
    if let Some(files) = cache
        .read(digest, "v1")
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        return Ok(files);
    }
    let source = crate::image::ImageSource::blob_store(&store.oci_dir());
    let view = source
        .manifest_image(digest, None)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{digest} is not an image manifest"))?;
    let text = |path: &str| -> Result<Option<String>, String> {
        Ok(source
            .read_file(&view, path)
            .map_err(|e| e.to_string())?
            .map(|b| String::from_utf8_lossy(&b).into_owned()))
    };
    let files = BaseAccountFiles {
        passwd: text("etc/passwd")?,
        group: text("etc/group")?,
    };
    if let Ok(bytes) = serde_json::to_vec(&files) {
        cache.write(digest, "v1", &bytes);
    }
    Ok(files)
}

/// The cache of base dpkg databases under a store root, by manifest digest (`himg store gc`
/// drops entries of bases it collects).
pub fn dpkg_cache(store_root: &std::path::Path) -> crate::digest_cache::DigestCache {
    crate::digest_cache::DigestCache::new(store_root, "base-dpkg")
}

/// The dpkg database of the base image whose manifest is `digest` (its blobs in the store): the
/// stanzas of `/var/lib/dpkg/status` then of each distroless `/var/lib/dpkg/status.d/*` file (by
/// name), blank-line separated; empty when the image has none. Cached by manifest digest.
pub fn dpkg_status(store: &Store, digest: &str) -> Result<BaseDpkgStatus, String> {
    let cache = dpkg_cache(store.root());
    if let Some(status) = cache
        .read(digest, "v1")
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        return Ok(status);
    }
    let source = crate::image::ImageSource::blob_store(&store.oci_dir());
    let view = source
        .manifest_image(digest, None)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{digest} is not an image manifest"))?;
    let read = |path: &str| -> Result<String, String> {
        Ok(source
            .read_file(&view, path)
            .map_err(|e| e.to_string())?
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default())
    };
    let status = read("var/lib/dpkg/status")?;
    let mut status_d = Vec::new();
    for path in view.files.keys() {
        if let Some(name) = path.strip_prefix("var/lib/dpkg/status.d/")
            && !name.contains('/')
            && !name.ends_with(".md5sums")
            && matches!(view.files[path].kind, crate::image::FileKind::File)
        {
            status_d.push(read(path)?);
        }
    }
    let out = BaseDpkgStatus { status, status_d };
    if let Ok(bytes) = serde_json::to_vec(&out) {
        cache.write(digest, "v1", &bytes);
    }
    Ok(out)
}

/// A base image's dpkg database, as its files hold it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BaseDpkgStatus {
    /// `/var/lib/dpkg/status` (empty when absent).
    pub status: String,
    /// Each `/var/lib/dpkg/status.d/*` file (distroless), by name.
    pub status_d: Vec<String>,
}

impl BaseDpkgStatus {
    /// All stanzas, `status` first: what the image has installed.
    pub fn all(&self) -> String {
        let mut out = String::new();
        for text in std::iter::once(&self.status).chain(&self.status_d) {
            let text = text.trim();
            if !text.is_empty() {
                out.push_str(text);
                out.push_str("\n\n");
            }
        }
        out
    }
}

/// The merged root filesystem of the base image whose manifest is `digest` as a file set (file
/// contents put into the store as blobs; device nodes left out): the image state the configure
/// step runs the new packages' scripts over.
pub fn base_files(store: &Store, digest: &str) -> Result<crate::debian::fileset::FileSet, String> {
    use crate::debian::unpack::{DebEntry, DebEntryKind};
    use crate::image::FileKind;
    let source = crate::image::ImageSource::blob_store(&store.oci_dir());
    let view = source
        .manifest_image(digest, None)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{digest} is not an image manifest"))?;
    let mut contents: BTreeMap<String, (String, u64)> = BTreeMap::new();
    source
        .visit_files(&view, &mut |path, reader| {
            let io = |e: std::io::Error| crate::image::ImageError::Io {
                op: "store",
                path: std::path::PathBuf::from(path),
                source: e,
            };
            let mut w = store
                .blob_writer()
                .map_err(|e| io(std::io::Error::other(e)))?;
            let size = std::io::copy(reader, &mut w).map_err(io)?;
            let (blob, _) = w.finish().map_err(|e| io(std::io::Error::other(e)))?;
            contents.insert(path.to_owned(), (blob.to_string(), size));
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    let mut entries = Vec::new();
    for (path, entry) in &view.files {
        let kind = match &entry.kind {
            FileKind::Dir => DebEntryKind::Dir,
            FileKind::File => {
                let (content, size) = contents
                    .get(path)
                    .cloned()
                    .ok_or_else(|| format!("no content for `/{path}`"))?;
                DebEntryKind::File { size, content }
            }
            FileKind::Symlink { target } => DebEntryKind::Symlink {
                target: target.clone(),
            },
            FileKind::Hardlink { target } => DebEntryKind::Hardlink {
                target: format!("/{target}"),
            },
            FileKind::CharDevice | FileKind::BlockDevice | FileKind::Fifo => continue,
        };
        entries.push(DebEntry {
            path: format!("/{path}"),
            kind,
            mode: entry.mode & 0o7777,
            uid: entry.uid,
            gid: entry.gid,
            shipped_path: None,
        });
    }
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(crate::debian::fileset::FileSet::of_entries(entries))
}

/// A registry base, per architecture (Debian/OCI spelling: `amd64`, `arm64`, …).
pub type ResolvedBase = BTreeMap<String, BaseArch>;

/// Why a registry base cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BaseError {
    #[error("cannot pull base image `{reference}`")]
    Pull {
        reference: String,
        #[source]
        source: Box<RegistryError>,
    },
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("base image `{reference}`: {problem}")]
    Invalid { reference: String, problem: String },
    #[error(transparent)]
    Store(#[from] himg_store::StoreError),
}

/// A registry on the loopback interface is spoken to over plain http (as Docker does for localhost).
pub fn is_loopback_registry(registry: &str) -> bool {
    let host = registry
        .strip_prefix('[')
        .and_then(|r| r.split_once(']').map(|(h, _)| h))
        .unwrap_or_else(|| registry.split(':').next().unwrap_or(registry));
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// Makes sure every base image named by `references` is in the store (pulling what is missing, with
/// credentials from the usual places, its bytes shown as `Pulling` progress through `printer`) and
/// reads each one's per-architecture manifests and configs.
pub fn resolve_bases(
    store: &Store,
    references: &[String],
    printer: &crate::printer::Printer,
) -> Result<BTreeMap<String, ResolvedBase>, BaseError> {
    let mut out = BTreeMap::new();
    for reference in references {
        if out.contains_key(reference) {
            continue;
        }
        let invalid = |problem: String| BaseError::Invalid {
            reference: reference.clone(),
            problem,
        };
        let parsed: Reference = reference.parse().map_err(|e| BaseError::Pull {
            reference: reference.clone(),
            source: Box::new(e),
        })?;
        let top = parsed
            .digest
            .clone()
            .ok_or_else(|| invalid("not pinned by digest".into()))?;
        if !complete_in_store(store, &top)? {
            let credentials = Credentials::from_env().map_err(|e| BaseError::Pull {
                reference: reference.clone(),
                source: Box::new(e),
            })?;
            let client = Client::new(ClientOptions {
                insecure: is_loopback_registry(&parsed.registry)
                    || crate::config::load()?
                        .config
                        .registry_insecure(&parsed.registry),
                credentials,
                ..ClientOptions::default()
            })
            .with_progress(printer.transfer("Pulling", reference));
            let sink = StoreSink { store };
            let pulled = client.pull(&parsed, &sink).map_err(|e| BaseError::Pull {
                reference: reference.clone(),
                source: Box::new(e),
            })?;
            if pulled.digest != top {
                return Err(invalid(format!(
                    "the registry served {} instead of the pinned digest",
                    pulled.digest
                )));
            }
            printer.status("Pulled", &format!("base {reference}"));
        }
        out.insert(reference.clone(), read_base(store, &top).map_err(invalid)?);
    }
    Ok(out)
}

fn store_digest(d: &str) -> Option<StoreDigest> {
    StoreDigest::from_hex(d.strip_prefix("sha256:")?).ok()
}

fn read_blob(store: &Store, digest: &str) -> Result<Option<Vec<u8>>, String> {
    let d = store_digest(digest).ok_or_else(|| format!("bad digest `{digest}`"))?;
    if !store.has_oci_blob(&d) {
        return Ok(None);
    }
    let mut f = store.open_oci_blob(&d).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf).map_err(|e| e.to_string())?;
    Ok(Some(buf))
}

/// Manifests as (digest, bytes).
type ManifestBlobs = Vec<(String, Vec<u8>)>;

/// The manifests of `top` (itself, or an index's children); `None` when one is not in the store.
fn manifests_of(store: &Store, top: &str) -> Result<Option<ManifestBlobs>, String> {
    let Some(bytes) = read_blob(store, top)? else {
        return Ok(None);
    };
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("manifest {top}: {e}"))?;
    if v.get("manifests").is_some() {
        let index = Index::from_json(&bytes).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for m in &index.manifests {
            if media_types::is_index(&m.media_type) {
                return Err("nested indexes are not supported as bases".into());
            }
            let d = m.digest.to_string();
            match read_blob(store, &d)? {
                Some(b) => out.push((d, b)),
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    } else {
        Ok(Some(vec![(top.to_owned(), bytes)]))
    }
}

/// Whether the base's manifests, configs and layers are all in the store.
fn complete_in_store(store: &Store, top: &str) -> Result<bool, BaseError> {
    let Ok(Some(manifests)) = manifests_of(store, top) else {
        return Ok(false);
    };
    for (_, bytes) in manifests {
        let Ok(m) = Manifest::from_json(&bytes) else {
            return Ok(false);
        };
        for d in std::iter::once(&m.config).chain(&m.layers) {
            match store_digest(&d.digest.to_string()) {
                Some(sd) if store.has_oci_blob(&sd) => {}
                _ => return Ok(false),
            }
        }
    }
    Ok(true)
}

fn read_base(store: &Store, top: &str) -> Result<ResolvedBase, String> {
    let manifests = manifests_of(store, top)?.ok_or("missing from the store after the pull")?;
    let mut out = ResolvedBase::new();
    for (digest, bytes) in manifests {
        let m = Manifest::from_json(&bytes).map_err(|e| e.to_string())?;
        let cfg_bytes = read_blob(store, &m.config.digest.to_string())?
            .ok_or("config missing from the store")?;
        let config = ImageConfig::from_json(&cfg_bytes).map_err(|e| e.to_string())?;
        if config.rootfs.diff_ids.len() != m.layers.len() {
            return Err(format!(
                "manifest {digest} has {} layers but its config {} diff ids",
                m.layers.len(),
                config.rootfs.diff_ids.len()
            ));
        }
        let layers = m
            .layers
            .iter()
            .cloned()
            .zip(config.rootfs.diff_ids.iter().map(|d| d.to_string()))
            .collect();
        let arch = config.architecture.clone();
        if out.contains_key(&arch) {
            continue; // variants of one architecture: the first wins
        }
        let accounts = account_files(store, &digest)?;
        out.insert(
            arch,
            BaseArch {
                manifest: digest,
                config,
                layers,
                accounts,
            },
        );
    }
    Ok(out)
}

/// Pulls straight into the store's OCI blobs (the reader verifies size and digest).
struct StoreSink<'a> {
    store: &'a Store,
}

impl BlobSink for StoreSink<'_> {
    fn put(
        &self,
        digest: &crate::oci::Sha256Digest,
        _size: u64,
        reader: &mut dyn Read,
    ) -> std::io::Result<()> {
        if self
            .store
            .has_oci_blob(&StoreDigest::from_bytes(*digest.as_bytes()))
        {
            std::io::copy(reader, &mut std::io::sink())?;
            return Ok(());
        }
        let mut w = self
            .store
            .oci_blob_writer()
            .map_err(std::io::Error::other)?;
        std::io::copy(reader, &mut w)?;
        w.flush()?;
        let (got, _) = w.finish().map_err(std::io::Error::other)?;
        if got.as_bytes() != digest.as_bytes() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("blob {digest} stored as sha256:{}", got.to_hex()),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries() {
        assert!(is_loopback_registry("127.0.0.1:5000"));
        assert!(is_loopback_registry("localhost"));
        assert!(is_loopback_registry("[::1]:5000"));
        assert!(!is_loopback_registry("registry.example:443"));
    }
}
