//! The packages of an image from its dpkg database: `var/lib/dpkg/status`, the distroless
//! `var/lib/dpkg/status.d/*` stanzas, and each package's `var/lib/dpkg/info/NAME[:ARCH].list`.

use std::collections::{BTreeMap, BTreeSet};

use super::links::resolve_parents;
use super::model::{FileEntry, FileKind, InstalledPackage};

/// The dpkg status file.
pub(crate) const STATUS: &str = "var/lib/dpkg/status";
/// The distroless per-package status directory.
pub(crate) const STATUS_D: &str = "var/lib/dpkg/status.d/";
/// Where `NAME.list` files live.
pub(crate) const INFO: &str = "var/lib/dpkg/info/";

/// Is `path` a file this module reads (so the reader keeps its content)?
pub(crate) fn is_dpkg_file(path: &str) -> bool {
    path == STATUS
        || (path.starts_with(STATUS_D) && !path[STATUS_D.len()..].contains('/'))
        || (path.starts_with(INFO) && path.ends_with(".list") && !path[INFO.len()..].contains('/'))
}

/// One deb822 paragraph: field names lower-cased, continuation lines joined with `\n`.
pub(crate) type Stanza = BTreeMap<String, String>;

/// Parses deb822 paragraphs (blank-line separated; `#` comment lines skipped).
pub(crate) fn parse_stanzas(text: &str) -> Vec<Stanza> {
    let mut out = Vec::new();
    let mut cur = Stanza::new();
    let mut last: Option<String> = None;
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            last = None;
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(field) = &last
                && let Some(v) = cur.get_mut(field)
            {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            cur.insert(name.clone(), value.trim().to_owned());
            last = Some(name);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Comma-separated clauses, trimmed, continuation newlines folded.
fn clauses(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .map(|c| c.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|c| !c.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// `glibc (2.36-9)` → (`glibc`, `2.36-9`); `glibc` → (`glibc`, `binary_version`).
pub(crate) fn parse_source(field: Option<&String>, name: &str, version: &str) -> (String, String) {
    let Some(field) = field.map(|f| f.trim()).filter(|f| !f.is_empty()) else {
        return (name.to_owned(), version.to_owned());
    };
    match field.split_once('(') {
        Some((src, rest)) => (
            src.trim().to_owned(),
            rest.trim_end().trim_end_matches(')').trim().to_owned(),
        ),
        None => (field.to_owned(), version.to_owned()),
    }
}

/// The package of one status stanza (without files), or `None` when it is not installed.
pub(crate) fn package_of(stanza: &Stanza) -> Option<InstalledPackage> {
    let name = stanza.get("package")?.clone();
    if let Some(status) = stanza.get("status")
        && status.split_whitespace().last() != Some("installed")
    {
        return None;
    }
    let version = stanza.get("version").cloned().unwrap_or_default();
    let architecture = stanza.get("architecture").cloned().unwrap_or_default();
    let (source, source_version) = parse_source(stanza.get("source"), &name, &version);
    let mut depends = clauses(stanza.get("pre-depends"));
    depends.extend(clauses(stanza.get("depends")));
    Some(InstalledPackage {
        provides: clauses(stanza.get("provides")),
        multi_arch: stanza.get("multi-arch").map(|m| m.trim().to_string()),
        installed_size_kib: stanza
            .get("installed-size")
            .and_then(|s| s.trim().parse().ok()),
        name,
        version,
        architecture,
        source,
        source_version,
        depends,
        files: Vec::new(),
        layer: None,
    })
}

/// The paths of a `.list` file that exist in `files`, spelled as its keys (parents resolved through
/// the image's symlinks, so `/lib/x` on a merged-/usr image is `usr/lib/x`), sorted.
pub(crate) fn list_paths(list: &str, files: &BTreeMap<String, FileEntry>) -> Vec<String> {
    let mut out = BTreeSet::new();
    for line in list.lines() {
        let rel = line
            .trim_end_matches(['\r', '\n'])
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect::<Vec<_>>()
            .join("/");
        if rel.is_empty() || rel.split('/').any(|c| c == "..") {
            continue;
        }
        let Ok((path, missing)) = resolve_parents(&rel, files) else {
            continue;
        };
        if missing.is_empty() && files.contains_key(&path) {
            out.insert(path);
        }
    }
    out.into_iter().collect()
}

/// The layer holding most of `paths` (non-directories count; directories only when there is
/// nothing else); ties go to the lower layer.
pub(crate) fn main_layer(paths: &[String], files: &BTreeMap<String, FileEntry>) -> Option<usize> {
    let entries: Vec<&FileEntry> = paths.iter().filter_map(|p| files.get(p)).collect();
    let non_dirs: Vec<&&FileEntry> = entries.iter().filter(|e| e.kind != FileKind::Dir).collect();
    let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
    if non_dirs.is_empty() {
        for e in &entries {
            *counts.entry(e.layer).or_default() += 1;
        }
    } else {
        for e in non_dirs {
            *counts.entry(e.layer).or_default() += 1;
        }
    }
    let best = counts.values().copied().max()?;
    counts
        .into_iter()
        .find(|(_, c)| *c == best)
        .map(|(layer, _)| layer)
}

/// Every installed package of the image, sorted by name then architecture. `captured` holds the
/// content of the files [`is_dpkg_file`] selects, by path.
pub(crate) fn packages(
    captured: &BTreeMap<String, Vec<u8>>,
    files: &BTreeMap<String, FileEntry>,
) -> Vec<InstalledPackage> {
    let mut stanzas = Vec::new();
    for (path, bytes) in captured {
        let is_status = path == STATUS
            || (path.starts_with(STATUS_D)
                && !path.ends_with(".md5sums")
                && matches!(
                    files.get(path).map(|e| &e.kind),
                    Some(FileKind::File | FileKind::Hardlink { .. })
                ));
        if is_status {
            stanzas.extend(parse_stanzas(&String::from_utf8_lossy(bytes)));
        }
    }
    let mut by_key: BTreeMap<(String, String), InstalledPackage> = BTreeMap::new();
    for stanza in &stanzas {
        let Some(mut pkg) = package_of(stanza) else {
            continue;
        };
        let list = [
            format!("{INFO}{}:{}.list", pkg.name, pkg.architecture),
            format!("{INFO}{}.list", pkg.name),
        ]
        .into_iter()
        .find_map(|p| captured.get(&p));
        if let Some(list) = list {
            pkg.files = list_paths(&String::from_utf8_lossy(list), files);
            pkg.layer = main_layer(&pkg.files, files);
        }
        by_key
            .entry((pkg.name.clone(), pkg.architecture.clone()))
            .or_insert(pkg);
    }
    by_key.into_values().collect()
}

#[cfg(test)]
mod tests;
