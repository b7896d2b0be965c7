//! Applying layer entries, in order, to the merged file tree: overwrite rules, whiteouts (only
//! lower layers are hidden), opaque directories, implicit parent directories, and symlinks met on
//! the way to an entry resolved inside the root (a link that would leave the root is refused).
//!
//! The same [`Merger`] drives both the [`super::ImageView`] and `extract_rootfs`, so the unpacked
//! directory holds exactly the view's paths.

use std::collections::BTreeMap;

use super::error::ImageError;
use super::model::{FileEntry, FileKind};
use super::walk::{RawEntry, RawKind};

/// How many symlinks a path may traverse (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

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

/// Why a path could not be resolved.
#[derive(Debug)]
pub(crate) enum ResolveError {
    Escape { link: String },
    Loop { link: String },
    NotDir { parent: String },
}

/// The merged tree being built.
#[derive(Debug, Default)]
pub(crate) struct Merger {
    pub files: BTreeMap<String, FileEntry>,
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Resolves the parent directories of `path` through the symlinks of `files`; returns the resolved
/// path and the parent directories that do not exist (in creation order). The last component is
/// never followed.
pub(crate) fn resolve(
    files: &BTreeMap<String, FileEntry>,
    path: &str,
) -> Result<(String, Vec<String>), ResolveError> {
    let mut comps: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let Some(last) = comps.first().cloned() else {
        return Ok((String::new(), Vec::new()));
    };
    comps.remove(0);
    // `comps` is a stack of components still to walk (reversed); `cur` the resolved prefix.
    let mut cur: Vec<String> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let mut links = 0usize;
    while let Some(c) = comps.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                // Only symlink targets contain `..` here (entry names are normalised).
                if cur.pop().is_none() {
                    return Err(ResolveError::Escape {
                        link: path.to_owned(),
                    });
                }
                continue;
            }
            _ => {}
        }
        cur.push(c);
        let key = cur.join("/");
        match files.get(&key).map(|e| &e.kind) {
            None => {
                if !missing.contains(&key) {
                    missing.push(key);
                }
            }
            Some(FileKind::Dir) => {}
            Some(FileKind::Symlink { target }) => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(ResolveError::Loop { link: key });
                }
                cur.pop();
                if target.starts_with('/') {
                    cur.clear();
                }
                let mut depth = cur.len();
                for t in target.split('/') {
                    match t {
                        "" | "." => {}
                        ".." if depth == 0 => return Err(ResolveError::Escape { link: key }),
                        ".." => depth -= 1,
                        _ => depth += 1,
                    }
                }
                comps.extend(target.split('/').rev().map(str::to_owned));
            }
            Some(_) => return Err(ResolveError::NotDir { parent: key }),
        }
    }
    // A missing directory met before a symlink jump may not be on the final path.
    let prefix = cur.join("/");
    missing.retain(|m| prefix == *m || prefix.starts_with(&format!("{m}/")));
    Ok((join(&prefix, &last), missing))
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
                resolve(&self.files, &format!("{}/x", raw.path)).map(|(p, m)| {
                    let dir = p.strip_suffix("/x").unwrap_or("").to_owned();
                    (dir, m)
                })
            }
        } else {
            resolve(&self.files, &raw.path)
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
                let (tpath, tmissing) = resolve(&self.files, target)
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
            self.files.insert(
                m.clone(),
                FileEntry {
                    kind: FileKind::Dir,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                    size: 0,
                    sha256: None,
                    facts: None,
                    layer,
                },
            );
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
