//! The store's one error type.
//!
//! Every variant keeps its cause as a typed `#[source]`, so the CLI can print the chain
//! (`error:` … `Caused by:` …) without this crate flattening anything into strings.

use std::io;
use std::path::{Path, PathBuf};

use crate::id::{B3Digest, InvalidId, ObjectRef, OutputPath};
use crate::tree::TreeError;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A filesystem operation failed.
    #[error("I/O error at `{}`", path.display())]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },

    /// The SQLite metadata database reported an error.
    #[error("store database error")]
    Sqlite(#[from] rusqlite::Error),

    /// An object's bytes do not hash to its name.
    #[error("object `{object}` is corrupt: expected `{expected}`, found `{actual}`")]
    Corrupt {
        /// The object as it is named in the store.
        object: ObjectRef,
        /// The digest the bytes should have (the object's name).
        expected: String,
        /// The digest the bytes have.
        actual: String,
    },

    /// A tree object could not be decoded, or a tree given to the store is malformed.
    #[error("invalid tree{}", object.map(|d| format!(" `{d}`")).unwrap_or_default())]
    InvalidTree {
        /// The tree's digest, when it came from the store.
        object: Option<B3Digest>,
        /// What is wrong with it.
        #[source]
        source: TreeError,
    },

    /// A tree's file entry declares another size than its blob has.
    #[error(
        "tree entry `{tree_entry}` declares {declared} bytes, but its blob `{blob}` has {actual}"
    )]
    SizeMismatch {
        /// The entry's name.
        tree_entry: String,
        /// The blob it names.
        blob: B3Digest,
        /// The size the tree declares.
        declared: u64,
        /// The blob's size.
        actual: u64,
    },

    /// An object that was referenced is not in the store.
    #[error("object `{0}` is not in the store")]
    MissingObject(ObjectRef),

    /// An output that was referenced is not registered in the store.
    #[error("output `{0}` is not registered in the store")]
    MissingOutput(OutputPath),

    /// An output path is already registered with different content.
    #[error(
        "output `{path}` is already registered with content `{existing}`, not `{new}` (non-reproducible build?)"
    )]
    OutputConflict {
        /// The output path.
        path: OutputPath,
        /// What the store has.
        existing: ObjectRef,
        /// What was offered.
        new: ObjectRef,
    },

    /// The store on disk was written by a newer himg.
    #[error(
        "the store at `{}` has schema version {found}, but this himg supports at most version {supported}",
        path.display()
    )]
    IncompatibleVersion {
        /// The database file.
        path: PathBuf,
        /// The version found in it.
        found: i64,
        /// The newest version this build understands.
        supported: i64,
    },

    /// An identifier (digest, object reference, output path) is malformed.
    #[error(transparent)]
    InvalidName(#[from] InvalidId),

    /// A root name, layer compression name or other free-form name is not acceptable.
    #[error("invalid {kind} `{value}`: {reason}")]
    InvalidArgument {
        /// What kind of name.
        kind: &'static str,
        /// The rejected value.
        value: String,
        /// Why.
        reason: &'static str,
    },

    /// A row in the metadata database does not parse.
    #[error("corrupt row in table `{table}` (key `{key}`)")]
    CorruptRow {
        /// The table.
        table: &'static str,
        /// The row's primary key.
        key: String,
        /// What failed to parse.
        #[source]
        source: RowError,
    },

    /// No store location could be derived from the environment.
    #[error("cannot find a place for the store: set `HIMG_STORE`, `XDG_DATA_HOME` or `HOME`")]
    NoDefaultRoot,
}

/// Why a database row could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// An identifier column does not parse.
    #[error(transparent)]
    Id(#[from] InvalidId),
    /// A JSON column does not parse.
    #[error("invalid JSON")]
    Json(#[from] serde_json::Error),
    /// A number is out of range (e.g. a negative size).
    #[error("number out of range: {0}")]
    Range(i64),
}

impl StoreError {
    /// Wraps an [`io::Error`] with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> StoreError {
        StoreError::Io {
            path: path.into(),
            source,
        }
    }

    /// True for an I/O error whose kind is `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// `result.at(path)?` turns an `io::Result` into a `StoreError::Io` that names the path.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::io(path, e))
    }
}
