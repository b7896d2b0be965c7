//! Build-time work on pinned packages: fetch a `.deb` by its locked sha256, unpack and minimise it into
//! a [`FileSet`], and generate the system files maintainer scripts would have made (dpkg database,
//! CA bundle, ld.so.cache, merged-/usr links), refusing two packages that ship one path differently.

use std::collections::BTreeMap;
use std::io::Read;

use himg_store::{B3Digest, Store};

use super::DebianError;
use super::fetch::{Expected, Fetcher};
use super::fileset::{FILESET_VERSION, FileSet};
use super::minimize::{MinimizePolicy, minimize};
use super::unpack::{
    self, ContentId, ContentSink, ContentSource, DebEntry, DebEntryKind, UnpackOptions, unpack_deb,
};
use super::{cabundle, dpkgdb, ldcache};

/// Downloads `url` into the store, verifying size and sha256 (a fixed-output derivation).
pub fn fetch_deb(
    store: &Store,
    fetcher: &Fetcher,
    url: &str,
    size: u64,
    sha256_hex: &str,
) -> Result<(B3Digest, u64), DebianError> {
    let mut sha = [0u8; 32];
    hex::decode_to_slice(sha256_hex, &mut sha)
        .map_err(|_| DebianError::FileSet(format!("bad sha256 `{sha256_hex}` in the lock")))?;
    let tmp_dir = store.root().join("v1").join("tmp");
    let tmp = tmp_dir.join(format!(
        "deb-{}-{}",
        &sha256_hex[..16.min(sha256_hex.len())],
        std::process::id()
    ));
    let result = fetcher
        .download(url, &tmp, Some(Expected { size, sha256: sha }))
        .map_err(DebianError::from)
        .and_then(|()| Ok(store.put_blob_from_path(&tmp)?));
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Puts unpacked contents into the store as blobs, and reads them back for the generators.
struct StoreContent<'a> {
    store: &'a Store,
}

impl ContentSink for StoreContent<'_> {
    fn put(
        &mut self,
        _path: &str,
        reader: &mut dyn Read,
        _size: u64,
    ) -> std::io::Result<ContentId> {
        let mut w = self
            .store
            .blob_writer()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        std::io::copy(reader, &mut w)?;
        let (digest, _) = w
            .finish()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(digest.to_string())
    }
}

impl ContentSource for StoreContent<'_> {
    fn read_range(&self, content: &str, offset: u64, len: usize) -> std::io::Result<Vec<u8>> {
        use std::io::{Seek, SeekFrom};
        let digest = B3Digest::try_from(content)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let mut file = self
            .store
            .open_blob(&digest)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(len);
        file.take(len as u64).read_to_end(&mut buf)?;
        Ok(buf)
    }
}

/// Unpacks a `.deb` blob into a minimised file set.
pub fn unpack_to_fileset(
    store: &Store,
    deb: &B3Digest,
    package: &str,
    policy: &MinimizePolicy,
) -> Result<FileSet, DebianError> {
    // Checked (once per file version) before it is unpacked: a damaged `.deb` in the store must
    // not become a file set.
    store.check_objects(&[himg_store::ObjectRef::Blob(*deb)])?;
    let file = store.open_blob(deb)?;
    let mut sink = StoreContent { store };
    let unpacked = unpack_deb(
        std::io::BufReader::with_capacity(256 * 1024, file),
        package,
        &UnpackOptions::default(),
        &mut sink,
    )
    .map_err(|source| DebianError::Unpack {
        package: package.to_string(),
        source: Box::new(source),
    })?;
    let mut install_files = Vec::new();
    for (name, bytes) in &unpacked.install_files {
        install_files.push((name.clone(), store.put_blob(bytes)?.to_string()));
    }
    let min = minimize(unpacked.entries, policy);
    let mut entries = min.kept;
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok(FileSet {
        version: FILESET_VERSION,
        entries,
        control: Some(unpacked.control),
        md5sums: unpacked.md5sums,
        conffiles: unpacked.conffile_md5s,
        removed_bytes: min.removed_bytes,
        removed_files: min.removed_files,
        setuid_stripped: min.setuid_stripped,
        setuid_kept: min.setuid_kept,
        scripts_not_run: scripts_not_run(&unpacked.maintainer_scripts, &unpacked.triggers),
        install_files,
        configure: None,
    })
}

