//! The configure step: what apt's maintainer scripts and triggers leave behind, made at build time.
//! The image's packages are written to a scratch root with a set of tool packages (a shell, dpkg,
//! debconf, adduser, fakeroot… — never shipped); `preinst install` then `dpkg --configure -a` and
//! the pending triggers run there in a bubblewrap sandbox ([`sandbox`]); only the changes they made
//! are kept ([`effects`]), with owners from fakeroot's state ([`fakeroot`]), and merged over the
//! generated system files. Secrets, logs, service links and dpkg's working state are dropped and
//! reported; a script that fails is reported with its output, never hidden.

pub mod accounts;
pub mod alternatives;
pub mod dpkg;
pub mod effects;
pub mod fakeroot;
pub mod report;
pub mod root;
pub mod sandbox;
pub mod tmpfiles;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use himg_store::Store;

use super::dpkgdb;
use super::fileset::FileSet;
use super::unpack::DebEntryKind;
use accounts::merge_declared;
pub use accounts::{DeclaredAccounts, accounts_over, merge_account_lines};
use alternatives::{check_alternatives, write_alternatives};
use dpkg::{file_triggers, write_driver, write_info, write_order, write_status};
use report::failures;
pub use report::{ConfigureRecord, ConfigureReport, PackageScripts, RECORD_PATH, ScriptFailure};
use root::RootSet;

/// The packages the configure step runs scripts with, from the image's own repositories (the lock
/// pins their closure). They exist in every Debian release himg supports.
pub const TOOLS: &[&str] = &[
    "adduser",
    "base-passwd",
    "bash",
    "bsdutils",
    "coreutils",
    "dash",
    "debconf",
    "debianutils",
    "diffutils",
    "dpkg",
    "fakeroot",
    "findutils",
    "grep",
    "gzip",
    "hostname",
    "init-system-helpers",
    "libc-bin",
    "mawk",
    "passwd",
    "perl-base",
    "sed",
    "tar",
    "ucf",
    "util-linux",
];

/// Whether this host runs programs of the Debian architecture `arch` natively: the configure step
/// runs only there (no emulation); other architectures' images report their scripts as not run.
pub fn runs_here(arch: &str) -> bool {
    arch == crate::builder::native_architecture()
}

/// Version of the configure rules (part of the configure derivation's key).
pub const CONFIGURE_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum ConfigureError {
    #[error("bubblewrap (`bwrap`) is needed to run the packages' maintainer scripts at build time")]
    NoSandbox,
    #[error("the configure tools lack {what}")]
    MissingTool { what: String },
    #[error("{}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] himg_store::StoreError),
    #[error("the maintainer scripts ran longer than {minutes} minutes")]
    Timeout { minutes: u64 },
    #[error(
        "`alternatives` pins `{name}` to `{path}`, but no installed package registers that choice{}",
        if choices.is_empty() { String::new() } else { format!(" (its choices: {})", choices.join(", ")) }
    )]
    Alternative {
        name: String,
        path: String,
        choices: Vec<String>,
    },
    #[error("the Java trust store")]
    JavaCerts(#[from] super::javacerts::JavaCertsError),
    #[error("the configure sandbox failed (exit {status}):\n{output}")]
    Sandbox { status: i32, output: String },
}

impl ConfigureError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        ConfigureError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// What one configure step works on.
pub struct ConfigureInput<'a> {
    pub architecture: &'a str,
    pub epoch: u64,
    /// The generated system files (dpkg database, CA bundle, ld.so.cache, links, skeleton).
    pub system: &'a FileSet,
    /// The image's packages (a base's included), by name.
    pub packages: &'a [(String, FileSet)],
    /// The configure tools, by name.
    pub tools: &'a [(String, FileSet)],
    /// Accounts the image declares, merged over what the packages made.
    pub accounts: Option<&'a DeclaredAccounts>,
    /// The image keeps documentation (else links scripts make under `/usr/share/man` are dropped).
    pub keep_docs: bool,
    /// Alternatives pinned to a choice (`update-alternatives --set NAME PATH` after the scripts).
    pub alternatives: &'a BTreeMap<String, String>,
    /// A registry base's merged root filesystem: the image state below `packages` (its packages
    /// count as installed; their scripts ran when the base was made).
    pub base: Option<&'a FileSet>,
}

