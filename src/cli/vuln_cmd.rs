//! `himg vulndb import|status` and `himg scan`: vulnerability data in, findings out.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::args::{GlobalArgs, ScanArgs, VulndbCommand};
use super::{Error, Printer, store_root};
use crate::debian::lockfile::LockFile;
use crate::ops::build::materialize;
use crate::ops::compile::is_himg_file;
use crate::ops::vuln::{ScanImage, cached_match, db_path, read_images, release_of};
use crate::vuln::report::{self, Report, Subject};
use crate::vuln::{PackageRef, VexDocument, VulnDb, import, release};

/// The exit code of `scan --fail-on` when findings reach the threshold.
pub const EXIT_VULNERABLE: u8 = 11;

/// The largest vulnerability document `vulndb import URL` downloads.
const MAX_DOWNLOAD: u64 = 2 << 30;

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
            let path = db_path(&super::session(global, printer), db)?;
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
            let path = db_path(&super::session(global, printer), db)?;
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
    _pulled: Option<crate::ops::registry::PulledTemp>,
}

fn open_target(global: &GlobalArgs, args: &ScanArgs, printer: &Printer) -> Result<Target, Error> {
    if is_himg_file(&args.target) {
        let loaded = crate::load::load_file(&args.target, global.project_root.as_deref())?;
        let declared_vex = crate::ops::audit::declared_vex(&loaded);
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
        Some(t) => crate::ops::registry::pull_if_reference(t, false, printer)?,
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

pub fn scan(global: &GlobalArgs, args: &ScanArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let root = store_root(global)?;
    let path = db_path(&super::session(global, printer), &args.db)?;
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
