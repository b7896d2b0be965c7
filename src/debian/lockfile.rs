//! The lock file (`FILE.himg.lock`, next to the `.himg`): every Debian package an image installs, pinned
//! by repository, version and sha256, so builds never re-resolve and are byte-for-byte repeatable.
//!
//! Format (version 1): canonical, pretty-printed JSON with sorted keys and one package per object, so a
//! `himg update` shows as a small, readable diff:
//!
//! ```text
//! { "version": 1,
//!   "images": { "NAME": {
//!       "inputs": "b3:…",                    // hash of what was resolved: repositories, keyrings, packages
//!       "repositories": [ { "name", "url", "suites": [ { "suite", "codename", "date", "inrelease_sha256" } ] } ],
//!       "architectures": { "amd64": [ { "name", "version", "architecture", "source", "source_version",
//!                                        "repository", "suite", "filename", "size", "sha256" } ] },
//!       "dropped": [ { "name": "perl-base", "required_by": [ "debconf" ] } ],
//!       "base_installed": { "amd64": [ { "name", "version", "architecture" } ] } } } }
//! ```
//!
//! `base_installed` (only on a registry base, `from = "HOST/REPO@sha256:…"`) lists what the base's
//! dpkg database has installed: the resolution counted those packages as installed, so
//! `architectures` holds only what the image adds, and the build fetches nothing else.
//!
//! `dropped` lists the excluded packages that something depended on, each with the installed
//! packages that depended on it (sorted, over every architecture). Locks written before that was
//! recorded hold plain names (`"dropped": [ "perl-base" ]`); they still read, with `required_by` empty.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The current lock format version.
pub const LOCK_VERSION: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockFile {
    pub version: u32,
    pub images: BTreeMap<String, LockedImage>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedImage {
    /// blake3 over the canonical description of what was resolved; a different value means stale.
    pub inputs: String,
    pub repositories: Vec<LockedRepository>,
    /// Per architecture, the packages sorted by name.
    pub architectures: BTreeMap<String, Vec<LockedPackage>>,
    /// Excluded packages that something depended on, sorted by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<DroppedPackage>,
    /// Per architecture, the packages the configure step runs maintainer scripts with (never
    /// shipped), sorted by name; empty when the repositories do not have them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tools: BTreeMap<String, Vec<LockedPackage>>,
    /// Per architecture, the packages a registry base (`from = "HOST/REPO@sha256:…"`) has
    /// installed, from its dpkg database, sorted: the resolution counted them as installed and
    /// `architectures` lists only what the image adds; the build never fetches them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub base_installed: BTreeMap<String, Vec<BaseInstalledPackage>>,
}

/// A package a registry base has installed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BaseInstalledPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
}

/// An excluded package that installed packages depended on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "DroppedEntry")]
pub struct DroppedPackage {
    pub name: String,
    /// The installed packages whose dependency it would have met, sorted; empty in locks written
    /// before this was recorded.
    #[serde(default)]
    pub required_by: Vec<String>,
}

impl DroppedPackage {
    /// Excluded packages, each with what needed it (sorted, unique), as the lock lists them.
    pub fn list(by_name: BTreeMap<String, BTreeSet<String>>) -> Vec<DroppedPackage> {
        by_name
            .into_iter()
            .map(|(name, by)| DroppedPackage {
                name,
                required_by: by.into_iter().collect(),
            })
            .collect()
    }
}

impl std::fmt::Display for DroppedPackage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.required_by.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(
                f,
                "{} (needed by {})",
                self.name,
                self.required_by.join(", ")
            )
        }
    }
}

/// `dropped` entries as written: an object, or a plain name (locks before `required_by`).
#[derive(Deserialize)]
#[serde(untagged)]
enum DroppedEntry {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        required_by: Vec<String>,
    },
}

