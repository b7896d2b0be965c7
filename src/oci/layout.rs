//! Writing finished images where users take them: an OCI image layout directory, an oci-archive
//! tarball, and a docker-archive tarball for `docker load`.
//!
//! An OCI image layout (image-spec `image-layout.md`) as written here:
//!
//! ```text
//! DIR/
//!   oci-layout              {"imageLayoutVersion":"1.0.0"}
//!   index.json              canonical JSON; one descriptor per image, sorted by name,
//!                           annotated org.opencontainers.image.ref.name = NAME
//!   blobs/sha256/<hex>      every blob, hardlinked from the store when possible, else copied
//! ```
//!
//! Updating an existing layout keeps blobs that are still wanted, replaces `index.json`
//! atomically (temporary file + rename), then deletes blob files (digest-shaped names under
//! `blobs/sha256` only) that no image references any more. A non-empty directory without an
//! `oci-layout` file is never written into; the temporary files a killed build left behind
//! (`.oci-layout.tmp-*`, `.index.json.tmp-*`, `blobs/sha256/.tmp-*`) are removed.
//!
//! Hardlinked blobs share their inode with the store: a tool that rewrote a layout blob in
//! place would change the store's copy too (the store should keep its blob files read-only).
//!
//! The archives are deterministic tars (see `tarfmt`) of the same tree with mtime 0 and owner
//! 0:0; a docker-archive adds Docker's `manifest.json` and holds one platform's image.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::digest::Sha256Digest;
use super::layer::{ContentSource, EntryKind, LayerEntry, plan, write_tar};
use super::manifest::{Descriptor, Index, Manifest, Platform, media_types};
use super::{OciError, canonical_json, io_err};

/// The content of the `oci-layout` file.
pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// The annotation naming an image in an OCI layout's `index.json`.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// A blob that already exists on disk (in the store).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub digest: Sha256Digest,
    pub size: u64,
    pub path: PathBuf,
}

/// An image to write: its name, its top descriptor and all its blobs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedImage {
    /// The ref name in the layout (`app`, `app:1.2`, `latest`, …); for a docker-archive the
    /// repository tag (`:latest` is added when it has no tag).
    pub name: String,
    /// The descriptor of the image manifest, or of the image index if multi-platform.
    pub top: Descriptor,
    /// Every blob reachable from `top` (layers, configs, manifests, the index); more are allowed
    /// and are kept too. Manifests and indexes are read back from here to find the rest.
    pub blobs: Vec<Blob>,
}

/// Writes (or updates) the OCI image layout `dir` to hold exactly `images`.
pub fn write_layout(dir: &Path, images: &[NamedImage]) -> Result<(), OciError> {
    let sorted = sorted_images(images)?;
    let blobs = collect_blobs(images)?;
    for img in &sorted {
        check_closure(img, &blobs)?;
    }
    let blob_dir = prepare_layout(dir)?;
    for blob in blobs.values() {
        place_blob(blob, &blob_dir)?;
    }
    // A rebuild that changed nothing leaves `index.json` alone (no new file, no fsync).
    let index_path = dir.join("index.json");
    let index = layout_index(&sorted)?;
    let unchanged = fs::metadata(&index_path)
        .is_ok_and(|md| md.is_file() && md.permissions().mode() & 0o7777 == 0o644)
        && fs::read(&index_path).ok().as_deref() == Some(index.as_slice());
    if !unchanged {
        write_atomic(&index_path, &index)?;
    }

    // Garbage: digest-named regular files that no image wants any more.
    let entries = fs::read_dir(&blob_dir).map_err(io_err("list directory", &blob_dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err("list directory", &blob_dir))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        let Ok(digest) = Sha256Digest::from_hex(&name) else {
            continue;
        };
        let path = entry.path();
        let is_file = entry
            .file_type()
            .map_err(io_err("inspect", &path))?
            .is_file();
        if is_file && !blobs.contains_key(&digest) {
            fs::remove_file(&path).map_err(io_err("remove stale blob", &path))?;
        }
    }
    Ok(())
}

