//! `tmpfiles.d` entries a container never gets (systemd-tmpfiles runs at boot, and there is no
//! boot): the `d`, `D` and `L` lines of `/usr/lib/tmpfiles.d/*.conf` and `/etc/tmpfiles.d/*.conf`
//! whose paths do not exist, made as directories and links with owners resolved against the
//! image's accounts. Lines with specifiers (`%`), other types, and unknown owners are reported.

use std::collections::BTreeMap;
use std::path::Path;

use crate::debian::unpack::{DebEntry, DebEntryKind};

/// What the `tmpfiles.d` files of `root` add, and the lines left out with why.
pub fn entries(root: &Path) -> (Vec<DebEntry>, Vec<(String, String)>) {
    let users = ids(&root.join("etc/passwd"));
    let groups = ids(&root.join("etc/group"));
    // Files in /etc override /usr/lib ones of the same name; lines apply in file-name order.
    let mut files: BTreeMap<String, std::path::PathBuf> = BTreeMap::new();
    for dir in ["usr/lib/tmpfiles.d", "etc/tmpfiles.d"] {
        let Ok(read) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for entry in read.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_file = entry.file_type().is_ok_and(|t| t.is_file());
            if name.ends_with(".conf") && is_file {
                files.insert(name, entry.path());
            }
        }
    }
    let mut out: BTreeMap<String, DebEntry> = BTreeMap::new();
    let mut skipped = Vec::new();
    for (name, path) in files {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(kind), Some(target)) = (f.first(), f.get(1)) else {
                continue;
            };
            let kind = kind.trim_end_matches(['+', '!', '-', '=', '~', '^']);
            if !matches!(kind, "d" | "D" | "L") {
                continue;
            }
            let why = |reason: &str| (format!("{name}: {line}"), reason.to_string());
            if line.contains('%') || !target.starts_with('/') || target.contains("/../") {
                skipped.push(why("a specifier or a relative path"));
                continue;
            }
            let exists = std::fs::symlink_metadata(root.join(target.trim_start_matches('/')));
            if exists.is_ok() || out.contains_key(*target) {
                continue;
            }
            let entry = if kind == "L" {
                let Some(link) = f.get(6) else {
                    skipped.push(why("a link without a target"));
                    continue;
                };
                DebEntry::symlink(target, link)
            } else {
                let mode = f
                    .get(2)
                    .and_then(|m| u32::from_str_radix(m.trim_start_matches('~'), 8).ok())
                    .unwrap_or(0o755);
                let owner = |field: Option<&&str>, table: &BTreeMap<String, u32>| match field {
                    None | Some(&"-") => Some(0),
                    Some(name) => name.parse().ok().or_else(|| table.get(*name).copied()),
                };
                let (Some(uid), Some(gid)) = (owner(f.get(3), &users), owner(f.get(4), &groups))
                else {
                    skipped.push(why("an owner the image does not have"));
                    continue;
                };
                DebEntry {
                    path: target.to_string(),
                    kind: DebEntryKind::Dir,
                    mode: mode & 0o7777,
                    uid,
                    gid,
                    shipped_path: None,
                }
            };
            out.insert(target.to_string(), entry);
        }
    }
    (out.into_values().collect(), skipped)
}

/// `name → id` of an account file (`passwd` or `group`).
fn ids(path: &Path) -> BTreeMap<String, u32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.first()?.to_string(), f.get(2)?.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn makes_missing_directories_and_links_with_owners() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/lib/tmpfiles.d")).expect("mkdir");
        std::fs::create_dir_all(root.join("etc")).expect("mkdir");
        std::fs::create_dir_all(root.join("run")).expect("mkdir");
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nredis:x:100:101::/var/lib/redis:/usr/sbin/nologin\n",
        )
        .expect("w");
        std::fs::write(root.join("etc/group"), "root:x:0:\nredis:x:101:\n").expect("w");
        std::fs::write(
            root.join("usr/lib/tmpfiles.d/redis.conf"),
            "# comment\nd /run/redis 2775 redis redis -\nd /run 0755 - - -\nL /etc/x - - - - /run/redis\nd /var/cache/%n 0755 - - -\nd /run/ghost 0755 ghost - -\nf /run/file 0644 - - -\n",
        )
        .expect("w");
        let (entries, skipped) = entries(root);
        let paths: Vec<(&str, u32, u32, u32)> = entries
            .iter()
            .map(|e| (e.path.as_str(), e.mode, e.uid, e.gid))
            .collect();
        assert_eq!(
            paths,
            [("/etc/x", 0o777, 0, 0), ("/run/redis", 0o2775, 100, 101)]
        );
        assert_eq!(skipped.len(), 2, "{skipped:?}");
    }
}