impl From<DroppedEntry> for DroppedPackage {
    fn from(entry: DroppedEntry) -> Self {
        match entry {
            DroppedEntry::Name(name) => DroppedPackage {
                name,
                required_by: Vec::new(),
            },
            DroppedEntry::Full { name, required_by } => DroppedPackage { name, required_by },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedRepository {
    pub name: String,
    /// As written in the `.himg` (`mirror://debian`): the lock never holds a host.
    pub url: String,
    pub suites: Vec<LockedSuite>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedSuite {
    pub suite: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codename: Option<String>,
    /// The InRelease `Date`, as written there.
    pub date: String,
    /// sha256 of the verified InRelease file.
    pub inrelease_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub source: String,
    pub source_version: String,
    /// Repository name and suite the package was taken from.
    pub repository: String,
    pub suite: String,
    /// Path below the repository URL (`pool/main/…`).
    pub filename: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot read the lock file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the lock file `{path}` is not valid")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the lock file `{path}` has version {found}; this himg reads version {LOCK_VERSION}")]
    Version { path: PathBuf, found: u32 },
    #[error("cannot write the lock file `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// `hello.himg` → `hello.himg.lock`.
pub fn lock_path(himg: &Path) -> PathBuf {
    let mut name = himg.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl LockFile {
    /// Reads a lock file; `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<LockFile>, LockError> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LockError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let lock: LockFile = serde_json::from_slice(&bytes).map_err(|source| LockError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
        if lock.version != LOCK_VERSION {
            return Err(LockError::Version {
                path: path.to_path_buf(),
                found: lock.version,
            });
        }
        Ok(Some(lock))
    }

    /// The canonical text: sorted keys, two-space indentation, a final newline.
    pub fn to_text(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        let mut text = serde_json::to_string_pretty(&sort_keys(value)).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Writes the lock atomically (temp file + rename).
    pub fn write(&self, path: &Path) -> Result<(), LockError> {
        use std::io::Write as _;
        // Synced before the rename: after a crash the lock is the old one or the new one, whole.
        let tmp = path.with_extension("lock.tmp");
        std::fs::File::create(&tmp)
            .and_then(|mut f| {
                f.write_all(self.to_text().as_bytes())?;
                f.sync_all()
            })
            .and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|source| LockError::Write {
                path: path.to_path_buf(),
                source,
            })
    }
}

/// serde_json's map is ordered by key unless `preserve_order` is on; rebuild explicitly to be sure.
fn sort_keys(v: serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => {
            let sorted: BTreeMap<String, serde_json::Value> =
                map.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
            serde_json::Value::Object(sorted.into_iter().collect())
        }
        serde_json::Value::Array(items) => {
            serde_json::Value::Array(items.into_iter().map(sort_keys).collect())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_is_canonical() {
        let mut lock = LockFile {
            version: LOCK_VERSION,
            images: BTreeMap::new(),
        };
        let mut img = LockedImage {
            inputs: "b3:00".into(),
            ..Default::default()
        };
        img.architectures.insert(
            "amd64".into(),
            vec![LockedPackage {
                name: "libc6".into(),
                version: "2.41-12".into(),
                architecture: "amd64".into(),
                source: "glibc".into(),
                source_version: "2.41-12".into(),
                repository: "debian".into(),
                suite: "trixie".into(),
                filename: "pool/main/g/glibc/libc6_2.41-12_amd64.deb".into(),
                size: 1,
                sha256: "00".into(),
            }],
        );
        lock.images.insert("base".into(), img);
        let text = lock.to_text();
        let back: LockFile = serde_json::from_str(&text).expect("parse");
        assert_eq!(back, lock);
        assert_eq!(back.to_text(), text);
        assert!(text.find("\"architecture\"") < text.find("\"filename\""));
    }

    #[test]
    fn dropped_records_what_needed_it_and_old_plain_names_still_read() {
        let old = r#"{"version": 1, "images": {"base": {"inputs": "b3:00", "repositories": [],
            "architectures": {}, "dropped": ["perl-base"]}}}"#;
        let lock: LockFile = serde_json::from_str(old).expect("old lock");
        let dropped = &lock.images["base"].dropped;
        assert_eq!(
            dropped,
            &[DroppedPackage {
                name: "perl-base".into(),
                required_by: Vec::new()
            }]
        );
        let mut lock = lock;
        if let Some(img) = lock.images.get_mut("base") {
            img.dropped[0].required_by = vec!["debconf".into(), "libc-bin".into()];
        }
        let text = lock.to_text();
        assert!(
            text.contains(
                "\"name\": \"perl-base\",\n          \"required_by\": [\n            \"debconf\""
            ),
            "{text}"
        );
        let back: LockFile = serde_json::from_str(&text).expect("new lock");
        assert_eq!(back, lock);
        assert_eq!(
            back.images["base"].dropped[0].to_string(),
            "perl-base (needed by debconf, libc-bin)"
        );
    }
}
