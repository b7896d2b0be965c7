//! Declared accounts merged over the account files the packages' scripts made: a declared name
//! replaces the package's line in place, new names are appended.

use std::collections::{BTreeMap, BTreeSet};

use himg_store::Store;
use serde::{Deserialize, Serialize};

use super::ConfigureError;
use crate::debian::fileset::FileSet;
use crate::debian::unpack::{DebEntry, DebEntryKind};

/// The account files of an image's declared users and groups (`plan::accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredAccounts {
    pub passwd: String,
    pub group: String,
    pub shadow: String,
}

impl DeclaredAccounts {
    pub fn of(accounts: &crate::plan::accounts::Accounts) -> DeclaredAccounts {
        DeclaredAccounts {
            passwd: accounts.passwd(),
            group: accounts.group(),
            shadow: accounts.shadow(),
        }
    }
}

/// `over`'s lines replace `base`'s lines of the same name (the first `:` field) in place; the
/// others are appended in `over`'s order.
pub fn merge_account_lines(base: &str, over: &str) -> String {
    let name = |l: &str| l.split(':').next().unwrap_or_default().to_string();
    let over_lines: Vec<&str> = over.lines().filter(|l| !l.trim().is_empty()).collect();
    let over_by_name: BTreeMap<String, &str> = over_lines.iter().map(|l| (name(l), *l)).collect();
    let mut used = BTreeSet::new();
    let mut out = String::new();
    for line in base.lines() {
        let n = name(line);
        match over_by_name.get(&n) {
            Some(replacement) if !line.starts_with('#') => {
                out.push_str(replacement);
                used.insert(n);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    for line in over_lines {
        if !used.contains(&name(line)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Merges declared accounts over the account files in `entries` (by path).
pub(super) fn merge_declared(
    store: &Store,
    merged: &mut BTreeMap<String, DebEntry>,
    declared: &DeclaredAccounts,
) -> Result<(), ConfigureError> {
    // gshadow, where the tools made one: the declared groups, locked, with their members.
    let gshadow: String = declared
        .group
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(format!("{}:!::{}\n", f.first()?, f.get(3)?))
        })
        .collect();
    for (path, over, mode, gid) in [
        ("/etc/passwd", &declared.passwd, 0o644, 0),
        ("/etc/group", &declared.group, 0o644, 0),
        ("/etc/shadow", &declared.shadow, 0o640, 42),
        ("/etc/gshadow", &gshadow, 0o640, 42),
    ] {
        if path == "/etc/gshadow" && !merged.contains_key(path) {
            continue;
        }
        let existing = match merged.get(path).map(|e| &e.kind) {
            Some(DebEntryKind::File { content, .. }) => String::from_utf8_lossy(
                &store.read_blob(&himg_store::B3Digest::try_from(content.as_str())?)?,
            )
            .into_owned(),
            _ => String::new(),
        };
        let text = merge_account_lines(&existing, over);
        let blob = store.put_blob(text.as_bytes())?;
        let prev = merged.get(path);
        let entry = DebEntry {
            path: path.to_string(),
            kind: DebEntryKind::File {
                size: text.len() as u64,
                content: blob.to_string(),
            },
            mode: prev.map_or(mode, |e| e.mode),
            uid: 0,
            gid: prev.map_or(if existing.is_empty() { 0 } else { gid }, |e| e.gid),
            shipped_path: None,
        };
        merged.insert(path.to_string(), entry);
    }
    Ok(())
}

/// The account files of `below` (a configure step's output) with `declared` merged over them, as a
/// file set of their own (a derived image's accounts layer).
pub fn accounts_over(
    store: &Store,
    below: &FileSet,
    declared: &DeclaredAccounts,
) -> Result<FileSet, ConfigureError> {
    let mut merged: BTreeMap<String, DebEntry> = below
        .entries
        .iter()
        .filter(|e| {
            matches!(
                e.path.as_str(),
                "/etc/passwd" | "/etc/group" | "/etc/shadow" | "/etc/gshadow"
            )
        })
        .map(|e| (e.path.clone(), e.clone()))
        .collect();
    merge_declared(store, &mut merged, declared)?;
    Ok(FileSet::of_entries(merged.into_values().collect()))
}
