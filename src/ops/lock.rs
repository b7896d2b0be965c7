//! `lock` and `update`: resolve every image's Debian packages into the lock next to the `.himg`,
//! and what re-resolving against the newest indexes changes (with the advisories each move fixes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::packages::Resolver;
use super::{Error, Session};
use crate::debian::lockfile::{DroppedPackage, LOCK_VERSION, LockFile, LockedImage, lock_path};
use crate::load::Loaded;

/// What `lock` and `update` say of a file none of whose images declares packages.
pub fn no_packages(file: &Path) -> String {
    format!(
        "no image of `{}` declares packages: there is nothing to lock",
        file.display()
    )
}

/// Resolves the packages of every image of `loaded` that declares some, one status line each.
pub fn resolve_all(session: &Session<'_>, loaded: &Loaded) -> Result<LockFile, Error> {
    let resolver = Resolver::new(session)?;
    let mut lock = LockFile {
        version: LOCK_VERSION,
        images: BTreeMap::new(),
    };
    for spec in &loaded.evaluated.images {
        if let Some(packages) = &spec.packages {
            let locked = resolver.lock(session, loaded, spec, packages)?;
            lock.images.insert(spec.name.clone(), locked);
        }
    }
    Ok(lock)
}

/// A lock `lock` wrote (`None` when no image declares packages, so nothing was written).
#[derive(Debug, Clone)]
pub struct Locked {
    pub path: PathBuf,
    pub lock: Option<LockFile>,
}

impl Locked {
    /// The packages locked for each image's first architecture, summed over the images.
    pub fn package_count(&self) -> usize {
        self.lock
            .iter()
            .flat_map(|l| l.images.values())
            .filter_map(|i| i.architectures.values().next())
            .map(Vec::len)
            .sum()
    }

    /// `(image, package)` for each package an exclusion dropped.
    pub fn dropped(&self) -> Vec<(&str, &DroppedPackage)> {
        let mut out = Vec::new();
        for (image, locked) in self.lock.iter().flat_map(|l| &l.images) {
            for d in &locked.dropped {
                out.push((image.as_str(), d));
            }
        }
        out
    }
}

/// Resolves every image's packages of `file` and writes the lock, even if it was current.
pub fn lock(session: &Session<'_>, file: &Path) -> Result<Locked, Error> {
    let loaded = session.load(file)?;
    let lock = resolve_all(session, &loaded)?;
    let path = lock_path(file);
    if lock.images.is_empty() {
        return Ok(Locked { path, lock: None });
    }
    lock.write(&path)?;
    Ok(Locked {
        path,
        lock: Some(lock),
    })
}

/// One package move `update` proposes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Update {
    pub image: String,
    pub package: String,
    pub architecture: String,
    /// The locked version, or `(new)`.
    pub locked: String,
    /// The version it moves to, or `(removed)`.
    pub available: String,
    /// From a security suite.
    pub security: bool,
    /// The advisories the move fixes (with an imported vulnerability database).
    pub fixes: Vec<super::vuln::Fix>,
}

/// What `update` re-resolves and whether it may write the lock.
#[derive(Debug, Clone, Default)]
pub struct UpdateOptions {
    pub file: PathBuf,
    /// Only these packages may change (default: all).
    pub packages: Vec<String>,
    /// Only report: never write the lock.
    pub check: bool,
    /// Images the workspace publishes, as built now: pins on them follow these digests.
    pub published: Vec<super::pins::Published>,
}

/// How an update ended, for the caller to map to an exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateStatus {
    /// Nothing to lock, nothing changed, or the lock was written.
    Done,
    /// A check found updates (the lock was left alone).
    UpdatesAvailable,
}

