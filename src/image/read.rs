//! Opening an image where a user has it — an OCI layout directory, an oci-archive or a
//! docker-archive — and reading it back: one [`ImageView`] per (image, architecture), the unpacked
//! root filesystem, or the content of one file. Every blob read is checked against its digest.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::blobs::{Blobs, Container, index_archive};
use super::dpkg;
use super::error::{ImageError, io_err};
use super::extract;
use super::links::resolve_parents;
use super::model::{FileKind, ImageView, LayerView};
use super::scan::{self, KeptFiles, LayerScan, Merged};
use super::walk::{Flow, RawKind, walk_layer};
use crate::oci::layout::REF_NAME_ANNOTATION;
use crate::oci::{Descriptor, ImageConfig, Index, Manifest, media_types};

/// What kind of container an [`ImageSource`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    Layout,
    OciArchive,
    DockerArchive,
    /// A bare directory of blobs (`DIR/sha256/<hex>`, such as the store's), without an index:
    /// images are read by manifest digest.
    BlobStore,
}

/// What [`ImageSource::walk_manifests`] calls for each manifest: `(digest, name, manifest, size)`.
type ManifestVisit<'a> =
    dyn FnMut(&str, Option<&str>, &Manifest, u64) -> Result<(), ImageError> + 'a;

/// One image manifest and its config, read without the layers ([`ImageSource::manifests`]).
#[derive(Debug, Clone)]
pub struct ManifestSummary {
    /// The image name (`org.opencontainers.image.ref.name`), when the index names it.
    pub name: Option<String>,
    /// Manifest digest, `sha256:<hex>`.
    pub digest: String,
    /// Manifest size in bytes (0 for docker-archives, which store no manifest blob).
    pub size: u64,
    pub config: ImageConfig,
}

/// One image of a docker-archive's `manifest.json`.
#[derive(Debug, Clone)]
struct DockerImage {
    config: String,
    repo_tags: Vec<String>,
    /// Blob digest, media type, size per layer.
    layers: Vec<(String, String, u64)>,
}

/// An OCI image layout directory, or an oci-archive / docker-archive tar file.
#[derive(Debug)]
pub struct ImageSource {
    path: PathBuf,
    kind: SourceKind,
    blobs: Blobs,
    docker: Vec<DockerImage>,
}

impl ImageSource {
    /// Opens `path`: a directory is read as an OCI layout; a file as an archive, a docker-archive
    /// when it has a `manifest.json`, else an oci-archive.
    pub fn open(path: &Path) -> Result<ImageSource, ImageError> {
        let md = std::fs::metadata(path).map_err(io_err("open", path))?;
        if md.is_dir() {
            if !path.join("oci-layout").is_file() || !path.join("index.json").is_file() {
                return Err(ImageError::NotAnImage {
                    path: path.to_owned(),
                    reason: "the directory has no `oci-layout` and `index.json`".to_owned(),
                });
            }
            return Ok(ImageSource {
                path: path.to_owned(),
                kind: SourceKind::Layout,
                blobs: Blobs {
                    container: Container::Layout(path.to_owned()),
                    aliases: BTreeMap::new(),
                },
                docker: Vec::new(),
            });
        }
        let members = index_archive(path)?;
        let is_docker = members.contains_key("manifest.json");
        let is_oci = members.contains_key("index.json") && members.contains_key("oci-layout");
        let mut source = ImageSource {
            path: path.to_owned(),
            kind: if is_docker {
                SourceKind::DockerArchive
            } else {
                SourceKind::OciArchive
            },
            blobs: Blobs {
                container: Container::Archive {
                    file: path.to_owned(),
                    members,
                },
                aliases: BTreeMap::new(),
            },
            docker: Vec::new(),
        };
        if is_docker {
            source.read_docker_manifest()?;
        } else if !is_oci {
            return Err(ImageError::NotAnImage {
                path: path.to_owned(),
                reason: "the archive has neither `manifest.json` nor `index.json` and `oci-layout`"
                    .to_owned(),
            });
        }
        Ok(source)
    }

