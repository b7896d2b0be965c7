//! Matching images' Debian packages against the imported vulnerability database: the database's
//! place and its imports, an image's release, cached matches, the `scan` use-case, the counts a
//! policy limits, the gate of a promotion and what a lock update fixes.

use std::path::{Path, PathBuf};

use super::target::{OpenOptions, Target};
use super::{Error, Session};
use crate::debian::lockfile::LockFile;
use crate::image::ImageView;
use crate::printer::Printer;
use crate::vuln::report::{Report, Subject};
use crate::vuln::{
    DbStatus, PackageRef, VexDocument, VulnDb, cache, db, import, match_packages, release,
};

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
    scan_images(&crate::image::ImageSource::open(layout)?)
}

/// Every image of `source`, with its os-release.
pub fn scan_images(source: &crate::image::ImageSource) -> Result<Vec<ScanImage>, Error> {
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

/// The largest vulnerability document `vulndb import URL` downloads.
const MAX_DOWNLOAD: u64 = 2 << 30;

fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    crate::oci::config::epoch_to_rfc3339(secs)
}

/// What `himg vulndb import` reads, and into which database.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// A file, directory or `http(s)://` / `file://` URL.
    pub source: String,
    /// The database (default: the store's).
    pub db: Option<PathBuf>,
}

/// What an import did.
pub struct ImportOutcome {
    /// The database afterwards.
    pub status: DbStatus,
    /// Records imported, by source name.
    pub replaced: Vec<(String, u64)>,
    /// OSV records without a `Debian:N` ecosystem.
    pub skipped: usize,
}

impl ImportOutcome {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "database": self.status,
            "imported": self.replaced.iter().map(|(name, n)| serde_json::json!({"source": name, "records": n})).collect::<Vec<_>>(),
            "skipped": self.skipped,
        })
    }
}

/// Imports advisories (the Debian security tracker JSON or OSV records), replacing what the same
/// source imported before.
pub fn import(session: &Session<'_>, opts: &ImportOptions) -> Result<ImportOutcome, Error> {
    let printer = session.printer();
    let source = &opts.source;
    let path = db_path(session, &opts.db)?;
    let imported = if source.starts_with("http://")
        || source.starts_with("https://")
        || source.starts_with("file://")
    {
        printer.status("Fetching", source);
        let bytes = super::packages::fetcher()?.get_bytes(source, MAX_DOWNLOAD)?;
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
    Ok(ImportOutcome {
        status,
        replaced,
        skipped: imported.skipped,
    })
}

/// The database's sources, record counts, import times and version (`db`: default the store's).
pub fn status(session: &Session<'_>, db: &Option<PathBuf>) -> Result<DbStatus, Error> {
    let path = db_path(session, db)?;
    Ok(VulnDb::open(&path)?.status()?)
}

/// The text `himg vulndb status` prints.
pub fn render_status(status: &DbStatus) -> String {
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
    out
}

/// What `himg scan` matches.
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// A `.himg` file, an OCI layout, an archive or a registry reference.
    pub target: PathBuf,
    /// Only these images (empty: all).
    pub images: Vec<String>,
    /// Only this architecture.
    pub arch: Option<String>,
    /// The Debian release, overriding the lock and `/etc/os-release`.
    pub release: Option<String>,
    /// OpenVEX files applied to every image (besides each image's declared ones).
    pub vex: Vec<PathBuf>,
    /// The database (default: the store's).
    pub db: Option<PathBuf>,
    /// Plain http for a registry reference that is not on loopback.
    pub insecure: bool,
}

/// One report per image scanned.
pub struct Scanned {
    pub reports: Vec<Report>,
}

impl Scanned {
    /// Findings not suppressed by VEX at `threshold` or higher, over every image.
    pub fn failing(&self, threshold: crate::vuln::Severity) -> usize {
        self.reports.iter().map(|r| r.failing(threshold)).sum()
    }
}

