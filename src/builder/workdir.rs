//! Placing store trees into a build's work directory: files copied out of the store (never linked:
//! the work directory is writable and a store object must never change), executables `0755`,
//! other files `0644`, directories `0755`, symlinks as they are.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use himg_store::{Node, Store, Tree};

use super::{BuildError, io_err};

/// Writes `node` at `dest` (which must not exist yet, or be a directory when `node` is one).
pub(crate) fn place_node(store: &Store, node: &Node, dest: &Path) -> Result<(), BuildError> {
    match node {
        Node::File {
            blob, executable, ..
        } => {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            std::fs::copy(store.blob_path(blob), dest).map_err(io_err(dest))?;
            let mode = if *executable { 0o755 } else { 0o644 };
            std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode))
                .map_err(io_err(dest))?;
        }
        Node::Symlink { target } => {
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            std::os::unix::fs::symlink(target, dest).map_err(io_err(dest))?;
        }
        Node::Dir { tree } => {
            let tree = store.get_tree(tree)?;
            place_tree(store, &tree, dest)?;
        }
    }
    Ok(())
}

/// Writes the entries of `tree` under the directory `dest` (created when missing).
pub(crate) fn place_tree(store: &Store, tree: &Tree, dest: &Path) -> Result<(), BuildError> {
    std::fs::create_dir_all(dest).map_err(io_err(dest))?;
    for entry in &tree.entries {
        let path: PathBuf = dest.join(&entry.name);
        place_node(store, &entry.node, &path)?;
    }
    Ok(())
}

/// The node at the `/`-separated `path` inside `tree` (`None` when absent).
pub fn lookup(store: &Store, tree: &Tree, path: &str) -> Result<Option<Node>, BuildError> {
    let mut current = tree.clone();
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let Some((last, dirs)) = parts.split_last() else {
        return Ok(None);
    };
    for part in dirs {
        match current.get(part) {
            Some(Node::Dir { tree }) => current = store.get_tree(tree)?,
            _ => return Ok(None),
        }
    }
    Ok(current.get(last).cloned())
}

/// Sets the modification time of every file and directory under `root` (and of `root`) to `epoch`
/// seconds; symlinks keep theirs (the standard library cannot date a link itself).
pub(crate) fn clamp_times(root: &Path, epoch: u64) -> Result<(), BuildError> {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    let times = std::fs::FileTimes::new()
        .set_accessed(time)
        .set_modified(time);
    // Children first: dating a directory's entries would otherwise not change its own time, but
    // creating them already has.
    for entry in walkdir::WalkDir::new(root).contents_first(true) {
        let entry = entry.map_err(|e| BuildError::Io {
            path: e.path().unwrap_or(root).to_path_buf(),
            source: e.into(),
        })?;
        if entry.file_type().is_symlink() {
            continue;
        }
        let path = entry.path();
        std::fs::File::open(path)
            .and_then(|f| f.set_times(times))
            .map_err(io_err(path))?;
    }
    Ok(())
}
