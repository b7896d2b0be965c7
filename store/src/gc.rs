//! Garbage collection: keep what the roots reach, delete the rest.
//!
//! Reachability: a root keeps its outputs; an output keeps the outputs it references, its
//! content and the objects it references; a tree keeps its blobs and subtrees. A layer row is
//! kept while its tree or its compressed blob is kept, and a kept layer row keeps its
//! compressed blob. Derivation rows go with their output.
//!
//! Order makes gc crash-safe: rows are deleted (and durably committed) before the files they
//! name, and unreachable trees are deleted parents first, then blobs, so a kill at any moment
//! leaves no row or tree pointing at a missing object.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::params;
use serde::Serialize;

use crate::error::{IoContext, StoreError};
use crate::id::{B3Digest, ObjectRef, Sha256Digest};
use crate::store::{Store, parse_col};
use crate::tree::Node;

/// Temp files younger than this are never removed, even if unlocked: their writer may be
/// between creating and locking them.
const TEMP_GRACE: Duration = Duration::from_secs(10);

/// What `gc` removed (or, for a dry run, would remove).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// True if nothing was deleted.
    pub dry_run: bool,
    /// Outputs kept (reachable from roots).
    pub outputs_kept: u64,
    /// Output rows removed.
    pub outputs_removed: u64,
    /// Derivation rows removed (with their outputs).
    pub derivations_removed: u64,
    /// Layer rows removed.
    pub layers_removed: u64,
    /// Stat-cache rows removed because their file no longer exists.
    pub file_hashes_removed: u64,
    /// Blob files removed.
    pub blobs_removed: u64,
    /// Tree files removed.
    pub trees_removed: u64,
    /// OCI blob files removed.
    pub oci_blobs_removed: u64,
    /// Stale temp files (left by killed writers) removed.
    pub temp_files_removed: u64,
    /// Unused derivation lock files removed.
    pub lock_files_removed: u64,
    /// Bytes of object and temp files removed.
    pub bytes_freed: u64,
    /// Reachable trees that could not be read (missing or corrupt); run `verify`.
    pub unreadable_trees: Vec<B3Digest>,
}

/// One object file found by scanning an object directory.
pub(crate) struct ObjectFile {
    pub(crate) object: ObjectRef,
    pub(crate) path: PathBuf,
    pub(crate) size: u64,
}

/// Files in an object directory that do not have an object's name.
pub(crate) struct Scan {
    pub(crate) objects: Vec<ObjectFile>,
    pub(crate) unexpected: Vec<PathBuf>,
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<fs::DirEntry>, StoreError> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(StoreError::io(dir, e)),
    };
    let mut entries = rd.collect::<io::Result<Vec<_>>>().at(dir)?;
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

impl Store {
    /// Lists every object file (blobs, trees, OCI blobs) and every unexpected file beside them.
    pub(crate) fn scan_objects(&self) -> Result<Scan, StoreError> {
        let mut scan = Scan {
            objects: Vec::new(),
            unexpected: Vec::new(),
        };
        for (kind, is_tree) in [("blobs", false), ("trees", true)] {
            let base = self.layout_dir().join(kind).join("b3");
            for fan in read_dir_sorted(&base)? {
                let fan_path = fan.path();
                let fan_name = fan.file_name();
                let fan_ok = fan_name.len() == 2 && fan.file_type().is_ok_and(|t| t.is_dir());
                if !fan_ok {
                    scan.unexpected.push(fan_path);
                    continue;
                }
                for f in read_dir_sorted(&fan_path)? {
                    let path = f.path();
                    let hex = format!(
                        "{}{}",
                        fan_name.to_string_lossy(),
                        f.file_name().to_string_lossy()
                    );
                    let meta = f.metadata();
                    match (B3Digest::from_hex(&hex), meta) {
                        (Ok(d), Ok(m)) if m.is_file() => scan.objects.push(ObjectFile {
                            object: if is_tree {
                                ObjectRef::Tree(d)
                            } else {
                                ObjectRef::Blob(d)
                            },
                            path,
                            size: m.len(),
                        }),
                        (_, Err(e)) if e.kind() == io::ErrorKind::NotFound => {}
                        _ => scan.unexpected.push(path),
                    }
                }
            }
        }
        let base = self.layout_dir().join("oci/sha256");
        for f in read_dir_sorted(&base)? {
            let path = f.path();
            let meta = f.metadata();
            match (
                Sha256Digest::from_hex(&f.file_name().to_string_lossy()),
                meta,
            ) {
                (Ok(d), Ok(m)) if m.is_file() => scan.objects.push(ObjectFile {
                    object: ObjectRef::Oci(d),
                    path,
                    size: m.len(),
                }),
                (_, Err(e)) if e.kind() == io::ErrorKind::NotFound => {}
                _ => scan.unexpected.push(path),
            }
        }
        Ok(scan)
    }

