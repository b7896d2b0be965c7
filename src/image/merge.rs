//! Applying layer entries, in order, to the merged file tree: overwrite rules, whiteouts (only
//! lower layers are hidden), opaque directories, implicit parent directories, and symlinks met on
//! the way to an entry resolved inside the root by the one resolver, [`super::links`], strictly (a
//! link that would leave the root, a loop or a non-directory parent is refused).
//!
//! The same [`Merger`] drives both the [`super::ImageView`] and `extract_rootfs`, so the unpacked
//! directory holds exactly the view's paths.

use std::collections::BTreeMap;

use super::error::ImageError;
use super::links::{ResolveError, resolve_parents};
use super::model::{FileEntry, FileKind};
use super::walk::{RawEntry, RawKind};

/// What applying one entry did, for code that mirrors it on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The entry was written at `path` (resolved). `new_parents` are implicit directories created
    /// first (top down); `removed` are old entries deleted first (children before parents);
    /// `kept_dir` is set when a directory replaced a directory (only its metadata changes).
    Wrote {
        path: String,
        new_parents: Vec<String>,
        removed: Vec<(String, bool)>,
        kept_dir: bool,
    },
    /// A whiteout or opaque marker removed these entries (children before parents; `true` = dir).
    Removed {
        deleted: String,
        removed: Vec<(String, bool)>,
    },
    /// The entry had nothing to do (a whiteout of something absent).
    Nothing,
}

/// The merged tree being built.
#[derive(Debug, Default)]
pub(crate) struct Merger {
    pub files: BTreeMap<String, FileEntry>,
}

impl Merger {
    fn resolve_err(digest: &str, path: &str, e: ResolveError) -> ImageError {
        match e {
            ResolveError::Escape { link } => ImageError::EscapingLink {
                digest: digest.to_owned(),
                path: path.to_owned(),
                link,
                reason: "leads outside the root",
            },
            ResolveError::Loop { link } => ImageError::EscapingLink {
                digest: digest.to_owned(),
                path: path.to_owned(),
                link,
                reason: "is part of a symlink loop",
            },
            ResolveError::NotDir { parent } => ImageError::ParentNotDirectory {
                digest: digest.to_owned(),
                path: path.to_owned(),
                parent,
            },
        }
    }

    /// Removes `root` (when `with_root`) and everything below it that a layer other than `layer`
    /// wrote; a directory that keeps an entry of `layer` below it stays.
    fn remove_lower(&mut self, root: &str, with_root: bool, layer: usize) -> Vec<(String, bool)> {
        let below: Vec<String> = if root.is_empty() {
            self.files.keys().cloned().collect()
        } else {
            let lo = format!("{root}/");
            let hi = format!("{root}0"); // '0' follows '/'
            self.files.range(lo..hi).map(|(k, _)| k.clone()).collect()
        };
        let mut removed = Vec::new();
        let mut kept: Vec<String> = Vec::new();
        let candidates = below
            .into_iter()
            .rev()
            .chain(with_root.then(|| root.to_owned()));
        for key in candidates {
            let Some(entry) = self.files.get(&key) else {
                continue;
            };
            let is_dir = entry.kind == FileKind::Dir;
            let keeps_child = kept.iter().any(|k| k.starts_with(&format!("{key}/")));
            if entry.layer == layer || keeps_child {
                kept.push(key);
                continue;
            }
            self.files.remove(&key);
            removed.push((key, is_dir));
        }
        removed
    }