/// Makes `dir` ready to receive blobs before its images are known (a pull writes them as they
/// arrive): creates it, or checks that it is empty or an OCI layout; writes its `oci-layout`
/// marker; removes what interrupted writes left. Returns its blob directory `dir/blobs/sha256`.
pub fn prepare_layout(dir: &Path) -> Result<PathBuf, OciError> {
    prepare_layout_dir(dir)?;
    let layout_file = dir.join("oci-layout");
    if fs::read(&layout_file).ok().as_deref() != Some(OCI_LAYOUT) {
        write_atomic(&layout_file, OCI_LAYOUT)?;
    }
    let blob_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blob_dir).map_err(io_err("create directory", &blob_dir))?;
    // Fixed modes, whatever the umask: the layout itself is reproducible, not only its digests.
    for d in [dir.join("blobs"), blob_dir.clone()] {
        set_mode(&d, 0o755)?;
    }
    remove_leftovers(dir, ".index.json.tmp-")?;
    remove_leftovers(&blob_dir, ".tmp-")?;
    Ok(blob_dir)
}

/// The temporary file a blob is written to in the blob directory `blob_dir` before it is renamed
/// to its digest (a `.tmp-*` name: the next [`prepare_layout`] removes it if it stays behind).
pub fn blob_temp_path(blob_dir: &Path, digest: &Sha256Digest) -> PathBuf {
    blob_dir.join(format!(".tmp-{}-{}", digest.hex(), std::process::id()))
}

/// Writes an oci-archive: a deterministic tar of the OCI layout holding `images`.
pub fn write_oci_archive(file: &Path, images: &[NamedImage]) -> Result<(), OciError> {
    let sorted = sorted_images(images)?;
    let blobs = collect_blobs(images)?;
    for img in &sorted {
        check_closure(img, &blobs)?;
    }
    let mut archive = ArchiveContent::default();
    archive.add_bytes("/oci-layout", OCI_LAYOUT.to_vec());
    archive.add_bytes("/index.json", layout_index(&sorted)?);
    for blob in blobs.values() {
        archive.add_blob(blob)?;
    }
    archive.write_to(file)
}

/// Writes a docker-archive (`docker load -i FILE`, `podman load`, `skopeo … docker-archive:`)
/// of one platform of `image`: `manifest.json` plus the blobs, and an `oci-layout` and
/// `index.json` as Docker ≥ 25 writes them.
///
/// `arch` selects the manifest of a multi-platform image (required when it has several); for a
/// single-platform image it is checked against the config when given. Layers must be gzip or
/// uncompressed.
pub fn write_docker_archive(
    file: &Path,
    image: &NamedImage,
    arch: Option<&str>,
) -> Result<(), OciError> {
    write_docker_archive_tagged(file, image, &[], arch)
}

