//! `himg affected`: which images of a workspace (or one file) will change, from derivation keys
//! alone — nothing is built — and why: against the store (no output recorded for the image's key
//! yet) or against a git revision (`--since REV`: the same files at REV compiled side by side).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use himg_lang::{ContentItem, ImageSpec};

use super::compile::{Compiled, compile_file};
use super::packages::LockMode;
use super::workspace::{Member, Workspace, discover, session_for};
use super::{Error, Session};
use crate::debian::lockfile::lock_path;

/// What to compare.
#[derive(Debug, Clone)]
pub struct AffectedOptions {
    /// A workspace directory, or one `.himg` file.
    pub target: PathBuf,
    /// A git revision to compare with; `None`: compare with what the store has built.
    pub since: Option<String>,
}

/// Why an image is affected.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reason {
    /// The store has no output for the image's key: it was never built here with these inputs.
    NotBuilt,
    /// The image did not exist at the revision.
    NewImage,
    /// A `.himg` file it is evaluated from (its own or an import) changed.
    DefinitionEdited { path: String },
    /// Its file's lock changed (packages moved).
    LockMoved { path: String },
    /// A file it copies changed.
    SourceEdited { path: String },
    /// Its registry base's pin changed.
    BasePinMoved { from: String, to: String },
    /// Its key changed for a reason no changed file explains (a himg upgrade, the environment).
    KeyChanged,
}

/// One image and whether (and why) it will change.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AffectedImage {
    pub file: String,
    pub image: String,
    pub affected: bool,
    /// The image's derivation key now.
    pub key: String,
    pub reasons: Vec<Reason>,
}

/// The answer: every image, affected or not, in workspace order.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Affected {
    pub since: Option<String>,
    pub images: Vec<AffectedImage>,
}

