//! Checking the store (`verify`), fixing it (`repair`), and describing it (`info`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::path::PathBuf;

use rayon::prelude::*;
use rusqlite::params;
use serde::Serialize;

use crate::db::SCHEMA_VERSION;
use crate::error::{RowError, StoreError};
use crate::gc::{ObjectFile, remove_file_if_exists};
use crate::id::{B3Digest, InvalidId, ObjectRef, OutputPath, ParseId, Sha256Digest};
use crate::objects::{hash_file, sha256_file};
use crate::store::{RootRecord, Store, read_roots};
use crate::tree::{Node, Tree, TreeError};

/// What a problem is about.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Subject {
    /// An object file.
    Object(ObjectRef),
    /// An `outputs` row (or one of its `output_refs`).
    Output(String),
    /// A `derivations` row, by key.
    Derivation(String),
    /// A `layers` row, as `<tree> <compression>`.
    Layer(String),
    /// A `root_outputs` row, by root name.
    Root(String),
    /// A `file_hashes` row, by path.
    FileHash(String),
    /// A file in an object directory that is not named like an object.
    File(PathBuf),
    /// The database as a whole.
    Database,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Object(o) => write!(f, "object `{o}`"),
            Subject::Output(p) => write!(f, "output `{p}`"),
            Subject::Derivation(k) => write!(f, "derivation `{k}`"),
            Subject::Layer(l) => write!(f, "layer `{l}`"),
            Subject::Root(r) => write!(f, "root `{r}`"),
            Subject::FileHash(p) => write!(f, "stat-cache entry `{p}`"),
            Subject::File(p) => write!(f, "file `{}`", p.display()),
            Subject::Database => f.write_str("database"),
        }
    }
}

/// What is wrong.
#[derive(Debug, Serialize)]
#[serde(tag = "issue", content = "detail", rename_all = "snake_case")]
pub enum Issue {
    /// The bytes do not hash to the object's name.
    Corrupt {
        /// The digest the bytes have.
        actual: String,
    },
    /// A tree's bytes hash correctly but do not decode (should be impossible).
    #[serde(serialize_with = "ser_display")]
    Undecodable(TreeError),
    /// A tree names a blob or subtree that is not in the store.
    MissingChild(ObjectRef),
    /// A tree's file entry declares another size than its blob has.
    SizeMismatch {
        /// The blob.
        child: ObjectRef,
        /// The size the tree declares.
        declared: u64,
        /// The blob's size.
        actual: u64,
    },
    /// A row names an object that is not in the store.
    MissingObject(ObjectRef),
    /// A row names an output that is not registered.
    MissingOutput(String),
    /// The file could not be read.
    #[serde(serialize_with = "ser_display")]
    Unreadable(io::Error),
    /// A file that has no business in an object directory.
    UnexpectedFile,
    /// A row whose columns do not parse.
    #[serde(serialize_with = "ser_display")]
    BadRow(RowError),
    /// SQLite's `quick_check` reported this.
    Integrity(String),
}

fn ser_display<T: fmt::Display, S: serde::Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Issue::Corrupt { actual } => write!(f, "corrupt: contents hash to `{actual}`"),
            Issue::Undecodable(e) => write!(f, "undecodable: {e}"),
            Issue::MissingChild(o) => write!(f, "child `{o}` is missing"),
            Issue::SizeMismatch {
                child,
                declared,
                actual,
            } => write!(
                f,
                "declares {declared} bytes for `{child}`, which has {actual}"
            ),
            Issue::MissingObject(o) => write!(f, "references missing object `{o}`"),
            Issue::MissingOutput(p) => write!(f, "references unregistered output `{p}`"),
            Issue::Unreadable(e) => write!(f, "unreadable: {e}"),
            Issue::UnexpectedFile => f.write_str("unexpected file in an object directory"),
            Issue::BadRow(e) => write!(f, "malformed row: {e}"),
            Issue::Integrity(m) => write!(f, "integrity check: {m}"),
        }
    }
}

/// One thing `verify` found wrong.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// What it is about.
    pub subject: Subject,
    /// What is wrong.
    pub issue: Issue,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.subject, self.issue)
    }
}

