//! Scanning project files for `copy` items: listing, include/exclude globs, and content hashes through
//! the store's stat cache (a file whose size, times and inode are unchanged is not read again).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use himg_store::{B3Digest, Store};
use rayon::prelude::*;
use serde::Serialize;

use super::PlanError;

/// One entry of a copied tree, relative to the copy source. Serialised into the derivation key.
#[derive(Debug, Clone, Serialize)]
pub struct ScannedEntry {
    /// `/`-separated path relative to the source directory; for a single-file source, the file name.
    pub path: String,
    #[serde(flatten)]
    pub kind: ScannedKind,
    /// Where to read the file from (not part of the key).
    #[serde(skip)]
    pub abs: PathBuf,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ScannedKind {
    File {
        blob: B3Digest,
        size: u64,
        executable: bool,
    },
    Dir,
    Symlink {
        target: String,
    },
}

/// A regular file found by a listing, waiting to be hashed: its relative path, where it is, and
/// its metadata (for the stat cache).
type PendingFile = (String, PathBuf, std::fs::Metadata);

/// Lists and hashes a copy source. `abs_source` is the file or directory on disk.
pub fn scan_copy(
    store: &Store,
    abs_source: &Path,
    include: &[String],
    exclude: &[String],
) -> Result<Vec<ScannedEntry>, PlanError> {
    let (mut entries, pending) = list_copy(abs_source, include, exclude)?;
    let hashed = hash_files(store, pending)?;
    entries.extend(hashed);
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(entries)
}

/// The regular files a copy source contributes (relative path, where it is on disk), in the order
/// of their relative paths: what provenance lists as the build's project inputs.
pub fn copied_files(
    abs_source: &Path,
    include: &[String],
    exclude: &[String],
) -> Result<Vec<(String, PathBuf)>, PlanError> {
    let (_, pending) = list_copy(abs_source, include, exclude)?;
    let mut files: Vec<(String, PathBuf)> = pending
        .into_iter()
        .map(|(rel, abs, _)| (rel, abs))
        .collect();
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(files)
}

/// Walks a copy source with its globs: directories and symlinks as entries, regular files as
/// pending (not yet hashed).
fn list_copy(
    abs_source: &Path,
    include: &[String],
    exclude: &[String],
) -> Result<(Vec<ScannedEntry>, Vec<PendingFile>), PlanError> {
    let meta = std::fs::symlink_metadata(abs_source).map_err(|source| PlanError::ReadSource {
        path: abs_source.to_path_buf(),
        source,
    })?;
    let mut pending: Vec<PendingFile> = Vec::new();
    let mut entries: Vec<ScannedEntry> = Vec::new();
    if meta.is_dir() {
        let include_set = build_globset(include)?;
        let exclude_set = build_globset(exclude)?;
        walk_dir(
            abs_source,
            &include_set,
            &exclude_set,
            !include.is_empty(),
            &mut entries,
            &mut pending,
        )?;
    } else {
        let name = abs_source
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| PlanError::NonUtf8Path {
                path: abs_source.to_path_buf(),
            })?
            .to_string();
        classify(abs_source, name, meta, &mut entries, &mut pending)?;
    }
    Ok((entries, pending))
}

fn build_globset(globs: &[String]) -> Result<Option<GlobSet>, PlanError> {
    if globs.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for g in globs {
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|source| PlanError::Glob {
                glob: g.clone(),
                source,
            })?;
        builder.add(glob);
        // `dir/**` also names `dir` itself, as in gitignore.
        if let Some(prefix) = g.strip_suffix("/**")
            && let Ok(glob) = Glob::new(prefix)
        {
            builder.add(glob);
        }
    }
    builder.build().map(Some).map_err(|source| PlanError::Glob {
        glob: globs.join(", "),
        source,
    })
}

