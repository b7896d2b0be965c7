//! `himg lock` and `himg update`, and the lock handling of `himg build`: resolve Debian packages into
//! the lock file next to the `.himg`, or check that the lock is current.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use super::args::{GlobalArgs, LockArgs, UpdateArgs};
use super::{Error, Printer};
use crate::debian::lockfile::{LOCK_VERSION, LockFile, LockedImage, lock_path};
use crate::debian::locking::{LockContext, lock_image};
use crate::debian::mirror::MirrorResolver;
use crate::load::{Loaded, load_file};

/// `himg lock FILE`: resolve every image's packages and write the lock, even if it is current.
pub fn lock(global: &GlobalArgs, args: &LockArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let loaded = load_file(&args.file, global.project_root.as_deref())?;
    let (lock, path) = resolve_all(global, &loaded, &args.file, printer)?;
    if lock.images.is_empty() {
        printer.status("Unlocked", &no_packages(&args.file));
        return Ok(ExitCode::SUCCESS);
    }
    lock.write(&path)?;
    let count: usize = lock
        .images
        .values()
        .filter_map(|i| i.architectures.values().next())
        .map(Vec::len)
        .sum();
    printer.status("Locked", &format!("{count} packages in {}", path.display()));
    for (image, locked) in &lock.images {
        for d in &locked.dropped {
            printer.status("Dropped", &format!("excluded {d} from image `{image}`"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `lock` and `update` say of a file none of whose images declares packages.
fn no_packages(file: &Path) -> String {
    format!(
        "no image of `{}` declares packages: there is nothing to lock",
        file.display()
    )
}

fn resolve_all(
    global: &GlobalArgs,
    loaded: &Loaded,
    file: &Path,
    printer: &Printer,
) -> Result<(LockFile, std::path::PathBuf), Error> {
    let mirrors = MirrorResolver::from_env().map_err(crate::debian::DebianError::from)?;
    let fetcher = crate::ops::packages::fetcher()?;
    let scratch = crate::ops::packages::index_cache(&super::session(global, printer))?;
    let cx = LockContext {
        loader: &loaded.loader,
        fetcher: &fetcher,
        mirrors: &mirrors,
        now: crate::ops::packages::now(),
        scratch: &scratch,
    };
    let mut lock = LockFile {
        version: LOCK_VERSION,
        images: BTreeMap::new(),
    };
    for spec in &loaded.evaluated.images {
        if let Some(packages) = &spec.packages {
            printer.status("Resolving", &format!("packages of image `{}`", spec.name));
            let base = crate::ops::packages::base_status(&super::session(global, printer), spec)?;
            lock.images.insert(
                spec.name.clone(),
                lock_image(&cx, spec, packages, base.as_ref())?,
            );
        }
    }
    Ok((lock, lock_path(file)))
}

/// One package move `himg update` proposes.
#[derive(Debug, Clone, serde::Serialize)]
struct Update {
    image: String,
    package: String,
    architecture: String,
    /// The locked version, or `(new)`.
    locked: String,
    /// The version it moves to, or `(removed)`.
    available: String,
    /// From a security suite.
    security: bool,
    /// The advisories the move fixes (with an imported vulnerability database).
    fixes: Vec<crate::ops::vuln::Fix>,
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

/// `himg update [PKG…] [--check]`: re-resolve against the newest indexes and show what changes.
pub fn update(
    global: &GlobalArgs,
    args: &UpdateArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    let loaded = load_file(&args.file, global.project_root.as_deref())?;
    let path = lock_path(&args.file);
    let old = LockFile::read(&path)?;
    let (mut new, _) = resolve_all(global, &loaded, &args.file, printer)?;
    // With package names, only those move; everything else keeps its locked version.
    if let (false, Some(old)) = (args.packages.is_empty(), &old) {
        {
            for (image, img) in new.images.iter_mut() {
                let Some(old_img) = old.images.get(image) else {
                    continue;
                };
                for (arch, pkgs) in img.architectures.iter_mut() {
                    let Some(old_pkgs) = old_img.architectures.get(arch) else {
                        continue;
                    };
                    for p in pkgs.iter_mut() {
                        let keep = !args.packages.contains(&p.name);
                        if let (true, Some(o)) = (keep, old_pkgs.iter().find(|o| o.name == p.name))
                        {
                            *p = o.clone();
                        }
                    }
                }
            }
        }
    }
    let mut rows: Vec<Update> = Vec::new();
    for (image, img) in &new.images {
        let before = old.as_ref().and_then(|o| o.images.get(image));
        let mut moved = changes(image, before, img);
        // With a vulnerability database, each move says which advisories it fixes.
        for (arch, pkgs) in &img.architectures {
            if !moved.iter().any(|u| &u.architecture == arch) {
                continue;
            }
            let was = before
                .and_then(|b| b.architectures.get(arch))
                .map_or(&[][..], Vec::as_slice);
            // The vulnerability database only annotates: a broken one never blocks an update.
            let mut fixes = match crate::ops::vuln::fixed_by_update(
                &super::session(global, printer),
                &new,
                image,
                was,
                pkgs,
            ) {
                Ok(Some(fixes)) => fixes,
                Ok(None) => break,
                Err(e) => {
                    printer.warn(&format!(
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
    let written = !args.check && !new.images.is_empty() && (!rows.is_empty() || old.is_none());
    if args.json {
        printer.json(&serde_json::json!({
            "file": args.file.display().to_string(),
            "lock": path.display().to_string(),
            "updates": rows,
            "written": written,
        }));
    } else if new.images.is_empty() {
        printer.status("Unlocked", &no_packages(&args.file));
    } else if rows.is_empty() {
        printer.status("Current", "no package updates");
    } else {
        let mut table = format!(
            "{:<12} {:<28} {:<8} {:<24} {:<24} {:<8} {}\n",
            "IMAGE", "PACKAGE", "ARCH", "LOCKED", "AVAILABLE", "", "FIXES"
        );
        for u in &rows {
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
        printer.data(&table);
    }
    if args.check {
        return Ok(if rows.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(10)
        });
    }
    if written {
        new.write(&path)?;
        printer.status("Updated", &path.display().to_string());
    }
    Ok(ExitCode::SUCCESS)
}