/// Runs the scripts and returns `system` with their effects merged over it and the report.
pub fn configure(store: &Store, input: &ConfigureInput<'_>) -> Result<FileSet, ConfigureError> {
    let mut report = ConfigureReport::default();
    for (name, set) in input.packages {
        let scripts: Vec<String> = super::unpack::INSTALL_TIME_SCRIPTS
            .iter()
            .filter(|s| set.install_files.iter().any(|(n, _)| n == *s))
            .map(|s| s.to_string())
            .collect();
        if !scripts.is_empty() {
            report.ran.push(PackageScripts {
                package: name.clone(),
                scripts,
            });
        }
    }
    report.ran.sort_by(|a, b| a.package.cmp(&b.package));
    let mut out = input.system.clone();
    let effects = if report.ran.is_empty() {
        Vec::new()
    } else {
        run_scripts(store, input, &mut report)?
    };
    let mut merged: BTreeMap<String, super::unpack::DebEntry> =
        out.entries.drain(..).map(|e| (e.path.clone(), e)).collect();
    let effect_paths: Vec<String> = effects
        .iter()
        .map(|e| e.path.clone())
        .filter(|p| !report.generated.contains(p))
        .collect();
    for e in effects {
        merged.insert(e.path.clone(), e);
    }
    if let Some(entry) = java_trust_store(store, input)? {
        report.generated.push(entry.path.clone());
        merged.insert(entry.path.clone(), entry);
    }
    if let Some(declared) = input.accounts {
        merge_declared(store, &mut merged, declared)?;
    }
    if !report.ran.is_empty() {
        let record = ConfigureRecord::new(&report, &effect_paths);
        let bytes = crate::oci::canonical_json(&record)
            .map_err(|e| ConfigureError::io(Path::new(RECORD_PATH), std::io::Error::other(e)))?;
        let blob = store.put_blob(&bytes)?;
        merged
            .entry("/var/lib/himg".into())
            .or_insert_with(|| super::unpack::DebEntry::dir("/var/lib/himg", 0o755));
        merged.insert(
            RECORD_PATH.into(),
            super::unpack::DebEntry::file(
                RECORD_PATH,
                bytes.len() as u64,
                &blob.to_string(),
                0o644,
            ),
        );
    }
    out.entries = merged.into_values().collect();
    out.entries
        .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    out.configure = Some(report);
    Ok(out)
}

