//! Maintaining the store: verify (and repair) it, collect garbage with the caches kept per image,
//! list and remove roots, and report its sizes.

use himg_store::{GcReport, RepairReport, RootRecord, StoreInfo, VerifyReport};

use super::{Error, Session};
use crate::printer::Printer;

fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Re-hashes every object and checks every reference.
pub fn verify(session: &Session<'_>) -> Result<Verified, Error> {
    Ok(Verified(session.open_store()?.verify()?))
}

/// What `verify` found.
pub struct Verified(pub VerifyReport);

impl Verified {
    pub fn is_ok(&self) -> bool {
        self.0.is_ok()
    }

    pub fn json(&self) -> serde_json::Value {
        to_json(&self.0)
    }

    /// Each problem, a note on stale temporary files, and `Verified` when there is no problem.
    pub fn print(&self, printer: &Printer) {
        let report = &self.0;
        for p in &report.problems {
            printer.rendered(&format!("corrupt: {p}\n"));
        }
        if !report.stale_temp_files.is_empty() {
            printer.status(
                "Note",
                &format!(
                    "{} stale temporary file(s) from interrupted builds (`himg store gc` removes them)",
                    report.stale_temp_files.len()
                ),
            );
        }
        if report.is_ok() {
            printer.status(
                "Verified",
                &format!(
                    "{} objects ({}), {} outputs, {} layers: no problem",
                    report.objects_checked,
                    crate::printer::size(report.bytes_checked),
                    report.outputs_checked,
                    report.layers_checked
                ),
            );
        }
    }
}

/// Removes what is damaged and every output derived from it.
pub fn repair(session: &Session<'_>) -> Result<Repaired, Error> {
    Ok(Repaired(session.open_store()?.repair()?))
}

/// What `repair` found and removed.
pub struct Repaired(pub RepairReport);

impl Repaired {
    pub fn json(&self) -> serde_json::Value {
        to_json(&self.0)
    }

    pub fn print(&self, printer: &Printer) {
        let report = &self.0;
        for p in &report.found.problems {
            printer.rendered(&format!("corrupt: {p}\n"));
        }
        for o in &report.objects_removed {
            printer.status("Removed", &format!("object `{o}`"));
        }
        for p in &report.files_removed {
            printer.status("Removed", &format!("stray file `{}`", p.display()));
        }
        for o in &report.outputs_removed {
            printer.status("Removed", &format!("output `{o}`"));
        }
        printer.status(
            if report.found.is_ok() {
                "Verified"
            } else {
                "Repaired"
            },
            &format!(
                "{} problem(s): {} objects, {} outputs, {} layers removed; the next build rebuilds what is gone",
                report.found.problems.len(),
                report.objects_removed.len(),
                report.outputs_removed.len(),
                report.layers_removed
            ),
        );
    }
}

/// What a garbage collection removed (or, dry, would remove).
pub struct Collected {
    pub report: GcReport,
    /// Test results, scan matches and base files of images no longer in the store.
    pub caches: crate::digest_cache::Collected,
    pub dry_run: bool,
}

/// Deletes everything no root reaches, and the per-image caches of images that left the store.
pub fn gc(session: &Session<'_>, dry_run: bool) -> Result<Collected, Error> {
    let store = session.open_store()?;
    let report = store.gc(dry_run)?;
    // Test results, scan matches, base account files and dpkg databases, and builds'
    // extracted environments, of images whose manifest left the store.
    let held = |digest: &str| {
        digest
            .strip_prefix("sha256:")
            .and_then(|h| himg_store::Sha256Digest::from_hex(h).ok())
            .is_some_and(|d| store.has_oci_blob(&d))
    };
    let mut caches = crate::digest_cache::Collected::default();
    // What builds keep beside the store, swept while no build runs: the scratch directories a
    // killed build left, and the environments of images that left the store (with any
    // half-extracted one).
    let swept = store.with_exclusive(|| -> std::io::Result<crate::digest_cache::Collected> {
        let mut swept = crate::builder::sweep_scratch(store.root(), dry_run)?;
        let roots = crate::digest_cache::DigestCache::new(store.root(), crate::builder::ROOTS_DIR)
            .collect(&held, dry_run)?;
        swept.entries += roots.entries;
        swept.bytes += roots.bytes;
        Ok(swept)
    })?;
    let swept = swept.map_err(|source| Error::Io {
        path: store.root().to_path_buf(),
        source,
    })?;
    caches.entries += swept.entries;
    caches.bytes += swept.bytes;
    // Package indexes no lock has read for two weeks (the current ones are read by every lock).
    let indexes = store.root().join(crate::debian::index_cache::DIR);
    let pruned = crate::debian::index_cache::prune(&indexes, std::time::SystemTime::now(), dry_run)
        .map_err(|source| Error::Io {
            path: indexes.clone(),
            source,
        })?;
    caches.entries += pruned.entries;
    caches.bytes += pruned.bytes;
    for cache in [
        crate::testing::cache::cache(store.root()),
        crate::vuln::cache::cache(store.root()),
        crate::registry::base::accounts_cache(store.root()),
        crate::registry::base::dpkg_cache(store.root()),
    ] {
        let c = cache.collect(&held, dry_run).map_err(|source| Error::Io {
            path: store.root().to_path_buf(),
            source,
        })?;
        caches.entries += c.entries;
        caches.bytes += c.bytes;
    }
    Ok(Collected {
        report,
        caches,
        dry_run,
    })
}