/// The result of [`Store::verify`].
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Object files re-hashed.
    pub objects_checked: u64,
    /// Bytes re-hashed.
    pub bytes_checked: u64,
    /// Output rows checked.
    pub outputs_checked: u64,
    /// Layer rows checked.
    pub layers_checked: u64,
    /// Everything found wrong, sorted by subject.
    pub problems: Vec<Problem>,
    /// Information, not a problem: temp files left by killed writers (`gc` removes them).
    pub stale_temp_files: Vec<PathBuf>,
    /// Temp files that a running writer holds.
    pub temp_files_in_use: usize,
}

impl VerifyReport {
    /// True if no problem was found (stale temp files are not problems).
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The result of [`Store::repair`].
#[derive(Debug, Default, Serialize)]
pub struct RepairReport {
    /// What verify found before repairing.
    pub found: VerifyReport,
    /// Object files deleted (corrupt, or trees whose children were missing or deleted).
    pub objects_removed: Vec<ObjectRef>,
    /// Stray files deleted from object directories.
    pub files_removed: Vec<PathBuf>,
    /// Output rows deleted (their objects or referenced outputs were gone).
    pub outputs_removed: Vec<String>,
    /// Derivation rows deleted.
    pub derivations_removed: u64,
    /// Layer rows deleted.
    pub layers_removed: u64,
    /// Stat-cache rows deleted.
    pub file_hashes_removed: u64,
    /// Roots that lost outputs.
    pub roots_affected: Vec<String>,
}

/// Count and total size of a kind of file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ObjectStats {
    /// Number of files.
    pub count: u64,
    /// Total bytes.
    pub bytes: u64,
}

/// The result of [`Store::info`].
#[derive(Debug, Clone, Serialize)]
pub struct StoreInfo {
    /// The store root.
    pub root: PathBuf,
    /// The database schema version.
    pub schema_version: i64,
    /// Blob files.
    pub blobs: ObjectStats,
    /// Tree files.
    pub trees: ObjectStats,
    /// OCI blob files.
    pub oci_blobs: ObjectStats,
    /// Temp files (in use or stale).
    pub temp_files: ObjectStats,
    /// Size of the database files (main, WAL).
    pub db_bytes: u64,
    /// Rows in `outputs`.
    pub outputs: u64,
    /// Rows in `output_refs`.
    pub output_refs: u64,
    /// Rows in `derivations`.
    pub derivations: u64,
    /// Rows in `layers`.
    pub layers: u64,
    /// Rows in `file_hashes`.
    pub file_hashes: u64,
    /// The roots.
    pub roots: Vec<RootRecord>,
}

/// The problems found with one object file.
fn check_object(
    store: &Store,
    f: &ObjectFile,
    present: &HashMap<ObjectRef, u64>,
) -> (u64, Vec<Issue>) {
    let mut issues = Vec::new();
    let exists = |o: &ObjectRef| present.contains_key(o) || store.has_object(o);
    let size_of = |o: &ObjectRef| {
        present
            .get(o)
            .copied()
            .or_else(|| fs::metadata(store.object_path(o)).ok().map(|m| m.len()))
    };
    let unreadable = |e: io::Error, issues: &mut Vec<Issue>| {
        // Deleted since the scan (by a concurrent gc in another store): not a problem.
        if e.kind() != io::ErrorKind::NotFound {
            issues.push(Issue::Unreadable(e));
        }
    };
    let mut bytes = 0;
    match f.object {
        ObjectRef::Blob(d) => match hash_file(&f.path) {
            Ok((actual, n)) => {
                bytes = n;
                if actual != d {
                    issues.push(Issue::Corrupt {
                        actual: actual.to_string(),
                    });
                }
            }
            Err(e) => unreadable(e, &mut issues),
        },
        ObjectRef::Oci(d) => match sha256_file(&f.path) {
            Ok((actual, n)) => {
                bytes = n;
                if actual != d {
                    issues.push(Issue::Corrupt {
                        actual: actual.to_string(),
                    });
                }
            }
            Err(e) => unreadable(e, &mut issues),
        },
        ObjectRef::Tree(d) => match fs::read(&f.path) {
            Ok(data) => {
                bytes = data.len() as u64;
                let actual = B3Digest::of(&data);
                if actual != d {
                    issues.push(Issue::Corrupt {
                        actual: actual.to_string(),
                    });
                } else {
                    match Tree::decode(&data) {
                        Ok(tree) => {
                            for e in &tree.entries {
                                let child = match e.node {
                                    Node::File { blob, .. } => ObjectRef::Blob(blob),
                                    Node::Dir { tree } => ObjectRef::Tree(tree),
                                    Node::Symlink { .. } => continue,
                                };
                                if !exists(&child) {
                                    issues.push(Issue::MissingChild(child));
                                } else if let Node::File { size, .. } = e.node
                                    && let Some(actual) = size_of(&child)
                                    && actual != size
                                {
                                    issues.push(Issue::SizeMismatch {
                                        child,
                                        declared: size,
                                        actual,
                                    });
                                }
                            }
                        }
                        Err(e) => issues.push(Issue::Undecodable(e)),
                    }
                }
            }
            Err(e) => unreadable(e, &mut issues),
        },
    }
    (bytes, issues)
}

