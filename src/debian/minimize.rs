//! Drop documentation, manuals and unwanted translations from unpacked packages.
//!
//! # Rules (paths after the merged-/usr mapping)
//! 1. **Docs** (unless [`MinimizePolicy::keep_docs`]): everything under `/usr/share/doc/`,
//!    `/usr/share/man/`, `/usr/share/info/` and `/usr/share/gtk-doc/` is removed — **except**
//!    `/usr/share/doc/<pkg>/copyright` (exactly that depth and name, whatever its kind): licences stay.
//! 2. **Lintian data** (always): everything under `/usr/share/lintian/` and `/usr/share/linda/`.
//! 3. **Translations**: every `/usr/share/locale/<L>/…` whose `<L>` is not kept is removed. A policy entry
//!    `K` keeps `<L>` when `L == K`, or `L` starts with `K` followed by `_`, `.` or `@` (so `en` keeps `en`,
//!    `en_GB`, `en@quot`; `C.UTF-8` keeps only itself). Files directly in `/usr/share/locale/`
//!    (`locale.alias`) are kept.
//! 4. **Symlinks into removed places**: a symlink (anywhere) whose target, resolved lexically from its
//!    directory, is a removed path or lies below a removed directory is removed too (repeated until
//!    nothing changes, so chains of links go together). Targets outside the given entries are judged by
//!    rules 1–3 alone, so a link into another package's docs goes as well.
//! 5. **Directories**: a directory matched by rules 1–3 (including the roots `/usr/share/doc` etc.) is
//!    kept only while it still holds a kept entry; no other directory is ever removed.
//! 7. **Declared path excludes** (`path_exclude` / `path_include` in the image, dpkg's `path-exclude`
//!    and `path-include` semantics): an entry whose path matches an exclude glob and no include glob is
//!    removed; a matching directory is judged by rule 5. Globs are absolute and `*` crosses `/`, as in
//!    dpkg's `fnmatch` matching, so `/usr/lib/*/gconv/*` removes everything below each `gconv` directory.
//! 6. **Hardlinks**: a kept hardlink whose target was removed becomes a regular file with the target's
//!    content; further kept links to the same target are pointed at that first one.
//!
//! 8. **Setuid and setgid bits** (always): a kept non-directory entry with mode bits `0o4000` or
//!    `0o2000` loses them, unless its path is named in [`MinimizePolicy::keep_setuid`]; each one is
//!    listed in [`Minimized::setuid_stripped`] (or [`Minimized::setuid_kept`]) with its shipped mode.
//!    Directories keep theirs (a setgid directory only passes its group on to new files).
//!
//! `removed_files` counts removed non-directories; `removed_bytes` sums the sizes of removed regular files.
//! The package's `md5sums` still lists removed files (as dpkg's `path-exclude` leaves it).

use std::collections::{BTreeMap, BTreeSet};

use super::unpack::{DebEntry, DebEntryKind, resolve_link_target};

/// What to keep.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MinimizePolicy {
    /// Keep `/usr/share/{doc,man,info,gtk-doc}` (default `false`; copyright files are always kept).
    pub keep_docs: bool,
    /// Locale directory names (or prefixes, see the module doc) to keep under `/usr/share/locale`.
    pub keep_locales: Vec<String>,
    /// Declared path globs removed from packages (rule 7).
    pub paths: PathFilter,
    /// Paths whose setuid/setgid bits are kept (rule 8); every other file loses them.
    pub keep_setuid: BTreeSet<String>,
}

/// A package file that shipped with setuid or setgid bits (rule 8).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct SetuidFile {
    /// The path in the image.
    pub path: String,
    /// Its mode as shipped (e.g. `0o4755`).
    pub mode: u32,
}

/// `path_exclude` / `path_include` globs, compiled once (rule 7).
#[derive(Debug, Clone, Default)]
pub struct PathFilter {
    exclude_patterns: Vec<String>,
    include_patterns: Vec<String>,
    exclude: Option<globset::GlobSet>,
    include: Option<globset::GlobSet>,
}

impl PartialEq for PathFilter {
    fn eq(&self, other: &PathFilter) -> bool {
        self.exclude_patterns == other.exclude_patterns
            && self.include_patterns == other.include_patterns
    }
}

impl Eq for PathFilter {}