fn walk_dir(
    root: &Path,
    include: &Option<GlobSet>,
    exclude: &Option<GlobSet>,
    has_include: bool,
    entries: &mut Vec<ScannedEntry>,
    pending: &mut Vec<PendingFile>,
) -> Result<(), PlanError> {
    let walker = walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by(|a, b| a.file_name().cmp(b.file_name()));
    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    let mut it = walker.into_iter();
    while let Some(next) = it.next() {
        let entry = next.map_err(|e| {
            let path = e
                .path()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| root.to_path_buf());
            PlanError::ReadSource {
                path,
                source: e.into(),
            }
        })?;
        let rel = entry
            .path()
            .strip_prefix(root)
            .ok()
            .and_then(|p| p.to_str())
            .ok_or_else(|| PlanError::NonUtf8Path {
                path: entry.path().to_path_buf(),
            })?
            .to_string();
        let excluded = exclude.as_ref().is_some_and(|set| set.is_match(&rel));
        if entry.file_type().is_dir() {
            if excluded {
                it.skip_current_dir();
                continue;
            }
            dirs.push((rel, entry.path().to_path_buf()));
            continue;
        }
        if excluded {
            continue;
        }
        if let Some(set) = include
            && !set.is_match(&rel)
        {
            continue;
        }
        let meta = entry.metadata().map_err(|e| PlanError::ReadSource {
            path: entry.path().to_path_buf(),
            source: e.into(),
        })?;
        classify(entry.path(), rel, meta, entries, pending)?;
    }
    // Directories: all of them without include globs; with include globs only those holding a match.
    let mut kept: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    if has_include {
        let names = entries
            .iter()
            .map(|e| e.path.clone())
            .chain(pending.iter().map(|p| p.0.clone()));
        for name in names {
            let mut cur = name.as_str();
            while let Some((parent, _)) = cur.rsplit_once('/') {
                kept.insert(parent.to_string());
                cur = parent;
            }
        }
    }
    for (rel, abs) in dirs {
        if !has_include || kept.contains(&rel) {
            entries.push(ScannedEntry {
                path: rel,
                kind: ScannedKind::Dir,
                abs,
            });
        }
    }
    Ok(())
}

fn classify(
    abs: &Path,
    rel: String,
    meta: std::fs::Metadata,
    entries: &mut Vec<ScannedEntry>,
    pending: &mut Vec<PendingFile>,
) -> Result<(), PlanError> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(abs).map_err(|source| PlanError::ReadSource {
            path: abs.to_path_buf(),
            source,
        })?;
        let target = target
            .to_str()
            .ok_or_else(|| PlanError::NonUtf8Path {
                path: abs.to_path_buf(),
            })?
            .to_string();
        entries.push(ScannedEntry {
            path: rel,
            kind: ScannedKind::Symlink { target },
            abs: abs.to_path_buf(),
        });
    } else if ft.is_file() {
        pending.push((rel, abs.to_path_buf(), meta));
    } else {
        return Err(PlanError::UnsupportedFileType {
            path: abs.to_path_buf(),
        });
    }
    Ok(())
}

/// Hashes regular files, using the store's stat cache where the file is unchanged.
fn hash_files(store: &Store, pending: Vec<PendingFile>) -> Result<Vec<ScannedEntry>, PlanError> {
    let mut out = Vec::with_capacity(pending.len());
    let mut misses = Vec::new();
    let queries: Vec<(&Path, &std::fs::Metadata)> = pending
        .iter()
        .map(|(_, abs, meta)| (abs.as_path(), meta))
        .collect();
    let cached = store.cached_file_hashes(&queries)?;
    for ((rel, abs, meta), hit) in pending.into_iter().zip(cached) {
        match hit {
            Some(blob) => out.push(file_entry(rel, abs, &meta, blob)),
            None => misses.push((rel, abs, meta)),
        }
    }
    type StatRecord = (PathBuf, std::fs::Metadata, B3Digest);
    let hashed: Vec<Result<(ScannedEntry, StatRecord), PlanError>> = misses
        .into_par_iter()
        .map(|(rel, abs, meta)| {
            let (blob, size) =
                himg_store::hash_file(&abs).map_err(|source| PlanError::ReadSource {
                    path: abs.clone(),
                    source,
                })?;
            if size != meta.len() {
                return Err(PlanError::SourceChanged { path: abs });
            }
            let entry = file_entry(rel, abs.clone(), &meta, blob);
            Ok((entry, (abs, meta, blob)))
        })
        .collect();
    let mut records = Vec::new();
    for r in hashed {
        let (entry, record) = r?;
        out.push(entry);
        records.push(record);
    }
    if !records.is_empty() {
        store.record_file_hashes(&records)?;
    }
    Ok(out)
}

fn file_entry(rel: String, abs: PathBuf, meta: &std::fs::Metadata, blob: B3Digest) -> ScannedEntry {
    ScannedEntry {
        path: rel,
        kind: ScannedKind::File {
            blob,
            size: meta.len(),
            executable: meta.permissions().mode() & 0o111 != 0,
        },
        abs,
    }
}