    /// A bare blob directory (`DIR/sha256/<hex>`): the store's OCI blobs. It has no index; read
    /// its images with [`ImageSource::manifest_image`] or [`ImageSource::scanned_image`].
    pub fn blob_store(dir: &Path) -> ImageSource {
        ImageSource {
            path: dir.to_owned(),
            kind: SourceKind::BlobStore,
            blobs: Blobs {
                container: Container::BlobDir(dir.to_owned()),
                aliases: BTreeMap::new(),
            },
            docker: Vec::new(),
        }
    }

    /// The image whose manifest is blob `digest` (`sha256:<hex>`), named `name`, its layers
    /// taken from `scans` (one per layer, bottom first) instead of their blobs; with the contents
    /// of its kept files ([`scan::is_kept`]). `None` when the manifest's config is not an image
    /// config.
    pub fn scanned_image(
        &self,
        digest: &str,
        name: Option<&str>,
        scans: &[LayerScan],
    ) -> Result<Option<(ImageView, KeptFiles)>, ImageError> {
        let manifest = Manifest::from_json(&self.blobs.read_verified(digest, None)?)?;
        self.view(digest, name, &manifest, Some(scans))
    }

    /// The image whose manifest is `digest` (`sha256:<hex>`), named `name`, its layers read from
    /// their blobs; `None` when it is not an image manifest of this source.
    pub fn manifest_image(
        &self,
        digest: &str,
        name: Option<&str>,
    ) -> Result<Option<ImageView>, ImageError> {
        if self.kind == SourceKind::DockerArchive {
            return Ok(self.images()?.into_iter().find(|v| v.digest == digest));
        }
        let manifest = Manifest::from_json(&self.blobs.read_verified(digest, None)?)?;
        Ok(self
            .view(digest, name, &manifest, None)?
            .map(|(view, _)| view))
    }

    /// What this source is.
    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    /// The path it was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every image of the source, one per (image, architecture) manifest, in index order
    /// (nested indexes followed). Artifact manifests whose config is not an image config are
    /// skipped. Docker-archive images are named by their first `RepoTags` entry.
    pub fn images(&self) -> Result<Vec<ImageView>, ImageError> {
        let mut out = Vec::new();
        if self.kind == SourceKind::DockerArchive {
            for img in &self.docker {
                out.push(self.docker_view(img)?);
            }
            return Ok(out);
        }
        let index = self.read_index()?;
        for desc in &index.manifests {
            let name = desc.annotations.get(REF_NAME_ANNOTATION).cloned();
            self.collect(desc, name.as_deref(), 0, &mut out)?;
        }
        Ok(out)
    }

    /// Unpacks every layer of `view`, in order, into `dest` (absent or an empty directory):
    /// whiteouts honoured, modes (setuid, setgid, sticky) set, owners set only when running as
    /// root, device nodes skipped (the view keeps them), symlinks never followed out of `dest`.
    pub fn extract_rootfs(&self, view: &ImageView, dest: &Path) -> Result<(), ImageError> {
        extract::extract(&self.blobs, view, dest)
    }

    /// Every regular file of `view`'s merged root filesystem as its layers write it, bottom layer
    /// first (see [`ImageView::files`] for which write is the last); `visit` gets the path and the
    /// content.
    pub fn visit_files(
        &self,
        view: &ImageView,
        visit: &mut dyn FnMut(&str, &mut dyn std::io::Read) -> Result<(), ImageError>,
    ) -> Result<(), ImageError> {
        extract::visit_files(&self.blobs, view, visit)
    }

