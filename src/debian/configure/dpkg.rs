//! The sandbox's dpkg database and the driver's inputs: the install-time control files under
//! `info/`, the `status` of a pass (packages to configure `unpacked`, the rest `installed`), the
//! `preinst` order, the file triggers to activate, and where fakeroot's library is.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use himg_store::Store;

use super::{ConfigureError, ConfigureInput, root, sandbox};
use crate::debian::control::parse_relations;
use crate::debian::dpkgdb;
use crate::debian::fileset::FileSet;
use crate::debian::unpack::DebEntryKind;

/// `info/` in the scratch root: the install-time control files of the image's packages and of
/// the tools, and the tools' file lists.
pub(super) fn write_info(
    store: &Store,
    root: &Path,
    packages: &[(String, FileSet)],
    tools: &[(String, FileSet)],
) -> Result<(), ConfigureError> {
    for (_, set) in packages.iter().chain(tools) {
        let Some(control) = &set.control else {
            continue;
        };
        let Ok(info) = dpkgdb::info_name(control) else {
            continue;
        };
        for (name, blob) in &set.install_files {
            let digest = himg_store::B3Digest::try_from(blob.as_str())?;
            let bytes = store.read_blob(&digest)?;
            let mode = if matches!(name.as_str(), "templates" | "triggers") {
                0o644
            } else {
                0o755
            };
            root::write_file(
                root,
                &format!("/var/lib/dpkg/info/{info}.{name}"),
                &bytes,
                mode,
            )?;
        }
    }
    for (_, set) in tools {
        let Some(control) = &set.control else {
            continue;
        };
        let conffiles: Vec<String> = set.conffiles.iter().map(|(p, _)| p.clone()).collect();
        if let Ok(files) =
            dpkgdb::info_files(control, &set.entries, set.md5sums.as_deref(), &conffiles)
        {
            for (path, text) in files {
                root::write_file(root, &path, text.as_bytes(), 0o644)?;
            }
        }
    }
    Ok(())
}

/// The sandbox's `status`: `unpacked` packages (to configure), `installed` ones, and the
/// stanzas of a base's installed packages.
pub(super) fn write_status(
    root: &Path,
    unpacked: &[(String, FileSet)],
    installed: &[(String, FileSet)],
    base: &[String],
) -> Result<(), ConfigureError> {
    let mut stanzas = base.to_vec();
    for (_, set) in unpacked {
        if let Some(control) = &set.control {
            stanzas.push(dpkgdb::status_stanza(control).replace(
                "Status: install ok installed",
                "Status: install ok unpacked",
            ));
        }
    }
    for (_, set) in installed {
        if let Some(control) = &set.control {
            stanzas.push(dpkgdb::status_stanza(control));
        }
    }
    root::write_file(
        root,
        "/var/lib/dpkg/status",
        dpkgdb::status_file(&stanzas).as_bytes(),
        0o644,
    )
}

/// The driver and fakeroot's library directory in `work`.
pub(super) fn write_driver(root: &Path, work: &Path) -> Result<(), ConfigureError> {
    let lib = find_fakeroot_lib(root)?;
    for (name, text) in [
        ("driver.sh", sandbox::DRIVER),
        ("fakeroot-libdir", lib.as_str()),
    ] {
        let path = work.join(name);
        std::fs::write(&path, text).map_err(|e| ConfigureError::io(&path, e))?;
    }
    Ok(())
}

/// The order of a pass's `preinst`s and its file triggers.
pub(super) fn write_order(
    work: &Path,
    packages: &[(String, FileSet)],
    file_triggers: &str,
) -> Result<(), ConfigureError> {
    let mut order = String::new();
    for i in install_order(packages) {
        let (name, set) = &packages[i];
        let control = set.control.as_deref().unwrap_or_default();
        let info = dpkgdb::info_name(control).unwrap_or_else(|_| name.clone());
        let arch = dpkgdb::control_field(control, "Architecture").unwrap_or_default();
        order.push_str(&format!("{info} {name} {arch}\n"));
    }
    for (name, text) in [("order", order.as_str()), ("file-triggers", file_triggers)] {
        let path = work.join(name);
        std::fs::write(&path, text).map_err(|e| ConfigureError::io(&path, e))?;
    }
    Ok(())
}