    /// Temp files, split into (stale, in use). A temp file is stale when no process holds
    /// its lock and it is older than a few seconds.
    pub(crate) fn scan_temp_files(&self) -> Result<(Vec<(PathBuf, u64)>, usize), StoreError> {
        let mut stale = Vec::new();
        let mut in_use = 0;
        let now = SystemTime::now();
        for e in read_dir_sorted(&self.tmp_dir())? {
            let path = e.path();
            let Ok(meta) = e.metadata() else { continue };
            let young = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_none_or(|age| age < TEMP_GRACE);
            if young || !meta.is_file() {
                in_use += 1;
                continue;
            }
            let Ok(file) = fs::File::open(&path) else {
                continue; // renamed or removed meanwhile
            };
            match file.try_lock() {
                Ok(()) => stale.push((path, meta.len())),
                Err(_) => in_use += 1,
            }
        }
        Ok((stale, in_use))
    }

    /// Deletes every output, derivation and layer row and every object not reachable from a
    /// root, plus stale temp files and unused lock files. Waits for running builds (holders
    /// of a [`crate::BuildGuard`]) to finish, and blocks new ones while it runs. With
    /// `dry_run`, only reports what it would remove. Do not call it from a thread that holds
    /// a `BuildGuard`: it would wait for that guard forever.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport, StoreError> {
        let _lock = self.exclusive_guard()?;
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        let mut conn = self.conn()?;

        // 1. Live outputs, by walking output references from the roots.
        let outputs: HashMap<String, String> = conn
            .prepare("SELECT path, content FROM outputs")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut refs: HashMap<String, Vec<(String, String)>> = HashMap::new();
        {
            let mut stmt = conn.prepare("SELECT path, ref_kind, ref FROM output_refs")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            for row in rows {
                let (path, kind, r): (String, String, String) = row?;
                refs.entry(path).or_default().push((kind, r));
            }
        }
        let mut live_outputs: HashSet<String> = HashSet::new();
        let mut live: HashSet<ObjectRef> = HashSet::new();
        let mut stack: Vec<String> = conn
            .prepare("SELECT path FROM root_outputs")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        while let Some(path) = stack.pop() {
            if !live_outputs.insert(path.clone()) {
                continue;
            }
            if let Some(content) = outputs.get(&path) {
                live.insert(parse_col(content, "outputs", &path)?);
            }
            for (kind, r) in refs.get(&path).map(Vec::as_slice).unwrap_or_default() {
                if kind == "output" {
                    stack.push(r.clone());
                } else {
                    live.insert(parse_col(r, "output_refs", &path)?);
                }
            }
        }
        report.outputs_kept = live_outputs.len() as u64;

        // 2. Close over trees.
        let mut todo: Vec<B3Digest> = live
            .iter()
            .filter_map(|o| match o {
                ObjectRef::Tree(d) => Some(*d),
                _ => None,
            })
            .collect();
        let mut seen_trees: HashSet<B3Digest> = todo.iter().copied().collect();
        while let Some(d) = todo.pop() {
            match self.get_tree(&d) {
                Ok(tree) => {
                    for e in tree.entries {
                        match e.node {
                            Node::File { blob, .. } => {
                                live.insert(ObjectRef::Blob(blob));
                            }
                            Node::Dir { tree } => {
                                live.insert(ObjectRef::Tree(tree));
                                if seen_trees.insert(tree) {
                                    todo.push(tree);
                                }
                            }
                            Node::Symlink { .. } => {}
                        }
                    }
                }
                Err(_) => report.unreadable_trees.push(d),
            }
        }
        report.unreadable_trees.sort();

        // 3. Layers.
        let layers: Vec<(String, String, String)> = conn
            .prepare("SELECT tree, compression, digest FROM layers")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut dead_layers = Vec::new();
        for (tree, compression, digest) in layers {
            let key = format!("{tree} {compression}");
            let t: B3Digest = parse_col(&tree, "layers", &key)?;
            let d: Sha256Digest = parse_col(&digest, "layers", &key)?;
            if live.contains(&ObjectRef::Tree(t)) || live.contains(&ObjectRef::Oci(d)) {
                live.insert(ObjectRef::Oci(d));
            } else {
                dead_layers.push((tree, compression));
            }
        }

        // 4. Rows. Committed durably before any file goes.
        let dead_outputs: Vec<&String> = outputs
            .keys()
            .filter(|p| !live_outputs.contains(*p))
            .collect();
        let dead_derivations: u64 = {
            let mut stmt =
                conn.prepare_cached("SELECT count(*) FROM derivations WHERE output = ?1")?;
            let mut n = 0u64;
            for p in &dead_outputs {
                n += stmt
                    .query_row([p.as_str()], |r| r.get::<_, i64>(0))?
                    .unsigned_abs();
            }
            n
        };
        report.outputs_removed = dead_outputs.len() as u64;
        report.derivations_removed = dead_derivations;
        report.layers_removed = dead_layers.len() as u64;