/// The directory skeleton of an image with packages, as base-files lays it out (root-owned; the
/// setgid `staff`/`mail` directories `/var/local` and `/var/mail` are left to base-files itself).
pub const SKELETON: &[(&str, u32)] = &[
    ("/etc", 0o755),
    ("/home", 0o755),
    ("/opt", 0o755),
    ("/root", 0o700),
    ("/run", 0o755),
    ("/srv", 0o755),
    ("/tmp", 0o1777),
    ("/usr/local", 0o755),
    ("/usr/local/bin", 0o755),
    ("/usr/local/lib", 0o755),
    ("/usr/local/sbin", 0o755),
    ("/usr/local/share", 0o755),
    ("/var", 0o755),
    ("/var/backups", 0o755),
    ("/var/cache", 0o755),
    ("/var/lib", 0o755),
    ("/var/log", 0o755),
    ("/var/opt", 0o755),
    ("/var/spool", 0o755),
    ("/var/tmp", 0o1777),
];

/// The install-time scripts of a package that himg does not reproduce, in the order apt meets them.
/// A `triggers` file that only activates `ldconfig` is reproduced (ld.so.cache is generated).
fn scripts_not_run(present: &[String], triggers: &[String]) -> Vec<String> {
    let ldconfig_only = triggers.iter().all(|t| {
        matches!(
            t.as_str(),
            "activate ldconfig" | "activate-noawait ldconfig"
        )
    });
    unpack::INSTALL_TIME_SCRIPTS
        .iter()
        .filter(|s| present.iter().any(|m| m == *s))
        .filter(|s| **s != "triggers" || !ldconfig_only)
        .map(|s| s.to_string())
        .collect()
}

