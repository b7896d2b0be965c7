//! `himg diff`'s report: how image B differs from image A — packages added, removed and changed
//! (old → new version), files added, removed and changed grouped by the layer that holds them, runtime
//! config and annotation changes, and the size delta. Pure and deterministic (everything sorted).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::model::{FileEntry, FileKind, ImageView};

/// Which image a side is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub name: Option<String>,
    pub digest: String,
    pub architecture: String,
}

/// A package on one side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageRef {
    pub name: String,
    pub architecture: String,
    pub version: String,
}

/// A package at two versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageChange {
    pub name: String,
    pub architecture: String,
    pub old: String,
    pub new: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageDiff {
    pub added: Vec<PackageRef>,
    pub removed: Vec<PackageRef>,
    pub changed: Vec<PackageChange>,
}

/// One path that differs; `layer` is its layer in B (added, changed) or in A (removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    pub path: String,
    pub layer: usize,
    /// What differs (changed only): `type`, `content`, `mode`, `owner`, `target`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub what: Vec<&'static str>,
    /// Size in B (added, changed) or A (removed).
    pub size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileDiff {
    pub added: Vec<FileChange>,
    pub removed: Vec<FileChange>,
    pub changed: Vec<FileChange>,
}

/// The file changes a layer accounts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerChanges {
    /// `a` (removed paths are counted in A's layers) or `b`.
    pub side: &'static str,
    pub index: usize,
    pub digest: String,
    pub created_by: Option<String>,
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
}

/// One config or annotation field that differs (values as JSON text; `None` = unset).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigChange {
    pub field: String,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// Sizes of A and B.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SizeDelta {
    /// Compressed layer bytes.
    pub a: u64,
    pub b: u64,
    pub delta: i64,
    /// Bytes of regular files of the merged root filesystem.
    pub content_a: u64,
    pub content_b: u64,
    pub content_delta: i64,
}

/// How B differs from A.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiffReport {
    pub a: Side,
    pub b: Side,
    pub identical: bool,
    pub packages: PackageDiff,
    pub files: FileDiff,
    pub layers: Vec<LayerChanges>,
    pub config: Vec<ConfigChange>,
    pub size: SizeDelta,
}

fn side(v: &ImageView) -> Side {
    Side {
        name: v.name.clone(),
        digest: v.digest.clone(),
        architecture: v.config.architecture.clone(),
    }
}

/// What differs between two entries of the same path.
fn entry_changes(a: &FileEntry, b: &FileEntry) -> Vec<&'static str> {
    let mut what = Vec::new();
    let same_kind = std::mem::discriminant(&a.kind) == std::mem::discriminant(&b.kind);
    if !same_kind {
        what.push("type");
    }
    if a.sha256 != b.sha256 || a.size != b.size {
        what.push("content");
    }
    if a.mode != b.mode {
        what.push("mode");
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        what.push("owner");
    }
    if same_kind && a.kind != b.kind {
        what.push("target");
    }
    what
}

fn content_size(v: &ImageView) -> u64 {
    v.files
        .values()
        .filter(|f| f.kind == FileKind::File)
        .map(|f| f.size)
        .sum()
}

fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The config and annotation fields that differ.
fn config_changes(a: &ImageView, b: &ImageView) -> Vec<ConfigChange> {
    let mut out = Vec::new();
    let (ca, cb) = (&a.config.config, &b.config.config);
    let mut field = |name: &str, old: Option<String>, new: Option<String>| {
        if old != new {
            out.push(ConfigChange {
                field: name.to_owned(),
                old,
                new,
            });
        }
    };
    let nonempty = |v: &Vec<String>| (!v.is_empty()).then(|| json_text(v));
    field(
        "architecture",
        Some(a.config.architecture.clone()),
        Some(b.config.architecture.clone()),
    );
    field("os", Some(a.config.os.clone()), Some(b.config.os.clone()));
    field("user", ca.user.clone(), cb.user.clone());
    field(
        "entrypoint",
        nonempty(&ca.entrypoint),
        nonempty(&cb.entrypoint),
    );
    field("cmd", nonempty(&ca.cmd), nonempty(&cb.cmd));
    field("env", nonempty(&ca.env), nonempty(&cb.env));
    field("workdir", ca.working_dir.clone(), cb.working_dir.clone());
    let ports = |s: &std::collections::BTreeSet<String>| (!s.is_empty()).then(|| json_text(s));
    field("ports", ports(&ca.exposed_ports), ports(&cb.exposed_ports));
    field("volumes", ports(&ca.volumes), ports(&cb.volumes));
    field(
        "stop_signal",
        ca.stop_signal.clone(),
        cb.stop_signal.clone(),
    );
    let keyed = |prefix: &str,
                 ma: &BTreeMap<String, String>,
                 mb: &BTreeMap<String, String>,
                 out: &mut Vec<ConfigChange>| {
        let keys: std::collections::BTreeSet<&String> = ma.keys().chain(mb.keys()).collect();
        for k in keys {
            let (old, new) = (ma.get(k).cloned(), mb.get(k).cloned());
            if old != new {
                out.push(ConfigChange {
                    field: format!("{prefix}.{k}"),
                    old,
                    new,
                });
            }
        }
    };
    keyed("label", &ca.labels, &cb.labels, &mut out);
    keyed("annotation", &a.annotations, &b.annotations, &mut out);
    out
}

