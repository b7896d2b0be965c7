//! Loading `.himg` files from disk: the filesystem implementation of the language's `SourceLoader`.

use std::io;
use std::path::{Path, PathBuf};

use himg_lang::{Diagnostics, EntryKind, Evaluated, SourceLoader, SourcePath};

/// Reads project files below a root directory (the directory of the entry `.himg` file).
///
/// Paths from the language are normalised and relative; `../` prefixes are allowed so that a product
/// image may import a platform base from a sibling directory.
#[derive(Debug, Clone)]
pub struct FsLoader {
    root: PathBuf,
}

impl FsLoader {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        FsLoader { root: root.into() }
    }

    /// The directory that relative source paths are resolved against.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The on-disk path of a language source path.
    pub fn resolve(&self, path: &SourcePath) -> PathBuf {
        if path.as_str().is_empty() {
            self.root.clone()
        } else {
            self.root.join(path.as_str())
        }
    }
}

impl SourceLoader for FsLoader {
    fn read(&self, path: &SourcePath) -> io::Result<Vec<u8>> {
        std::fs::read(self.resolve(path))
    }

    fn kind(&self, path: &SourcePath) -> io::Result<Option<EntryKind>> {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::symlink_metadata(self.resolve(path)) {
            Ok(meta) if meta.file_type().is_symlink() => Ok(Some(EntryKind::Symlink)),
            Ok(meta) if meta.is_dir() => Ok(Some(EntryKind::Dir)),
            Ok(meta) => Ok(Some(EntryKind::File {
                executable: meta.permissions().mode() & 0o111 != 0,
            })),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// A `.himg` file evaluated, with the loader that resolves its source paths.
#[derive(Debug)]
pub struct Loaded {
    pub loader: FsLoader,
    pub evaluated: Evaluated,
}

/// Splits a user-given file path into a loader root (its directory) and the entry name, then evaluates it.
pub fn load_file(file: &Path) -> Result<Loaded, LoadError> {
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
    let loader = FsLoader::new(dir);
    let evaluated = himg_lang::evaluate(&SourcePath(name.to_string()), &loader)
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
    #[error("{}", .0.render())]
    Language(#[from] Diagnostics),
}