    /// The content of the regular file `path` (`usr/bin/x` or `/usr/bin/x`) of the merged root
    /// filesystem, following hardlinks; `None` when absent or not a regular file. Checked against
    /// the sha256 the view records.
    pub fn read_file(&self, view: &ImageView, path: &str) -> Result<Option<Vec<u8>>, ImageError> {
        let key = path.trim_start_matches('/').trim_end_matches('/');
        let Some(entry) = view.files.get(key) else {
            return Ok(None);
        };
        let (key, layers): (String, Vec<usize>) = match &entry.kind {
            FileKind::File => (key.to_owned(), vec![entry.layer]),
            // The link's content is its target's as the link was made: the target may have been
            // replaced or deleted since, so search the link's layer and the ones below it.
            FileKind::Hardlink { target } => (target.clone(), (0..=entry.layer).rev().collect()),
            _ => return Ok(None),
        };
        let Some(sha) = entry.sha256.clone() else {
            return Ok(None);
        };
        let mut mismatch = None;
        for index in layers {
            let layer = view
                .layers
                .get(index)
                .ok_or_else(|| ImageError::ForeignView {
                    digest: view.digest.clone(),
                    container: self.path.clone(),
                })?;
            match self.find_content(view, layer, &key, &sha)? {
                (Some(bytes), _) => return Ok(Some(bytes)),
                (None, true) => mismatch = Some(layer.digest.clone()),
                (None, false) => {}
            }
        }
        Err(match mismatch {
            Some(digest) => ImageError::ContentMismatch { path: key, digest },
            None => ImageError::ForeignView {
                digest: view.digest.clone(),
                container: self.path.clone(),
            },
        })
    }

    /// The content of the regular file entry of `layer` that lands at `key` with digest `sha`; also
    /// whether an entry at `key` with other content was seen.
    fn find_content(
        &self,
        view: &ImageView,
        layer: &LayerView,
        key: &str,
        sha: &str,
    ) -> Result<(Option<Vec<u8>>, bool), ImageError> {
        let mut found: Option<Vec<u8>> = None;
        let mut mismatch = false;
        walk_layer(&self.blobs, layer, &mut |raw, reader| {
            if raw.kind != RawKind::File {
                return Ok(Flow::Continue);
            }
            let resolved = resolve_parents(&raw.path, &view.files).map(|(p, _)| p);
            if resolved.as_deref().ok() != Some(key) {
                return Ok(Flow::Continue);
            }
            let mut buf = Vec::with_capacity(usize::try_from(raw.size).unwrap_or(0));
            reader
                .read_to_end(&mut buf)
                .map_err(|source| ImageError::LayerRead {
                    digest: layer.digest.clone(),
                    source,
                })?;
            if sha256_str(&buf) == sha {
                found = Some(buf);
                return Ok(Flow::Stop);
            }
            mismatch = true;
            Ok(Flow::Continue)
        })?;
        Ok((found, mismatch))
    }

    /// `index.json` of the layout or oci-archive.
    fn read_index(&self) -> Result<Index, ImageError> {
        let bytes = match &self.blobs.container {
            Container::Layout(dir) => {
                let p = dir.join("index.json");
                std::fs::read(&p).map_err(io_err("read", &p))?
            }
            Container::BlobDir(_) => {
                return Err(ImageError::NotAnImage {
                    path: self.path.clone(),
                    reason: "a blob directory has no `index.json`".to_owned(),
                });
            }
            Container::Archive { .. } => {
                self.blobs
                    .read_member("index.json")?
                    .ok_or_else(|| ImageError::NotAnImage {
                        path: self.path.clone(),
                        reason: "no `index.json`".to_owned(),
                    })?
            }
        };
        Ok(Index::from_json(&bytes)?)
    }

    /// Every image manifest of the source with its config, without reading any layer (what
    /// provenance and referring artifacts need). Docker-archives, which have no manifest blobs,
    /// are read whole.
    pub fn manifests(&self) -> Result<Vec<ManifestSummary>, ImageError> {
        if self.kind == SourceKind::DockerArchive {
            return Ok(self
                .images()?
                .into_iter()
                .map(|v| ManifestSummary {
                    name: v.name,
                    digest: v.digest,
                    size: 0,
                    config: v.config,
                })
                .collect());
        }
        let index = self.read_index()?;
        let mut out = Vec::new();
        for desc in &index.manifests {
            let name = desc.annotations.get(REF_NAME_ANNOTATION).cloned();
            self.walk_manifests(
                desc,
                name.as_deref(),
                0,
                &mut |digest, name, manifest, size| {
                    let cfg_type = manifest.config.media_type.as_str();
                    if cfg_type != media_types::CONFIG && cfg_type != media_types::DOCKER_CONFIG {
                        return Ok(());
                    }
                    let config = ImageConfig::from_json(&self.blobs.read_verified(
                        &manifest.config.digest.to_string(),
                        Some(manifest.config.size),
                    )?)?;
                    out.push(ManifestSummary {
                        name: name.map(str::to_owned),
                        digest: digest.to_owned(),
                        size,
                        config,
                    });
                    Ok(())
                },
            )?;
        }
        Ok(out)
    }