/// Runs the scripts over a scratch root and returns their effects, filling in `report`.
fn run_scripts(
    store: &Store,
    input: &ConfigureInput<'_>,
    report: &mut ConfigureReport,
) -> Result<Vec<super::unpack::DebEntry>, ConfigureError> {
    let tmp_parent = store.root().join("v1").join("tmp");
    std::fs::create_dir_all(&tmp_parent).map_err(|e| ConfigureError::io(&tmp_parent, e))?;
    let tmp = Scratch(
        tempfile::Builder::new()
            .prefix("configure-")
            .tempdir_in(&tmp_parent)
            .map_err(|e| ConfigureError::io(&tmp_parent, e))?,
    );
    let _guard = crate::interrupt::guard(tmp.path());
    let root = tmp.path().join("root");
    let work = tmp.path().join("work");
    for dir in [&root, &work] {
        std::fs::create_dir(dir).map_err(|e| ConfigureError::io(dir, e))?;
    }

    let mut sets: Vec<RootSet<'_>> = input
        .base
        .map(|set| RootSet { set, tool: false })
        .into_iter()
        .collect();
    sets.extend(
        input
            .packages
            .iter()
            .map(|(_, set)| RootSet { set, tool: false }),
    );
    sets.push(RootSet {
        set: input.system,
        tool: false,
    });
    sets.extend(
        input
            .tools
            .iter()
            .map(|(_, set)| RootSet { set, tool: true }),
    );
    let (mut before, not_placed) = root::materialise(store, &root, &sets)?;
    report.not_placed = not_placed;

    let image: BTreeSet<String> = input.packages.iter().map(|(n, _)| n.clone()).collect();
    // The base's packages are installed: its stanzas, but those of packages installed again.
    let base_stanzas = match input.base {
        Some(base) => super::build::base_stanzas(store, base, &image, true).map_err(|e| {
            ConfigureError::io(
                Path::new("/var/lib/dpkg/status"),
                std::io::Error::other(e.to_string()),
            )
        })?,
        None => Vec::new(),
    };
    let in_base: BTreeSet<String> = base_stanzas
        .iter()
        .filter_map(|s| dpkgdb::control_field(s, "Package"))
        .collect();
    let tools: Vec<(String, FileSet)> = input
        .tools
        .iter()
        .filter(|(n, _)| !image.contains(n) && !in_base.contains(n))
        .cloned()
        .collect();
    write_info(store, &root, input.packages, &tools)?;
    write_driver(&root, &work)?;

    // Pass 1: the tools, as apt finds them (configured) before it installs anything.
    write_alternatives(&work, &BTreeMap::new())?;
    write_status(&root, &tools, &[], &base_stanzas)?;
    write_order(&work, &tools, "")?;
    sandbox::run(&root, &work, input.epoch)?;
    let state = read_state(&work)?;
    effects::refresh(&root, &mut before, &fakeroot::parse_state(&state))?;
    let load = work.join("fakeroot.load");
    std::fs::write(&load, &state).map_err(|e| ConfigureError::io(&load, e))?;

    // Pass 2: the image's packages, then the pinned alternatives.
    write_alternatives(&work, input.alternatives)?;
    write_status(&root, input.packages, &tools, &base_stanzas)?;
    write_order(&work, input.packages, &file_triggers(store, input)?)?;
    let log = sandbox::run(&root, &work, input.epoch)?;
    let faked = fakeroot::parse_state(&read_state(&work)?);
    report.failed = failures(&root, input, &log);
    check_alternatives(&root, input.alternatives)?;
    report.log = Some(store.put_blob(log.as_bytes())?.to_string());

    let mut fx = effects::collect(store, &root, &before, &faked, input.keep_docs)?;
    // What systemd-tmpfiles would make at boot (a container has none).
    let (made, skipped) = tmpfiles::entries(&root);
    for e in made {
        report.generated.push(e.path.clone());
        fx.entries.push(e);
    }
    for (line, reason) in skipped {
        fx.dropped.push(effects::DroppedEffect {
            path: line,
            reason: format!("a tmpfiles.d line not made: {reason}"),
        });
    }
    fx.entries
        .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    fx.dropped.sort();
    report.dropped = fx.dropped;
    report.removed = fx.removed;
    report.effects = fx.entries.len();
    Ok(fx.entries)
}

/// The Java trust store ca-certificates-java would have made (its `keytool` run stamps every entry
/// with the time), generated from the image's CA certificates with `SOURCE_DATE_EPOCH`: when
/// ca-certificates-java is installed, or a package links its `cacerts` to it.
fn java_trust_store(
    store: &Store,
    input: &ConfigureInput<'_>,
) -> Result<Option<super::unpack::DebEntry>, ConfigureError> {
    use super::javacerts::CACERTS_PATH;
    let wanted = input.packages.iter().any(|(name, set)| {
        name == "ca-certificates-java"
            || set.entries.iter().any(
                |e| matches!(&e.kind, DebEntryKind::Symlink { target } if target == CACERTS_PATH),
            )
    });
    if !wanted {
        return Ok(None);
    }
    let mut certs = Vec::new();
    let replaced: BTreeSet<&str> = input
        .packages
        .iter()
        .flat_map(|(_, s)| s.entries.iter().map(|e| e.path.as_str()))
        .collect();
    let base_certs = input
        .base
        .into_iter()
        .flat_map(|b| b.entries.iter())
        .filter(|e| !replaced.contains(e.path.as_str()));
    for e in input
        .packages
        .iter()
        .flat_map(|(_, s)| s.entries.iter())
        .chain(base_certs)
    {
        {
            if let (DebEntryKind::File { content, .. }, true) =
                (&e.kind, super::cabundle::is_ca_cert(&e.path))
            {
                let digest = himg_store::B3Digest::try_from(content.as_str())?;
                certs.push((e.path.clone(), store.read_blob(&digest)?));
            }
        }
    }
    if certs.is_empty() {
        return Ok(None);
    }
    let bytes = super::javacerts::java_cacerts(&certs, input.epoch)?;
    let blob = store.put_blob(&bytes)?;
    Ok(Some(super::unpack::DebEntry::file(
        CACERTS_PATH,
        bytes.len() as u64,
        &blob.to_string(),
        0o644,
    )))
}

