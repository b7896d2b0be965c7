//! The one resolver of paths inside an image's root, as the kernel would resolve them — symlinks
//! of the directories on the way followed, absolute targets taken from the image's root, never
//! from the host's, at most 40 links — over any [`LinkTree`]: the layer merger's file map, an
//! [`ImageView`], the `ld.so.cache` generator's unpacked packages, or a closure.
//!
//! One walk gives two answers: `resolve_parents` (crate-internal) is the merger's strict one
//! (parents only; a `..` leaving the root, a loop or a non-directory parent is a `ResolveError`,
//! missing parent directories are listed), and [`resolve`] the lenient one the ldcache generator,
//! the test runner and the SBOM use (`None` for anything but a path that exists).

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{FileEntry, FileKind, ImageView};

/// How many symlinks a path may traverse (Linux's `MAXSYMLINKS`).
const MAX_LINKS: usize = 40;

/// What a [`LinkTree`] holds at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node<'a> {
    /// A directory.
    Dir,
    /// A symlink, with its target exactly as written.
    Symlink(Cow<'a, str>),
    /// Anything else (a file, a hardlink, a device, a fifo).
    Other,
}

/// A listing of an image root's entries the resolver can walk.
pub trait LinkTree {
    /// The node at `key` — components joined with `/`, without a leading slash — or `None` when
    /// nothing is there.
    fn node(&self, key: &str) -> Option<Node<'_>>;
}

/// A closure telling what is at a key: `None` when nothing is, `Some(None)` for anything but a
/// symlink, `Some(Some(target))` for a symlink. It cannot tell a directory from a file, so it
/// answers [`Node::Other`] for both (only [`resolve`], which does not ask, fits it).
impl<F> LinkTree for F
where
    F: Fn(&str) -> Option<Option<String>>,
{
    fn node(&self, key: &str) -> Option<Node<'_>> {
        self(key).map(|target| target.map_or(Node::Other, |t| Node::Symlink(Cow::Owned(t))))
    }
}

/// The merged files of an image, keyed as [`ImageView::files`].
impl LinkTree for BTreeMap<String, FileEntry> {
    fn node(&self, key: &str) -> Option<Node<'_>> {
        self.get(key).map(|entry| match &entry.kind {
            FileKind::Dir => Node::Dir,
            FileKind::Symlink { target } => Node::Symlink(Cow::Borrowed(target)),
            _ => Node::Other,
        })
    }
}

impl LinkTree for ImageView {
    fn node(&self, key: &str) -> Option<Node<'_>> {
        self.files.node(key)
    }
}

/// Why a path could not be resolved strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ResolveError {
    Escape { link: String },
    Loop { link: String },
    NotDir { parent: String },
}

/// How a walk treats what the kernel would refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A `..` leaving the root, a non-directory parent and a loop are errors; a missing
    /// component is listed and the walk goes on.
    Strict,
    /// A `..` at the root stays there, a non-directory is walked through; the walk stops at the
    /// first missing component.
    Lenient,
}

/// Where a walk ended.
struct Walked {
    /// The components of the resolved path (empty for `/`).
    components: Vec<String>,
    /// The missing directories on the resolved path, in creation order.
    missing: Vec<String>,
}

/// The non-empty components of `path`, last first (a stack to pop).
fn split(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(str::to_owned)
        .collect()
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether the `..` of `target`, read at `depth` components below the root, climb above it.
fn climbs_out(mut depth: usize, target: &str) -> bool {
    for t in target.split('/') {
        match t {
            "" | "." => {}
            ".." if depth == 0 => return true,
            ".." => depth -= 1,
            _ => depth += 1,
        }
    }
    false
}

/// The walk: resolves every component of `path` in `tree`, following symlinks (of the last
/// component too when `follow_last`). `origin` names the path in errors.
fn walk<T: LinkTree + ?Sized>(
    tree: &T,
    path: &str,
    follow_last: bool,
    mode: Mode,
    origin: &str,
) -> Result<Walked, ResolveError> {
    let strict = mode == Mode::Strict;
    // `pending` is a stack of components still to walk (reversed); `current` the resolved prefix.
    let mut pending = split(path);
    let mut current: Vec<String> = Vec::new();
    let mut missing: Vec<String> = Vec::new();
    let mut hops = 0usize;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                // Strictly, only symlink targets contain `..` (entry names are normalised).
                if current.pop().is_none() && strict {
                    return Err(ResolveError::Escape {
                        link: origin.to_owned(),
                    });
                }
                continue;
            }
            _ => {}
        }
        current.push(component);
        let key = current.join("/");
        match tree.node(&key) {
            None => {
                if !missing.contains(&key) {
                    missing.push(key);
                }
                if !strict {
                    break;
                }
            }
            Some(Node::Symlink(target)) if follow_last || !pending.is_empty() => {
                hops += 1;
                if hops > MAX_LINKS {
                    return Err(ResolveError::Loop { link: key });
                }
                current.pop();
                if target.starts_with('/') {
                    current.clear();
                }
                if strict && climbs_out(current.len(), &target) {
                    return Err(ResolveError::Escape { link: key });
                }
                pending.extend(split(&target));
            }
            Some(Node::Other) if strict => return Err(ResolveError::NotDir { parent: key }),
            Some(_) => {}
        }
    }
    // A missing directory met before a symlink jump may not be on the final path.
    let prefix = current.join("/");
    missing.retain(|m| prefix == *m || prefix.starts_with(&format!("{m}/")));
    Ok(Walked {
        components: current,
        missing,
    })
}