/// What `update` found and did.
#[derive(Debug, Clone)]
pub struct Updated {
    pub file: PathBuf,
    pub lock_path: PathBuf,
    /// Every package move, per image and architecture.
    pub updates: Vec<Update>,
    /// Every registry-base pin whose tag moved (written into its file unless checking).
    pub pins: Vec<super::pins::PinMove>,
    /// The moved pins were written.
    pub pins_written: bool,
    /// No image declares packages.
    pub nothing_to_lock: bool,
    /// The lock was written.
    pub written: bool,
    pub status: UpdateStatus,
}

/// Re-resolves `opts.file`'s packages against the newest indexes, keeps every package not named in
/// `opts.packages` (when some are) at its locked version, lists the moves with the advisories each
/// fixes, and writes the lock unless `opts.check` (or nothing changed).
pub fn update(session: &Session<'_>, opts: &UpdateOptions) -> Result<Updated, Error> {
    let mut loaded = session.load(&opts.file)?;
    // Registry bases first: a moved pin is written before packages are resolved on it.
    let pins = if opts.packages.is_empty() {
        super::pins::moves(session, &loaded, &opts.published)?
    } else {
        Vec::new()
    };
    if !opts.check && !pins.is_empty() {
        for mv in &pins {
            super::pins::write(mv)?;
        }
        loaded = session.load(&opts.file)?;
    }
    let path = lock_path(&opts.file);
    let old = LockFile::read(&path)?;
    let mut new = resolve_all(session, &loaded)?;
    if let (false, Some(old)) = (opts.packages.is_empty(), &old) {
        keep_unlisted(&mut new, old, &opts.packages);
    }
    let updates = updates_with_fixes(session, old.as_ref(), &new);
    // Written when anything in it moved: a package, or what a moved base has installed.
    let written = !opts.check && !new.images.is_empty() && old.as_ref() != Some(&new);
    if written {
        new.write(&path)?;
    }
    let status = if opts.check && !(updates.is_empty() && pins.is_empty()) {
        UpdateStatus::UpdatesAvailable
    } else {
        UpdateStatus::Done
    };
    Ok(Updated {
        file: opts.file.clone(),
        lock_path: path,
        pins_written: !opts.check && !pins.is_empty(),
        pins,
        updates,
        nothing_to_lock: new.images.is_empty(),
        written,
        status,
    })
}

/// With package names, only those move: every other package of `new` gets its `old` version back.
fn keep_unlisted(new: &mut LockFile, old: &LockFile, packages: &[String]) {
    for (image, img) in new.images.iter_mut() {
        let Some(old_img) = old.images.get(image) else {
            continue;
        };
        for (arch, pkgs) in img.architectures.iter_mut() {
            let Some(old_pkgs) = old_img.architectures.get(arch) else {
                continue;
            };
            for p in pkgs.iter_mut() {
                let keep = !packages.contains(&p.name);
                if let (true, Some(o)) = (keep, old_pkgs.iter().find(|o| o.name == p.name)) {
                    *p = o.clone();
                }
            }
        }
    }
}

/// Every move from `old` to `new`, each with the advisories it fixes when a vulnerability database
/// has been imported (a broken database only warns: it never blocks an update).
fn updates_with_fixes(
    session: &Session<'_>,
    old: Option<&LockFile>,
    new: &LockFile,
) -> Vec<Update> {
    let mut rows: Vec<Update> = Vec::new();
    for (image, img) in &new.images {
        let before = old.and_then(|o| o.images.get(image));
        let mut moved = changes(image, before, img);
        for (arch, pkgs) in &img.architectures {
            if !moved.iter().any(|u| &u.architecture == arch) {
                continue;
            }
            let was = before
                .and_then(|b| b.architectures.get(arch))
                .map_or(&[][..], Vec::as_slice);
            let mut fixes = match super::vuln::fixed_by_update(session, new, image, was, pkgs) {
                Ok(Some(fixes)) => fixes,
                Ok(None) => break,
                Err(e) => {
                    session.printer().warn(&format!(
                        "cannot tell which advisories the updates of `{image}` fix: {e}"
                    ));
                    break;
                }
            };
            for u in moved.iter_mut().filter(|u| &u.architecture == arch) {
                u.fixes = fixes.remove(&u.package).unwrap_or_default();
            }
        }
        rows.extend(moved);
    }
    rows
}