impl PathFilter {
    /// Compiles the globs (absolute paths; `*` matches `/` too, as dpkg's `path-exclude` does).
    pub fn new(exclude: &[String], include: &[String]) -> Result<PathFilter, MinimizeError> {
        fn set(patterns: &[String]) -> Result<Option<globset::GlobSet>, MinimizeError> {
            if patterns.is_empty() {
                return Ok(None);
            }
            let mut b = globset::GlobSetBuilder::new();
            for p in patterns {
                let glob = globset::GlobBuilder::new(p)
                    .literal_separator(false)
                    .backslash_escape(true)
                    .build()
                    .map_err(|e| MinimizeError::BadGlob {
                        glob: p.clone(),
                        reason: e.kind().to_string(),
                    })?;
                b.add(glob);
            }
            b.build().map(Some).map_err(|e| MinimizeError::BadGlob {
                glob: patterns.join(", "),
                reason: e.kind().to_string(),
            })
        }
        Ok(PathFilter {
            exclude_patterns: exclude.to_vec(),
            include_patterns: include.to_vec(),
            exclude: set(exclude)?,
            include: set(include)?,
        })
    }

    /// Whether `path` is excluded (matches an exclude glob and no include glob).
    pub fn excludes(&self, path: &str) -> bool {
        self.exclude.as_ref().is_some_and(|set| set.is_match(path))
            && !self.include.as_ref().is_some_and(|set| set.is_match(path))
    }
}

/// The result of [`minimize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minimized {
    /// Entries kept, sorted by path.
    pub kept: Vec<DebEntry>,
    /// Bytes of regular files removed.
    pub removed_bytes: u64,
    /// Non-directory entries removed.
    pub removed_files: u64,
    /// Kept files whose setuid/setgid bits were removed (rule 8), sorted by path.
    pub setuid_stripped: Vec<SetuidFile>,
    /// Kept files that keep their setuid/setgid bits because the policy names them, sorted.
    pub setuid_kept: Vec<SetuidFile>,
}

/// Why a minimisation policy cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum MinimizeError {
    #[error("bad path glob `{glob}`: {reason}")]
    BadGlob { glob: String, reason: String },
}

const DOC_ROOTS: [&str; 4] = [
    "/usr/share/doc",
    "/usr/share/man",
    "/usr/share/info",
    "/usr/share/gtk-doc",
];
const LINT_ROOTS: [&str; 2] = ["/usr/share/lintian", "/usr/share/linda"];
const LOCALE_ROOT: &str = "/usr/share/locale";

fn below<'a>(path: &'a str, root: &str) -> Option<&'a str> {
    path.strip_prefix(root)?.strip_prefix('/')
}

/// Whether `path` falls under a removal rule (rules 1–3), ignoring whether something below it is kept.
/// Roots themselves (`/usr/share/doc`) are "removable" too; directories are rescued by rule 5.
pub fn is_removable(path: &str, policy: &MinimizePolicy) -> bool {
    if policy.paths.excludes(path) {
        return true;
    }
    if !policy.keep_docs {
        if let Some(rest) = below(path, "/usr/share/doc") {
            let parts: Vec<&str> = rest.split('/').collect();
            return !(parts.len() == 2 && parts[1] == "copyright");
        }
        if DOC_ROOTS
            .iter()
            .any(|r| path == *r || below(path, r).is_some())
        {
            return true;
        }
    }
    if LINT_ROOTS
        .iter()
        .any(|r| path == *r || below(path, r).is_some())
    {
        return true;
    }
    if let Some(rest) = below(path, LOCALE_ROOT) {
        let mut parts = rest.split('/');
        let locale = parts.next().unwrap_or("");
        if parts.next().is_none() {
            // A direct child: a file such as locale.alias is kept, a locale dir is judged by rule 5.
            return false;
        }
        return !keeps_locale(locale, &policy.keep_locales);
    }
    false
}

fn keeps_locale(locale: &str, keep: &[String]) -> bool {
    keep.iter().any(|k| {
        locale == k
            || locale
                .strip_prefix(k.as_str())
                .is_some_and(|r| r.starts_with('_') || r.starts_with('.') || r.starts_with('@'))
    })
}

/// A directory matched by the rules: kept only if a kept entry lies below it.
fn is_removable_dir(path: &str, policy: &MinimizePolicy) -> bool {
    is_removable(path, policy)
        || (!policy.keep_docs
            && DOC_ROOTS
                .iter()
                .any(|r| path == *r || below(path, r).is_some()))
        || below(path, LOCALE_ROOT).is_some_and(|rest| !rest.contains('/'))
}

