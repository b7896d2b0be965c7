//! `himg inventory`: across a fleet — workspaces, `.himg` files, layouts, registry references —
//! which images contain a package (any version, or below one), or are affected by an advisory, in
//! one table. Images himg builds are answered from their stored analyses (nothing is read back from
//! layers); other images from their dpkg databases.

use std::path::PathBuf;

use super::target::{OpenOptions, Target};
use super::vuln::{cached_match, db_path, release_of, scan_images};
use super::workspace::{discover, is_workspace, session_for};
use super::{Error, Session};
use crate::debian::version::DebVersion;
use crate::vuln::VulnDb;
use crate::vuln::matcher::PackageRef;

/// What to look for, and where.
#[derive(Debug, Clone, Default)]
pub struct InventoryOptions {
    /// Workspace directories, `.himg` files, OCI layouts or archives, registry references.
    pub targets: Vec<PathBuf>,
    /// Images holding this binary package.
    pub package: Option<String>,
    /// … at a version below this one.
    pub below: Option<String>,
    /// Images affected by this advisory (a DSA/DLA/CVE id or alias), from the imported database.
    pub advisory: Option<String>,
    /// Plain HTTP beyond loopback registries.
    pub insecure: bool,
    /// The vulnerability database (default: the store's).
    pub db: Option<PathBuf>,
}

/// One image that matched.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct InventoryRow {
    /// The target as given (for a workspace: the member file).
    pub target: String,
    pub image: String,
    pub architecture: String,
    pub digest: String,
    pub package: String,
    pub version: String,
    /// With `--advisory`: the advisory's id, severity and first fixed version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advisory: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed_version: Option<String>,
}

/// Every image of the targets, with its packages and what to match them by.
struct Image {
    target: String,
    name: String,
    architecture: String,
    digest: String,
    packages: Vec<PackageRef>,
    /// The Debian release to match advisories for.
    release: Option<String>,
}

/// The images of every target matching `opts`, sorted.
pub fn inventory(
    session: &Session<'_>,
    opts: &InventoryOptions,
) -> Result<Vec<InventoryRow>, Error> {
    if opts.package.is_none() == opts.advisory.is_none() {
        return Err(Error::Inventory(
            "ask for exactly one of --package NAME or --advisory ID".into(),
        ));
    }
    let below = opts
        .below
        .as_deref()
        .map(|v| {
            v.parse::<DebVersion>()
                .map_err(|e| Error::Inventory(format!("--below `{v}`: {e}")))
        })
        .transpose()?;
    let mut images = Vec::new();
    for target in &opts.targets {
        images.extend(images_of(session, target, opts.insecure)?);
    }
    let mut rows = match &opts.advisory {
        Some(id) => by_advisory(session, opts, &images, id)?,
        None => by_package(
            &images,
            opts.package.as_deref().unwrap_or_default(),
            below.as_ref(),
        ),
    };
    rows.sort();
    rows.dedup();
    Ok(rows)
}

fn by_package(images: &[Image], package: &str, below: Option<&DebVersion>) -> Vec<InventoryRow> {
    let mut rows = Vec::new();
    for img in images {
        for p in img.packages.iter().filter(|p| p.name == package) {
            let older = match (below, p.version.parse::<DebVersion>()) {
                (None, _) => true,
                (Some(limit), Ok(v)) => v < *limit,
                (Some(_), Err(_)) => false,
            };
            if older {
                rows.push(row(img, p, None));
            }
        }
    }
    rows
}