    /// Follows `desc` down to image manifests.
    fn collect(
        &self,
        desc: &Descriptor,
        name: Option<&str>,
        depth: usize,
        out: &mut Vec<ImageView>,
    ) -> Result<(), ImageError> {
        self.walk_manifests(desc, name, depth, &mut |digest, name, manifest, _| {
            if let Some((view, _)) = self.view(digest, name, manifest, None)? {
                out.push(view);
            }
            Ok(())
        })
    }

    /// Calls `found(digest, name, manifest, size)` for every manifest below `desc` (indexes
    /// followed, at most 8 deep).
    fn walk_manifests(
        &self,
        desc: &Descriptor,
        name: Option<&str>,
        depth: usize,
        found: &mut ManifestVisit<'_>,
    ) -> Result<(), ImageError> {
        if depth > 8 {
            return Err(ImageError::NotAnImage {
                path: self.path.clone(),
                reason: format!("indexes nested too deep at {}", desc.digest),
            });
        }
        let digest = desc.digest.to_string();
        if media_types::is_index(&desc.media_type) {
            let bytes = self.blobs.read_verified(&digest, Some(desc.size))?;
            let index = Index::from_json(&bytes)?;
            for child in &index.manifests {
                self.walk_manifests(child, name, depth + 1, found)?;
            }
        } else if media_types::is_manifest(&desc.media_type) {
            let bytes = self.blobs.read_verified(&digest, Some(desc.size))?;
            let manifest = Manifest::from_json(&bytes)?;
            found(&digest, name, &manifest, desc.size)?;
        }
        Ok(())
    }

    /// The view of one image manifest; `None` for a manifest whose config is not an image config.
    fn view(
        &self,
        digest: &str,
        name: Option<&str>,
        manifest: &Manifest,
        scans: Option<&[LayerScan]>,
    ) -> Result<Option<(ImageView, KeptFiles)>, ImageError> {
        let cfg_type = manifest.config.media_type.as_str();
        if cfg_type != media_types::CONFIG && cfg_type != media_types::DOCKER_CONFIG {
            return Ok(None);
        }
        let layers: Vec<(String, String, u64)> = manifest
            .layers
            .iter()
            .map(|l| (l.digest.to_string(), l.media_type.clone(), l.size))
            .collect();
        let config_bytes = self.blobs.read_verified(
            &manifest.config.digest.to_string(),
            Some(manifest.config.size),
        )?;
        self.build_view(
            digest,
            name.map(str::to_owned),
            manifest.annotations.clone(),
            &config_bytes,
            &layers,
            scans,
        )
        .map(Some)
    }

    /// Reads the views' shared parts: config, layers, merged files, packages — the layers from
    /// their blobs, or from `scans` when given. Also returns the contents of the kept files
    /// ([`scan::is_kept`]).
    fn build_view(
        &self,
        digest: &str,
        name: Option<String>,
        annotations: BTreeMap<String, String>,
        config_bytes: &[u8],
        layers: &[(String, String, u64)],
        scans: Option<&[LayerScan]>,
    ) -> Result<(ImageView, KeptFiles), ImageError> {
        let config = ImageConfig::from_json(config_bytes)?;
        if config.rootfs.diff_ids.len() != layers.len() {
            return Err(ImageError::LayerCountMismatch {
                digest: digest.to_owned(),
                layers: layers.len(),
                diff_ids: config.rootfs.diff_ids.len(),
            });
        }
        let mut created_by = config
            .history
            .iter()
            .filter(|h| !h.empty_layer)
            .map(|h| h.created_by.clone());
        let mut views: Vec<LayerView> = layers
            .iter()
            .zip(&config.rootfs.diff_ids)
            .map(|((d, mt, size), diff_id)| LayerView {
                digest: d.clone(),
                media_type: mt.clone(),
                size: *size,
                diff_id: diff_id.to_string(),
                content_size: 0,
                created_by: created_by.next().flatten(),
                paths: Vec::new(),
                deletions: Vec::new(),
            })
            .collect();
        let (files, captured) = match scans {
            Some(scans) => scan::merge_scans(&mut views, scans)?,
            None => merge_layers(&self.blobs, &mut views)?,
        };
        let packages = dpkg::packages(&captured, &files);
        let view = ImageView {
            name,
            digest: digest.to_owned(),
            annotations,
            config,
            layers: views,
            files,
            packages,
        };
        Ok((view, captured))
    }