/// What differs between image `image`'s `old` and `new` locks, per architecture and package.
fn changes(image: &str, old: Option<&LockedImage>, new: &LockedImage) -> Vec<Update> {
    let mut out = Vec::new();
    let update =
        |package: &str, architecture: &str, locked: &str, available: &str, security| Update {
            image: image.to_owned(),
            package: package.to_owned(),
            architecture: architecture.to_owned(),
            locked: locked.to_owned(),
            available: available.to_owned(),
            security,
            fixes: Vec::new(),
        };
    for (arch, pkgs) in &new.architectures {
        let before: BTreeMap<&str, &str> = old
            .and_then(|o| o.architectures.get(arch))
            .map(|v| {
                v.iter()
                    .map(|p| (p.name.as_str(), p.version.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        for p in pkgs {
            let was = before.get(p.name.as_str()).copied().unwrap_or("(new)");
            if was != p.version {
                out.push(update(
                    &p.name,
                    arch,
                    was,
                    &p.version,
                    p.suite.contains("security"),
                ));
            }
        }
        let names: std::collections::BTreeSet<&str> =
            pkgs.iter().map(|p| p.name.as_str()).collect();
        for (name, version) in before {
            if !names.contains(name) {
                out.push(update(name, arch, version, "(removed)", false));
            }
        }
    }
    out
}

impl Updated {
    /// The `update --json` report.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "file": self.file.display().to_string(),
            "lock": self.lock_path.display().to_string(),
            "updates": self.updates,
            "written": self.written,
            "base_pins": self.pins,
            "base_pins_written": self.pins_written,
        })
    }

    /// `Unlocked`, `Current`, or the table of moves with the advisories each fixes.
    pub fn print(&self, printer: &crate::printer::Printer) {
        for mv in &self.pins {
            let verb = if self.pins_written {
                "Moved"
            } else {
                "Movable"
            };
            printer.status(
                verb,
                &format!(
                    "base of {} in {}: {} → {}{}",
                    mv.images.join(", "),
                    mv.file.display(),
                    mv.from,
                    mv.to,
                    mv.published_by
                        .as_ref()
                        .map(|by| format!(" (as {by} builds it now)"))
                        .unwrap_or_default()
                ),
            );
            for p in &mv.packages {
                let from = p.from.as_deref().unwrap_or("(new)");
                let to = p.to.as_deref().unwrap_or("(removed)");
                printer.rendered(&format!("  {} {from} → {to}\n", p.package));
            }
        }
        if self.nothing_to_lock && !self.pins.is_empty() {
            return;
        }
        if self.nothing_to_lock {
            printer.status("Unlocked", &no_packages(&self.file));
        } else if self.updates.is_empty() {
            printer.status("Current", "no package updates");
        } else {
            printer.data(&self.table());
        }
    }

    fn table(&self) -> String {
        let mut table = format!(
            "{:<12} {:<28} {:<8} {:<24} {:<24} {:<8} {}\n",
            "IMAGE", "PACKAGE", "ARCH", "LOCKED", "AVAILABLE", "", "FIXES"
        );
        for u in &self.updates {
            let fixes: Vec<String> = u
                .fixes
                .iter()
                .map(|f| format!("{} ({})", f.id, f.severity))
                .collect();
            let line = format!(
                "{:<12} {:<28} {:<8} {:<24} {:<24} {:<8} {}",
                u.image,
                u.package,
                u.architecture,
                u.locked,
                u.available,
                if u.security { "security" } else { "" },
                fixes.join(", ")
            );
            table.push_str(line.trim_end());
            table.push('\n');
        }
        table
    }
}
