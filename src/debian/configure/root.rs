//! The scratch root the maintainer scripts run in: the image's packages and generated system files
//! written out from the store, then the tool packages wherever the image has nothing, and a record
//! of what each path held before the scripts ran (to keep only their effects afterwards).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use himg_store::{B3Digest, Store};

use super::ConfigureError;
use crate::debian::fileset::FileSet;
use crate::debian::unpack::{DebEntry, DebEntryKind};

/// What a path held before the scripts ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Before {
    pub kind: BeforeKind,
    /// The mode the image gives it, and the mode written to disk (directories are made
    /// owner-writable, files owner-readable, so the unprivileged sandbox can work on them).
    pub mode: u32,
    pub disk_mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Placed only for the scripts' sake (a tool package's file): never shipped unchanged.
    pub tool: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BeforeKind {
    Dir,
    File { content: String, size: u64 },
    Symlink { target: String },
}

/// Which file sets go into the root, in order: later image sets replace earlier paths; tool sets
/// only fill paths nothing else placed.
pub struct RootSet<'a> {
    pub set: &'a FileSet,
    pub tool: bool,
}

/// Writes `sets` below `root` (an empty directory). Paths whose parent is not a directory of the
/// root (a symlink, say) are not placed: nothing is ever written through a link, so no package can
/// make the build write outside the scratch root; they are returned as skipped.
pub fn materialise(
    store: &Store,
    root: &Path,
    sets: &[RootSet<'_>],
) -> Result<(BTreeMap<String, Before>, Vec<String>), ConfigureError> {
    let mut before: BTreeMap<String, Before> = BTreeMap::new();
    let mut skipped = Vec::new();
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    dirs.insert(root.to_path_buf());
    for RootSet { set, tool } in sets {
        for e in &set.entries {
            if *tool && before.contains_key(&e.path) {
                continue;
            }
            let Some(rel) = relative(&e.path) else {
                continue;
            };
            let path = root.join(rel);
            if !parents_are_dirs(root, &path, &mut dirs)? {
                skipped.push(e.path.clone());
                continue;
            }
            match place(store, root, &path, e, &before)? {
                Some(kind) => {
                    let disk_mode = disk_mode(&kind, e.mode);
                    before.insert(
                        e.path.clone(),
                        Before {
                            kind,
                            mode: e.mode,
                            disk_mode,
                            uid: e.uid,
                            gid: e.gid,
                            tool: *tool,
                        },
                    );
                }
                None => skipped.push(e.path.clone()),
            }
        }
    }
    Ok((before, skipped))
}

fn disk_mode(kind: &BeforeKind, mode: u32) -> u32 {
    match kind {
        BeforeKind::Dir => (mode & 0o7777) | 0o700,
        BeforeKind::File { .. } => (mode & 0o7777) | 0o600,
        BeforeKind::Symlink { .. } => 0o777,
    }
}

/// `/a/b` → `a/b`; the root itself and non-absolute paths are not placed.
pub fn relative(path: &str) -> Option<&str> {
    let rel = path.strip_prefix('/')?;
    (!rel.is_empty()
        && !rel
            .split('/')
            .any(|c| c == ".." || c == "." || c.is_empty()))
    .then_some(rel)
}

/// Creates missing parents (0755) and checks that every existing one is a real directory.
fn parents_are_dirs(
    root: &Path,
    path: &Path,
    dirs: &mut BTreeSet<PathBuf>,
) -> Result<bool, ConfigureError> {
    let Some(parent) = path.parent() else {
        return Ok(false);
    };
    let mut chain = Vec::new();
    let mut cur = parent;
    while !dirs.contains(cur) {
        if !cur.starts_with(root) {
            return Ok(false);
        }
        chain.push(cur.to_path_buf());
        match cur.parent() {
            Some(p) => cur = p,
            None => return Ok(false),
        }
    }
    for dir in chain.into_iter().rev() {
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&dir).map_err(|e| ConfigureError::io(&dir, e))?;
            }
            Err(e) => return Err(ConfigureError::io(&dir, e)),
        }
        dirs.insert(dir);
    }
    Ok(true)
}

