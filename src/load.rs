//! Loading `.himg` files from disk: the filesystem implementation of the language's `SourceLoader`.

use std::io;
use std::path::{Path, PathBuf};

use himg_lang::{Diagnostics, EntryKind, Evaluated, SourceError, SourceLoader, SourcePath};

/// Reads project files below the project root: by default the directory of the entry `.himg`
/// file, or the directory given with `--project-root`.
///
/// Paths from the language are normalised, relative to the root, and never climb above it with
/// `..` (the evaluator refuses that). This loader refuses the rest: a path whose components lead
/// out of the root through a symlink ([`SourceError::OutsideProject`]), and anything that is not a
/// regular file, a directory or (for copies, which copy it as a link) a symlink — checked before
/// anything is opened, so a FIFO never blocks a build ([`SourceError::NotRegular`]).
#[derive(Debug, Clone)]
pub struct FsLoader {
    /// The root as the user named it (for messages and for building paths).
    root: PathBuf,
    /// The root with every symlink resolved: what paths must stay below.
    canonical_root: PathBuf,
}

impl FsLoader {
    /// A loader over `root`, which must exist.
    pub fn new(root: impl Into<PathBuf>) -> io::Result<Self> {
        let root = root.into();
        let canonical_root = std::fs::canonicalize(&root)?;
        Ok(FsLoader {
            root,
            canonical_root,
        })
    }

    /// The directory that relative source paths are resolved against.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The on-disk path of a language source path.
    pub fn resolve(&self, path: &SourcePath) -> PathBuf {
        if path.as_str().is_empty() || path.as_str() == "." {
            self.root.clone()
        } else {
            self.root.join(path.as_str())
        }
    }

    /// `resolved` if it lies below the root, else the refusal naming `path`.
    fn inside(&self, path: &SourcePath, resolved: PathBuf) -> Result<PathBuf, SourceError> {
        if resolved.starts_with(&self.canonical_root) {
            Ok(resolved)
        } else {
            Err(SourceError::OutsideProject {
                path: path.clone(),
                resolved: resolved.display().to_string(),
            })
        }
    }

    /// The path with the symlinks of every component but the last resolved, checked to lie below
    /// the root; `Ok(None)` when a parent directory does not exist.
    fn confined_parent(&self, path: &SourcePath) -> Result<Option<PathBuf>, SourceError> {
        let full = self.resolve(path);
        let (Some(parent), Some(name)) = (full.parent(), full.file_name()) else {
            return Ok(Some(self.canonical_root.clone()));
        };
        if path.as_str() == "." {
            return Ok(Some(self.canonical_root.clone()));
        }
        let parent = match std::fs::canonicalize(parent) {
            Ok(p) => p,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let parent = self.inside(path, parent)?;
        Ok(Some(parent.join(name)))
    }
}

/// What a non-regular file is, for messages.
fn special_kind(file_type: std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "a device"
    } else if file_type.is_dir() {
        "a directory"
    } else {
        "a special file"
    }
}

impl SourceLoader for FsLoader {
    fn read(&self, path: &SourcePath) -> Result<Vec<u8>, SourceError> {
        let resolved = self.inside(path, std::fs::canonicalize(self.resolve(path))?)?;
        let meta = std::fs::metadata(&resolved)?;
        if !meta.is_file() {
            return Err(SourceError::NotRegular {
                path: path.clone(),
                what: special_kind(meta.file_type()),
            });
        }
        // Opened without blocking and without following a link, and checked again once open: a
        // file swapped for a FIFO or a symlink after the check above is refused, not waited on.
        use std::io::Read;
        use std::os::unix::fs::OpenOptionsExt;
        let flags = rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::NOFOLLOW;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(i32::try_from(flags.bits()).unwrap_or(0))
            .open(&resolved)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(SourceError::NotRegular {
                path: path.clone(),
                what: special_kind(meta.file_type()),
            });
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn kind(&self, path: &SourcePath) -> Result<Option<EntryKind>, SourceError> {
        use std::os::unix::fs::PermissionsExt;
        let Some(confined) = self.confined_parent(path)? else {
            return Ok(None);
        };
        match std::fs::symlink_metadata(confined) {
            Ok(meta) if meta.file_type().is_symlink() => Ok(Some(EntryKind::Symlink)),
            Ok(meta) if meta.is_dir() => Ok(Some(EntryKind::Dir)),
            Ok(meta) if meta.is_file() => Ok(Some(EntryKind::File {
                executable: meta.permissions().mode() & 0o111 != 0,
            })),
            Ok(meta) => Err(SourceError::NotRegular {
                path: path.clone(),
                what: special_kind(meta.file_type()),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// A `.himg` file evaluated, with the loader that resolves its source paths.
#[derive(Debug)]
pub struct Loaded {
    pub loader: FsLoader,
    pub evaluated: Evaluated,
}

/// Evaluates a user-given `.himg` file. The project root is `project_root` when given (the file
/// must lie below it), else the file's directory; every path the file names resolves inside it.
pub fn load_file(file: &Path, project_root: Option<&Path>) -> Result<Loaded, LoadError> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| LoadError::BadPath(file.to_path_buf()))?;
    if !file.exists() {
        return Err(LoadError::NotFound(file.to_path_buf()));
    }
    let (loader, entry) = match project_root {
        None => {
            let loader = FsLoader::new(&dir).map_err(|source| LoadError::Root {
                root: dir.clone(),
                source,
            })?;
            (loader, name.to_owned())
        }
        Some(root) => {
            let loader = FsLoader::new(root).map_err(|source| LoadError::Root {
                root: root.to_path_buf(),
                source,
            })?;
            let canonical_dir = std::fs::canonicalize(&dir).map_err(|source| LoadError::Root {
                root: dir.clone(),
                source,
            })?;
            let below = canonical_dir
                .strip_prefix(&loader.canonical_root)
                .map_err(|_| LoadError::OutsideRoot {
                    file: file.to_path_buf(),
                    root: root.to_path_buf(),
                })?;
            let mut entry = String::new();
            for part in below.components() {
                let part = part
                    .as_os_str()
                    .to_str()
                    .ok_or_else(|| LoadError::BadPath(file.to_path_buf()))?;
                entry.push_str(part);
                entry.push('/');
            }
            entry.push_str(name);
            (loader, entry)
        }
    };
    let evaluated = himg_lang::evaluate(&SourcePath(entry), &loader)
        .map_err(|diags| relative_to_cwd(diags, loader.root()))?;
    Ok(Loaded { loader, evaluated })
}

/// Diagnostics name files relative to the loader root; show them as the user can open them.
fn relative_to_cwd(mut diags: Diagnostics, root: &Path) -> Diagnostics {
    if root == Path::new(".") {
        return diags;
    }
    let shown = |p: &SourcePath| {
        let joined = root.join(p.as_str());
        SourcePath(normalise(&joined).display().to_string())
    };
    for d in diags.0.iter_mut() {
        d.file = shown(&d.file);
        for s in d.secondary.iter_mut() {
            s.file = shown(&s.file);
        }
    }
    diags
}

/// Removes `.` and resolves `dir/..` lexically, for display only.
fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("`{0}` does not exist")]
    NotFound(PathBuf),
    #[error("`{0}` is not a valid UTF-8 file path")]
    BadPath(PathBuf),
    #[error("cannot use `{}` as the project root", root.display())]
    Root {
        root: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{}` is not inside the project root `{}`", file.display(), root.display())]
    OutsideRoot { file: PathBuf, root: PathBuf },
    #[error("{}", .0.render())]
    Language(#[from] Diagnostics),
}