/// Matches the Debian packages of a target's images against the imported advisories (cached by
/// image digest and database version), applying declared and given VEX statements.
pub fn scan(session: &Session<'_>, opts: &ScanOptions) -> Result<Scanned, Error> {
    let root = session.store_root()?;
    let path = db_path(session, &opts.db)?;
    let vdb = VulnDb::open(&path)?;
    let status = vdb.status()?;
    if status.records == 0 {
        return Err(Error::EmptyVulnDb { path });
    }
    let mut extra_vex = Vec::new();
    for f in &opts.vex {
        extra_vex.push(VexDocument::read(f)?);
    }
    let open = OpenOptions {
        images: opts.images.clone(),
        insecure: opts.insecure,
        ..OpenOptions::default()
    };
    let target = Target::open(session, &opts.target, &open)?;
    let himg_file = target
        .himg_file
        .as_ref()
        .map_or_else(|| "IMAGE.himg".to_owned(), |f| f.display().to_string());
    let scanning = Scanning {
        session,
        opts,
        root,
        vdb,
        status,
        extra_vex,
        target: &target,
        himg_file,
    };
    let mut reports = Vec::new();
    for img in scan_images(&target.source)? {
        let name = img
            .view
            .name
            .clone()
            .unwrap_or_else(|| img.view.digest.clone());
        let arch = &img.view.config.architecture;
        if !opts.images.is_empty() && !opts.images.contains(&name) {
            continue;
        }
        if opts.arch.as_ref().is_some_and(|a| a != arch) {
            continue;
        }
        reports.push(scanning.image(&img, name)?);
    }
    Ok(Scanned { reports })
}

/// What every image of one `scan` is matched with.
struct Scanning<'a> {
    session: &'a Session<'a>,
    opts: &'a ScanOptions,
    /// The store directory (where the scan cache lives).
    root: PathBuf,
    vdb: VulnDb,
    status: DbStatus,
    /// The `--vex` documents, applied to every image.
    extra_vex: Vec<VexDocument>,
    target: &'a Target,
    /// What the report tells to run `himg update` on.
    himg_file: String,
}

impl Scanning<'_> {
    /// The report of image `name`.
    fn image(&self, img: &ScanImage, name: String) -> Result<Report, Error> {
        let printer = self.session.printer();
        let view = &img.view;
        let arch = &view.config.architecture;
        let lock = self.target.lock.as_ref();
        let rel = match &self.opts.release {
            Some(r) => release::normalize(r),
            None => release_of(lock, &name, img.os_release.as_deref()),
        };
        let mut packages: Vec<PackageRef> = view.packages.iter().map(PackageRef::from).collect();
        if packages.is_empty()
            && let Some(locked) = lock
                .and_then(|l| l.images.get(&name))
                .and_then(|i| i.architectures.get(arch))
        {
            packages = locked.iter().map(PackageRef::from).collect();
        }
        let rel = match rel {
            Some(r) => r,
            None if packages.is_empty() => "none".to_string(),
            None => return Err(Error::UnknownRelease { image: name }),
        };
        let version = &self.status.version;
        let (matched, cached) = cached_match(
            &self.root,
            &self.vdb,
            &view.digest,
            &packages,
            &rel,
            version,
        )?;
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
        for f in self.target.vex.get(&name).into_iter().flatten() {
            vex.push(VexDocument::read(f)?);
        }
        vex.extend(self.extra_vex.iter().cloned());
        let subject = Subject {
            image: &name,
            digest: &view.digest,
            architecture: arch,
            release: &rel,
            database: version,
            packages: packages.len(),
            himg_file: &self.himg_file,
        };
        let r = Report::new(&subject, matched.findings, matched.warnings, &vex);
        printer.status(
            "Scanned",
            &format!("{name} ({arch}, {rel}): {}", r.summary_line()),
        );
        Ok(r)
    }
}
