//! Capturing a build's outputs: each declared path under the output directory becomes store
//! objects — file contents as blobs, directories as trees sorted by name, symlinks verbatim —
//! with nothing of the host kept (no times, owners or modes beyond "executable"), so the same
//! bytes give the same tree wherever they were built. Anything else (devices, fifos, sockets)
//! is refused, as is a declared path reached through a symlink.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use himg_store::{B3Digest, Node, ObjectRef, Store, Tree, TreeEntry};

use super::{BuildError, io_err};

/// The captured outputs: the root tree (declared paths at their places) and the bytes of files.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Captured {
    pub tree: B3Digest,
    pub size: u64,
}

/// A directory being assembled from the declared outputs.
#[derive(Default)]
struct Pending {
    entries: BTreeMap<String, Slot>,
}

enum Slot {
    Node(Node),
    Dir(Pending),
}

/// Captures `outputs` (relative `/`-separated paths, none below another) from `out_dir`.
pub(crate) fn capture(
    store: &Store,
    out_dir: &Path,
    outputs: &[String],
) -> Result<Captured, BuildError> {
    let mut root = Pending::default();
    let mut size = 0u64;
    for output in outputs {
        let parts: Vec<&str> = output.split('/').filter(|p| !p.is_empty()).collect();
        // Every parent on the way must be a real directory: a symlink could lead anywhere.
        let mut at = out_dir.to_path_buf();
        for part in &parts[..parts.len().saturating_sub(1)] {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(BuildError::OutputBelowSymlink {
                        path: output.clone(),
                        link: rel(out_dir, &at),
                    });
                }
                _ => {}
            }
        }
        let path = out_dir.join(output);
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(BuildError::MissingOutput {
                path: output.clone(),
                found: found(out_dir),
            });
        }
        let node = capture_path(store, out_dir, &path, &mut size)?;
        let mut dir = &mut root;
        for part in &parts[..parts.len().saturating_sub(1)] {
            let slot = dir
                .entries
                .entry((*part).to_owned())
                .or_insert_with(|| Slot::Dir(Pending::default()));
            dir = match slot {
                Slot::Dir(d) => d,
                // Declared outputs never lie below one another (the language checks it).
                Slot::Node(_) => {
                    return Err(BuildError::BadOutputName {
                        path: output.clone(),
                    });
                }
            };
        }
        if let Some(last) = parts.last() {
            dir.entries.insert((*last).to_owned(), Slot::Node(node));
        }
    }
    let tree = put_pending(store, root)?;
    Ok(Captured { tree, size })
}

fn put_pending(store: &Store, dir: Pending) -> Result<B3Digest, BuildError> {
    let mut entries = Vec::new();
    for (name, slot) in dir.entries {
        let node = match slot {
            Slot::Node(node) => node,
            Slot::Dir(sub) => Node::Dir {
                tree: put_pending(store, sub)?,
            },
        };
        entries.push(TreeEntry { name, node });
    }
    entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok(store.put_tree(&Tree { entries })?)
}

/// One path (file, directory or symlink) → a tree node, its files' sizes added to `size`.
fn capture_path(
    store: &Store,
    out_dir: &Path,
    path: &Path,
    size: &mut u64,
) -> Result<Node, BuildError> {
    let meta = std::fs::symlink_metadata(path).map_err(io_err(path))?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = std::fs::read_link(path).map_err(io_err(path))?;
        let target = target
            .to_str()
            .ok_or_else(|| BuildError::BadOutputName {
                path: rel(out_dir, path),
            })?
            .to_owned();
        return Ok(Node::Symlink { target });
    }
    if kind.is_file() {
        let (blob, got) = store.put_blob_from_path(path)?;
        *size += got;
        return Ok(Node::File {
            blob,
            size: got,
            executable: meta.permissions().mode() & 0o111 != 0,
        });
    }
    if kind.is_dir() {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(path).map_err(io_err(path))? {
            let entry = entry.map_err(io_err(path))?;
            let name = entry
                .file_name()
                .into_string()
                .ok()
                .filter(|n| himg_store::validate_name(n).is_ok())
                .ok_or_else(|| BuildError::BadOutputName {
                    path: rel(out_dir, &entry.path()),
                })?;
            let node = capture_path(store, out_dir, &entry.path(), size)?;
            entries.push(TreeEntry { name, node });
        }
        entries.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let tree = store.put_tree(&Tree { entries })?;
        return Ok(Node::Dir { tree });
    }
    use std::os::unix::fs::FileTypeExt;
    let what = if kind.is_fifo() {
        "fifo"
    } else if kind.is_socket() {
        "socket"
    } else {
        "device node"
    };
    Err(BuildError::UnsupportedOutput {
        path: rel(out_dir, path),
        kind: what,
    })
}

fn rel(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// What the command did create at the top of the output directory, for the error message.
fn found(out_dir: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(out_dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "nothing".into()
    } else {
        names.join(", ")
    }
}

/// One entry of a captured tree, for comparing two builds' outputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputEntry {
    pub path: String,
    /// `dir`, `symlink -> TARGET`, or `file SIZE b3:… [executable]`.
    pub describe: String,
    /// The blob of a file (to show a diff of its contents).
    pub blob: Option<B3Digest>,
}

/// Every entry of the tree `root`, depth first, sorted by path.
pub fn list_tree(store: &Store, root: &ObjectRef) -> Result<Vec<OutputEntry>, BuildError> {
    let mut out = Vec::new();
    if let ObjectRef::Tree(d) = root {
        walk(store, d, "", &mut out)?;
    }
    Ok(out)
}

fn walk(
    store: &Store,
    tree: &B3Digest,
    prefix: &str,
    out: &mut Vec<OutputEntry>,
) -> Result<(), BuildError> {
    for entry in store.get_tree(tree)?.entries {
        let path = if prefix.is_empty() {
            entry.name.clone()
        } else {
            format!("{prefix}/{}", entry.name)
        };
        match &entry.node {
            Node::Dir { tree } => {
                out.push(OutputEntry {
                    path: path.clone(),
                    describe: "dir".into(),
                    blob: None,
                });
                walk(store, tree, &path, out)?;
            }
            Node::Symlink { target } => out.push(OutputEntry {
                path,
                describe: format!("symlink -> {target}"),
                blob: None,
            }),
            Node::File {
                blob,
                size,
                executable,
            } => out.push(OutputEntry {
                path,
                describe: format!(
                    "file {size} bytes {blob}{}",
                    if *executable { " executable" } else { "" }
                ),
                blob: Some(*blob),
            }),
        }
    }
    Ok(())
}