    /// Applies one entry of layer `layer` (blob `digest`, for errors).
    pub fn apply(
        &mut self,
        layer: usize,
        digest: &str,
        raw: &RawEntry,
    ) -> Result<Applied, ImageError> {
        let resolved = if raw.kind == RawKind::Opaque {
            if raw.path.is_empty() {
                Ok((String::new(), Vec::new()))
            } else {
                // The directory itself is followed too.
                resolve_parents(&format!("{}/x", raw.path), &self.files).map(|(p, m)| {
                    let dir = p.strip_suffix("/x").unwrap_or("").to_owned();
                    (dir, m)
                })
            }
        } else {
            resolve_parents(&raw.path, &self.files)
        };
        let (path, missing) = resolved.map_err(|e| Self::resolve_err(digest, &raw.path, e))?;

        match &raw.kind {
            RawKind::Whiteout => {
                if !missing.is_empty() || !self.files.contains_key(&path) {
                    return Ok(Applied::Removed {
                        deleted: path,
                        removed: Vec::new(),
                    });
                }
                let removed = self.remove_lower(&path, true, layer);
                return Ok(Applied::Removed {
                    deleted: path,
                    removed,
                });
            }
            RawKind::Opaque => {
                if !missing.is_empty() {
                    return Ok(Applied::Nothing);
                }
                let removed = self.remove_lower(&path, false, layer);
                return Ok(Applied::Removed {
                    deleted: path,
                    removed,
                });
            }
            _ => {}
        }

        let (kind, mode, uid, gid, size, sha256, facts) = match &raw.kind {
            RawKind::Hardlink(target) => {
                let (tpath, tmissing) = resolve_parents(target, &self.files)
                    .map_err(|e| Self::resolve_err(digest, target, e))?;
                let bad = |reason| ImageError::BadHardlink {
                    digest: digest.to_owned(),
                    path: raw.path.clone(),
                    target: target.clone(),
                    reason,
                };
                if !tmissing.is_empty() || tpath == path {
                    return Err(bad("which does not exist"));
                }
                let t = self
                    .files
                    .get(&tpath)
                    .ok_or_else(|| bad("which does not exist"))?;
                if !matches!(t.kind, FileKind::File | FileKind::Hardlink { .. }) {
                    return Err(bad("which is not a regular file"));
                }
                let origin = match &t.kind {
                    FileKind::Hardlink { target } => target.clone(),
                    _ => tpath,
                };
                (
                    FileKind::Hardlink { target: origin },
                    t.mode,
                    t.uid,
                    t.gid,
                    t.size,
                    t.sha256.clone(),
                    t.facts.clone(),
                )
            }
            other => {
                let kind = match other {
                    RawKind::File => FileKind::File,
                    RawKind::Dir => FileKind::Dir,
                    RawKind::Symlink(t) => FileKind::Symlink { target: t.clone() },
                    RawKind::CharDevice => FileKind::CharDevice,
                    RawKind::BlockDevice => FileKind::BlockDevice,
                    _ => FileKind::Fifo,
                };
                (kind, raw.mode, raw.uid, raw.gid, raw.size, None, None)
            }
        };

        for m in &missing {
            self.files.insert(m.clone(), FileEntry::implicit_dir(layer));
        }
        let mut removed = Vec::new();
        let mut kept_dir = false;
        match self.files.get(&path).map(|e| e.kind == FileKind::Dir) {
            Some(true) if kind == FileKind::Dir => kept_dir = true,
            Some(true) => removed = self.remove_all(&path),
            Some(false) => {
                self.files.remove(&path);
                removed.push((path.clone(), false));
            }
            None => {}
        }
        self.files.insert(
            path.clone(),
            FileEntry {
                kind,
                mode,
                uid,
                gid,
                size,
                sha256,
                facts,
                layer,
            },
        );
        Ok(Applied::Wrote {
            path,
            new_parents: missing,
            removed,
            kept_dir,
        })
    }

    /// Removes `root` and everything below it, children first.
    fn remove_all(&mut self, root: &str) -> Vec<(String, bool)> {
        let lo = format!("{root}/");
        let hi = format!("{root}0");
        let mut keys: Vec<String> = self.files.range(lo..hi).map(|(k, _)| k.clone()).collect();
        keys.reverse();
        keys.push(root.to_owned());
        keys.into_iter()
            .filter_map(|k| {
                let e = self.files.remove(&k)?;
                Some((k, e.kind == FileKind::Dir))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