/// [`write_docker_archive`] with the image under each of `tags` (Docker references, see
/// [`docker_tag`]) instead of its name; `tags` empty: under its name.
pub fn write_docker_archive_tagged(
    file: &Path,
    image: &NamedImage,
    tags: &[String],
    arch: Option<&str>,
) -> Result<(), OciError> {
    let mut repo_tags = if tags.is_empty() {
        vec![docker_tag(&image.name)?]
    } else {
        tags.iter()
            .map(|t| docker_tag(t))
            .collect::<Result<Vec<_>, _>>()?
    };
    repo_tags.sort();
    repo_tags.dedup();
    let blobs = collect_blobs(std::slice::from_ref(image))?;
    check_closure(image, &blobs)?;

    let manifest_desc = select_platform(image, &blobs, arch)?;
    let manifest = Manifest::from_json(&read_json_blob(&image.name, &manifest_desc, &blobs)?)?;
    if let (Some(arch), false) = (arch, media_types::is_index(&image.top.media_type)) {
        let cfg: serde_json::Value =
            serde_json::from_slice(&read_json_blob(&image.name, &manifest.config, &blobs)?)
                .map_err(|source| OciError::Json {
                    what: format!("config {}", manifest.config.digest),
                    source,
                })?;
        let have = cfg["architecture"].as_str().unwrap_or_default();
        if have != arch {
            return Err(OciError::PlatformNotFound {
                image: image.name.clone(),
                wanted: arch.to_owned(),
                available: have.to_owned(),
            });
        }
    }
    for layer in &manifest.layers {
        if !media_types::is_docker_loadable_layer(&layer.media_type) {
            return Err(OciError::DockerArchiveCompression {
                digest: layer.digest,
                media_type: layer.media_type.clone(),
            });
        }
    }

    let blob_path = |d: &Sha256Digest| format!("blobs/sha256/{}", d.hex());
    let docker_manifest = serde_json::json!([{
        "Config": blob_path(&manifest.config.digest),
        "RepoTags": repo_tags,
        "Layers": manifest.layers.iter().map(|l| blob_path(&l.digest)).collect::<Vec<_>>(),
    }]);
    // The full `repo:tag` as ref name: podman names a loaded archive after its index.json, and a
    // bare tag would load as `localhost/latest`; docker reads `RepoTags` from manifest.json.
    let index_descs = repo_tags
        .iter()
        .map(|t| Descriptor {
            annotations: BTreeMap::from([(REF_NAME_ANNOTATION.to_owned(), t.clone())]),
            ..manifest_desc.clone()
        })
        .collect();

    let mut archive = ArchiveContent::default();
    archive.add_bytes("/oci-layout", OCI_LAYOUT.to_vec());
    archive.add_bytes("/index.json", canonical_json(&Index::new(index_descs))?);
    archive.add_bytes("/manifest.json", canonical_json(&docker_manifest)?);
    let wanted = std::iter::once(&manifest_desc)
        .chain(std::iter::once(&manifest.config))
        .chain(&manifest.layers);
    for desc in wanted {
        let blob = blobs
            .get(&desc.digest)
            .ok_or_else(|| OciError::BlobMissing {
                image: image.name.clone(),
                digest: desc.digest,
            })?;
        archive.add_blob(blob)?;
    }
    archive.write_to(file)
}

/// The images sorted by name, names validated and unique.
fn sorted_images(images: &[NamedImage]) -> Result<Vec<&NamedImage>, OciError> {
    let mut sorted: Vec<&NamedImage> = images.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for pair in sorted.windows(2) {
        if pair[0].name == pair[1].name {
            return Err(OciError::DuplicateImageName {
                name: pair[0].name.clone(),
            });
        }
    }
    for img in &sorted {
        validate_ref_name(&img.name)?;
    }
    Ok(sorted)
}

/// `index.json` of a layout: the images' top descriptors with their ref names.
fn layout_index(sorted: &[&NamedImage]) -> Result<Vec<u8>, OciError> {
    let manifests = sorted
        .iter()
        .map(|img| {
            img.top
                .clone()
                .with_annotation(REF_NAME_ANNOTATION, img.name.clone())
        })
        .collect();
    canonical_json(&Index::new(manifests))
}

/// All blobs of all images by digest; the same digest must always have the same size.
fn collect_blobs(images: &[NamedImage]) -> Result<BTreeMap<Sha256Digest, &Blob>, OciError> {
    let mut all: BTreeMap<Sha256Digest, &Blob> = BTreeMap::new();
    for blob in images.iter().flat_map(|i| &i.blobs) {
        if let Some(prev) = all.insert(blob.digest, blob)
            && prev.size != blob.size
        {
            return Err(OciError::ConflictingBlob {
                digest: blob.digest,
                first: prev.size,
                second: blob.size,
            });
        }
    }
    Ok(all)
}