/// Writes one entry (replacing a file or link already there); `None` when it is not placed.
fn place(
    store: &Store,
    root: &Path,
    path: &Path,
    e: &DebEntry,
    before: &BTreeMap<String, Before>,
) -> Result<Option<BeforeKind>, ConfigureError> {
    let io = |err| ConfigureError::io(path, err);
    let existing = fs::symlink_metadata(path).ok();
    let is_dir = existing.as_ref().is_some_and(|m| m.is_dir());
    if existing.is_some() && !is_dir && !matches!(e.kind, DebEntryKind::Dir) {
        fs::remove_file(path).map_err(io)?;
    }
    let kind = match &e.kind {
        DebEntryKind::Dir => {
            if existing.is_some() && !is_dir {
                fs::remove_file(path).map_err(io)?;
            }
            if !is_dir {
                fs::create_dir(path).map_err(io)?;
            }
            BeforeKind::Dir
        }
        _ if is_dir => return Ok(None),
        DebEntryKind::File { content, size } => {
            let digest = B3Digest::try_from(content.as_str())?;
            let mut src = store.open_blob(&digest)?;
            let mut dst = fs::File::create(path).map_err(io)?;
            std::io::copy(&mut src, &mut dst).map_err(io)?;
            BeforeKind::File {
                content: content.clone(),
                size: *size,
            }
        }
        DebEntryKind::Symlink { target } => {
            std::os::unix::fs::symlink(target, path).map_err(io)?;
            BeforeKind::Symlink {
                target: target.clone(),
            }
        }
        DebEntryKind::Hardlink { target } => {
            let Some(Before {
                kind: kind @ BeforeKind::File { .. },
                ..
            }) = before.get(target)
            else {
                return Ok(None);
            };
            let Some(rel) = relative(target) else {
                return Ok(None);
            };
            fs::hard_link(root.join(rel), path).map_err(io)?;
            kind.clone()
        }
        DebEntryKind::CharDevice { .. } | DebEntryKind::BlockDevice { .. } | DebEntryKind::Fifo => {
            return Ok(None);
        }
    };
    if !matches!(kind, BeforeKind::Symlink { .. }) {
        fs::set_permissions(path, fs::Permissions::from_mode(disk_mode(&kind, e.mode)))
            .map_err(io)?;
    }
    Ok(Some(kind))
}

/// Writes a generated file (the sandbox's dpkg status, scripts) below `root`, replacing one there.
pub fn write_file(root: &Path, path: &str, bytes: &[u8], mode: u32) -> Result<(), ConfigureError> {
    let Some(rel) = relative(path) else {
        return Ok(());
    };
    let full = root.join(rel);
    let mut dirs = BTreeSet::from([root.to_path_buf()]);
    if !parents_are_dirs(root, &full, &mut dirs)? {
        return Err(ConfigureError::io(
            &full,
            std::io::Error::other("a parent directory is a link"),
        ));
    }
    if fs::symlink_metadata(&full).is_ok() {
        fs::remove_file(&full).map_err(|e| ConfigureError::io(&full, e))?;
    }
    fs::write(&full, bytes).map_err(|e| ConfigureError::io(&full, e))?;
    fs::set_permissions(&full, fs::Permissions::from_mode(mode))
        .map_err(|e| ConfigureError::io(&full, e))
}

#[cfg(test)]
mod tests {
    use super::relative;

    #[test]
    fn relative_paths_stay_below_the_root() {
        assert_eq!(relative("/etc/passwd"), Some("etc/passwd"));
        assert_eq!(relative("/"), None);
        assert_eq!(relative("etc"), None);
        assert_eq!(relative("/etc/../x"), None);
        assert_eq!(relative("/etc//x"), None);
    }
}
