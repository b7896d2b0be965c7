//! The one door through which the language touches files: the [`SourceLoader`] trait, and
//! [`MemoryLoader`], an in-memory implementation for tests and embedding.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use crate::spec::SourcePath;

/// Reads project files for the evaluator. The language does no IO of its own: no `std::fs`, no
/// environment variables, no clock. The composer implements this over a project directory.
pub trait SourceLoader {
    /// The bytes of a file (`.himg` sources and imports).
    fn read(&self, path: &SourcePath) -> io::Result<Vec<u8>>;
    /// What is at `path` (copy sources); `Ok(None)` when nothing is there.
    fn kind(&self, path: &SourcePath) -> io::Result<Option<EntryKind>>;
}

/// What a path names, as far as the language cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File { executable: bool },
    Dir,
    Symlink,
}

/// A [`SourceLoader`] over a map of `/`-separated relative paths to bytes. Directories are implied by
/// the files below them; the root (`.`) always exists.
#[derive(Debug, Clone, Default)]
pub struct MemoryLoader {
    files: BTreeMap<String, Vec<u8>>,
    executable: BTreeSet<String>,
}

impl MemoryLoader {
    pub fn new() -> MemoryLoader {
        MemoryLoader::default()
    }

    /// Adds (or replaces) a regular file.
    pub fn insert(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        let path = path.into();
        self.executable.remove(&path);
        self.files.insert(path, bytes.into());
    }

    /// Adds (or replaces) an executable file.
    pub fn insert_executable(&mut self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        let path = path.into();
        self.executable.insert(path.clone());
        self.files.insert(path, bytes.into());
    }

    /// The paths of all files, sorted.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

impl SourceLoader for MemoryLoader {
    fn read(&self, path: &SourcePath) -> io::Result<Vec<u8>> {
        match self.files.get(path.as_str()) {
            Some(bytes) => Ok(bytes.clone()),
            None if self.kind(path)? == Some(EntryKind::Dir) => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                format!("`{path}` is a directory"),
            )),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{path}` does not exist"),
            )),
        }
    }

    fn kind(&self, path: &SourcePath) -> io::Result<Option<EntryKind>> {
        let path = path.as_str();
        if self.files.contains_key(path) {
            let executable = self.executable.contains(path);
            return Ok(Some(EntryKind::File { executable }));
        }
        if path == "." {
            return Ok(Some(EntryKind::Dir));
        }
        let prefix = format!("{path}/");
        let is_dir = self
            .files
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(key, _)| key.starts_with(&prefix));
        Ok(is_dir.then_some(EntryKind::Dir))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(path: &str) -> SourcePath {
        SourcePath(path.to_owned())
    }

    #[test]
    fn files_and_implied_directories() {
        let mut loader = MemoryLoader::new();
        loader.insert("site/index.html", "hi");
        loader.insert_executable("build/hello", vec![0x7f]);
        assert_eq!(
            loader.kind(&sp("site/index.html")).ok().flatten(),
            Some(EntryKind::File { executable: false })
        );
        assert_eq!(
            loader.kind(&sp("build/hello")).ok().flatten(),
            Some(EntryKind::File { executable: true })
        );
        assert_eq!(
            loader.kind(&sp("site")).ok().flatten(),
            Some(EntryKind::Dir)
        );
        assert_eq!(loader.kind(&sp(".")).ok().flatten(), Some(EntryKind::Dir));
        assert_eq!(loader.kind(&sp("sit")).ok().flatten(), None);
        assert_eq!(loader.kind(&sp("site/index")).ok().flatten(), None);
        assert!(loader.read(&sp("site")).is_err());
        assert_eq!(
            loader.read(&sp("site/index.html")).ok(),
            Some(b"hi".to_vec())
        );
    }
}