impl Affected {
    pub fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

/// The workspace (or the one file as a workspace of one) `target` names.
fn workspace_of(session: &Session<'_>, target: &Path) -> Result<(Workspace, PathBuf), Error> {
    if target.is_dir() {
        return Ok((discover(session, target)?, target.to_path_buf()));
    }
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let ws = discover(session, &dir)?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let members = ws.members.into_iter().filter(|m| m.name == name).collect();
    Ok((
        Workspace {
            dir: dir.clone(),
            members,
        },
        dir,
    ))
}

/// Which images of `opts.target` will change.
pub fn affected(session: &Session<'_>, opts: &AffectedOptions) -> Result<Affected, Error> {
    let (ws, dir) = workspace_of(session, &opts.target)?;
    let session = session_for(session, &dir);
    let store = session.open_store()?;
    let now = compile_members(&session, &ws, &store)?;
    let mut images = Vec::new();
    match &opts.since {
        None => {
            for (member, compiled) in &now {
                for img in &compiled.graph.images {
                    let key = compiled.graph.node(img.top).key;
                    let built = store.lookup_derivation(&key)?.is_some();
                    images.push(AffectedImage {
                        file: member.name.clone(),
                        image: img.name.clone(),
                        affected: !built,
                        key: key.to_string(),
                        reasons: if built {
                            vec![]
                        } else {
                            vec![Reason::NotBuilt]
                        },
                    });
                }
            }
        }
        Some(rev) => {
            let old = Checkout::of(&dir, rev)?;
            let old_session = session.clone().with_project_root(Some(old.dir.clone()));
            let old_ws = discover(&old_session, &old.dir)?;
            let before = compile_members(&old_session, &old_ws, &store)?;
            let changed = changed_files(&dir, rev)?;
            for (member, compiled) in &now {
                let old = before.iter().find(|(m, _)| m.name == member.name);
                for (img, spec) in compiled.graph.images.iter().zip(&compiled.specs) {
                    let key = compiled.graph.node(img.top).key;
                    let old_img = old.and_then(|(_, c)| {
                        let i = c.graph.images.iter().position(|i| i.name == img.name)?;
                        Some((c.graph.node(c.graph.images[i].top).key, &c.specs[i]))
                    });
                    let reasons = match old_img {
                        None => vec![Reason::NewImage],
                        Some((old_key, _)) if old_key == key => vec![],
                        Some((_, old_spec)) => {
                            why_changed(&dir, member, compiled, spec, old_spec, &changed)
                        }
                    };
                    images.push(AffectedImage {
                        file: member.name.clone(),
                        image: img.name.clone(),
                        affected: !reasons.is_empty(),
                        key: key.to_string(),
                        reasons,
                    });
                }
            }
        }
    }
    Ok(Affected {
        since: opts.since.clone(),
        images,
    })
}

/// Every member with images compiled from its lock (nothing resolved, nothing built).
fn compile_members(
    session: &Session<'_>,
    ws: &Workspace,
    store: &himg_store::Store,
) -> Result<Vec<(Member, Compiled)>, Error> {
    ws.with_images()
        .map(|m| {
            let compiled = compile_file(session, &m.file, &[], store, LockMode::Locked)?;
            Ok((m.clone(), compiled))
        })
        .collect()
}

/// The reasons the changed files (workspace-relative) give for `spec`'s new key.
fn why_changed(
    dir: &Path,
    member: &Member,
    compiled: &Compiled,
    spec: &ImageSpec,
    old_spec: &ImageSpec,
    changed: &BTreeSet<String>,
) -> Vec<Reason> {
    let mut reasons = BTreeSet::new();
    if spec.base_reference != old_spec.base_reference {
        reasons.insert(Reason::BasePinMoved {
            from: old_spec.base_reference.clone().unwrap_or_default(),
            to: spec.base_reference.clone().unwrap_or_default(),
        });
    }
    let definitions: BTreeSet<String> = compiled
        .loaded
        .evaluated
        .files_read
        .iter()
        .map(|p| p.as_str().trim_start_matches("./").to_owned())
        .collect();
    let lock = relative(dir, &lock_path(&member.file));
    let sources = copy_sources(spec);
    for path in changed {
        if definitions.contains(path) {
            reasons.insert(Reason::DefinitionEdited { path: path.clone() });
        } else if *path == lock {
            reasons.insert(Reason::LockMoved { path: path.clone() });
        } else if sources
            .iter()
            .any(|s| path == s || path.starts_with(&format!("{s}/")) || s.is_empty())
        {
            reasons.insert(Reason::SourceEdited { path: path.clone() });
        }
    }
    if reasons.is_empty() {
        reasons.insert(Reason::KeyChanged);
    }
    reasons.into_iter().collect()
}

/// The workspace-relative paths an image (and its bases, and its builds) copies from.
fn copy_sources(spec: &ImageSpec) -> Vec<String> {
    let clean = |p: &himg_lang::SourcePath| {
        p.as_str()
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_owned()
    };
    let specs = std::slice::from_ref(spec);
    let copies = himg_lang::images_reached(specs)
        .into_iter()
        .flat_map(|s| s.layers.iter().flat_map(|l| &l.items))
        .filter_map(|item| match item {
            ContentItem::Copy { source, .. } => Some(clean(source)),
            _ => None,
        });
    let build_sources = himg_lang::builds_reached(specs)
        .into_iter()
        .flat_map(|b| &b.sources)
        .filter_map(|source| match source {
            himg_lang::BuildSource::Files { source, .. } => Some(clean(source)),
            himg_lang::BuildSource::Output { .. } => None,
        });
    copies.chain(build_sources).collect()
}

fn relative(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// The workspace directory as it was at a git revision, in a temporary directory.
struct Checkout {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
}

impl Checkout {
    fn of(dir: &Path, rev: &str) -> Result<Checkout, Error> {
        let git_err = |problem: String| Error::Workspace {
            dir: dir.to_path_buf(),
            problem,
        };
        if rev.starts_with('-') {
            return Err(git_err(format!("--since `{rev}` is not a revision")));
        }
        let prefix = git(dir, &["rev-parse", "--show-prefix"]).map_err(&git_err)?;
        let tmp = tempfile::tempdir().map_err(|e| git_err(e.to_string()))?;
        let archive = tmp.path().join("tree.tar");
        git(
            dir,
            &[
                "archive",
                "--format=tar",
                "-o",
                &archive.to_string_lossy(),
                &format!("{rev}^{{tree}}"),
                "--",
                ".",
            ],
        )
        .map_err(&git_err)?;
        let root = tmp.path().join("tree");
        let file = std::fs::File::open(&archive).map_err(|e| git_err(e.to_string()))?;
        // The tar crate refuses entries that would land outside `root`.
        tar::Archive::new(file)
            .unpack(&root)
            .map_err(|e| git_err(e.to_string()))?;
        Ok(Checkout {
            dir: root.join(prefix.trim().trim_end_matches('/')),
            _tmp: tmp,
        })
    }
}

/// Files under `dir` (relative to it) that differ between `rev` and the working tree, untracked
/// ones included.
fn changed_files(dir: &Path, rev: &str) -> Result<BTreeSet<String>, Error> {
    let git_err = |problem: String| Error::Workspace {
        dir: dir.to_path_buf(),
        problem,
    };
    let mut out = BTreeSet::new();
    let diff =
        git(dir, &["diff", "--name-only", "--relative", rev, "--", "."]).map_err(&git_err)?;
    let untracked = git(
        dir,
        &["ls-files", "--others", "--exclude-standard", "--", "."],
    )
    .map_err(&git_err)?;
    for line in diff.lines().chain(untracked.lines()) {
        if !line.is_empty() {
            out.insert(line.to_owned());
        }
    }
    Ok(out)
}

/// Runs git in `dir`, returning its standard output.
fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "git {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Groups rows by file for printing.
pub fn by_file(affected: &Affected) -> BTreeMap<&str, Vec<&AffectedImage>> {
    let mut out: BTreeMap<&str, Vec<&AffectedImage>> = BTreeMap::new();
    for img in &affected.images {
        out.entry(img.file.as_str()).or_default().push(img);
    }
    out
}
