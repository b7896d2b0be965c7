//! Resolving a path inside an image's root as the kernel would — symlinks of the directories on
//! the way followed, and of the last component when asked, absolute targets taken from the image's
//! root, never from the host's, at most 40 links — over any listing of entries. Shared by the
//! `ld.so.cache` generator (unpacked packages), the test runner and the SBOM (image views).

use super::{FileKind, ImageView};

/// What is at a path: `None` when nothing is, `Some(None)` for anything but a symlink,
/// `Some(Some(target))` for a symlink.
pub type LinkLookup<'a> = dyn Fn(&str) -> Option<Option<String>> + 'a;

/// Resolves `path` (absolute or relative to `/`); `lookup` is asked about keys spelled as
/// components joined with `/`, without a leading slash. Returns the components of the resolved
/// path (empty for `/`), or `None` when a component is missing or links loop.
pub fn resolve(path: &str, follow_last: bool, lookup: &LinkLookup<'_>) -> Option<Vec<String>> {
    let split = |p: &str| -> Vec<String> {
        p.split('/')
            .filter(|c| !c.is_empty())
            .rev()
            .map(str::to_owned)
            .collect()
    };
    let mut pending = split(path);
    let mut current: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(component) = pending.pop() {
        match component.as_str() {
            "." => continue,
            ".." => {
                current.pop();
                continue;
            }
            _ => {}
        }
        current.push(component);
        let target = lookup(&current.join("/"))?;
        if let Some(target) = target
            && (follow_last || !pending.is_empty())
        {
            hops += 1;
            if hops > 40 {
                return None;
            }
            current.pop();
            if target.starts_with('/') {
                current.clear();
            }
            pending.extend(split(&target));
        }
    }
    Some(current)
}

/// The lookup over an image view's merged files.
pub fn of_view(view: &ImageView) -> impl Fn(&str) -> Option<Option<String>> + '_ {
    |key: &str| {
        view.files.get(key).map(|e| match &e.kind {
            FileKind::Symlink { target } => Some(target.clone()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

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
}