/// Checks that everything reachable from the image's top descriptor is provided with the size
/// its descriptor says, reading (and hash-checking) manifests and indexes on the way.
fn check_closure(img: &NamedImage, blobs: &BTreeMap<Sha256Digest, &Blob>) -> Result<(), OciError> {
    let mut stack = vec![img.top.clone()];
    while let Some(desc) = stack.pop() {
        let blob = blobs
            .get(&desc.digest)
            .ok_or_else(|| OciError::BlobMissing {
                image: img.name.clone(),
                digest: desc.digest,
            })?;
        if blob.size != desc.size {
            return Err(OciError::ConflictingBlob {
                digest: desc.digest,
                first: blob.size,
                second: desc.size,
            });
        }
        if media_types::is_index(&desc.media_type) {
            let index = Index::from_json(&read_json_blob(&img.name, &desc, blobs)?)?;
            stack.extend(index.manifests);
        } else if media_types::is_manifest(&desc.media_type) {
            let m = Manifest::from_json(&read_json_blob(&img.name, &desc, blobs)?)?;
            stack.push(m.config);
            stack.extend(m.layers);
        }
    }
    Ok(())
}

/// Reads a small JSON blob (manifest, index, config) and checks its size and digest.
fn read_json_blob(
    image: &str,
    desc: &Descriptor,
    blobs: &BTreeMap<Sha256Digest, &Blob>,
) -> Result<Vec<u8>, OciError> {
    let blob = blobs
        .get(&desc.digest)
        .ok_or_else(|| OciError::BlobMissing {
            image: image.to_owned(),
            digest: desc.digest,
        })?;
    let bytes = fs::read(&blob.path).map_err(io_err("read blob", &blob.path))?;
    if bytes.len() as u64 != desc.size {
        return Err(OciError::BlobSizeMismatch {
            digest: desc.digest,
            path: blob.path.clone(),
            expected: desc.size,
            actual: bytes.len() as u64,
        });
    }
    if Sha256Digest::of(&bytes) != desc.digest {
        return Err(OciError::BlobDigestMismatch {
            digest: desc.digest,
            path: blob.path.clone(),
        });
    }
    Ok(bytes)
}

/// The manifest descriptor for `arch` (see [`write_docker_archive`]).
fn select_platform(
    image: &NamedImage,
    blobs: &BTreeMap<Sha256Digest, &Blob>,
    arch: Option<&str>,
) -> Result<Descriptor, OciError> {
    if media_types::is_manifest(&image.top.media_type) {
        return Ok(image.top.clone());
    }
    if !media_types::is_index(&image.top.media_type) {
        return Err(OciError::UnexpectedMediaType {
            digest: image.top.digest,
            media_type: image.top.media_type.clone(),
            expected: "an image manifest or index",
        });
    }
    let index = Index::from_json(&read_json_blob(&image.name, &image.top, blobs)?)?;
    let candidates: Vec<&Descriptor> = index
        .manifests
        .iter()
        .filter(|d| media_types::is_manifest(&d.media_type))
        .collect();
    let chosen: Vec<&&Descriptor> = match arch {
        Some(a) => candidates
            .iter()
            .filter(|d| {
                d.platform
                    .as_ref()
                    .is_some_and(|p| p.architecture == a && p.os == "linux")
            })
            .collect(),
        None => candidates.iter().collect(),
    };
    match chosen.as_slice() {
        [one] => Ok((**one).clone()),
        _ => Err(OciError::PlatformNotFound {
            image: image.name.clone(),
            wanted: arch.map_or_else(|| "a single platform".to_owned(), |a| format!("linux/{a}")),
            available: candidates
                .iter()
                .map(|d| {
                    d.platform
                        .as_ref()
                        .map_or_else(|| "?".to_owned(), Platform::to_string)
                })
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Creates `dir`, or checks that it is empty or an OCI layout.
fn prepare_layout_dir(dir: &Path) -> Result<(), OciError> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
            set_mode(dir, 0o755)
        }
        Err(e) => Err(io_err("inspect", dir)(e)),
        Ok(md) if !md.is_dir() => Err(OciError::NotAnOciLayout {
            dir: dir.to_owned(),
            reason: "it exists and is not a directory".to_owned(),
        }),
        Ok(_) => {
            // A build killed while writing the marker leaves only its temporary file: that
            // directory is ours and still empty.
            let mut empty = true;
            for entry in fs::read_dir(dir).map_err(io_err("list directory", dir))? {
                let entry = entry.map_err(io_err("list directory", dir))?;
                let name = entry.file_name();
                if name.to_string_lossy().starts_with(".oci-layout.tmp-") && entry.path().is_file()
                {
                    let path = entry.path();
                    fs::remove_file(&path).map_err(io_err("remove leftover", &path))?;
                } else {
                    empty = false;
                }
            }
            if empty {
                return Ok(());
            }
            let layout = dir.join("oci-layout");
            let bytes = match fs::read(&layout) {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(OciError::NotAnOciLayout {
                        dir: dir.to_owned(),
                        reason: "it is not empty and has no `oci-layout` file".to_owned(),
                    });
                }
                Err(e) => return Err(io_err("read", layout)(e)),
            };
            let version = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["imageLayoutVersion"].as_str().map(str::to_owned));
            match version {
                Some(v) if v.starts_with("1.") => Ok(()),
                Some(v) => Err(OciError::NotAnOciLayout {
                    dir: dir.to_owned(),
                    reason: format!("its `oci-layout` has unsupported imageLayoutVersion `{v}`"),
                }),
                None => Err(OciError::NotAnOciLayout {
                    dir: dir.to_owned(),
                    reason: "its `oci-layout` file is not an OCI layout marker".to_owned(),
                }),
            }
        }
    }
}