fn read_state(work: &Path) -> Result<String, ConfigureError> {
    let path = work.join("fakeroot.state");
    let state = std::fs::read_to_string(&path).map_err(|e| ConfigureError::io(&path, e))?;
    std::fs::remove_file(&path).map_err(|e| ConfigureError::io(&path, e))?;
    Ok(state)
}

/// The scratch directory, removed when dropped even where a script left a directory without write
/// permission (its owner's bits are restored first).
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn path(&self) -> &Path {
        self.0.path()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        for entry in walkdir::WalkDir::new(self.0.path())
            .follow_links(false)
            .into_iter()
            .flatten()
        {
            if entry.file_type().is_dir()
                && let Ok(meta) = entry.metadata()
                && meta.permissions().mode() & 0o700 != 0o700
            {
                let mode = meta.permissions().mode() | 0o700;
                let _ =
                    std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alternatives::alternative_choices;
    use dpkg::install_order;
    use report::excerpt;

    fn set(control: &str) -> FileSet {
        FileSet {
            control: Some(control.to_string()),
            ..FileSet::of_entries(Vec::new())
        }
    }

    #[test]
    fn reads_the_choices_of_an_alternative() {
        let admin = "auto\n/usr/bin/java\njava.1.gz\n/usr/share/man/man1/java.1.gz\n\n/usr/lib/jvm/a/bin/java\n2111\n/usr/lib/jvm/a/man/man1/java.1.gz\n/usr/lib/jvm/b/bin/java\n1711\n\n\n";
        assert_eq!(
            alternative_choices(admin),
            ["/usr/lib/jvm/a/bin/java", "/usr/lib/jvm/b/bin/java"]
        );
        assert!(alternative_choices("").is_empty());
    }

    #[test]
    fn declared_accounts_replace_by_name_and_append() {
        let base =
            "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n";
        let over =
            "www-data:x:33:33:web:/srv:/usr/sbin/nologin\napp:x:1000:1000::/home/app:/bin/sh\n";
        assert_eq!(
            merge_account_lines(base, over),
            "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33:web:/srv:/usr/sbin/nologin\napp:x:1000:1000::/home/app:/bin/sh\n"
        );
        assert_eq!(merge_account_lines("", "a:x:1:1\n"), "a:x:1:1\n");
    }

    #[test]
    fn preinsts_run_after_what_they_depend_on() {
        let packages = vec![
            (
                "a".to_string(),
                set("Package: a\nDepends: c, b | x\nArchitecture: all\n"),
            ),
            ("b".to_string(), set("Package: b\nPre-Depends: c\n")),
            ("c".to_string(), set("Package: c\nDepends: a\n")),
            ("d".to_string(), set("Package: d\n")),
        ];
        let names: Vec<&str> = install_order(&packages)
            .into_iter()
            .map(|i| packages[i].0.as_str())
            .collect();
        // a's dependencies first (the cycle c → a is cut where it closes), then the rest by name.
        assert_eq!(names, ["c", "b", "a", "d"]);
    }

    #[test]
    fn a_failure_excerpt_is_the_package_s_own_output() {
        let log = "Setting up a (1) ...\nok\nSetting up nginx-common (1.2) ...\nchown: bad\ndpkg: error processing package nginx-common (--configure):\nSetting up z (1) ...\n";
        assert_eq!(
            excerpt(log, "Setting up nginx-common"),
            "Setting up nginx-common (1.2) ...\nchown: bad\ndpkg: error processing package nginx-common (--configure):"
        );
        assert_eq!(
            excerpt("Setting up libfoo:amd64 (1) ...\nx\n", "Setting up libfoo"),
            "Setting up libfoo:amd64 (1) ...\nx"
        );
        assert_eq!(excerpt(log, "Setting up nginx"), "");
    }
}
