//! The environment of a build: an image's root filesystem, extracted once per image manifest into
//! `<store>/build-roots/<sha256>/rootfs` and shared, read-only, by every build that runs in it.
//! Extraction goes to a temporary directory renamed into place when complete, so a crash or a
//! concurrent build never leaves a half-extracted root behind a valid name. An empty
//! `/etc/resolv.conf` is added when the image has none, for the host's to be bound over it in
//! builds that have the network.

use std::path::PathBuf;

use himg_store::{Sha256Digest, Store};

use super::{BuildError, io_err};

/// The directory under the store that holds extracted environments.
pub const ROOTS_DIR: &str = "build-roots";

/// The extracted root filesystem of the image whose manifest is `manifest` (in the store's OCI
/// blobs), extracting it on first use.
pub fn environment_root(store: &Store, manifest: &Sha256Digest) -> Result<PathBuf, BuildError> {
    let roots = store.root().join(ROOTS_DIR);
    let done = roots.join(manifest.to_hex());
    if done.join("rootfs").is_dir() {
        return Ok(done.join("rootfs"));
    }
    std::fs::create_dir_all(&roots).map_err(io_err(&roots))?;
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(&roots)
        .map_err(io_err(&roots))?;
    let _guard = crate::interrupt::guard(tmp.path());
    let digest = format!("sha256:{}", manifest.to_hex());
    let environment = |problem: String| BuildError::Environment {
        manifest: digest.clone(),
        problem,
    };
    let source = crate::image::ImageSource::blob_store(&store.oci_dir());
    let view = source
        .manifest_image(&digest, None)?
        .ok_or_else(|| environment("is not an image manifest".into()))?;
    let rootfs = tmp.path().join("rootfs");
    source.extract_rootfs(&view, &rootfs)?;
    // A fetch (a build with the network) resolves names through the host's resolv.conf, bound
    // over this placeholder; images rarely ship the file.
    let resolv = rootfs.join("etc/resolv.conf");
    if rootfs.join("etc").is_dir() && std::fs::symlink_metadata(&resolv).is_err() {
        std::fs::write(&resolv, b"").map_err(io_err(&resolv))?;
    }
    // Likewise its trusted authorities: the host's bundle is bound over the image's own (or over
    // this empty placeholder, which only a fetch ever reads filled).
    let bundle = rootfs.join(crate::testing::sandbox::CA_BUNDLE.trim_start_matches('/'));
    if rootfs.join("etc").is_dir() && std::fs::symlink_metadata(&bundle).is_err() {
        if let Some(dir) = bundle.parent() {
            std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        }
        std::fs::write(&bundle, b"").map_err(io_err(&bundle))?;
    }
    // The sandbox maps only the calling user: make the tree readable by it whatever the image's
    // owners (the image's own owners do not matter to a build, which reads it only).
    crate::testing::sandbox::own_tree(&rootfs).map_err(io_err(&rootfs))?;
    let kept = tmp.keep();
    match std::fs::rename(&kept, &done) {
        Ok(()) => {}
        // Another build extracted the same environment first: use that one.
        Err(_) if done.join("rootfs").is_dir() => {
            let _ = std::fs::remove_dir_all(&kept);
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&kept);
            return Err(io_err(&done)(e));
        }
    }
    Ok(done.join("rootfs"))
}