/// Resolves `path` (absolute or relative to `/`) leniently: returns the components of the
/// resolved path (empty for `/`), or `None` when a component is missing or links loop.
pub fn resolve<T: LinkTree + ?Sized>(
    path: &str,
    follow_last: bool,
    tree: &T,
) -> Option<Vec<String>> {
    let walked = walk(tree, path, follow_last, Mode::Lenient, path).ok()?;
    walked.missing.is_empty().then_some(walked.components)
}

/// Resolves the parent directories of `path` strictly, as the layer merger places an entry;
/// returns the resolved path and the parent directories that do not exist (in creation order).
/// The last component is taken as written, never followed.
pub(crate) fn resolve_parents<T: LinkTree + ?Sized>(
    path: &str,
    tree: &T,
) -> Result<(String, Vec<String>), ResolveError> {
    let (parents, last) = path.rsplit_once('/').unwrap_or(("", path));
    let walked = walk(tree, parents, true, Mode::Strict, path)?;
    Ok((join(&walked.components.join("/"), last), walked.missing))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::debian::unpack::{DebEntry, DebEntryKind};
    use crate::oci::{ImageConfig, Platform};

    #[test]
    fn follows_links_inside_the_root() {
        let entries: BTreeMap<&str, Option<&str>> = [
            ("bin", Some("usr/bin")),
            ("usr", None),
            ("usr/bin", None),
            ("usr/bin/sh", Some("dash")),
            ("usr/bin/dash", None),
            ("etc", None),
            ("etc/escape", Some("/../../usr/bin/dash")),
            ("loop", Some("loop")),
        ]
        .into_iter()
        .collect();
        let lookup = |k: &str| entries.get(k).map(|t| t.map(str::to_owned));
        let r = |p: &str, last: bool| resolve(p, last, &lookup).map(|c| c.join("/"));
        assert_eq!(r("/bin/sh", false).as_deref(), Some("usr/bin/sh"));
        assert_eq!(r("/bin/sh", true).as_deref(), Some("usr/bin/dash"));
        assert_eq!(r("/etc/escape", true).as_deref(), Some("usr/bin/dash"));
        assert_eq!(r("/", true).as_deref(), Some(""));
        assert_eq!(r("/loop", true), None);
        assert_eq!(r("/nope/x", true), None);
    }

    fn entry(kind: FileKind) -> FileEntry {
        FileEntry {
            kind,
            ..FileEntry::implicit_dir(0)
        }
    }

    /// A merged-/usr root with a file, relative, absolute, climbing and looping links.
    fn files() -> BTreeMap<String, FileEntry> {
        let link = |t: &str| {
            entry(FileKind::Symlink {
                target: t.to_owned(),
            })
        };
        [
            ("usr", entry(FileKind::Dir)),
            ("usr/bin", entry(FileKind::Dir)),
            ("usr/bin/dash", entry(FileKind::File)),
            ("usr/bin/sh", link("dash")),
            ("bin", link("usr/bin")),
            ("abs", link("/usr")),
            ("etc", entry(FileKind::Dir)),
            ("etc/up", link("../usr/bin")),
            ("etc/evil", link("../../etc")),
            ("etc/clamped", link("/../../usr/bin/dash")),
            ("l1", link("l2")),
            ("l2", link("l1")),
            ("gone", link("nowhere/deeper")),
            ("detour", link("nowhere/../usr/bin")),
        ]
        .into_iter()
        .map(|(k, e)| (k.to_owned(), e))
        .collect()
    }

    fn view(files: BTreeMap<String, FileEntry>) -> ImageView {
        ImageView {
            name: None,
            digest: "sha256:v".into(),
            annotations: BTreeMap::new(),
            config: ImageConfig::new(&Platform::linux("amd64"), 0),
            layers: vec![],
            files,
            packages: vec![],
        }
    }

    /// The strict answers, the same over the merger's map and over a view of it.
    fn check_strict<T: LinkTree + ?Sized>(tree: &T) {
        let ok = |p: &str, path: &str, missing: &[&str]| {
            let missing = missing.iter().map(|m| (*m).to_owned()).collect();
            assert_eq!(
                resolve_parents(p, tree),
                Ok((path.to_owned(), missing)),
                "{p}"
            );
        };
        ok("bin/ls", "usr/bin/ls", &[]);
        ok("abs/bin/cat", "usr/bin/cat", &[]);
        ok("etc/up/x", "usr/bin/x", &[]);
        // The last component is never followed.
        ok("bin/sh", "usr/bin/sh", &[]);
        ok("bin", "bin", &[]);
        ok("", "", &[]);
        // Missing parents, top down, also behind a link; one the walk leaves again is dropped.
        ok("opt/a/b/f", "opt/a/b/f", &["opt", "opt/a", "opt/a/b"]);
        ok("gone/f", "nowhere/deeper/f", &["nowhere", "nowhere/deeper"]);
        ok("detour/f", "usr/bin/f", &[]);
        let err = |p: &str, e: ResolveError| assert_eq!(resolve_parents(p, tree), Err(e), "{p}");
        let link = |l: &str| l.to_owned();
        err(
            "etc/evil/passwd",
            ResolveError::Escape {
                link: link("etc/evil"),
            },
        );
        err(
            "etc/clamped/x",
            ResolveError::Escape {
                link: link("etc/clamped"),
            },
        );
        err("../x", ResolveError::Escape { link: link("../x") });
        err("l1/x", ResolveError::Loop { link: link("l1") });
        err(
            "bin/dash/x",
            ResolveError::NotDir {
                parent: link("usr/bin/dash"),
            },
        );
        err(
            "bin/sh/x",
            ResolveError::NotDir {
                parent: link("usr/bin/dash"),
            },
        );
    }

    /// The lenient answers, the same over every tree holding [`files`].
    fn check_lenient<T: LinkTree + ?Sized>(tree: &T) {
        let r = |p: &str, last: bool| resolve(p, last, tree).map(|c| c.join("/"));
        assert_eq!(r("/bin/sh", false).as_deref(), Some("usr/bin/sh"));
        assert_eq!(r("/bin/sh", true).as_deref(), Some("usr/bin/dash"));
        assert_eq!(r("abs/bin/./sh", true).as_deref(), Some("usr/bin/dash"));
        assert_eq!(r("/", true).as_deref(), Some(""));
        // `..` stops at the root instead of failing.
        assert_eq!(r("/etc/clamped", true).as_deref(), Some("usr/bin/dash"));
        assert_eq!(r("/../../etc/up", true).as_deref(), Some("usr/bin"));
        assert_eq!(r("/etc/evil", true).as_deref(), Some("etc"));
        // A link not followed is answered as itself.
        assert_eq!(r("/etc/evil", false).as_deref(), Some("etc/evil"));
        assert_eq!(r("/l1", false).as_deref(), Some("l1"));
        assert_eq!(r("/l1", true), None);
        assert_eq!(r("/l1/x", false), None);
        assert_eq!(r("/opt", false), None);
        assert_eq!(r("/opt/a/b", false), None);
        assert_eq!(r("/gone", true), None);
        assert_eq!(r("/bin/dash/x", true), None);
    }

    #[test]
    fn the_merged_file_map_resolves_strictly_and_leniently() {
        let files = files();
        check_strict(&files);
        check_lenient(&files);
    }

    #[test]
    fn an_image_view_resolves_strictly_and_leniently() {
        let view = view(files());
        check_strict(&view);
        check_lenient(&view);
    }

    #[test]
    fn unpacked_packages_resolve_strictly_and_leniently() {
        let entries: Vec<DebEntry> = files()
            .into_iter()
            .map(|(path, e)| DebEntry {
                path: format!("/{path}"),
                kind: match e.kind {
                    FileKind::Dir => DebEntryKind::Dir,
                    FileKind::Symlink { target } => DebEntryKind::Symlink { target },
                    _ => DebEntryKind::File {
                        size: 0,
                        content: String::new(),
                    },
                },
                mode: e.mode,
                uid: 0,
                gid: 0,
                shipped_path: None,
            })
            .collect();
        let packages = crate::debian::ldcache::ImageView::new(&entries);
        check_strict(&packages);
        check_lenient(&packages);
    }

    #[test]
    fn a_closure_resolves_leniently() {
        let files = files();
        let lookup = |k: &str| {
            files.get(k).map(|e| match &e.kind {
                FileKind::Symlink { target } => Some(target.clone()),
                _ => None,
            })
        };
        check_lenient(&lookup);
        // It cannot tell a directory from a file, so strictly every parent is refused.
        assert_eq!(
            resolve_parents("usr/bin/x", &lookup),
            Err(ResolveError::NotDir {
                parent: "usr".into()
            })
        );
    }
}
