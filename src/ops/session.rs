//! The context every operation runs in: which store, which project root, and the printer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::debian::locking::IndexMemo;

use crate::load::{Loaded, load_file};
use crate::printer::Printer;

use super::Error;

/// One invocation's settings (the command line's global flags, or a test's choices).
#[derive(Debug, Clone)]
pub struct Session<'p> {
    store: Option<PathBuf>,
    project_root: Option<PathBuf>,
    printer: &'p Printer,
    /// What the session's operations have read of the package repositories (shared by every
    /// file a workspace locks or builds: one InRelease fetch and one parse per index).
    indexes: Arc<IndexMemo>,
    /// The store, once opened.
    store_handle: Arc<std::sync::Mutex<Option<Arc<himg_store::Store>>>>,
}

impl<'p> Session<'p> {
    /// The default store (`$HIMG_STORE`, else the XDG data directory) and each file's own
    /// directory as its project root.
    pub fn new(printer: &'p Printer) -> Session<'p> {
        Session {
            store: None,
            project_root: None,
            printer,
            indexes: Arc::default(),
            store_handle: Arc::default(),
        }
    }

    /// Uses the store at `dir` (`None`: the default).
    pub fn with_store(mut self, dir: Option<PathBuf>) -> Self {
        self.store = dir;
        self.store_handle = Arc::default();
        self
    }

    /// Resolves every loaded file's paths below `dir` (`None`: the file's directory).
    pub fn with_project_root(mut self, dir: Option<PathBuf>) -> Self {
        self.project_root = dir;
        self
    }

    /// The project root files are loaded below (`None`: each file's directory).
    pub fn project_root(&self) -> Option<&Path> {
        self.project_root.as_deref()
    }

    pub fn printer(&self) -> &'p Printer {
        self.printer
    }

    /// The repositories' InReleases and parsed indexes read so far in this session.
    pub fn indexes(&self) -> Arc<IndexMemo> {
        Arc::clone(&self.indexes)
    }

    /// The store directory (not opened).
    pub fn store_root(&self) -> Result<PathBuf, Error> {
        match &self.store {
            Some(dir) => Ok(dir.clone()),
            None => Ok(himg_store::Store::default_root()?),
        }
    }

    /// Opens (creating when missing) the session's store — once: every operation of the session
    /// (every file of a workspace) shares the open store and its connections.
    pub fn open_store(&self) -> Result<Arc<himg_store::Store>, Error> {
        let mut slot = self
            .store_handle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(store) = slot.as_ref() {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(himg_store::Store::open(&self.store_root()?)?);
        *slot = Some(Arc::clone(&store));
        Ok(store)
    }

    /// Loads and evaluates a `.himg` file below the session's project root.
    pub fn load(&self, file: &Path) -> Result<Loaded, Error> {
        Ok(load_file(file, self.project_root.as_deref())?)
    }
}