/// The stanzas of a dpkg status text, each ending in a newline (blank lines separate them).
pub fn split_stanzas(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// The stanzas of a registry base's `/var/lib/dpkg/status` (its file set's) and, with
/// `status_d`, of its distroless `/var/lib/dpkg/status.d/*` files, but those of packages in
/// `replaced` (installed again on top). The image's own status leaves `status.d` out (the base's
/// files stay where scanners read them); dpkg in the configure sandbox reads only `status`.
pub(crate) fn base_stanzas(
    store: &Store,
    base: &FileSet,
    replaced: &std::collections::BTreeSet<String>,
    status_d: bool,
) -> Result<Vec<String>, DebianError> {
    let mut text = String::new();
    for e in &base.entries {
        let wanted = e.path == "/var/lib/dpkg/status"
            || (status_d
                && e.path
                    .strip_prefix("/var/lib/dpkg/status.d/")
                    .is_some_and(|n| !n.contains('/') && !n.ends_with(".md5sums")));
        if let (true, DebEntryKind::File { content, .. }) = (wanted, &e.kind) {
            text.push_str(&String::from_utf8_lossy(&read_blob(store, content)?));
            text.push_str("\n\n");
        }
    }
    Ok(split_stanzas(&text)
        .into_iter()
        // distroless stanzas may have no `Status` (dpkg needs one).
        .map(|s| match dpkgdb::control_field(&s, "Status") {
            Some(_) => s,
            None => s.replacen('\n', "\nStatus: install ok installed\n", 1),
        })
        .filter(|s| {
            !dpkgdb::control_field(s, "Package").is_some_and(|name| replaced.contains(&name))
        })
        .collect())
}

/// Files that would have come from maintainer scripts and dpkg, for the set of packages of one
/// image; `base` is the file set of a registry base below them (its dpkg database, libraries and
/// certificates count too: the status lists the base's packages and the new ones).
pub fn system_files(
    store: &Store,
    architecture: &str,
    packages: &[(String, FileSet)],
    base: Option<&FileSet>,
) -> Result<FileSet, DebianError> {
    // Two packages shipping one path: identical contents are fine (shared directories, same file).
    let mut owners: BTreeMap<&str, (&str, &DebEntry)> = BTreeMap::new();
    for (name, set) in packages {
        for e in &set.entries {
            if let Some((other, prev)) = owners.get(e.path.as_str()) {
                let same = match (&prev.kind, &e.kind) {
                    (DebEntryKind::Dir, DebEntryKind::Dir) => true,
                    (a, b) => a == b,
                };
                if !same {
                    return Err(DebianError::PathConflict {
                        path: e.path.clone(),
                        a: (*other).to_string(),
                        b: name.clone(),
                    });
                }
            } else {
                owners.insert(e.path.as_str(), (name.as_str(), e));
            }
        }
    }

    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // The dpkg database: status (what dpkg-query, Trivy, Grype and Syft read) and info/.
    let names: std::collections::BTreeSet<String> =
        packages.iter().map(|(n, _)| n.clone()).collect();
    let mut stanzas = match base {
        Some(base) => base_stanzas(store, base, &names, false)?,
        None => Vec::new(),
    };
    let base_libc = stanzas
        .iter()
        .find(|s| dpkgdb::control_field(s, "Package").as_deref() == Some("libc6"))
        .and_then(|s| dpkgdb::control_field(s, "Version"));
    // The base's entries that no new package replaces (for the CA bundle and ld.so.cache).
    let base_entries: Vec<&DebEntry> = base
        .map(|b| {
            b.entries
                .iter()
                .filter(|e| !owners.contains_key(e.path.as_str()))
                .collect()
        })
        .unwrap_or_default();
    for (_, set) in packages {
        let Some(control) = &set.control else {
            continue;
        };
        stanzas.push(dpkgdb::status_stanza_with_conffiles(
            control,
            &set.conffiles,
        ));
        let conffiles: Vec<String> = set.conffiles.iter().map(|(p, _)| p.clone()).collect();
        let info = dpkgdb::info_files(control, &set.entries, set.md5sums.as_deref(), &conffiles)
            .map_err(|e| DebianError::FileSet(e.to_string()))?;
        for (path, text) in info {
            files.insert(path, text.into_bytes());
        }
    }
    files.insert(
        "/var/lib/dpkg/status".into(),
        dpkgdb::status_file(&stanzas).into_bytes(),
    );
    let (format_path, format_text) = dpkgdb::info_format_file();
    files.insert(format_path, format_text.into_bytes());

    // The CA bundle, when ca-certificates is installed.
    let mut certs = Vec::new();
    for (_, set) in packages {
        for e in &set.entries {
            if let (DebEntryKind::File { content, .. }, true) =
                (&e.kind, cabundle::is_ca_cert(&e.path))
            {
                certs.push((e.path.clone(), read_blob(store, content)?));
            }
        }
    }
    // New certificates over a base: the bundle is made again from the base's and the new ones.
    if !certs.is_empty() {
        for e in &base_entries {
            if let (DebEntryKind::File { content, .. }, true) =
                (&e.kind, cabundle::is_ca_cert(&e.path))
            {
                certs.push((e.path.clone(), read_blob(store, content)?));
            }
        }
    }
    let mut links = Vec::new();
    if !certs.is_empty() {
        certs.sort();
        files.insert(
            cabundle::BUNDLE_PATH.to_string(),
            cabundle::ca_bundle(&certs).into_bytes(),
        );
        let paths: Vec<String> = certs.iter().map(|(p, _)| p.clone()).collect();
        for (link, target) in cabundle::ca_cert_links(&paths) {
            links.push(DebEntry::symlink(&link, &target));
        }
    }

    // ld.so.cache, when the C library is installed.
    let libc_version = match packages.iter().find(|(n, _)| n == "libc6") {
        Some((_, libc)) => Some(
            libc.control
                .as_deref()
                .and_then(|c| dpkgdb::control_field(c, "Version"))
                .unwrap_or_default(),
        ),
        None => base_libc,
    };
    if let Some(version) = libc_version {
        // Without the base's merged-/usr links: the libraries are found where packages ship them.
        let usr_links: std::collections::BTreeSet<String> = unpack::merged_usr_symlinks()
            .into_iter()
            .map(|e| e.path)
            .collect();
        let all: Vec<DebEntry> = base_entries
            .iter()
            .filter(|e| !usr_links.contains(&e.path))
            .map(|e| (*e).clone())
            .chain(packages.iter().flat_map(|(_, s)| s.entries.iter().cloned()))
            .collect();
        if let Ok(arch) = ldcache::LdArch::from_debian(architecture) {
            let src = StoreContent { store };
            let cache = ldcache::generate_ld_so_cache(
                &all,
                arch,
                &src,
                Some(&ldcache::debian_generator(&version)),
            )
            .map_err(|e| DebianError::FileSet(e.to_string()))?;
            files.insert("/etc/ld.so.cache".into(), cache);
        }
    }

    let mut entries: Vec<DebEntry> = Vec::new();
    for (path, bytes) in files {
        let blob = store.put_blob(&bytes)?;
        entries.push(DebEntry::file(
            &path,
            bytes.len() as u64,
            &blob.to_string(),
            0o644,
        ));
    }
    let in_base = |path: &str| {
        base.is_some_and(|b| {
            b.entries
                .binary_search_by(|e| e.path.as_bytes().cmp(path.as_bytes()))
                .is_ok()
        })
    };
    entries.extend(links);
    // A base's own layout stands (a base without merged /usr keeps its `/bin` directory).
    entries.extend(
        unpack::merged_usr_symlinks()
            .into_iter()
            .filter(|e| !in_base(&e.path)),
    );
    // The directories base-files would have left (apt assumes it, as an Essential package, and
    // programs expect them: a temp dir, /run for pid files, /var/log…), where no package ships them.
    entries.extend(
        SKELETON
            .iter()
            .filter(|(path, _)| !owners.contains_key(path) && !in_base(path))
            .map(|(path, mode)| DebEntry::dir(path, *mode)),
    );
    entries.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    entries.dedup_by(|a, b| a.path == b.path);
    Ok(FileSet::of_entries(entries))
}

fn read_blob(store: &Store, blob: &str) -> Result<Vec<u8>, DebianError> {
    let digest = B3Digest::try_from(blob)?;
    Ok(store.read_blob(&digest)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_s_stanzas_leave_out_replaced_packages_and_read_status_d_for_dpkg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("store");
        let file = |path: &str, text: &str| {
            let blob = store.put_blob(text.as_bytes()).expect("blob");
            DebEntry::file(path, text.len() as u64, &blob.to_string(), 0o644)
        };
        let mut base = system_files(&store, "amd64", &[], None).expect("system");
        base.entries = vec![
            file(
                "/var/lib/dpkg/status",
                "Package: a\nStatus: install ok installed\nVersion: 1\n\nPackage: b\nStatus: install ok installed\nVersion: 1\n",
            ),
            file("/var/lib/dpkg/status.d/c", "Package: c\nVersion: 2\n"),
            file("/var/lib/dpkg/status.d/c.md5sums", "00  x\n"),
        ];
        let replaced = std::collections::BTreeSet::from(["b".to_string()]);
        assert_eq!(
            base_stanzas(&store, &base, &replaced, false).expect("stanzas"),
            ["Package: a\nStatus: install ok installed\nVersion: 1\n"]
        );
        assert_eq!(
            base_stanzas(&store, &base, &replaced, true).expect("stanzas"),
            [
                "Package: a\nStatus: install ok installed\nVersion: 1\n",
                "Package: c\nStatus: install ok installed\nVersion: 2\n"
            ]
        );
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn scripts_not_run_leave_out_removal_scripts_and_ldconfig_triggers() {
        let present = names(&["postrm", "postinst", "preinst", "prerm", "triggers"]);
        assert_eq!(
            scripts_not_run(&present, &names(&["activate-noawait ldconfig"])),
            names(&["preinst", "postinst"])
        );
        assert_eq!(
            scripts_not_run(
                &present,
                &names(&["activate-noawait ldconfig", "interest-noawait /usr/lib/jvm"])
            ),
            names(&["preinst", "postinst", "triggers"])
        );
        assert!(scripts_not_run(&names(&["prerm", "postrm"]), &[]).is_empty());
    }
}
