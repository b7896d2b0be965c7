//! File sets: the store form of an unpacked package or of generated system files — a canonical JSON
//! manifest of [`DebEntry`]s (path, kind, mode, owner, content blob), itself stored as a blob. Layers
//! place file sets as they are; the store keeps every content blob they name alive.

use serde::{Deserialize, Serialize};

use super::minimize::SetuidFile;
use super::unpack::DebEntry;

/// Manifest format version; bump when the meaning of a field changes.
pub const FILESET_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSet {
    pub version: u32,
    /// Sorted by path, unique. File contents are store blobs (`b3:…`).
    pub entries: Vec<DebEntry>,
    /// The package's control file (unpacked packages only), for the dpkg database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5sums: Option<String>,
    /// `(path, md5)` of each conffile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conffiles: Vec<(String, String)>,
    /// Bytes and files left out by minimisation (docs, man pages, locales).
    #[serde(default)]
    pub removed_bytes: u64,
    #[serde(default)]
    pub removed_files: u64,
    /// Files whose setuid/setgid bits minimisation removed (their shipped modes), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setuid_stripped: Vec<SetuidFile>,
    /// Files that kept them because the image names them in `keep_setuid`, sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setuid_kept: Vec<SetuidFile>,
    /// The package's install-time maintainer scripts (and `triggers`), in the order apt meets them:
    /// never run, reported so that nothing is skipped silently.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scripts_not_run: Vec<String>,
    /// The package's install-time control files (`preinst`, `config`, `postinst`, `templates`,
    /// `triggers`) as `(name, content blob)`, sorted: what the configure step runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub install_files: Vec<(String, String)>,
    /// What the configure step did (its output only): scripts run, failed, effects dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configure: Option<super::configure::ConfigureReport>,
}

impl FileSet {
    /// A file set of generated entries (no package metadata, nothing minimised or run).
    pub fn of_entries(entries: Vec<DebEntry>) -> FileSet {
        FileSet {
            version: FILESET_VERSION,
            entries,
            control: None,
            md5sums: None,
            conffiles: Vec::new(),
            removed_bytes: 0,
            removed_files: 0,
            setuid_stripped: Vec::new(),
            setuid_kept: Vec::new(),
            scripts_not_run: Vec::new(),
            install_files: Vec::new(),
            configure: None,
        }
    }
}
