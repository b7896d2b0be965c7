//! `himg store verify [--repair]|gc|roots|info`: inspecting and maintaining the store.

use std::process::ExitCode;

use super::args::{GlobalArgs, StoreCommand};
use super::{Error, Printer, open_store};

fn to_json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn run(global: &GlobalArgs, cmd: &StoreCommand, printer: &Printer) -> Result<ExitCode, Error> {
    let store = open_store(global)?;
    match cmd {
        StoreCommand::Verify { repair: true, json } => {
            let report = store.repair()?;
            if *json {
                printer.json(&to_json(&report));
            }
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
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Verify {
            repair: false,
            json,
        } => {
            let report = store.verify()?;
            if *json {
                printer.json(&to_json(&report));
            }
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
                        human_bytes(report.bytes_checked),
                        report.outputs_checked,
                        report.layers_checked
                    ),
                );
                Ok(ExitCode::SUCCESS)
            } else {
                printer.rendered(&format!(
                    "error: the store has {} problem(s)\nhint: `himg store verify --repair` removes them and every output built from them; the next build rebuilds those\n",
                    report.problems.len()
                ));
                Ok(ExitCode::from(4))
            }
        }
        StoreCommand::Gc { dry_run, json } => {
            let report = store.gc(*dry_run)?;
            // Test results, scan matches and base account files and dpkg databases of images
            // whose manifest left the store.
            let held = |digest: &str| {
                digest
                    .strip_prefix("sha256:")
                    .and_then(|h| himg_store::Sha256Digest::from_hex(h).ok())
                    .is_some_and(|d| store.has_oci_blob(&d))
            };
            let mut caches = crate::digest_cache::Collected::default();
            for cache in [
                crate::testing::cache::cache(store.root()),
                crate::vuln::cache::cache(store.root()),
                crate::registry::base::accounts_cache(store.root()),
                crate::registry::base::dpkg_cache(store.root()),
            ] {
                let c = cache.collect(&held, *dry_run).map_err(|source| Error::Io {
                    path: store.root().to_path_buf(),
                    source,
                })?;
                caches.entries += c.entries;
                caches.bytes += c.bytes;
            }
            if *json {
                let mut value = to_json(&report);
                value["cache_entries_removed"] = caches.entries.into();
                value["cache_bytes_freed"] = caches.bytes.into();
                printer.json(&value);
            }
            if caches.entries > 0 {
                printer.status(
                    if *dry_run { "Would drop" } else { "Dropped" },
                    &format!(
                        "{} cached test results and scan matches of images no longer in the store ({})",
                        caches.entries,
                        human_bytes(caches.bytes)
                    ),
                );
            }
            printer.status(
                if *dry_run { "Would free" } else { "Freed" },
                &format!(
                    "{} ({} outputs, {} blobs, {} trees, {} OCI blobs removed; {} outputs kept)",
                    human_bytes(report.bytes_freed),
                    report.outputs_removed,
                    report.blobs_removed,
                    report.trees_removed,
                    report.oci_blobs_removed,
                    report.outputs_kept
                ),
            );
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Roots { json, remove } => {
            if let Some(name) = remove {
                if store.remove_root(name)? {
                    printer.status("Removed", &format!("root `{name}`"));
                } else {
                    printer.warn(&format!("no root named `{name}`"));
                }
                return Ok(ExitCode::SUCCESS);
            }
            let roots = store.roots()?;
            if *json {
                printer.json(&to_json(&roots));
            } else {
                for r in &roots {
                    printer.data(&format!("{}\n", r.name));
                    for o in &r.outputs {
                        printer.data(&format!("  {o}\n"));
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        StoreCommand::Info { json } => {
            let info = store.info()?;
            if *json {
                printer.json(&to_json(&info));
            } else {
                let total =
                    info.blobs.bytes + info.trees.bytes + info.oci_blobs.bytes + info.db_bytes;
                printer.data(&format!(
                    "store:      {}\nschema:     v{}\nblobs:      {} ({})\ntrees:      {} ({})\noci blobs:  {} ({})\ndatabase:   {}\noutputs:    {}\nlayers:     {}\nroots:      {}\ntotal:      {}\n",
                    info.root.display(),
                    info.schema_version,
                    info.blobs.count,
                    human_bytes(info.blobs.bytes),
                    info.trees.count,
                    human_bytes(info.trees.bytes),
                    info.oci_blobs.count,
                    human_bytes(info.oci_blobs.bytes),
                    human_bytes(info.db_bytes),
                    info.outputs,
                    info.layers,
                    info.roots.len(),
                    human_bytes(total)
                ));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
