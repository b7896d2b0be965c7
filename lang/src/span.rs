//! Source positions: [`Span`]s (file id + byte range) and the [`Files`] table that owns the texts.

use std::sync::Arc;

use crate::spec::SourcePath;

/// Index of a file in a [`Files`] table.
pub(crate) type FileId = u32;

/// A byte range in one source file. Every syntax node and every value carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Span {
    pub file: FileId,
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span { file, start, end }
    }

    /// The smallest span covering both (which must be in the same file; else `self`).
    pub fn to(self, other: Span) -> Span {
        if self.file != other.file {
            return self;
        }
        Span::new(
            self.file,
            self.start.min(other.start),
            self.end.max(other.end),
        )
    }

    /// Whether `other` lies within this span.
    pub fn contains(self, other: Span) -> bool {
        self.file == other.file && self.start <= other.start && other.end <= self.end
    }
}

/// One loaded source file.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub path: SourcePath,
    pub text: Arc<str>,
}

/// Every file seen by one evaluation, indexed by [`FileId`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Files {
    files: Vec<SourceFile>,
}

impl Files {
    pub fn add(&mut self, path: SourcePath, text: Arc<str>) -> FileId {
        self.files.push(SourceFile { path, text });
        // More than 4 billion files cannot be loaded in one evaluation; saturate rather than wrap.
        u32::try_from(self.files.len() - 1).unwrap_or(u32::MAX)
    }

    pub fn get(&self, id: FileId) -> Option<&SourceFile> {
        self.files.get(id as usize)
    }

    /// The source text a span points at (empty when out of range).
    pub fn snippet(&self, span: Span) -> &str {
        self.get(span.file)
            .and_then(|f| f.text.get(span.start..span.end))
            .unwrap_or("")
    }

    pub fn path(&self, id: FileId) -> SourcePath {
        self.get(id)
            .map(|f| f.path.clone())
            .unwrap_or_else(|| SourcePath("<unknown>".to_owned()))
    }
}