    /// Reads docker's `manifest.json` and registers where its configs and layers are.
    fn read_docker_manifest(&mut self) -> Result<(), ImageError> {
        let bytes = self.blobs.read_member("manifest.json")?.unwrap_or_default();
        let entries: Vec<serde_json::Value> =
            serde_json::from_slice(&bytes).map_err(|source| ImageError::Json {
                what: format!("`manifest.json` of `{}`", self.path.display()),
                source,
            })?;
        for entry in entries {
            let bad = |what: &str| ImageError::NotAnImage {
                path: self.path.clone(),
                reason: format!("`manifest.json` entry without {what}"),
            };
            let config_path = clean(entry["Config"].as_str().ok_or_else(|| bad("`Config`"))?);
            let config_bytes = self
                .blobs
                .read_member(&config_path)?
                .ok_or_else(|| bad("an existing `Config` file"))?;
            let config_digest = sha256_str(&config_bytes);
            if let Some(hex) = path_digest(&config_path)
                && format!("sha256:{hex}") != config_digest
            {
                return Err(ImageError::BlobDigestMismatch {
                    digest: format!("sha256:{hex}"),
                    actual: config_digest,
                    container: self.path.clone(),
                });
            }
            self.blobs
                .aliases
                .insert(config_digest.clone(), config_path.clone());
            let config = ImageConfig::from_json(&config_bytes)?;
            let mut layers = Vec::new();
            let paths = entry["Layers"].as_array().cloned().unwrap_or_default();
            for (i, p) in paths.iter().enumerate() {
                let p = clean(p.as_str().ok_or_else(|| bad("string `Layers`"))?);
                let (offset, size) = self
                    .blobs
                    .member(&p)
                    .ok_or_else(|| bad("existing `Layers` files"))?;
                let _ = offset;
                let media_type = self.sniff_layer(&p)?;
                let digest = match path_digest(&p) {
                    Some(hex) => format!("sha256:{hex}"),
                    None if media_type == media_types::DOCKER_LAYER_TAR => config
                        .rootfs
                        .diff_ids
                        .get(i)
                        .map(ToString::to_string)
                        .ok_or_else(|| bad("as many `Layers` as diff_ids"))?,
                    None => self.hash_member(&p)?,
                };
                self.blobs.aliases.insert(digest.clone(), p);
                layers.push((digest, media_type.to_owned(), size));
            }
            let repo_tags = entry["RepoTags"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            self.docker.push(DockerImage {
                config: config_digest,
                repo_tags,
                layers,
            });
        }
        Ok(())
    }

    /// The view of one docker-archive image: through its OCI manifest when the archive carries
    /// one for the same config (Docker ≥ 25, himg), else from `manifest.json` alone (the image's
    /// digest is then its config digest, Docker's image ID).
    fn docker_view(&self, img: &DockerImage) -> Result<ImageView, ImageError> {
        let name = img.repo_tags.first().cloned();
        if self.blobs.member("index.json").is_some()
            && let Ok(index) = self.read_index()
        {
            let mut candidates = Vec::new();
            for desc in &index.manifests {
                let _ = self.collect_manifests(desc, 0, &mut candidates);
            }
            for (digest, manifest) in candidates {
                if manifest.config.digest.to_string() == img.config {
                    return self
                        .view(&digest, name.as_deref(), &manifest, None)?
                        .map(|(view, _)| view)
                        .ok_or_else(|| ImageError::NotAnImage {
                            path: self.path.clone(),
                            reason: format!("manifest {digest} is not an image"),
                        });
                }
            }
        }
        let config_bytes = self.blobs.read_verified(&img.config, None)?;
        self.build_view(
            &img.config,
            name,
            BTreeMap::new(),
            &config_bytes,
            &img.layers,
            None,
        )
        .map(|(view, _)| view)
    }

    /// All image manifests below `desc` (used to match docker-archive configs).
    fn collect_manifests(
        &self,
        desc: &Descriptor,
        depth: usize,
        out: &mut Vec<(String, Manifest)>,
    ) -> Result<(), ImageError> {
        let digest = desc.digest.to_string();
        if depth > 8 {
            return Ok(());
        }
        if media_types::is_index(&desc.media_type) {
            let index = Index::from_json(&self.blobs.read_verified(&digest, Some(desc.size))?)?;
            for child in &index.manifests {
                self.collect_manifests(child, depth + 1, out)?;
            }
        } else if media_types::is_manifest(&desc.media_type) {
            let m = Manifest::from_json(&self.blobs.read_verified(&digest, Some(desc.size))?)?;
            out.push((digest, m));
        }
        Ok(())
    }

    /// A docker-archive layer's media type from its first bytes.
    fn sniff_layer(&self, member: &str) -> Result<&'static str, ImageError> {
        let mut head = [0u8; 4];
        let (reader, len) = self.member_reader(member)?;
        let n = usize::try_from(len.min(4)).unwrap_or(4);
        reader
            .take(4)
            .read_exact(&mut head[..n])
            .map_err(io_err("read", &self.path))?;
        Ok(match head {
            [0x1f, 0x8b, ..] => media_types::DOCKER_LAYER_TAR_GZIP,
            [0x28, 0xb5, 0x2f, 0xfd] => media_types::DOCKER_LAYER_TAR_ZSTD,
            _ => media_types::DOCKER_LAYER_TAR,
        })
    }