fn bad_row(subject: Subject, e: InvalidId) -> Problem {
    Problem {
        subject,
        issue: Issue::BadRow(RowError::Id(e)),
    }
}

impl Store {
    /// Re-hashes every object (in parallel), checks every tree's children, every output's
    /// content, referenced objects and referenced outputs, every layer's blob, every root's
    /// outputs, and SQLite's own integrity. Holds a [`crate::BuildGuard`] so gc cannot run
    /// meanwhile; builds may.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let _guard = self.build_guard()?;
        self.verify_unlocked()
    }

    fn verify_unlocked(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let scan = self.scan_objects()?;
        let present: HashMap<ObjectRef, u64> =
            scan.objects.iter().map(|f| (f.object, f.size)).collect();
        for path in scan.unexpected {
            report.problems.push(Problem {
                subject: Subject::File(path),
                issue: Issue::UnexpectedFile,
            });
        }

        let results: Vec<(ObjectRef, u64, Vec<Issue>)> = scan
            .objects
            .par_iter()
            .map(|f| {
                let (bytes, issues) = check_object(self, f, &present);
                (f.object, bytes, issues)
            })
            .collect();
        for (object, bytes, issues) in results {
            report.objects_checked += 1;
            report.bytes_checked += bytes;
            report
                .problems
                .extend(issues.into_iter().map(|issue| Problem {
                    subject: Subject::Object(object),
                    issue,
                }));
        }

        let exists = |o: &ObjectRef| present.contains_key(o) || self.has_object(o);
        let mut conn = self.conn()?;
        // One read transaction: every query below sees the same snapshot, even while other
        // processes register outputs.
        let conn = conn.transaction()?;

        let checks: Vec<String> = conn
            .prepare("PRAGMA quick_check")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for msg in checks.into_iter().filter(|m| m != "ok") {
            report.problems.push(Problem {
                subject: Subject::Database,
                issue: Issue::Integrity(msg),
            });
        }

        let outputs: Vec<(String, String, i64, String)> = conn
            .prepare("SELECT path, content, size, meta FROM outputs")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
        let output_names: HashSet<&str> = outputs.iter().map(|o| o.0.as_str()).collect();
        for (path, content, size, meta) in &outputs {
            report.outputs_checked += 1;
            let subject = || Subject::Output(path.clone());
            if let Err(e) = OutputPath::parse_id(path.as_str()) {
                report.problems.push(bad_row(subject(), e));
            }
            match ObjectRef::parse_id(content.as_str()) {
                Ok(o) if !exists(&o) => report.problems.push(Problem {
                    subject: subject(),
                    issue: Issue::MissingObject(o),
                }),
                Ok(_) => {}
                Err(e) => report.problems.push(bad_row(subject(), e)),
            }
            if *size < 0 {
                report.problems.push(Problem {
                    subject: subject(),
                    issue: Issue::BadRow(RowError::Range(*size)),
                });
            }
            if let Err(e) = serde_json::from_str::<serde_json::Value>(meta) {
                report.problems.push(Problem {
                    subject: subject(),
                    issue: Issue::BadRow(RowError::Json(e)),
                });
            }
        }

        let refs: Vec<(String, String, String)> = conn
            .prepare("SELECT path, ref_kind, ref FROM output_refs")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (path, kind, r) in refs {
            let subject = Subject::Output(path);
            if kind == "output" {
                if !output_names.contains(r.as_str()) {
                    report.problems.push(Problem {
                        subject,
                        issue: Issue::MissingOutput(r),
                    });
                }
            } else {
                match ObjectRef::parse_id(r.as_str()) {
                    Ok(o) if !exists(&o) => report.problems.push(Problem {
                        subject,
                        issue: Issue::MissingObject(o),
                    }),
                    Ok(_) => {}
                    Err(e) => report.problems.push(bad_row(subject, e)),
                }
            }
        }

        let derivations: Vec<(String, String)> = conn
            .prepare("SELECT key, output FROM derivations")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (key, output) in derivations {
            if let Err(e) = B3Digest::parse_id(key.as_str()) {
                report
                    .problems
                    .push(bad_row(Subject::Derivation(key.clone()), e));
            }
            if !output_names.contains(output.as_str()) {
                report.problems.push(Problem {
                    subject: Subject::Derivation(key),
                    issue: Issue::MissingOutput(output),
                });
            }
        }

        let layers: Vec<(String, String, String, String, i64)> = conn
            .prepare("SELECT tree, compression, diff_id, digest, size FROM layers")?
            .query_map([], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<Result<_, _>>()?;
        for (tree, compression, diff_id, digest, size) in layers {
            report.layers_checked += 1;
            let subject = || Subject::Layer(format!("{tree} {compression}"));
            if let Err(e) = B3Digest::parse_id(tree.as_str()) {
                report.problems.push(bad_row(subject(), e));
            }
            if let Err(e) = Sha256Digest::parse_id(diff_id.as_str()) {
                report.problems.push(bad_row(subject(), e));
            }
            if size < 0 {
                report.problems.push(Problem {
                    subject: subject(),
                    issue: Issue::BadRow(RowError::Range(size)),
                });
            }
            match Sha256Digest::parse_id(digest.as_str()) {
                Ok(d) if !exists(&ObjectRef::Oci(d)) => report.problems.push(Problem {
                    subject: subject(),
                    issue: Issue::MissingObject(ObjectRef::Oci(d)),
                }),
                Ok(_) => {}
                Err(e) => report.problems.push(bad_row(subject(), e)),
            }
        }

        let root_outputs: Vec<(String, String)> = conn
            .prepare("SELECT name, path FROM root_outputs")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (name, path) in root_outputs {
            if !output_names.contains(path.as_str()) {
                report.problems.push(Problem {
                    subject: Subject::Root(name),
                    issue: Issue::MissingOutput(path),
                });
            }
        }

        let file_hashes: Vec<(String, String)> = conn
            .prepare("SELECT path, blob FROM file_hashes")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (path, blob) in file_hashes {
            if let Err(e) = B3Digest::parse_id(blob.as_str()) {
                report.problems.push(bad_row(Subject::FileHash(path), e));
            }
        }
        drop(conn);

        let (stale, in_use) = self.scan_temp_files()?;
        report.stale_temp_files = stale.into_iter().map(|(p, _)| p).collect();
        report.temp_files_in_use = in_use;
        report.problems.sort_by(|a, b| a.subject.cmp(&b.subject));
        Ok(report)
    }

    /// Verifies the store, then removes what is broken so the next build re-creates it:
    /// corrupt objects, trees whose children are gone or whose sizes lie (transitively), stray
    /// files in object directories, and every row that depends on something removed or missing:
    /// outputs and their derivations, every output derived from a removed output (built from
    /// it, or naming an OCI blob it made), the layers those blobs are recorded as, malformed
    /// rows.
    /// Takes the gc lock exclusively.
    pub fn repair(&self) -> Result<RepairReport, StoreError> {
        let _lock = self.exclusive_guard()?;
        let found = self.verify_unlocked()?;
        let mut report = RepairReport::default();

        // Objects that go: anything with a problem of its own.
        let mut bad: HashSet<ObjectRef> = HashSet::new();
        for p in &found.problems {
            match (&p.subject, &p.issue) {
                (Subject::Object(o), _) => {
                    bad.insert(*o);
                }
                (Subject::File(path), Issue::UnexpectedFile) if path.is_file() => {
                    report.files_removed.push(path.clone());
                }
                _ => {}
            }
        }
        // Trees whose children are bad or missing go too, transitively.
        let scan = self.scan_objects()?;
        let mut present: HashSet<ObjectRef> = scan
            .objects
            .iter()
            .map(|f| f.object)
            .filter(|o| !bad.contains(o))
            .collect();
        let mut tree_children: HashMap<B3Digest, Vec<ObjectRef>> = HashMap::new();
        for o in &present {
            if let ObjectRef::Tree(d) = o
                && let Ok(tree) = self.get_tree(d)
            {
                let kids = tree
                    .entries
                    .iter()
                    .filter_map(|e| match e.node {
                        Node::File { blob, .. } => Some(ObjectRef::Blob(blob)),
                        Node::Dir { tree } => Some(ObjectRef::Tree(tree)),
                        Node::Symlink { .. } => None,
                    })
                    .collect();
                tree_children.insert(*d, kids);
            }
        }
        loop {
            let newly_bad: Vec<B3Digest> = tree_children
                .iter()
                .filter(|(d, kids)| {
                    present.contains(&ObjectRef::Tree(**d))
                        && kids.iter().any(|k| !present.contains(k))
                })
                .map(|(d, _)| *d)
                .collect();
            if newly_bad.is_empty() {
                break;
            }
            for d in newly_bad {
                present.remove(&ObjectRef::Tree(d));
                bad.insert(ObjectRef::Tree(d));
            }
        }

        // Rows that go.
        let mut conn = self.conn()?;
        let outputs: Vec<(String, String)> = conn
            .prepare("SELECT path, content FROM outputs")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut refs: HashMap<String, Vec<(String, String)>> = HashMap::new();
        {
            let mut stmt = conn.prepare("SELECT path, ref_kind, ref FROM output_refs")?;
            for row in stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))? {
                let (p, k, r): (String, String, String) = row?;
                refs.entry(p).or_default().push((k, r));
            }
        }
        let obj_ok = |s: &str| ObjectRef::parse_id(s).is_ok_and(|o| present.contains(&o));
        let mut broken: BTreeSet<String> = outputs
            .iter()
            .filter(|(path, content)| {
                OutputPath::parse_id(path.as_str()).is_err()
                    || !obj_ok(content)
                    || refs
                        .get(path)
                        .into_iter()
                        .flatten()
                        .any(|(k, r)| k == "object" && !obj_ok(r))
            })
            .map(|(p, _)| p.clone())
            .collect();
        let names: HashSet<&str> = outputs.iter().map(|(p, _)| p.as_str()).collect();
        // Everything derived from a broken output goes too, transitively: outputs built from it
        // (`output` references) and outputs that name an OCI blob a broken output made (a
        // manifest names its layers and config, an index its manifests) — that blob may have
        // been made from the corrupt bytes.
        let mut tainted: HashSet<String> = HashSet::new();
        loop {
            tainted.extend(
                outputs
                    .iter()
                    .filter(|(p, c)| broken.contains(p) && c.starts_with("oci:"))
                    .map(|(_, c)| c.clone()),
            );
            let newly: Vec<String> = outputs
                .iter()
                .filter(|(p, _)| !broken.contains(p))
                .filter(|(p, content)| {
                    tainted.contains(content)
                        || refs.get(p).into_iter().flatten().any(|(k, r)| {
                            (k == "output" && (broken.contains(r) || !names.contains(r.as_str())))
                                || (k == "object" && tainted.contains(r))
                        })
                })
                .map(|(p, _)| p.clone())
                .collect();
            if newly.is_empty() {
                break;
            }
            broken.extend(newly);
        }
        let layers: Vec<(String, String, String)> = conn
            .prepare("SELECT tree, compression, digest FROM layers")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let bad_layers: Vec<(String, String)> = layers
            .into_iter()
            .filter(|(tree, _, digest)| {
                B3Digest::parse_id(tree.as_str()).is_err()
                    || !Sha256Digest::parse_id(digest.as_str())
                        .is_ok_and(|d| present.contains(&ObjectRef::Oci(d)))
                    || tainted.contains(&format!("oci:{digest}"))
            })
            .map(|(t, c, _)| (t, c))
            .collect();
        let bad_hashes: Vec<String> = found
            .problems
            .iter()
            .filter_map(|p| match &p.subject {
                Subject::FileHash(path) => Some(path.clone()),
                _ => None,
            })
            .collect();

        conn.pragma_update(None, "synchronous", "FULL")?;
        let result = (|| -> Result<(), StoreError> {
            let tx = conn.write_tx()?;
            {
                let mut roots = tx.prepare("SELECT name FROM root_outputs WHERE path = ?1")?;
                let mut count = tx.prepare("SELECT count(*) FROM derivations WHERE output = ?1")?;
                let mut del = tx.prepare("DELETE FROM outputs WHERE path = ?1")?;
                let mut affected = BTreeSet::new();
                for p in &broken {
                    for name in roots.query_map([p], |r| r.get::<_, String>(0))? {
                        affected.insert(name?);
                    }
                    report.derivations_removed +=
                        count.query_row([p], |r| r.get::<_, i64>(0))?.unsigned_abs();
                    del.execute([p])?;
                }
                report.roots_affected = affected.into_iter().collect();
                // Rows whose own columns are malformed.
                let keys: Vec<String> = tx
                    .prepare("SELECT key FROM derivations")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut del = tx.prepare("DELETE FROM derivations WHERE key = ?1")?;
                for k in keys
                    .iter()
                    .filter(|k| B3Digest::parse_id(k.as_str()).is_err())
                {
                    report.derivations_removed += 1;
                    del.execute([k])?;
                }
                let mut del =
                    tx.prepare("DELETE FROM layers WHERE tree = ?1 AND compression = ?2")?;
                for (t, c) in &bad_layers {
                    report.layers_removed += 1;
                    del.execute(params![t, c])?;
                }
                let mut del = tx.prepare("DELETE FROM file_hashes WHERE path = ?1")?;
                for p in &bad_hashes {
                    report.file_hashes_removed += 1;
                    del.execute([p])?;
                }
                let mut del = tx.prepare("DELETE FROM checked_objects WHERE object = ?1")?;
                for o in &bad {
                    del.execute([o.to_string()])?;
                }
            }
            tx.commit()?;
            Ok(())
        })();
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        result?;
        drop(conn);
        report.outputs_removed = broken.into_iter().collect();

        // Files, after the rows: bad trees parents first, then the rest.
        let mut bad_trees: HashMap<B3Digest, ObjectRef> = HashMap::new();
        let mut bad_other = Vec::new();
        for o in &bad {
            match o {
                ObjectRef::Tree(d) => {
                    bad_trees.insert(*d, *o);
                }
                _ => bad_other.push(*o),
            }
        }
        let mut removed: Vec<ObjectRef> = self
            .parents_first(&bad_trees)
            .into_iter()
            .copied()
            .collect();
        bad_other.sort();
        removed.extend(bad_other);
        for o in &removed {
            remove_file_if_exists(&self.object_path(o))?;
        }
        for f in &report.files_removed {
            remove_file_if_exists(f)?;
        }
        report.objects_removed = removed;
        report.found = found;
        Ok(report)
    }

    /// Counts and sizes of objects, rows per table, and the roots.
    pub fn info(&self) -> Result<StoreInfo, StoreError> {
        let scan = self.scan_objects()?;
        let mut blobs = ObjectStats::default();
        let mut trees = ObjectStats::default();
        let mut oci_blobs = ObjectStats::default();
        for f in &scan.objects {
            let s = match f.object {
                ObjectRef::Blob(_) => &mut blobs,
                ObjectRef::Tree(_) => &mut trees,
                ObjectRef::Oci(_) => &mut oci_blobs,
            };
            s.count += 1;
            s.bytes += f.size;
        }
        let mut temp_files = ObjectStats::default();
        if let Ok(rd) = fs::read_dir(self.tmp_dir()) {
            for e in rd.flatten() {
                if let Ok(m) = e.metadata() {
                    temp_files.count += 1;
                    temp_files.bytes += m.len();
                }
            }
        }
        let mut db_bytes = 0;
        for suffix in ["", "-wal"] {
            let mut p = self.db_path().as_os_str().to_owned();
            p.push(suffix);
            if let Ok(m) = fs::metadata(PathBuf::from(p)) {
                db_bytes += m.len();
            }
        }
        let conn = self.conn()?;
        let count = |table: &str| -> Result<u64, StoreError> {
            let n: i64 =
                conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            Ok(n.unsigned_abs())
        };
        Ok(StoreInfo {
            root: self.root().to_owned(),
            schema_version: SCHEMA_VERSION,
            blobs,
            trees,
            oci_blobs,
            temp_files,
            db_bytes,
            outputs: count("outputs")?,
            output_refs: count("output_refs")?,
            derivations: count("derivations")?,
            layers: count("layers")?,
            file_hashes: count("file_hashes")?,
            roots: read_roots(&conn)?,
        })
    }
}