fn by_advisory(
    session: &Session<'_>,
    opts: &InventoryOptions,
    images: &[Image],
    id: &str,
) -> Result<Vec<InventoryRow>, Error> {
    let path = db_path(session, &opts.db)?;
    let vdb = VulnDb::open(&path)?;
    let status = vdb.status()?;
    if status.records == 0 {
        return Err(Error::EmptyVulnDb { path });
    }
    let root = session.store_root()?;
    let mut rows = Vec::new();
    for img in images {
        let Some(rel) = &img.release else { continue };
        let (matched, _) = cached_match(
            &root,
            &vdb,
            &img.digest,
            &img.packages,
            rel,
            &status.version,
        )?;
        for f in matched
            .findings
            .iter()
            .filter(|f| f.id == id || f.aliases.iter().any(|a| a == id))
        {
            for p in &f.packages {
                rows.push(row(img, p, Some(f)));
            }
        }
    }
    Ok(rows)
}

fn row(
    img: &Image,
    p: &PackageRef,
    finding: Option<&crate::vuln::matcher::Finding>,
) -> InventoryRow {
    InventoryRow {
        target: img.target.clone(),
        image: img.name.clone(),
        architecture: img.architecture.clone(),
        digest: img.digest.clone(),
        package: p.name.clone(),
        version: p.version.clone(),
        advisory: finding.map(|f| f.id.clone()),
        severity: finding.map(|f| f.severity.to_string()),
        fixed_version: finding.and_then(|f| f.fixed_version.clone()),
    }
}

/// The images of one target: a workspace's members one by one, else the target itself.
fn images_of(
    session: &Session<'_>,
    target: &std::path::Path,
    insecure: bool,
) -> Result<Vec<Image>, Error> {
    if is_workspace(target) {
        let ws = discover(session, target)?;
        let session = session_for(session, target);
        let mut out = Vec::new();
        for member in ws.with_images() {
            out.extend(opened(&session, &member.file, &member.name, insecure)?);
        }
        return Ok(out);
    }
    opened(session, target, &target.display().to_string(), insecure)
}

/// The images of one file, layout, archive or reference.
fn opened(
    session: &Session<'_>,
    target: &std::path::Path,
    label: &str,
    insecure: bool,
) -> Result<Vec<Image>, Error> {
    let open = OpenOptions {
        analyse: true,
        insecure,
        explain_missing: true,
        ..OpenOptions::default()
    };
    let t = Target::open(session, target, &open)?;
    let lock = t.lock.as_ref();
    // Built by himg: the stored analyses know the packages.
    if !t.analysed().is_empty() {
        return Ok(t
            .analysed()
            .iter()
            .map(|a| Image {
                target: label.to_owned(),
                name: a.image.clone(),
                architecture: a.architecture.clone(),
                digest: a.analysis.facts.digest.clone(),
                packages: a.analysis.facts.packages.clone(),
                release: release_of(lock, &a.image, a.analysis.facts.os_release.as_deref()),
            })
            .collect());
    }
    Ok(scan_images(&t.source)?
        .into_iter()
        .map(|img| {
            let name = img
                .view
                .name
                .clone()
                .unwrap_or_else(|| img.view.digest.clone());
            Image {
                target: label.to_owned(),
                release: release_of(lock, &name, img.os_release.as_deref()),
                architecture: img.view.config.architecture.clone(),
                digest: img.view.digest.clone(),
                packages: img.view.packages.iter().map(PackageRef::from).collect(),
                name,
            }
        })
        .collect())
}

/// The rows as a table.
pub fn render(rows: &[InventoryRow]) -> String {
    let mut out = format!(
        "{:<28} {:<16} {:<6} {:<20} {:<24} {}\n",
        "TARGET", "IMAGE", "ARCH", "PACKAGE", "VERSION", "ADVISORY"
    );
    for r in rows {
        let advisory = match (&r.advisory, &r.severity, &r.fixed_version) {
            (Some(a), Some(s), Some(f)) => format!("{a} ({s}, fixed in {f})"),
            (Some(a), Some(s), None) => format!("{a} ({s}, no fix yet)"),
            _ => String::new(),
        };
        let line = format!(
            "{:<28} {:<16} {:<6} {:<20} {:<24} {}",
            r.target, r.image, r.architecture, r.package, r.version, advisory
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