/// Removes the temporary files (`prefix*`) that an interrupted write left in `dir`, a directory
/// known to be an OCI layout (or its blob directory).
fn remove_leftovers(dir: &Path, prefix: &str) -> Result<(), OciError> {
    for entry in fs::read_dir(dir).map_err(io_err("list directory", dir))? {
        let entry = entry.map_err(io_err("list directory", dir))?;
        let path = entry.path();
        let ours = entry.file_name().to_string_lossy().starts_with(prefix);
        if ours && entry.file_type().is_ok_and(|t| t.is_file()) {
            fs::remove_file(&path).map_err(io_err("remove leftover", &path))?;
        }
    }
    Ok(())
}

/// Puts `blob` at `blob_dir/<hex>`: skipped when the file there is `blob.path` itself (a hard
/// link made earlier) or a copy with the right size and digest, else hardlinked, else copied
/// through a temporary file; sizes are verified. (The caller checks `blob.path`'s digest.)
fn place_blob(blob: &Blob, blob_dir: &Path) -> Result<(), OciError> {
    use std::os::unix::fs::MetadataExt as _;
    let target = blob_dir.join(blob.digest.hex());
    match fs::symlink_metadata(&target) {
        Ok(md) if md.is_file() && md.len() == blob.size => {
            let linked = fs::metadata(&blob.path)
                .is_ok_and(|src| (src.dev(), src.ino()) == (md.dev(), md.ino()));
            // A file left by an earlier build that is no longer the store's (the store's was
            // damaged and replaced, or this is a copy): kept only if its bytes are right.
            if linked || file_sha256_hex(&target).is_ok_and(|h| h == blob.digest.hex()) {
                return Ok(());
            }
            fs::remove_file(&target).map_err(io_err("remove wrong blob", &target))?;
        }
        Ok(_) => fs::remove_file(&target).map_err(io_err("remove wrong blob", &target))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err("inspect", &target)(e)),
    }
    check_blob_size(blob)?;
    if fs::hard_link(&blob.path, &target).is_ok() {
        return Ok(());
    }
    let tmp = blob_temp_path(blob_dir, &blob.digest);
    let copied = fs::copy(&blob.path, &tmp).map_err(io_err("copy blob to", &tmp))?;
    if copied != blob.size {
        let _ = fs::remove_file(&tmp);
        return Err(OciError::BlobSizeMismatch {
            digest: blob.digest,
            path: blob.path.clone(),
            expected: blob.size,
            actual: copied,
        });
    }
    fs::rename(&tmp, &target).map_err(io_err("rename into place", &target))
}

