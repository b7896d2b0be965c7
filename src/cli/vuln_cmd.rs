//! `himg vulndb import|status` and `himg scan`: vulnerability data in, findings out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::args::{GlobalArgs, ScanArgs, VulndbCommand};
use super::{Error, Printer, store_root};
use crate::debian::lockfile::LockFile;
use crate::image::ImageView;
use crate::ops::build::materialize;
use crate::ops::compile::is_himg_file;
use crate::vuln::report::{self, Report, Subject};
use crate::vuln::{PackageRef, VexDocument, VulnDb, cache, db, import, match_packages, release};

/// The exit code of `scan --fail-on` when findings reach the threshold.
pub const EXIT_VULNERABLE: u8 = 11;

/// The largest vulnerability document `vulndb import URL` downloads.
const MAX_DOWNLOAD: u64 = 2 << 30;

fn db_path(global: &GlobalArgs, db: &Option<PathBuf>) -> Result<PathBuf, Error> {
    match db {
        Some(p) => Ok(p.clone()),
        None => Ok(store_root(global)?.join(db::FILE_NAME)),
    }
}

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    crate::oci::config::epoch_to_rfc3339(secs)
}

pub fn vulndb(
    global: &GlobalArgs,
    cmd: &VulndbCommand,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    match cmd {
        VulndbCommand::Import { source, db, json } => {
            let path = db_path(global, db)?;
            let imported = if source.starts_with("http://")
                || source.starts_with("https://")
                || source.starts_with("file://")
            {
                printer.status("Fetching", source);
                let bytes = crate::ops::packages::fetcher()?.get_bytes(source, MAX_DOWNLOAD)?;
                import::import_bytes(source, &bytes)?
            } else {
                import::import_path(Path::new(source))?
            };
            if imported.sources.is_empty() {
                return Err(crate::vuln::VulnError::Format {
                    what: source.clone(),
                    message: "no advisory for a `Debian:N` ecosystem".into(),
                }
                .into());
            }
            let mut vdb = VulnDb::open(&path)?;
            let replaced = vdb.replace(&imported, source, &now_rfc3339())?;
            let status = vdb.status()?;
            for (name, n) in &replaced {
                printer.status("Imported", &format!("{n} advisories into source `{name}`"));
            }
            if imported.skipped > 0 {
                printer.status(
                    "Skipped",
                    &format!(
                        "{} OSV record(s) without a `Debian:N` ecosystem",
                        imported.skipped
                    ),
                );
            }
            printer.status(
                "Database",
                &format!("{} (version {})", path.display(), status.version),
            );
            if *json {
                printer.json(&serde_json::json!({
                    "database": status,
                    "imported": replaced.iter().map(|(name, n)| serde_json::json!({"source": name, "records": n})).collect::<Vec<_>>(),
                    "skipped": imported.skipped,
                }));
            }
            Ok(ExitCode::SUCCESS)
        }
        VulndbCommand::Status { db, json } => {
            let path = db_path(global, db)?;
            let status = VulnDb::open(&path)?.status()?;
            if *json {
                printer.json(&serde_json::to_value(&status).unwrap_or_default());
            } else {
                let mut out = format!(
                    "database {}\nversion  {}\nrecords  {}\n",
                    status.path.display(),
                    status.version,
                    status.records
                );
                for s in &status.sources {
                    out.push_str(&format!(
                        "source   {}: {} records, imported {} from {}\n",
                        s.name, s.records, s.imported_at, s.location
                    ));
                }
                printer.data(&out);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// An image to scan with what is known about it.
struct ScanImage {
    view: ImageView,
    /// The image's `/etc/os-release` (or `/usr/lib/os-release`), when it has one.
    os_release: Option<String>,
}

/// Everything one target yields.
struct Target {
    images: Vec<ScanImage>,
    lock: Option<LockFile>,
    /// VEX files declared in the .himg per image name (already resolved to paths).
    declared_vex: std::collections::BTreeMap<String, Vec<PathBuf>>,
    /// What `himg update` is run on.
    himg_file: String,
    /// Keeps a materialised layout alive while it is read.
    _materialized: Option<crate::ops::build::Materialized>,
    /// Keeps a pulled layout alive while it is read.
    _pulled: Option<super::registry_cmd::PulledTemp>,
}

fn read_images(layout: &Path) -> Result<Vec<ScanImage>, Error> {
    let source = crate::image::ImageSource::open(layout)?;
    let mut out = Vec::new();
    for view in source.images()? {
        // `/etc/os-release` is usually a symlink to `/usr/lib/os-release`.
        let mut os_release = None;
        for p in ["etc/os-release", "usr/lib/os-release"] {
            if let Some(bytes) = source.read_file(&view, p)? {
                os_release = Some(String::from_utf8_lossy(&bytes).into_owned());
                break;
            }
        }
        out.push(ScanImage { view, os_release });
    }
    Ok(out)
}

fn open_target(global: &GlobalArgs, args: &ScanArgs, printer: &Printer) -> Result<Target, Error> {
    if is_himg_file(&args.target) {
        let loaded = crate::load::load_file(&args.target, global.project_root.as_deref())?;
        let declared_vex = super::audit_cmd::declared_vex(&loaded);
        let m = materialize(
            &super::session(global, printer),
            &args.target,
            &args.images,
            false,
        )?;
        let images = read_images(&m.layout())?;
        return Ok(Target {
            images,
            lock: m.lock.clone(),
            declared_vex,
            himg_file: args.target.display().to_string(),
            _materialized: Some(m),
            _pulled: None,
        });
    }
    let pulled = match args.target.to_str() {
        Some(t) => super::registry_cmd::pull_if_reference(t, false, printer)?,
        None => None,
    };
    let path = pulled.as_ref().map_or(args.target.as_path(), |p| &p.layout);
    Ok(Target {
        images: read_images(path)?,
        lock: None,
        declared_vex: Default::default(),
        himg_file: "IMAGE.himg".into(),
        _materialized: None,
        _pulled: pulled,
    })
}

/// The release: `--release`, else the lock's suite codenames, else the image's os-release.
fn image_release(
    args: &ScanArgs,
    lock: Option<&LockFile>,
    name: &str,
    os_release: Option<&str>,
) -> Option<String> {
    if let Some(r) = &args.release {
        return release::normalize(r);
    }
    release_of(lock, name, os_release)
}

/// The image's Debian release: from its lock's suites, else its `/etc/os-release`.
fn release_of(lock: Option<&LockFile>, name: &str, os_release: Option<&str>) -> Option<String> {
    if let Some(img) = lock.and_then(|l| l.images.get(name)) {
        let found = img
            .repositories
            .iter()
            .flat_map(|r| &r.suites)
            .filter_map(|s| s.codename.as_deref().or(Some(s.suite.as_str())))
            .filter_map(|c| release::normalize(c.split('-').next().unwrap_or(c)))
            .next();
        if found.is_some() {
            return found;
        }
    }
    os_release.and_then(release::from_os_release)
}

/// An advisory an update fixes: the finding the locked version has and the new one does not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct Fix {
    pub id: String,
    pub severity: String,
}

/// What moving image `name`'s packages of one architecture from `old` to `new` (both locked for
/// the release the lock `new_lock` names) fixes, by binary package name: the advisories matched
/// against the old versions and not against the new ones, most severe first. `None` when no
/// vulnerability database has been imported or the release is unknown.
pub(super) fn fixed_by_update(
    global: &GlobalArgs,
    new_lock: &LockFile,
    name: &str,
    old: &[crate::debian::lockfile::LockedPackage],
    new: &[crate::debian::lockfile::LockedPackage],
) -> Result<Option<std::collections::BTreeMap<String, Vec<Fix>>>, Error> {
    let (vdb, _) = match imported_db(global) {
        Ok(db) => db,
        Err(Error::EmptyVulnDb { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(rel) = release_of(Some(new_lock), name, None) else {
        return Ok(None);
    };
    let matched = |pkgs: &[crate::debian::lockfile::LockedPackage]| {
        let refs: Vec<PackageRef> = pkgs.iter().map(PackageRef::from).collect();
        match_packages(&refs, &rel, |source| vdb.advisories(&rel, source))
    };
    let before = matched(old)?;
    let after = matched(new)?;
    let still: std::collections::BTreeSet<(&str, &str)> = after
        .findings
        .iter()
        .map(|f| (f.id.as_str(), f.source.as_str()))
        .collect();
    let mut fixes: std::collections::BTreeMap<String, Vec<Fix>> = Default::default();
    // Findings come most severe first; each fixed one is credited to its binary packages.
    for f in &before.findings {
        if still.contains(&(f.id.as_str(), f.source.as_str())) {
            continue;
        }
        for p in &f.packages {
            let list = fixes.entry(p.name.clone()).or_default();
            if !list.iter().any(|x| x.id == f.id) {
                list.push(Fix {
                    id: f.id.clone(),
                    severity: f.severity.to_string(),
                });
            }
        }
    }
    Ok(Some(fixes))
}

/// What the `max-vulnerabilities` policy rule needs to scan an image: the lock and the declared VEX
/// files per image name.
pub(super) struct VulnContext<'a> {
    pub lock: Option<&'a LockFile>,
    pub vex: &'a std::collections::BTreeMap<String, Vec<PathBuf>>,
}

/// The matches of `packages` against the database for release `rel`: from the scan cache of
/// image `digest` when it holds them for this database version (`true`), else matched now and
/// cached.
fn cached_match(
    root: &Path,
    vdb: &VulnDb,
    digest: &str,
    packages: &[PackageRef],
    rel: &str,
    db_version: &str,
) -> Result<(crate::vuln::matcher::Matched, bool), Error> {
    if let Some(m) = cache::get(root, digest, rel, db_version) {
        return Ok((m, true));
    }
    let m = match_packages(packages, rel, |source| vdb.advisories(rel, source))?;
    cache::put(root, digest, rel, db_version, &m);
    Ok((m, false))
}

/// Counts of findings not suppressed by VEX, by severity, for the `max-vulnerabilities` rule (the
/// same matching as `himg scan`, cached alike). `None` when no database has been imported or the
/// image's release is unknown: the rule is then reported as not evaluated.
pub(super) fn vulnerability_counts(
    global: &GlobalArgs,
    cx: &VulnContext<'_>,
    name: &str,
    facts: &crate::policy::Facts,
) -> Result<Option<Vec<(String, u64)>>, Error> {
    let (vdb, status) = match imported_db(global) {
        Ok(db) => db,
        Err(Error::EmptyVulnDb { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(rel) = release_of(cx.lock, name, facts.os_release.as_deref()) else {
        return Ok(None);
    };
    let packages = &facts.packages;
    let root = store_root(global)?;
    let (matched, _) = cached_match(&root, &vdb, &facts.digest, packages, &rel, &status.version)?;
    let mut vex = Vec::new();
    for f in cx.vex.get(name).into_iter().flatten() {
        vex.push(VexDocument::read(f)?);
    }
    let subject = Subject {
        image: name,
        digest: &facts.digest,
        architecture: &facts.architecture,
        release: &rel,
        database: &status.version,
        packages: packages.len(),
        himg_file: "IMAGE.himg",
    };
    let r = Report::new(&subject, matched.findings, matched.warnings, &vex);
    Ok(Some(
        r.summary
            .iter()
            .map(|(sev, n)| (sev.to_string(), *n as u64))
            .collect(),
    ))
}

/// The default vulnerability database, when advisories have been imported into it; else
/// `EmptyVulnDb` (a missing file is not created).
pub(super) fn imported_db(global: &GlobalArgs) -> Result<(VulnDb, crate::vuln::DbStatus), Error> {
    let path = db_path(global, &None)?;
    if !path.is_file() {
        return Err(Error::EmptyVulnDb { path });
    }
    let vdb = VulnDb::open(&path)?;
    let status = vdb.status()?;
    if status.records == 0 {
        return Err(Error::EmptyVulnDb { path });
    }
    Ok((vdb, status))
}

/// The vulnerability gate of `himg promote`: every image of the OCI layout at `layout` matched as
/// `himg scan` does (release from its os-release, cached by digest); returns one summary line per
/// image and the number of findings at `threshold` or above. A missing or empty database is an
/// error (`EmptyVulnDb`), as is an image whose release cannot be told: a gate that cannot be
/// evaluated never passes.
pub(super) fn vulnerability_gate(
    global: &GlobalArgs,
    layout: &Path,
    threshold: crate::vuln::Severity,
    printer: &Printer,
) -> Result<(Vec<String>, usize), Error> {
    let root = store_root(global)?;
    let (vdb, status) = imported_db(global)?;
    let mut lines = Vec::new();
    let mut failing = 0;
    for img in read_images(layout)? {
        let view = &img.view;
        let name = view.name.clone().unwrap_or_else(|| view.digest.clone());
        let arch = view.config.architecture.clone();
        let packages: Vec<PackageRef> = view.packages.iter().map(PackageRef::from).collect();
        let rel = match release_of(None, &name, img.os_release.as_deref()) {
            Some(r) => r,
            None if packages.is_empty() => "none".to_string(),
            None => return Err(Error::UnknownRelease { image: name }),
        };
        let (matched, _) =
            cached_match(&root, &vdb, &view.digest, &packages, &rel, &status.version)?;
        for w in &matched.warnings {
            printer.warn(w);
        }
        let subject = Subject {
            image: &name,
            digest: &view.digest,
            architecture: &arch,
            release: &rel,
            database: &status.version,
            packages: packages.len(),
            himg_file: "IMAGE.himg",
        };
        let r = Report::new(&subject, matched.findings, matched.warnings, &[]);
        failing += r.failing(threshold);
        lines.push(format!(
            "{} ({arch}, {rel}): {}",
            view.digest,
            r.summary_line()
        ));
    }
    Ok((lines, failing))
}

pub fn scan(global: &GlobalArgs, args: &ScanArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let root = store_root(global)?;
    let path = db_path(global, &args.db)?;
    let vdb = VulnDb::open(&path)?;
    let status = vdb.status()?;
    if status.records == 0 {
        return Err(Error::EmptyVulnDb { path });
    }
    let mut extra_vex = Vec::new();
    for f in &args.vex {
        extra_vex.push(VexDocument::read(f)?);
    }
    let target = open_target(global, args, printer)?;
    let mut reports = Vec::new();
    for img in &target.images {
        let view = &img.view;
        let name = view.name.clone().unwrap_or_else(|| view.digest.clone());
        if !args.images.is_empty() && !args.images.contains(&name) {
            continue;
        }
        let arch = view.config.architecture.clone();
        if args.arch.as_ref().is_some_and(|a| *a != arch) {
            continue;
        }
        let rel = image_release(args, target.lock.as_ref(), &name, img.os_release.as_deref());
        let mut packages: Vec<PackageRef> = view.packages.iter().map(PackageRef::from).collect();
        if packages.is_empty()
            && let Some(locked) = target
                .lock
                .as_ref()
                .and_then(|l| l.images.get(&name))
                .and_then(|i| i.architectures.get(&arch))
        {
            packages = locked.iter().map(PackageRef::from).collect();
        }
        let rel = match rel {
            Some(r) => r,
            None if packages.is_empty() => "none".to_string(),
            None => return Err(Error::UnknownRelease { image: name }),
        };
        let (matched, cached) =
            cached_match(&root, &vdb, &view.digest, &packages, &rel, &status.version)?;
        if cached {
            printer.status(
                "Cached",
                &format!("{name} ({arch}): scan of {}", &view.digest),
            );
        }
        for w in &matched.warnings {
            printer.warn(w);
        }
        let mut vex = Vec::new();
        for f in target.declared_vex.get(&name).into_iter().flatten() {
            vex.push(VexDocument::read(f)?);
        }
        vex.extend(extra_vex.iter().cloned());
        let subject = Subject {
            image: &name,
            digest: &view.digest,
            architecture: &arch,
            release: &rel,
            database: &status.version,
            packages: packages.len(),
            himg_file: &target.himg_file,
        };
        let r = Report::new(&subject, matched.findings, matched.warnings, &vex);
        printer.status(
            "Scanned",
            &format!("{name} ({arch}, {rel}): {}", r.summary_line()),
        );
        reports.push(r);
    }
    if args.json {
        printer.json(&report::to_json(&reports));
    } else if args.sarif {
        printer.json(&report::to_sarif(
            &reports,
            &args.target.display().to_string(),
        ));
    } else {
        let text: Vec<String> = reports.iter().map(Report::table).collect();
        printer.data(&text.join("\n"));
    }
    if let Some(threshold) = args.fail_on {
        let failing: usize = reports.iter().map(|r| r.failing(threshold)).sum();
        if failing > 0 {
            printer.rendered(&format!(
                "error: {failing} finding(s) at severity {threshold} or higher (--fail-on {threshold})\nhint: update the packages (`himg update`), or record why the image is not affected in an OpenVEX file (`--vex`)\n"
            ));
            return Ok(ExitCode::from(EXIT_VULNERABLE));
        }
    }
    Ok(ExitCode::SUCCESS)
}