/// Apply `policy` to the entries of one package (or of a whole image).
pub fn minimize(entries: Vec<DebEntry>, policy: &MinimizePolicy) -> Minimized {
    let mut removed: BTreeSet<String> = BTreeSet::new();
    for e in &entries {
        if !matches!(e.kind, DebEntryKind::Dir) && is_removable(&e.path, policy) {
            removed.insert(e.path.clone());
        }
    }
    let by_path: BTreeMap<&str, &DebEntry> = entries.iter().map(|e| (e.path.as_str(), e)).collect();
    // Rule 4, to a fixpoint.
    let is_gone = |p: &str, removed: &BTreeSet<String>| -> bool {
        if removed.contains(p) {
            return true;
        }
        match by_path.get(p) {
            Some(e) if !matches!(e.kind, DebEntryKind::Dir) => false,
            // A directory (or something not in this set): gone if the rules remove it and nothing kept
            // is below it — approximated by the rules alone for the target's own path.
            Some(_) => is_removable_dir(p, policy) && !has_kept_below(p, &by_path, removed, policy),
            None => {
                is_removable(p, policy)
                    || (is_removable_dir(p, policy)
                        && !has_kept_below(p, &by_path, removed, policy))
            }
        }
    };
    loop {
        let mut changed = false;
        for e in &entries {
            if let DebEntryKind::Symlink { target } = &e.kind {
                if removed.contains(&e.path) {
                    continue;
                }
                if let Some(resolved) = resolve_link_target(&e.path, target)
                    && (is_gone(&resolved, &removed)
                        || ancestors(&resolved).any(|a| removed.contains(a)))
                {
                    removed.insert(e.path.clone());
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    // Rule 5: directories matched by the rules survive only with kept descendants.
    let mut keep_dir: BTreeSet<String> = BTreeSet::new();
    for e in &entries {
        if !matches!(e.kind, DebEntryKind::Dir) && !removed.contains(&e.path) {
            for a in ancestors(&e.path) {
                keep_dir.insert(a.to_owned());
            }
        }
    }
    let mut removed_bytes = 0;
    let mut removed_files = 0;
    let mut kept = Vec::with_capacity(entries.len());
    let mut removed_files_by_path: BTreeMap<String, DebEntry> = BTreeMap::new();
    for e in entries.iter() {
        let gone = match e.kind {
            DebEntryKind::Dir => is_removable_dir(&e.path, policy) && !keep_dir.contains(&e.path),
            _ => removed.contains(&e.path),
        };
        if gone {
            if !matches!(e.kind, DebEntryKind::Dir) {
                removed_files += 1;
            }
            if let DebEntryKind::File { size, .. } = e.kind {
                removed_bytes += size;
                removed_files_by_path.insert(e.path.clone(), e.clone());
            }
        } else {
            kept.push(e.clone());
        }
    }
    // Rule 6.
    let mut promoted: BTreeMap<String, String> = BTreeMap::new();
    for e in kept.iter_mut() {
        if let DebEntryKind::Hardlink { target } = &e.kind {
            if let Some(first) = promoted.get(target) {
                e.kind = DebEntryKind::Hardlink {
                    target: first.clone(),
                };
            } else if let Some(t) = removed_files_by_path.get(target) {
                promoted.insert(target.clone(), e.path.clone());
                e.kind = t.kind.clone();
                if let DebEntryKind::File { size, .. } = t.kind {
                    removed_bytes -= size; // the bytes stay in the image after all
                }
            }
        }
    }
    // Rule 8.
    let (mut setuid_stripped, mut setuid_kept) = (Vec::new(), Vec::new());
    for e in kept.iter_mut() {
        if matches!(e.kind, DebEntryKind::Dir) || e.mode & 0o6000 == 0 {
            continue;
        }
        let file = SetuidFile {
            path: e.path.clone(),
            mode: e.mode,
        };
        if policy.keep_setuid.contains(&e.path) {
            setuid_kept.push(file);
        } else {
            e.mode &= !0o6000;
            setuid_stripped.push(file);
        }
    }
    kept.sort_by(|a, b| a.path.cmp(&b.path));
    setuid_stripped.sort();
    setuid_kept.sort();
    Minimized {
        kept,
        removed_bytes,
        removed_files,
        setuid_stripped,
        setuid_kept,
    }
}

fn has_kept_below(
    dir: &str,
    by_path: &BTreeMap<&str, &DebEntry>,
    removed: &BTreeSet<String>,
    policy: &MinimizePolicy,
) -> bool {
    let prefix = format!("{dir}/");
    by_path
        .range(prefix.as_str()..)
        .take_while(|(p, _)| p.starts_with(&prefix))
        .any(|(p, e)| {
            !matches!(e.kind, DebEntryKind::Dir)
                && !removed.contains(*p)
                && !is_removable(p, policy)
        })
}

/// Proper ancestors of an absolute path, nearest first, excluding `/`.
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut cur = path;
    std::iter::from_fn(move || {
        let idx = cur.rfind('/')?;
        cur = &cur[..idx];
        (!cur.is_empty()).then_some(cur)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str, size: u64) -> DebEntry {
        DebEntry {
            path: p.into(),
            kind: DebEntryKind::File {
                size,
                content: format!("c:{p}"),
            },
            mode: 0o644,
            uid: 0,
            gid: 0,
            shipped_path: None,
        }
    }

    #[test]
    fn rules() {
        let entries = vec![
            DebEntry::dir("/usr", 0o755),
            DebEntry::dir("/usr/share", 0o755),
            DebEntry::dir("/usr/share/doc", 0o755),
            DebEntry::dir("/usr/share/doc/p", 0o755),
            file("/usr/share/doc/p/copyright", 10),
            file("/usr/share/doc/p/changelog.gz", 100),
            DebEntry::dir("/usr/share/doc/p/examples", 0o755),
            file("/usr/share/doc/p/examples/x", 5),
            DebEntry::symlink("/usr/share/doc/q", "p"),
            DebEntry::dir("/usr/share/man", 0o755),
            DebEntry::dir("/usr/share/man/man1", 0o755),
            file("/usr/share/man/man1/p.1.gz", 7),
            DebEntry::dir("/usr/share/locale", 0o755),
            file("/usr/share/locale/locale.alias", 3),
            DebEntry::dir("/usr/share/locale/de", 0o755),
            file("/usr/share/locale/de/p.mo", 11),
            DebEntry::dir("/usr/share/locale/en_GB", 0o755),
            file("/usr/share/locale/en_GB/p.mo", 13),
            DebEntry::dir("/usr/share/lintian", 0o755),
            file("/usr/share/lintian/overrides", 1),
            DebEntry::symlink("/usr/bin/readme", "../share/doc/p/examples/x"),
            DebEntry::symlink("/usr/bin/chain", "readme"),
            DebEntry::symlink("/usr/bin/lic", "/usr/share/doc/p/copyright"),
            file("/usr/bin/p", 1000),
            DebEntry {
                path: "/usr/bin/p-doc-link".into(),
                kind: DebEntryKind::Hardlink {
                    target: "/usr/share/doc/p/changelog.gz".into(),
                },
                mode: 0o644,
                uid: 0,
                gid: 0,
                shipped_path: None,
            },
        ];
        let m = minimize(
            entries,
            &MinimizePolicy {
                keep_docs: false,
                keep_locales: vec!["en".into()],
                paths: PathFilter::default(),
                keep_setuid: BTreeSet::new(),
            },
        );
        let kept: Vec<&str> = m.kept.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            kept,
            [
                "/usr",
                "/usr/bin/lic",
                "/usr/bin/p",
                "/usr/bin/p-doc-link",
                "/usr/share",
                "/usr/share/doc",
                "/usr/share/doc/p",
                "/usr/share/doc/p/copyright",
                "/usr/share/locale",
                "/usr/share/locale/en_GB",
                "/usr/share/locale/en_GB/p.mo",
                "/usr/share/locale/locale.alias",
            ]
        );
        // x 5 + man 7 + de 11 + lintian 1 (the changelog's 100 bytes live on in the promoted hardlink)
        assert_eq!(m.removed_bytes, 24);
        // 5 files + 3 symlinks (q, readme, chain)
        assert_eq!(m.removed_files, 8);
        let link = m
            .kept
            .iter()
            .find(|e| e.path == "/usr/bin/p-doc-link")
            .expect("kept");
        assert!(matches!(link.kind, DebEntryKind::File { size: 100, .. }));
    }

    #[test]
    fn declared_path_excludes_follow_dpkg() {
        let entries = vec![
            DebEntry::dir("/usr", 0o755),
            DebEntry::dir("/usr/lib", 0o755),
            DebEntry::dir("/usr/lib/x86_64-linux-gnu", 0o755),
            file("/usr/lib/x86_64-linux-gnu/libc.so.6", 100),
            DebEntry::dir("/usr/lib/x86_64-linux-gnu/gconv", 0o755),
            file("/usr/lib/x86_64-linux-gnu/gconv/BIG5.so", 7),
            file("/usr/lib/x86_64-linux-gnu/gconv/UTF-16.so", 3),
            DebEntry::dir("/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.d", 0o755),
            file("/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.d/a.conf", 2),
            DebEntry::symlink("/usr/lib/big5", "x86_64-linux-gnu/gconv/BIG5.so"),
        ];
        let paths = PathFilter::new(
            &["/usr/lib/*/gconv/*".to_string()],
            &["/usr/lib/*/gconv/UTF-16.so".to_string()],
        )
        .unwrap();
        let m = minimize(
            entries,
            &MinimizePolicy {
                keep_docs: false,
                keep_locales: vec![],
                paths,
                keep_setuid: BTreeSet::new(),
            },
        );
        let kept: Vec<&str> = m.kept.iter().map(|e| e.path.as_str()).collect();
        // `*` crosses `/` (the `.d` directory's file goes), includes win, links into removed files go,
        // and a matched directory stays only while it holds something kept.
        assert_eq!(
            kept,
            [
                "/usr",
                "/usr/lib",
                "/usr/lib/x86_64-linux-gnu",
                "/usr/lib/x86_64-linux-gnu/gconv",
                "/usr/lib/x86_64-linux-gnu/gconv/UTF-16.so",
                "/usr/lib/x86_64-linux-gnu/libc.so.6",
            ]
        );
        assert_eq!(m.removed_bytes, 9);
        assert_eq!(m.removed_files, 3);
        assert!(PathFilter::new(&["/usr/[".to_string()], &[]).is_err());
    }

    #[test]
    fn setuid_and_setgid_bits_are_stripped_unless_named() {
        let with_mode = |mut e: DebEntry, mode: u32| {
            e.mode = mode;
            e
        };
        let entries = vec![
            with_mode(file("/usr/bin/su", 10), 0o4755),
            with_mode(file("/usr/bin/wall", 10), 0o2755),
            with_mode(file("/usr/bin/mount", 10), 0o6755),
            with_mode(file("/usr/bin/plain", 10), 0o755),
            with_mode(DebEntry::dir("/var/mail", 0o2775), 0o2775),
        ];
        let strict = minimize(entries.clone(), &MinimizePolicy::default());
        let mode = |m: &Minimized, p: &str| {
            m.kept
                .iter()
                .find(|e| e.path == p)
                .map(|e| e.mode)
                .expect("kept")
        };
        assert_eq!(mode(&strict, "/usr/bin/su"), 0o755);
        assert_eq!(mode(&strict, "/usr/bin/wall"), 0o755);
        assert_eq!(mode(&strict, "/usr/bin/mount"), 0o755);
        assert_eq!(mode(&strict, "/usr/bin/plain"), 0o755);
        assert_eq!(
            mode(&strict, "/var/mail"),
            0o2775,
            "directories keep setgid"
        );
        let listed = |v: &[SetuidFile]| {
            v.iter()
                .map(|f| (f.path.clone(), f.mode))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            listed(&strict.setuid_stripped),
            vec![
                ("/usr/bin/mount".to_string(), 0o6755),
                ("/usr/bin/su".to_string(), 0o4755),
                ("/usr/bin/wall".to_string(), 0o2755),
            ]
        );
        assert!(strict.setuid_kept.is_empty());

        let named = MinimizePolicy {
            keep_setuid: ["/usr/bin/su".to_string()].into_iter().collect(),
            ..MinimizePolicy::default()
        };
        let kept = minimize(entries, &named);
        assert_eq!(mode(&kept, "/usr/bin/su"), 0o4755);
        assert_eq!(mode(&kept, "/usr/bin/mount"), 0o755);
        assert_eq!(
            listed(&kept.setuid_kept),
            vec![("/usr/bin/su".to_string(), 0o4755)]
        );
        assert_eq!(kept.setuid_stripped.len(), 2);
    }
}
