//! Matching images' Debian packages against the imported vulnerability database: the database's
//! place, an image's release, cached matches, the counts a policy limits, the gate of a promotion
//! and what a lock update fixes.

use std::path::{Path, PathBuf};

use super::{Error, Session};
use crate::debian::lockfile::LockFile;
use crate::image::ImageView;
use crate::printer::Printer;
use crate::vuln::report::{Report, Subject};
use crate::vuln::{PackageRef, VexDocument, VulnDb, cache, db, match_packages, release};

/// The vulnerability database at `db`, else the store's default one.
pub fn db_path(session: &Session<'_>, db: &Option<PathBuf>) -> Result<PathBuf, Error> {
    match db {
        Some(p) => Ok(p.clone()),
        None => Ok(session.store_root()?.join(db::FILE_NAME)),
    }
}

/// An image to scan with what is known about it.
pub struct ScanImage {
    pub view: ImageView,
    /// The image's `/etc/os-release` (or `/usr/lib/os-release`), when it has one.
    pub os_release: Option<String>,
}

/// Every image of the OCI layout at `layout`, with its os-release.
pub fn read_images(layout: &Path) -> Result<Vec<ScanImage>, Error> {
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

/// The image's Debian release: from its lock's suites, else its `/etc/os-release`.
pub fn release_of(lock: Option<&LockFile>, name: &str, os_release: Option<&str>) -> Option<String> {
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
pub struct Fix {
    pub id: String,
    pub severity: String,
}

/// What moving image `name`'s packages of one architecture from `old` to `new` (both locked for
/// the release the lock `new_lock` names) fixes, by binary package name: the advisories matched
/// against the old versions and not against the new ones, most severe first. `None` when no
/// vulnerability database has been imported or the release is unknown.
pub fn fixed_by_update(
    session: &Session<'_>,
    new_lock: &LockFile,
    name: &str,
    old: &[crate::debian::lockfile::LockedPackage],
    new: &[crate::debian::lockfile::LockedPackage],
) -> Result<Option<std::collections::BTreeMap<String, Vec<Fix>>>, Error> {
    let (vdb, _) = match imported_db(session) {
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
pub struct VulnContext<'a> {
    pub lock: Option<&'a LockFile>,
    pub vex: &'a std::collections::BTreeMap<String, Vec<PathBuf>>,
}

/// The matches of `packages` against the database for release `rel`: from the scan cache of
/// image `digest` when it holds them for this database version (`true`), else matched now and
/// cached.
pub fn cached_match(
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
pub fn vulnerability_counts(
    session: &Session<'_>,
    cx: &VulnContext<'_>,
    name: &str,
    facts: &crate::policy::Facts,
) -> Result<Option<Vec<(String, u64)>>, Error> {
    let (vdb, status) = match imported_db(session) {
        Ok(db) => db,
        Err(Error::EmptyVulnDb { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(rel) = release_of(cx.lock, name, facts.os_release.as_deref()) else {
        return Ok(None);
    };
    let packages = &facts.packages;
    let root = session.store_root()?;
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
pub fn imported_db(session: &Session<'_>) -> Result<(VulnDb, crate::vuln::DbStatus), Error> {
    let path = db_path(session, &None)?;
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
pub fn vulnerability_gate(
    session: &Session<'_>,
    layout: &Path,
    threshold: crate::vuln::Severity,
    printer: &Printer,
) -> Result<(Vec<String>, usize), Error> {
    let root = session.store_root()?;
    let (vdb, status) = imported_db(session)?;
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
