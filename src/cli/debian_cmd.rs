//! `himg lock` and `himg update`, and the lock handling of `himg build`: resolve Debian packages into
//! the lock file next to the `.himg`, or check that the lock is current.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use himg_lang::ImageSpec;

use super::args::{GlobalArgs, LockArgs, UpdateArgs};
use super::{CliError, Printer};
use crate::debian::fetch::{FetchOptions, Fetcher};
use crate::debian::lockfile::{LOCK_VERSION, LockFile, LockedImage, lock_path};
use crate::debian::locking::{LockContext, inputs_hash, lock_image};
use crate::debian::mirror::MirrorResolver;
use crate::debian::plan::DebianInputs;
use crate::load::{Loaded, load_file};

/// How a build treats the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Use a current lock; resolve and write one when it is missing or stale.
    Auto,
    /// Fail when the lock is missing or stale (`--locked`).
    Locked,
}

/// Every image of the chains below `specs` that declares packages, with the file that declared it.
fn images_with_packages(specs: &[ImageSpec]) -> Vec<&ImageSpec> {
    let mut out: Vec<&ImageSpec> = Vec::new();
    for spec in specs {
        let mut next = Some(spec);
        while let Some(s) = next {
            if s.packages.is_some()
                && !out
                    .iter()
                    .any(|o| o.name == s.name && o.declared_in == s.declared_in)
            {
                out.push(s);
            }
            next = s.base.as_deref();
        }
    }
    out
}

/// Where verified package indexes are kept, by sha256 (`<store>/indexes/`), so that re-locking
/// downloads only indexes that changed.
fn index_cache(global: &GlobalArgs) -> Result<std::path::PathBuf, CliError> {
    let root = match &global.store {
        Some(dir) => dir.clone(),
        None => himg_store::Store::default_root()?,
    };
    let dir = root.join("indexes");
    std::fs::create_dir_all(&dir).map_err(|source| CliError::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn fetcher() -> Result<Fetcher, CliError> {
    let credentials = crate::debian::fetch::Credentials::from_env()?;
    Ok(Fetcher::new(FetchOptions {
        credentials,
        ..FetchOptions::default()
    }))
}

/// On a registry base (`from = "HOST/REPO@sha256:…"` at the bottom of the chain), what it has
/// installed: the base is pulled into the store when missing (as `himg build` does) and its dpkg
/// database read, per architecture of the image.
fn base_status(
    global: &GlobalArgs,
    spec: &ImageSpec,
) -> Result<Option<crate::debian::locking::BaseStatus>, CliError> {
    let Some(reference) = crate::debian::locking::registry_base_of(spec) else {
        return Ok(None);
    };
    let store = super::open_store(global)?;
    let bases = crate::registry::base::resolve_bases(&store, &[reference.to_owned()])?;
    let mut status = crate::debian::locking::BaseStatus {
        reference: reference.to_owned(),
        architectures: BTreeMap::new(),
    };
    for (arch, base) in bases.get(reference).into_iter().flatten() {
        if !spec.architectures.contains(arch) {
            continue;
        }
        let text =
            crate::registry::base::dpkg_status(&store, &base.manifest).map_err(|problem| {
                crate::registry::base::BaseError::Invalid {
                    reference: reference.to_owned(),
                    problem: format!("its dpkg database cannot be read: {problem}"),
                }
            })?;
        status.architectures.insert(arch.clone(), text.all());
    }
    Ok(Some(status))
}

/// Resolves the locks the build needs and the repositories' base URLs.
pub fn prepare(
    global: &GlobalArgs,
    loaded: &Loaded,
    specs: &[ImageSpec],
    mode: LockMode,
    printer: &Printer,
) -> Result<DebianInputs, CliError> {
    let with_packages = images_with_packages(specs);
    let mut inputs = DebianInputs::default();
    if with_packages.is_empty() {
        return Ok(inputs);
    }
    let mirrors = MirrorResolver::from_env().map_err(crate::debian::DebianError::from)?;
    let mut locks: BTreeMap<std::path::PathBuf, (LockFile, bool)> = BTreeMap::new();
    for spec in with_packages {
        let Some(packages) = &spec.packages else {
            continue;
        };
        let himg_path = loaded.loader.resolve(&spec.declared_in);
        let lpath = lock_path(&himg_path);
        if !locks.contains_key(&lpath) {
            let lock = LockFile::read(&lpath)?.unwrap_or(LockFile {
                version: LOCK_VERSION,
                images: BTreeMap::new(),
            });
            locks.insert(lpath.clone(), (lock, false));
        }
        let Some((lock, dirty)) = locks.get_mut(&lpath) else {
            continue;
        };
        let want = inputs_hash(spec, packages, &loaded.loader)?;
        let current = lock
            .images
            .get(&spec.name)
            .filter(|l| l.inputs == want)
            .cloned();
        let locked = match (current, mode) {
            (Some(l), _) => l,
            (None, LockMode::Locked) => {
                return Err(CliError::StaleLock {
                    image: spec.name.clone(),
                    lock: lpath.display().to_string(),
                    missing: !lock.images.contains_key(&spec.name),
                });
            }
            (None, LockMode::Auto) => {
                printer.status("Resolving", &format!("packages of image `{}`", spec.name));
                let fetcher = fetcher()?;
                let scratch = index_cache(global)?;
                let cx = LockContext {
                    loader: &loaded.loader,
                    fetcher: &fetcher,
                    mirrors: &mirrors,
                    now: now(),
                    scratch: &scratch,
                };
                let base = base_status(global, spec)?;
                let l = lock_image(&cx, spec, packages, base.as_ref())?;
                lock.images.insert(spec.name.clone(), l.clone());
                *dirty = true;
                l
            }
        };
        for repo in &packages.repositories {
            if let Ok(url) = mirrors.resolve(&repo.url) {
                inputs.base_urls.insert(repo.url.clone(), url);
            }
        }
        inputs
            .locks
            .insert((spec.declared_in.0.clone(), spec.name.clone()), locked);
    }
    for (path, (lock, dirty)) in locks {
        if dirty {
            lock.write(&path)?;
            printer.status("Locked", &path.display().to_string());
        }
    }
    Ok(inputs)
}

/// `himg lock FILE`: resolve every image's packages and write the lock, even if it is current.
pub fn lock(global: &GlobalArgs, args: &LockArgs, printer: &Printer) -> Result<ExitCode, CliError> {
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
) -> Result<(LockFile, std::path::PathBuf), CliError> {
    let mirrors = MirrorResolver::from_env().map_err(crate::debian::DebianError::from)?;
    let fetcher = fetcher()?;
    let scratch = index_cache(global)?;
    let cx = LockContext {
        loader: &loaded.loader,
        fetcher: &fetcher,
        mirrors: &mirrors,
        now: now(),
        scratch: &scratch,
    };
    let mut lock = LockFile {
        version: LOCK_VERSION,
        images: BTreeMap::new(),
    };
    for spec in &loaded.evaluated.images {
        if let Some(packages) = &spec.packages {
            printer.status("Resolving", &format!("packages of image `{}`", spec.name));
            let base = base_status(global, spec)?;
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
    fixes: Vec<super::vuln_cmd::Fix>,
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
) -> Result<ExitCode, CliError> {
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
            let mut fixes = match super::vuln_cmd::fixed_by_update(global, &new, image, was, pkgs) {
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