    fn member_reader(&self, member: &str) -> Result<(Box<dyn Read>, u64), ImageError> {
        let Container::Archive { file, .. } = &self.blobs.container else {
            return Err(ImageError::NotAnImage {
                path: self.path.clone(),
                reason: "not an archive".to_owned(),
            });
        };
        let (offset, len) = self
            .blobs
            .member(member)
            .ok_or_else(|| ImageError::BlobMissing {
                digest: member.to_owned(),
                container: self.path.clone(),
            })?;
        let mut f = std::fs::File::open(file).map_err(io_err("open", file))?;
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(offset))
            .map_err(io_err("seek in", file))?;
        Ok((Box::new(std::io::BufReader::new(f).take(len)), len))
    }

    fn hash_member(&self, member: &str) -> Result<String, ImageError> {
        let (mut reader, _) = self.member_reader(member)?;
        let mut h = Sha256::new();
        std::io::copy(&mut reader, &mut h).map_err(io_err("read", &self.path))?;
        Ok(format!("sha256:{}", hex::encode(h.finalize())))
    }
}

/// `sha256:<hex>` of bytes.
pub(crate) fn sha256_str(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// An archive member name normalised like [`index_archive`] does.
fn clean(p: &str) -> String {
    p.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// The hex digest in a `blobs/sha256/<hex>` or `<hex>.json` member name.
fn path_digest(p: &str) -> Option<&str> {
    let name = p.rsplit('/').next()?;
    let hex = name.strip_suffix(".json").unwrap_or(name);
    let digest_shaped =
        hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let in_blobs = p.starts_with("blobs/sha256/") || !p.contains('/');
    (digest_shaped && in_blobs).then_some(hex)
}

/// Scans every layer (without content facts) and merges them.
fn merge_layers(blobs: &Blobs, layers: &mut [LayerView]) -> Result<Merged, ImageError> {
    let scans = layers
        .iter()
        .map(|l| scan::scan_layer(blobs, l, false))
        .collect::<Result<Vec<_>, _>>()?;
    scan::merge_scans(layers, &scans)
}
