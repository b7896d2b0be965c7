//! Build derivations seen from the command line: a build's log (`himg log`) and the
//! reproducibility check (`himg build --check`: every build step of a finished build run once
//! more and its outputs compared with the recorded ones, as `nix build --check` does).

use std::collections::BTreeMap;
use std::path::PathBuf;

use himg_store::{ObjectRef, Store};

use super::compile::compile_file;
use super::packages::LockMode;
use super::{Error, Session};
use crate::builder::{OutputEntry, list_tree};
use crate::plan::{self, BuildGraph, NodeId, Step};

/// Largest file whose two versions `--check` shows as a line diff.
const MAX_DIFF_BYTES: u64 = 256 * 1024;

/// The build nodes of a graph, by build name (the node is named `build NAME`).
pub fn build_nodes(graph: &BuildGraph) -> BTreeMap<String, NodeId> {
    graph
        .graph
        .node_indices()
        .filter(|&id| matches!(graph.node(id).step, Step::Build(_)))
        .filter_map(|id| {
            let name = graph.node(id).name.strip_prefix("build ")?;
            Some((name.to_owned(), id))
        })
        .collect()
}

/// Which build's log to show.
#[derive(Debug, Clone)]
pub struct LogOptions {
    pub file: PathBuf,
    /// The build's name; may be left out when the file's images use exactly one build.
    pub build: Option<String>,
}

/// A build's log as the store keeps it.
#[derive(Debug, Clone)]
pub struct BuildLog {
    pub build: String,
    pub text: String,
    /// The log of a failed run (no output was recorded).
    pub failed: bool,
}

/// The log of a build of `opts.file`: the recorded one when the build succeeded in this store,
/// else the kept log of its last failed run.
pub fn log(session: &Session<'_>, opts: &LogOptions) -> Result<BuildLog, Error> {
    let store = session.open_store()?;
    let compiled = compile_file(session, &opts.file, &[], &store, LockMode::Locked)?;
    let builds = build_nodes(&compiled.graph);
    let file = opts.file.display().to_string();
    let name = match (&opts.build, builds.len()) {
        (Some(name), _) => name.clone(),
        (None, 1) => builds.keys().next().cloned().unwrap_or_default(),
        (None, _) => {
            return Err(Error::NoSuchBuild {
                name: String::new(),
                file,
                available: builds.keys().cloned().collect(),
            });
        }
    };
    let id = *builds.get(&name).ok_or_else(|| Error::NoSuchBuild {
        name: name.clone(),
        file: file.clone(),
        available: builds.keys().cloned().collect(),
    })?;
    let key = compiled.graph.node(id).key;
    if let Some(record) = store.lookup_derivation(&key)? {
        let blob = record
            .meta
            .get("log")
            .and_then(|v| v.as_str())
            .and_then(|s| himg_store::B3Digest::try_from(s).ok());
        return match blob {
            Some(blob) => Ok(BuildLog {
                build: name,
                text: String::from_utf8_lossy(&store.read_blob(&blob)?).into_owned(),
                failed: false,
            }),
            None => Err(Error::NoBuildLog {
                build: name,
                why: "its output came from a binary cache, which keeps no log".into(),
            }),
        };
    }
    let failed = plan::failed_build_log(&store, &key);
    match std::fs::read(&failed) {
        Ok(bytes) => Ok(BuildLog {
            build: name,
            text: String::from_utf8_lossy(&bytes).into_owned(),
            failed: true,
        }),
        Err(_) => Err(Error::NoBuildLog {
            build: name,
            why: "it has not run in this store (as these inputs)".into(),
        }),
    }
}

/// What checking one build found.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    pub build: String,
    pub reproducible: bool,
    /// The recorded and the new outputs' tree (`blake3:…`).
    pub recorded: String,
    pub rebuilt: String,
    /// For each differing path: a line saying how, then a diff of text contents when small.
    pub differences: Vec<String>,
}

/// Runs every build step of `graph` (already realised in `store`) once more and compares.
pub fn check(store: &Store, graph: &BuildGraph) -> Result<Vec<CheckOutcome>, Error> {
    let mut out = Vec::new();
    for (name, id) in build_nodes(graph) {
        let (recorded, rebuilt) = plan::rebuild(graph, store, id)?;
        let describe = |r: &ObjectRef| match r {
            ObjectRef::Tree(d) => crate::builder::hash_of(d),
            other => other.to_string(),
        };
        let reproducible = recorded.content == rebuilt;
        let differences = if reproducible {
            Vec::new()
        } else {
            differences(store, &recorded.content, &rebuilt)?
        };
        out.push(CheckOutcome {
            build: name,
            reproducible,
            recorded: describe(&recorded.content),
            rebuilt: describe(&rebuilt),
            differences,
        });
    }
    Ok(out)
}

/// How two output trees differ, path by path.
fn differences(store: &Store, a: &ObjectRef, b: &ObjectRef) -> Result<Vec<String>, Error> {
    let index = |entries: Vec<OutputEntry>| -> BTreeMap<String, OutputEntry> {
        entries.into_iter().map(|e| (e.path.clone(), e)).collect()
    };
    let first = index(list_tree(store, a).map_err(plan::PlanError::from)?);
    let second = index(list_tree(store, b).map_err(plan::PlanError::from)?);
    let mut paths: Vec<&String> = first.keys().chain(second.keys()).collect();
    paths.sort();
    paths.dedup();
    let mut out = Vec::new();
    for path in paths {
        match (first.get(path), second.get(path)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => {
                let mut text = format!("{path}: {} (first) vs {} (second)", x.describe, y.describe);
                if let (Some(bx), Some(by)) = (x.blob, y.blob)
                    && let (Some(tx), Some(ty)) = (small_text(store, &bx), small_text(store, &by))
                {
                    text.push('\n');
                    text.push_str(&crate::testing::run::diff(&tx, &ty));
                }
                out.push(text);
            }
            (Some(x), None) => out.push(format!("{path}: {} only in the first build", x.describe)),
            (None, Some(y)) => out.push(format!("{path}: {} only in the second build", y.describe)),
            (None, None) => {}
        }
    }
    Ok(out)
}

/// A blob's contents when it is small UTF-8 text.
fn small_text(store: &Store, blob: &himg_store::B3Digest) -> Option<String> {
    let size = std::fs::metadata(store.blob_path(blob)).ok()?.len();
    if size > MAX_DIFF_BYTES {
        return None;
    }
    String::from_utf8(store.read_blob(blob).ok()?).ok()
}