        let stale_hashes: Vec<String> = conn
            .prepare("SELECT path FROM file_hashes")?
            .query_map([], |r| r.get::<_, String>(0))?
            .filter_map(|r| match r {
                Ok(p) => match fs::symlink_metadata(&p) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Some(Ok(p)),
                    _ => None,
                },
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_, _>>()?;
        report.file_hashes_removed = stale_hashes.len() as u64;

        if !dry_run {
            conn.pragma_update(None, "synchronous", "FULL")?;
            let result = (|| -> Result<(), StoreError> {
                let tx = conn.write_tx()?;
                {
                    let mut del = tx.prepare("DELETE FROM outputs WHERE path = ?1")?;
                    for p in &dead_outputs {
                        del.execute([p.as_str()])?;
                    }
                    let mut del =
                        tx.prepare("DELETE FROM layers WHERE tree = ?1 AND compression = ?2")?;
                    for (t, c) in &dead_layers {
                        del.execute(params![t, c])?;
                    }
                    let mut del = tx.prepare("DELETE FROM file_hashes WHERE path = ?1")?;
                    for p in &stale_hashes {
                        del.execute([p])?;
                    }
                }
                tx.commit()?;
                Ok(())
            })();
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            result?;
        }
        drop(conn);

        // 5. Files: dead trees parents first, then blobs and OCI blobs.
        let scan = self.scan_objects()?;
        let mut dead_trees: HashMap<B3Digest, &crate::gc::ObjectFile> = HashMap::new();
        let mut dead_other = Vec::new();
        for f in &scan.objects {
            if live.contains(&f.object) {
                continue;
            }
            match f.object {
                ObjectRef::Tree(d) => {
                    dead_trees.insert(d, f);
                }
                _ => dead_other.push(f),
            }
        }
        for f in self.parents_first(&dead_trees) {
            report.trees_removed += 1;
            report.bytes_freed += f.size;
            if !dry_run {
                remove_file_if_exists(&f.path)?;
            }
        }
        for f in dead_other {
            match f.object {
                ObjectRef::Blob(_) => report.blobs_removed += 1,
                _ => report.oci_blobs_removed += 1,
            }
            report.bytes_freed += f.size;
            if !dry_run {
                remove_file_if_exists(&f.path)?;
            }
        }

        // Their check records go with them.
        if !dry_run {
            let gone: Vec<String> = scan
                .objects
                .iter()
                .filter(|f| !live.contains(&f.object))
                .map(|f| f.object.to_string())
                .collect();
            if !gone.is_empty() {
                let mut conn = self.conn()?;
                let tx = conn.write_tx()?;
                {
                    let mut del = tx.prepare("DELETE FROM checked_objects WHERE object = ?1")?;
                    for o in &gone {
                        del.execute([o])?;
                    }
                }
                tx.commit()?;
            }
        }

        // 6. Stale temp files and unused lock files.
        let (stale, _) = self.scan_temp_files()?;
        for (path, size) in stale {
            report.temp_files_removed += 1;
            report.bytes_freed += size;
            if !dry_run {
                remove_file_if_exists(&path)?;
            }
        }
        for e in read_dir_sorted(&self.locks_dir())? {
            let path = e.path();
            let Ok(file) = fs::File::open(&path) else {
                continue;
            };
            if file.try_lock().is_ok() {
                report.lock_files_removed += 1;
                if !dry_run {
                    // Removed while we hold the lock; lock_derivation re-checks the inode.
                    remove_file_if_exists(&path)?;
                }
            }
        }
        Ok(report)
    }

    /// Orders unreachable trees so that every tree comes before its (unreachable) subtrees.
    pub(crate) fn parents_first<'a, T>(&self, dead: &'a HashMap<B3Digest, T>) -> Vec<&'a T> {
        let mut children: HashMap<B3Digest, Vec<B3Digest>> = HashMap::new();
        let mut indegree: HashMap<B3Digest, usize> = dead.keys().map(|d| (*d, 0)).collect();
        for d in dead.keys() {
            // Undecodable trees have no known children; they can go in any order.
            let Ok(tree) = self.get_tree(d) else { continue };
            let mut kids: Vec<B3Digest> = tree
                .entries
                .iter()
                .filter_map(|e| match e.node {
                    Node::Dir { tree } if dead.contains_key(&tree) => Some(tree),
                    _ => None,
                })
                .collect();
            kids.sort();
            kids.dedup();
            for k in &kids {
                if let Some(n) = indegree.get_mut(k) {
                    *n += 1;
                }
            }
            children.insert(*d, kids);
        }
        let mut ready: Vec<B3Digest> = indegree
            .iter()
            .filter(|(_, n)| **n == 0)
            .map(|(d, _)| *d)
            .collect();
        ready.sort();
        let mut order = Vec::with_capacity(dead.len());
        while let Some(d) = ready.pop() {
            if let Some(t) = dead.get(&d) {
                order.push(t);
            }
            for k in children.get(&d).map(Vec::as_slice).unwrap_or_default() {
                if let Some(n) = indegree.get_mut(k) {
                    *n -= 1;
                    if *n == 0 {
                        ready.push(*k);
                    }
                }
            }
        }
        order
    }
}

pub(crate) fn remove_file_if_exists(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(path, e)),
    }
}
