//! Unpacking an image's layers into a directory, as `umoci unpack` does: the same [`Merger`] that
//! builds the view decides every path, so symlinks are resolved inside the root (never on the
//! host) and the directory ends up holding exactly the view's paths (device nodes excepted).
//! Directories are created owner-writable and get their final modes last, so read-only
//! directories of the image do not block their own content.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::blobs::Blobs;
use super::error::{ImageError, io_err};
use super::merge::{Applied, Merger};
use super::model::{FileKind, ImageView};
use super::walk::{Flow, RawKind, walk_layer};

/// Owner and mode of a directory, applied once every layer is unpacked.
#[derive(Debug, Clone, Copy)]
struct DirMeta {
    mode: u32,
    uid: u32,
    gid: u32,
}

pub(crate) fn extract(blobs: &Blobs, view: &ImageView, dest: &Path) -> Result<(), ImageError> {
    match fs::read_dir(dest) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(ImageError::DestinationNotEmpty {
                    path: dest.to_owned(),
                });
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dest).map_err(io_err("create directory", dest))?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            return Err(ImageError::DestinationNotEmpty {
                path: dest.to_owned(),
            });
        }
        Err(e) => return Err(io_err("list directory", dest)(e)),
    }
    let as_root = rustix::process::geteuid().is_root();
    let mut merger = Merger::default();
    let mut dirs: BTreeMap<String, DirMeta> = BTreeMap::new();
    for (i, layer) in view.layers.iter().enumerate() {
        walk_layer(blobs, layer, &mut |raw, reader| {
            let applied = merger.apply(i, &layer.digest, &raw)?;
            match applied {
                Applied::Wrote {
                    path,
                    new_parents,
                    removed,
                    kept_dir,
                } => {
                    remove(dest, &removed, &mut dirs)?;
                    for p in new_parents {
                        make_dir(&dest.join(&p))?;
                        dirs.insert(
                            p,
                            DirMeta {
                                mode: 0o755,
                                uid: 0,
                                gid: 0,
                            },
                        );
                    }
                    let full = dest.join(&path);
                    let meta = DirMeta {
                        mode: raw.mode,
                        uid: raw.uid,
                        gid: raw.gid,
                    };
                    match &raw.kind {
                        RawKind::Dir => {
                            if !kept_dir {
                                make_dir(&full)?;
                            }
                            dirs.insert(path, meta);
                        }
                        RawKind::File => {
                            let mut f = fs::OpenOptions::new()
                                .write(true)
                                .create_new(true)
                                .mode(0o600)
                                .open(&full)
                                .map_err(io_err("create", &full))?;
                            io::copy(reader, &mut f).map_err(io_err("write", &full))?;
                            drop(f);
                            finish(&full, meta, as_root)?;
                        }
                        RawKind::Symlink(target) => {
                            std::os::unix::fs::symlink(target, &full)
                                .map_err(io_err("create symlink", &full))?;
                            if as_root {
                                std::os::unix::fs::lchown(&full, Some(raw.uid), Some(raw.gid))
                                    .map_err(io_err("change owner of", &full))?;
                            }
                        }
                        RawKind::Hardlink(_) => {
                            if let Some(FileKind::Hardlink { target }) =
                                merger.files.get(&path).map(|e| &e.kind)
                            {
                                let t = dest.join(target);
                                fs::hard_link(&t, &full)
                                    .map_err(io_err("create hardlink", &full))?;
                            }
                        }
                        RawKind::Fifo => {
                            rustix::fs::mkfifoat(
                                rustix::fs::CWD,
                                &full,
                                rustix::fs::Mode::from_raw_mode(0o600),
                            )
                            .map_err(|e| io_err("create fifo", &full)(e.into()))?;
                            finish(&full, meta, as_root)?;
                        }
                        // Device nodes need privileges and are not needed to test or scan a rootfs.
                        RawKind::CharDevice | RawKind::BlockDevice => {}
                        RawKind::Whiteout | RawKind::Opaque => {}
                    }
                }
                Applied::Removed { removed, .. } => remove(dest, &removed, &mut dirs)?,
                Applied::Nothing => {}
            }
            Ok(Flow::Continue)
        })?;
    }
    // Children before parents, so a read-only parent is locked last.
    for (path, meta) in dirs.iter().rev() {
        finish(&dest.join(path), *meta, as_root)?;
    }
    Ok(())
}

/// Removes entries (children first) from disk; absent ones (skipped device nodes) are fine.
fn remove(
    dest: &Path,
    removed: &[(String, bool)],
    dirs: &mut BTreeMap<String, DirMeta>,
) -> Result<(), ImageError> {
    for (path, is_dir) in removed {
        let full = dest.join(path);
        let result = if *is_dir {
            dirs.remove(path);
            fs::remove_dir_all(&full)
        } else {
            fs::remove_file(&full)
        };
        match result {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &full)(e)),
        }
    }
    Ok(())
}

fn make_dir(path: &Path) -> Result<(), ImageError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(io_err("create directory", path))
}

/// Owner (as root only) then mode: chown clears setuid bits, so the mode comes last.
fn finish(path: &Path, meta: DirMeta, as_root: bool) -> Result<(), ImageError> {
    if as_root {
        std::os::unix::fs::lchown(path, Some(meta.uid), Some(meta.gid))
            .map_err(io_err("change owner of", path))?;
    }
    fs::set_permissions(path, fs::Permissions::from_mode(meta.mode))
        .map_err(io_err("set permissions of", path))
}

/// Walks every layer of `view`, in order, and hands `visit` each regular file as the merge writes
/// it (its path resolved as in [`ImageView::files`], and its content); a path written again later
/// is visited again, so the last visit of a path that [`ImageView::files`] holds as a file is its
/// content.
pub(crate) fn visit_files(
    blobs: &Blobs,
    view: &ImageView,
    visit: &mut dyn FnMut(&str, &mut dyn io::Read) -> Result<(), ImageError>,
) -> Result<(), ImageError> {
    let mut merger = Merger::default();
    for (i, layer) in view.layers.iter().enumerate() {
        walk_layer(blobs, layer, &mut |raw, reader| {
            if let Applied::Wrote { path, .. } = merger.apply(i, &layer.digest, &raw)?
                && raw.kind == RawKind::File
            {
                visit(&path, reader)?;
            }
            Ok(Flow::Continue)
        })?;
    }
    Ok(())
}