impl Collected {
    pub fn json(&self) -> serde_json::Value {
        let mut value = to_json(&self.report);
        value["cache_entries_removed"] = self.caches.entries.into();
        value["cache_bytes_freed"] = self.caches.bytes.into();
        value
    }

    pub fn print(&self, printer: &Printer) {
        let (report, dry_run) = (&self.report, self.dry_run);
        if self.caches.entries > 0 {
            printer.status(
                if dry_run { "Would drop" } else { "Dropped" },
                &format!(
                    "{} cached test results and scan matches of images no longer in the store ({})",
                    self.caches.entries,
                    crate::printer::size(self.caches.bytes)
                ),
            );
        }
        printer.status(
            if dry_run { "Would free" } else { "Freed" },
            &format!(
                "{} ({} outputs, {} blobs, {} trees, {} OCI blobs removed; {} outputs kept)",
                crate::printer::size(report.bytes_freed),
                report.outputs_removed,
                report.blobs_removed,
                report.trees_removed,
                report.oci_blobs_removed,
                report.outputs_kept
            ),
        );
    }
}

/// The GC roots.
pub fn roots(session: &Session<'_>) -> Result<Vec<RootRecord>, Error> {
    Ok(session.open_store()?.roots()?)
}

/// The roots as JSON.
pub fn roots_json(roots: &[RootRecord]) -> serde_json::Value {
    to_json(&roots)
}

/// Each root's name, then its outputs indented.
pub fn roots_text(roots: &[RootRecord]) -> String {
    let mut out = String::new();
    for r in roots {
        out.push_str(&format!("{}\n", r.name));
        for o in &r.outputs {
            out.push_str(&format!("  {o}\n"));
        }
    }
    out
}

/// Removes the root `name`; false when there was none.
pub fn remove_root(session: &Session<'_>, name: &str) -> Result<bool, Error> {
    Ok(session.open_store()?.remove_root(name)?)
}

/// Sizes and counts.
pub fn info(session: &Session<'_>) -> Result<Info, Error> {
    Ok(Info(session.open_store()?.info()?))
}

/// The store's sizes and counts.
pub struct Info(pub StoreInfo);

impl Info {
    pub fn json(&self) -> serde_json::Value {
        to_json(&self.0)
    }

    /// One `name: value` line per figure.
    pub fn text(&self) -> String {
        let info = &self.0;
        let total = info.blobs.bytes + info.trees.bytes + info.oci_blobs.bytes + info.db_bytes;
        format!(
            "store:      {}\nschema:     v{}\nblobs:      {} ({})\ntrees:      {} ({})\noci blobs:  {} ({})\ndatabase:   {}\noutputs:    {}\nlayers:     {}\nroots:      {}\ntotal:      {}\n",
            info.root.display(),
            info.schema_version,
            info.blobs.count,
            crate::printer::size(info.blobs.bytes),
            info.trees.count,
            crate::printer::size(info.trees.bytes),
            info.oci_blobs.count,
            crate::printer::size(info.oci_blobs.bytes),
            crate::printer::size(info.db_bytes),
            info.outputs,
            info.layers,
            info.roots.len(),
            crate::printer::size(total)
        )
    }
}
