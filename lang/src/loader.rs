//! The one door through which the language touches files: the [`SourceLoader`] trait, its
//! [`SourceError`], and [`MemoryLoader`], an in-memory implementation for tests and embedding.

use std::collections::{BTreeMap, BTreeSet};
use std::io;

use crate::codes;
use crate::diagnostic::Diag;
use crate::span::Span;
use crate::spec::SourcePath;

/// Reads project files for the evaluator. The language does no IO of its own: no `std::fs`, no
/// environment variables, no clock. The composer implements this over a project directory.
///
/// Paths are relative to the project root and never start with `..` (the evaluator refuses those
/// itself). A loader over a real file system must also refuse a path that leaves the root through a
/// symlink ([`SourceError::OutsideProject`]), and must look at what a path names before opening it,
/// so that a FIFO or a device is refused rather than read ([`SourceError::NotRegular`]).
pub trait SourceLoader {
    /// The bytes of a regular file (`.himg` sources and imports), following symlinks that stay in
    /// the project.
    fn read(&self, path: &SourcePath) -> Result<Vec<u8>, SourceError>;
    /// What is at `path` (copy sources, keyrings, VEX files), without following a final symlink;
    /// `Ok(None)` when nothing is there.
    fn kind(&self, path: &SourcePath) -> Result<Option<EntryKind>, SourceError>;
}

/// Why a loader gives no file.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The path's components lead outside the project root through a symlink.
    #[error("`{path}` leads outside the project root (to `{resolved}`)")]
    OutsideProject {
        path: SourcePath,
        /// Where the path leads, as the loader can show it.
        resolved: String,
    },
    /// The path names something that is neither a regular file nor a directory (a FIFO, a socket,
    /// a device), or a directory where a file is read.
    #[error("`{path}` is {what}, not a regular file")]
    NotRegular {
        path: SourcePath,
        /// "a FIFO", "a directory", …
        what: &'static str,
    },
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// What a path names, as far as the language cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File { executable: bool },
    Dir,
    Symlink,
}

impl SourceError {
    /// The diagnostic for a refused `noun` ("import", "copy source", …) written at `span`.
    /// `NotFound` is the caller's to report (its message depends on what was looked for).
    pub(crate) fn diagnostic(&self, asked: &SourcePath, span: Span, noun: &str) -> Diag {
        match self {
            SourceError::OutsideProject { path, resolved } => Diag::new(
                codes::OUTSIDE_PROJECT,
                span,
                format!("{noun} `{path}` leads outside the project root"),
            )
            .label(format!("a symlink on the way leads to `{resolved}`"))
            .help(
                "a build reads only the project: copy the file into the project, or give a wider `--project-root`",
            ),
            SourceError::NotRegular { path, what } => Diag::new(
                codes::NOT_REGULAR,
                span,
                format!("{noun} `{path}` is {what}, not a regular file"),
            )
            .label(format!("`{path}` is {what}"))
            .help("name a regular file (or, for a copy, a directory)"),
            SourceError::Io(e) => Diag::new(
                codes::IO_ERROR,
                span,
                format!("cannot read {noun} `{asked}`: {e}"),
            )
            .label("read failed"),
        }
    }
}

/// The diagnostic for a path that climbs above the project root with `..` (`path` is normalised,
/// so its `..` components are all at the front); `None` when it stays inside.
pub(crate) fn outside_by_dots(
    path: &SourcePath,
    span: Span,
    noun: &str,
    text: &str,
) -> Option<Diag> {
    let outside = path.as_str() == ".." || path.as_str().starts_with("../");
    outside.then(|| {
        Diag::new(
            codes::OUTSIDE_PROJECT,
            span,
            format!("{noun} `{text}` is outside the project root"),
        )
        .label(format!("`..` climbs above the project root (to `{path}`)"))
        .help(
            "a build reads only the project: paths stay below the directory of the file given to himg, or below `--project-root DIR`",
        )
    })
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
    fn read(&self, path: &SourcePath) -> Result<Vec<u8>, SourceError> {
        match self.files.get(path.as_str()) {
            Some(bytes) => Ok(bytes.clone()),
            None if self.kind(path)? == Some(EntryKind::Dir) => Err(SourceError::NotRegular {
                path: path.clone(),
                what: "a directory",
            }),
            None => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("`{path}` does not exist"),
            )
            .into()),
        }
    }

    fn kind(&self, path: &SourcePath) -> Result<Option<EntryKind>, SourceError> {
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