/// How `b` differs from `a`.
pub fn diff(a: &ImageView, b: &ImageView) -> DiffReport {
    // Packages by (name, architecture).
    let pa: BTreeMap<(&str, &str), &str> = a
        .packages
        .iter()
        .map(|p| {
            (
                (p.name.as_str(), p.architecture.as_str()),
                p.version.as_str(),
            )
        })
        .collect();
    let pb: BTreeMap<(&str, &str), &str> = b
        .packages
        .iter()
        .map(|p| {
            (
                (p.name.as_str(), p.architecture.as_str()),
                p.version.as_str(),
            )
        })
        .collect();
    let mut packages = PackageDiff::default();
    for (&(name, arch), &old) in &pa {
        match pb.get(&(name, arch)) {
            None => packages.removed.push(PackageRef {
                name: name.to_owned(),
                architecture: arch.to_owned(),
                version: old.to_owned(),
            }),
            Some(&new) if new != old => packages.changed.push(PackageChange {
                name: name.to_owned(),
                architecture: arch.to_owned(),
                old: old.to_owned(),
                new: new.to_owned(),
            }),
            Some(_) => {}
        }
    }
    for (&(name, arch), &new) in &pb {
        if !pa.contains_key(&(name, arch)) {
            packages.added.push(PackageRef {
                name: name.to_owned(),
                architecture: arch.to_owned(),
                version: new.to_owned(),
            });
        }
    }

    // Files.
    let mut files = FileDiff::default();
    for (path, ea) in &a.files {
        match b.files.get(path) {
            None => files.removed.push(FileChange {
                path: path.clone(),
                layer: ea.layer,
                what: Vec::new(),
                size: ea.size,
            }),
            Some(eb) => {
                let what = entry_changes(ea, eb);
                if !what.is_empty() {
                    files.changed.push(FileChange {
                        path: path.clone(),
                        layer: eb.layer,
                        what,
                        size: eb.size,
                    });
                }
            }
        }
    }
    for (path, eb) in &b.files {
        if !a.files.contains_key(path) {
            files.added.push(FileChange {
                path: path.clone(),
                layer: eb.layer,
                what: Vec::new(),
                size: eb.size,
            });
        }
    }

    // Per layer.
    let mut counts: BTreeMap<(&'static str, usize), (usize, usize, usize)> = BTreeMap::new();
    for f in &files.removed {
        counts.entry(("a", f.layer)).or_default().1 += 1;
    }
    for f in &files.added {
        counts.entry(("b", f.layer)).or_default().0 += 1;
    }
    for f in &files.changed {
        counts.entry(("b", f.layer)).or_default().2 += 1;
    }
    let layers = counts
        .into_iter()
        .map(|((s, index), (added, removed, changed))| {
            let view = if s == "a" { a } else { b };
            let l = view.layers.get(index);
            LayerChanges {
                side: s,
                index,
                digest: l.map(|l| l.digest.clone()).unwrap_or_default(),
                created_by: l.and_then(|l| l.created_by.clone()),
                added,
                removed,
                changed,
            }
        })
        .collect();

    let size_a: u64 = a.layers.iter().map(|l| l.size).sum();
    let size_b: u64 = b.layers.iter().map(|l| l.size).sum();
    let (ca, cb) = (content_size(a), content_size(b));
    let delta = |x: u64, y: u64| {
        i64::try_from(y).unwrap_or(i64::MAX) - i64::try_from(x).unwrap_or(i64::MAX)
    };
    DiffReport {
        a: side(a),
        b: side(b),
        identical: a.digest == b.digest,
        packages,
        files,
        layers,
        config: config_changes(a, b),
        size: SizeDelta {
            a: size_a,
            b: size_b,
            delta: delta(size_a, size_b),
            content_a: ca,
            content_b: cb,
            content_delta: delta(ca, cb),
        },
    }
}

/// `+1.2 KiB` / `-300 B` / `±0 B`.
fn signed_size(d: i64) -> String {
    match d.cmp(&0) {
        std::cmp::Ordering::Equal => "±0 B".to_owned(),
        std::cmp::Ordering::Greater => format!("+{}", crate::printer::size(d.unsigned_abs())),
        std::cmp::Ordering::Less => format!("-{}", crate::printer::size(d.unsigned_abs())),
    }
}

/// Paths listed per layer in the human form (the JSON form lists all).
const SHOWN_PER_LAYER: usize = 20;

impl DiffReport {
    /// The human form.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let name = |s: &Side| {
            format!(
                "{} {} ({})",
                s.name.as_deref().unwrap_or("-"),
                s.digest,
                s.architecture
            )
        };
        let _ = writeln!(o, "A: {}", name(&self.a));
        let _ = writeln!(o, "B: {}", name(&self.b));
        if self.identical {
            let _ = writeln!(o, "The images are identical.");
            return o;
        }
        let p = &self.packages;
        let _ = writeln!(
            o,
            "Packages: {} changed, {} added, {} removed",
            p.changed.len(),
            p.added.len(),
            p.removed.len()
        );
        for c in &p.changed {
            let _ = writeln!(
                o,
                "  ~ {}:{} {} -> {}",
                c.name, c.architecture, c.old, c.new
            );
        }
        for c in &p.added {
            let _ = writeln!(o, "  + {}:{} {}", c.name, c.architecture, c.version);
        }
        for c in &p.removed {
            let _ = writeln!(o, "  - {}:{} {}", c.name, c.architecture, c.version);
        }
        let f = &self.files;
        let _ = writeln!(
            o,
            "Files: {} changed, {} added, {} removed",
            f.changed.len(),
            f.added.len(),
            f.removed.len()
        );
        for l in &self.layers {
            let _ = writeln!(
                o,
                "  {} layer {} ({}): {} changed, {} added, {} removed",
                l.side.to_uppercase(),
                l.index,
                l.created_by.as_deref().unwrap_or("-"),
                l.changed,
                l.added,
                l.removed
            );
            let mut lines: Vec<String> = Vec::new();
            if l.side == "b" {
                for c in f.changed.iter().filter(|c| c.layer == l.index) {
                    lines.push(format!("    ~ {} ({})", c.path, c.what.join(", ")));
                }
                for c in f.added.iter().filter(|c| c.layer == l.index) {
                    lines.push(format!("    + {}", c.path));
                }
            } else {
                for c in f.removed.iter().filter(|c| c.layer == l.index) {
                    lines.push(format!("    - {}", c.path));
                }
            }
            let more = lines.len().saturating_sub(SHOWN_PER_LAYER);
            for line in lines.into_iter().take(SHOWN_PER_LAYER) {
                let _ = writeln!(o, "{line}");
            }
            if more > 0 {
                let _ = writeln!(o, "    … and {more} more (--json lists all)");
            }
        }
        if !self.config.is_empty() {
            let _ = writeln!(o, "Config:");
            for c in &self.config {
                let _ = writeln!(
                    o,
                    "  ~ {}: {} -> {}",
                    c.field,
                    c.old.as_deref().unwrap_or("(unset)"),
                    c.new.as_deref().unwrap_or("(unset)")
                );
            }
        }
        let s = &self.size;
        let _ = writeln!(
            o,
            "Size: {} -> {} compressed ({}); content {} -> {} ({})",
            crate::printer::size(s.a),
            crate::printer::size(s.b),
            signed_size(s.delta),
            crate::printer::size(s.content_a),
            crate::printer::size(s.content_b),
            signed_size(s.content_delta)
        );
        o
    }
}

#[cfg(test)]
mod tests;