/// The SHA-256 of a file's bytes, in hex.
fn file_sha256_hex(path: &Path) -> io::Result<String> {
    use sha2::Digest as _;
    let mut f = fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    io::copy(&mut f, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

fn check_blob_size(blob: &Blob) -> Result<(), OciError> {
    let md = fs::metadata(&blob.path).map_err(io_err("inspect blob", &blob.path))?;
    if !md.is_file() || md.len() != blob.size {
        return Err(OciError::BlobSizeMismatch {
            digest: blob.digest,
            path: blob.path.clone(),
            expected: blob.size,
            actual: md.len(),
        });
    }
    Ok(())
}

/// Sets a directory's or file's permission bits.
fn set_mode(path: &Path, mode: u32) -> Result<(), OciError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io_err("set permissions of", path))
}

/// Writes `bytes` to `path` through a synced temporary file in the same directory and a rename.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OciError> {
    let tmp = tmp_sibling(path);
    let result = (|| {
        let mut f = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(io_err("set permissions of", &tmp))?;
        f.sync_all().map_err(io_err("sync", &tmp))?;
        fs::rename(&tmp, path).map_err(io_err("rename into place", path))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn tmp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// The files of an archive: generated bytes or blobs on disk, keyed by absolute path.
#[derive(Default)]
struct ArchiveContent {
    items: BTreeMap<String, ArchiveItem>,
}

enum ArchiveItem {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl ArchiveContent {
    fn add_bytes(&mut self, path: &str, bytes: Vec<u8>) {
        self.items
            .insert(path.to_owned(), ArchiveItem::Bytes(bytes));
    }

    fn add_blob(&mut self, blob: &Blob) -> Result<(), OciError> {
        check_blob_size(blob)?;
        self.items.insert(
            format!("/blobs/sha256/{}", blob.digest.hex()),
            ArchiveItem::File(blob.path.clone()),
        );
        Ok(())
    }

    /// Writes the tar (mtime 0, owner 0:0, files 0o644, directories 0o755) to a temporary file
    /// beside `file`, then renames it into place.
    fn write_to(&self, file: &Path) -> Result<(), OciError> {
        let mut entries = Vec::with_capacity(self.items.len());
        for (path, item) in &self.items {
            let size = match item {
                ArchiveItem::Bytes(b) => b.len() as u64,
                ArchiveItem::File(p) => fs::metadata(p).map_err(io_err("inspect", p))?.len(),
            };
            entries.push(LayerEntry {
                path: path.clone(),
                kind: EntryKind::File { size },
                mode: 0o644,
                uid: 0,
                gid: 0,
            });
        }
        let planned = plan(&entries)?;
        let tmp = tmp_sibling(file);
        let result = (|| {
            let f = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
            let mut w = io::BufWriter::with_capacity(256 * 1024, f);
            write_tar(&planned, self, 0, &mut w)?;
            let f = w
                .into_inner()
                .map_err(|e| io_err("write", &tmp)(e.into_error()))?;
            f.sync_all().map_err(io_err("sync", &tmp))?;
            fs::rename(&tmp, file).map_err(io_err("rename into place", file))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }
}

impl ContentSource for ArchiveContent {
    fn open(&self, entry: &LayerEntry) -> io::Result<Box<dyn Read + '_>> {
        match self.items.get(&entry.path) {
            Some(ArchiveItem::Bytes(b)) => Ok(Box::new(b.as_slice())),
            Some(ArchiveItem::File(p)) => Ok(Box::new(fs::File::open(p)?)),
            None => Err(io::Error::new(io::ErrorKind::NotFound, entry.path.clone())),
        }
    }
}

/// Checks an OCI layout ref name against image-spec's grammar:
/// `component ("/" component)*`, `component = alphanum (separator alphanum)*`,
/// `alphanum = [A-Za-z0-9]+`, `separator = [-._:@+] | "--"`.
pub fn validate_ref_name(name: &str) -> Result<(), OciError> {
    let fail = |reason| {
        Err(OciError::InvalidRefName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return fail("empty");
    }
    for comp in name.split('/') {
        let bytes = comp.as_bytes();
        let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
            return fail("empty component");
        };
        if !first.is_ascii_alphanumeric() || !last.is_ascii_alphanumeric() {
            return fail("each `/`-separated component must start and end with a letter or digit");
        }
        let mut run = String::new();
        for &b in bytes {
            if b.is_ascii_alphanumeric() {
                if !(run.is_empty() || run.len() == 1 || run == "--") {
                    return fail("separators are single `-._:@+` characters or `--`");
                }
                run.clear();
            } else if b"-._:@+".contains(&b) {
                run.push(char::from(b));
            } else {
                return fail("only letters, digits, `/` and `-._:@+` are allowed");
            }
        }
    }
    Ok(())
}

/// A Docker reference split for `manifest.json`.
#[derive(Debug)]
struct DockerRef {
    /// As the user wrote it, without tag: `app`, `registry.example:5000/org/app`.
    repo: String,
    tag: String,
}

impl DockerRef {
    fn parse(name: &str) -> Result<Self, OciError> {
        let fail = |reason| {
            Err(OciError::InvalidRefName {
                name: name.to_owned(),
                reason,
            })
        };
        if name.contains('@') {
            return fail("a docker-archive needs a tag, not a digest reference");
        }
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match name[last_slash..].rfind(':') {
            Some(i) => (&name[..last_slash + i], &name[last_slash + i + 1..]),
            None => (name, "latest"),
        };
        let tag_ok = tag.len() <= 128
            && tag
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
            && tag
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !tag_ok {
            return fail("a tag is `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`");
        }
        if repo.len() > 255 {
            return fail("a repository name is at most 255 characters");
        }
        let comps: Vec<&str> = repo.split('/').collect();
        let path_start = usize::from(comps.len() > 1 && is_domain(comps[0]));
        if path_start == 1 && !domain_ok(comps[0]) {
            return fail(
                "a registry host is `HOST[:PORT]`: `.`-separated letters, digits and inner `-`, then an optional port number",
            );
        }
        if !comps[path_start..].iter().all(|c| path_component_ok(c)) {
            return fail(
                "a repository path component is lowercase letters and digits, separated by one `.`, one or two `_`, or `-`s",
            );
        }
        Ok(Self {
            repo: repo.to_owned(),
            tag: tag.to_owned(),
        })
    }

    /// `repo:tag` for `RepoTags`.
    fn repo_tag(&self) -> String {
        format!("{}:{}", self.repo, self.tag)
    }
}

/// A Docker reference `[HOST[:PORT]/]PATH[:TAG]` checked against the reference grammar of
/// Docker's distribution (`reference.go`); returns it as `REPO:TAG` (`:latest` when untagged).
pub fn docker_tag(name: &str) -> Result<String, OciError> {
    DockerRef::parse(name).map(|r| r.repo_tag())
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn path_component_ok(comp: &str) -> bool {
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = comp.as_bytes();
    if !(bytes.first().is_some_and(alnum) && bytes.last().is_some_and(alnum)) {
        return false;
    }
    let mut run = String::new();
    for b in bytes {
        if alnum(b) {
            let sep_ok = run.is_empty()
                || [".", "_", "__"].contains(&run.as_str())
                || run.bytes().all(|c| c == b'-');
            if !sep_ok {
                return false;
            }
            run.clear();
        } else if b"._-".contains(b) {
            run.push(char::from(*b));
        } else {
            return false;
        }
    }
    true
}

/// `label(.label)*(:port)?` where a label is letters, digits and inner `-`.
fn domain_ok(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (domain, None),
    };
    let label_ok = |l: &str| {
        let b = l.as_bytes();
        b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
    };
    host.split('.').all(label_ok)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// Docker's rule: a first component with `.` or `:`, or `localhost`, is a registry host.
fn is_domain(comp: &str) -> bool {
    comp.contains('.') || comp.contains(':') || comp == "localhost"
}

#[cfg(test)]
mod tests;