/// The directory holding `libfakeroot-tcp.so` in the root, as the sandbox sees it.
pub(super) fn find_fakeroot_lib(root: &Path) -> Result<String, ConfigureError> {
    let missing = || ConfigureError::MissingTool {
        what: "fakeroot (`libfakeroot-tcp.so`, `faked-tcp`)".into(),
    };
    if !root.join("usr/bin/faked-tcp").exists() {
        return Err(missing());
    }
    let lib = root.join("usr/lib");
    let mut found: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(&lib).map_err(|e| ConfigureError::io(&lib, e))? {
        let entry = entry.map_err(|e| ConfigureError::io(&lib, e))?;
        let candidate = entry.path().join("libfakeroot/libfakeroot-tcp.so");
        if candidate.is_file() {
            found.push(format!(
                "/usr/lib/{}/libfakeroot",
                entry.file_name().to_string_lossy()
            ));
        }
    }
    found.sort();
    found.into_iter().next().ok_or_else(missing)
}

/// Package indices in the order their `preinst` runs: dependencies (`Pre-Depends`, `Depends`)
/// first, otherwise by name.
pub(super) fn install_order(packages: &[(String, FileSet)]) -> Vec<usize> {
    let index: BTreeMap<&str, usize> = packages
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (n.as_str(), i))
        .collect();
    let deps = |i: usize| -> Vec<usize> {
        let control = packages[i].1.control.as_deref().unwrap_or_default();
        let mut out = Vec::new();
        for field in ["Pre-Depends", "Depends"] {
            let Some(value) = dpkgdb::control_field(control, field) else {
                continue;
            };
            for alts in parse_relations(&value).unwrap_or_default() {
                if let Some(&j) = alts.iter().find_map(|r| index.get(r.name.as_str())) {
                    out.push(j);
                }
            }
        }
        out
    };
    let mut done = vec![false; packages.len()];
    let mut order = Vec::new();
    for &start in index.values() {
        let mut stack = vec![(start, false)];
        while let Some((i, expanded)) = stack.pop() {
            if expanded {
                order.push(i);
                continue;
            }
            if done[i] {
                continue;
            }
            done[i] = true;
            stack.push((i, true));
            for j in deps(i).into_iter().rev() {
                if !done[j] {
                    stack.push((j, false));
                }
            }
        }
    }
    order
}

/// File-trigger paths of the image's packages that some package ships files under: activated
/// after configuring, as unpacking them would have.
pub(super) fn file_triggers(
    store: &Store,
    input: &ConfigureInput<'_>,
) -> Result<String, ConfigureError> {
    let mut paths = BTreeSet::new();
    for (_, set) in input.packages {
        let Some((_, blob)) = set.install_files.iter().find(|(n, _)| n == "triggers") else {
            continue;
        };
        let digest = himg_store::B3Digest::try_from(blob.as_str())?;
        let text = String::from_utf8_lossy(&store.read_blob(&digest)?).into_owned();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            if let (Some(directive), Some(target)) = (words.next(), words.next())
                && directive.starts_with("interest")
                && target.starts_with('/')
            {
                paths.insert(target.trim_end_matches('/').to_string());
            }
        }
    }
    let shipped = |prefix: &str| {
        input.packages.iter().any(|(_, s)| {
            s.entries.iter().any(|e| {
                e.path.starts_with(prefix)
                    && e.path[prefix.len()..].starts_with('/')
                    && !matches!(e.kind, DebEntryKind::Dir)
            })
        })
    };
    Ok(paths
        .into_iter()
        .filter(|p| shipped(p))
        .map(|p| format!("{p}\n"))
        .collect())
}
