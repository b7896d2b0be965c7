//! The configure step: what apt's maintainer scripts and triggers leave behind, made at build time.
//! The image's packages are written to a scratch root with a set of tool packages (a shell, dpkg,
//! debconf, adduser, fakeroot… — never shipped); `preinst install` then `dpkg --configure -a` and
//! the pending triggers run there in a bubblewrap sandbox ([`sandbox`]); only the changes they made
//! are kept ([`effects`]), with owners from fakeroot's state ([`fakeroot`]), and merged over the
//! generated system files. Secrets, logs, service links and dpkg's working state are dropped and
//! reported; a script that fails is reported with its output, never hidden.

pub mod effects;
pub mod fakeroot;
pub mod root;
pub mod sandbox;
pub mod tmpfiles;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use himg_store::Store;
use serde::{Deserialize, Serialize};

use super::control::parse_relations;
use super::dpkgdb;
use super::fileset::FileSet;
use super::unpack::DebEntryKind;
use effects::DroppedEffect;
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
    let native = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "i386",
        "arm" => "armhf",
        "powerpc64" => "ppc64el",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    arch == native
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

/// What the configure step did, for the build report and `himg inspect --scripts`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigureReport {
    /// Each package whose install-time scripts ran, with them (`preinst`, `config`, `postinst`,
    /// `triggers`), sorted by package.
    pub ran: Vec<PackageScripts>,
    /// Scripts that failed; their effects up to the failure are kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<ScriptFailure>,
    /// Changes not kept, with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<DroppedEffect>,
    /// Paths of the packages a script removed (kept in the image).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
    /// Package paths not placed in the scratch root (a parent that is a link).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_placed: Vec<String>,
    /// How many entries the scripts added or changed.
    pub effects: usize,
    /// Files himg generated in place of what a script makes unreproducibly (the Java trust store).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generated: Vec<String>,
    /// The blob (`b3:…`) holding everything the scripts printed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
}

/// Where an image records what its maintainer scripts did (`himg inspect --scripts` reads it).
pub const RECORD_PATH: &str = "/var/lib/himg/configure.json";

/// The record written into the image: the report without the build log, and the paths the
/// scripts made or changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigureRecord {
    pub ran: Vec<PackageScripts>,
    #[serde(default)]
    pub failed: Vec<ScriptFailure>,
    #[serde(default)]
    pub dropped: Vec<DroppedEffect>,
    #[serde(default)]
    pub removed: Vec<String>,
    #[serde(default)]
    pub generated: Vec<String>,
    #[serde(default)]
    pub effects: Vec<String>,
}

impl ConfigureRecord {
    fn new(report: &ConfigureReport, effects: &[String]) -> ConfigureRecord {
        ConfigureRecord {
            ran: report.ran.clone(),
            failed: report.failed.clone(),
            dropped: report.dropped.clone(),
            removed: report.removed.clone(),
            generated: report.generated.clone(),
            effects: effects.to_vec(),
        }
    }

    /// The human report of `himg inspect --scripts`.
    pub fn render(&self) -> String {
        let mut out = format!(
            "Maintainer scripts run at build time ({} packages):\n",
            self.ran.len()
        );
        for p in &self.ran {
            out.push_str(&format!("  {:<40} {}\n", p.package, p.scripts.join(", ")));
        }
        if !self.failed.is_empty() {
            out.push_str(&format!("\nFailed ({}):\n", self.failed.len()));
            for f in &self.failed {
                out.push_str(&format!("  {} {} ({})\n", f.package, f.script, f.status));
                for line in f.output.lines() {
                    out.push_str(&format!("    | {line}\n"));
                }
            }
        }
        out.push_str(&format!(
            "\nEffects kept ({}):\n",
            self.effects.len() + self.generated.len()
        ));
        for p in &self.effects {
            out.push_str(&format!("  {p}\n"));
        }
        for p in &self.generated {
            out.push_str(&format!("  {p}  (generated by himg)\n"));
        }
        if !self.dropped.is_empty() {
            out.push_str(&format!("\nNot kept ({}):\n", self.dropped.len()));
            for d in &self.dropped {
                out.push_str(&format!("  {:<60} {}\n", d.path, d.reason));
            }
        }
        if !self.removed.is_empty() {
            out.push_str(&format!(
                "\nRemoved by a script, kept in the image ({}):\n",
                self.removed.len()
            ));
            for p in &self.removed {
                out.push_str(&format!("  {p}\n"));
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageScripts {
    pub package: String,
    pub scripts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptFailure {
    pub package: String,
    pub script: String,
    /// dpkg's status of the package afterwards (`half-configured`…) or the exit code.
    pub status: String,
    /// The end of what the script printed.
    pub output: String,
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

/// The account files of an image's declared users and groups (`plan::accounts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredAccounts {
    pub passwd: String,
    pub group: String,
    pub shadow: String,
}

impl DeclaredAccounts {
    pub fn of(accounts: &crate::plan::accounts::Accounts) -> DeclaredAccounts {
        DeclaredAccounts {
            passwd: accounts.passwd(),
            group: accounts.group(),
            shadow: accounts.shadow(),
        }
    }
}

/// `over`'s lines replace `base`'s lines of the same name (the first `:` field) in place; the
/// others are appended in `over`'s order.
pub fn merge_account_lines(base: &str, over: &str) -> String {
    let name = |l: &str| l.split(':').next().unwrap_or_default().to_string();
    let over_lines: Vec<&str> = over.lines().filter(|l| !l.trim().is_empty()).collect();
    let over_by_name: BTreeMap<String, &str> = over_lines.iter().map(|l| (name(l), *l)).collect();
    let mut used = BTreeSet::new();
    let mut out = String::new();
    for line in base.lines() {
        let n = name(line);
        match over_by_name.get(&n) {
            Some(replacement) if !line.starts_with('#') => {
                out.push_str(replacement);
                used.insert(n);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    for line in over_lines {
        if !used.contains(&name(line)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
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
            super::unpack::DebEntry {
                path: RECORD_PATH.into(),
                kind: DebEntryKind::File {
                    size: bytes.len() as u64,
                    content: blob.to_string(),
                },
                mode: 0o644,
                uid: 0,
                gid: 0,
                shipped_path: None,
            },
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

/// Merges declared accounts over the account files in `entries` (by path).
fn merge_declared(
    store: &Store,
    merged: &mut BTreeMap<String, super::unpack::DebEntry>,
    declared: &DeclaredAccounts,
) -> Result<(), ConfigureError> {
    for (path, over, mode, gid) in [
        ("/etc/passwd", &declared.passwd, 0o644, 0),
        ("/etc/group", &declared.group, 0o644, 0),
        ("/etc/shadow", &declared.shadow, 0o640, 42),
    ] {
        let existing = match merged.get(path).map(|e| &e.kind) {
            Some(DebEntryKind::File { content, .. }) => String::from_utf8_lossy(
                &store.read_blob(&himg_store::B3Digest::try_from(content.as_str())?)?,
            )
            .into_owned(),
            _ => String::new(),
        };
        let text = merge_account_lines(&existing, over);
        let blob = store.put_blob(text.as_bytes())?;
        let prev = merged.get(path);
        let entry = super::unpack::DebEntry {
            path: path.to_string(),
            kind: DebEntryKind::File {
                size: text.len() as u64,
                content: blob.to_string(),
            },
            mode: prev.map_or(mode, |e| e.mode),
            uid: 0,
            gid: prev.map_or(if existing.is_empty() { 0 } else { gid }, |e| e.gid),
            shipped_path: None,
        };
        merged.insert(path.to_string(), entry);
    }
    Ok(())
}

/// The account files of `below` (a configure step's output) with `declared` merged over them, as a
/// file set of their own (a derived image's accounts layer).
pub fn accounts_over(
    store: &Store,
    below: &FileSet,
    declared: &DeclaredAccounts,
) -> Result<FileSet, ConfigureError> {
    let mut merged: BTreeMap<String, super::unpack::DebEntry> = below
        .entries
        .iter()
        .filter(|e| {
            matches!(
                e.path.as_str(),
                "/etc/passwd" | "/etc/group" | "/etc/shadow"
            )
        })
        .map(|e| (e.path.clone(), e.clone()))
        .collect();
    merge_declared(store, &mut merged, declared)?;
    let mut out = below.clone();
    out.entries = merged.into_values().collect();
    out.configure = None;
    out.install_files = Vec::new();
    out.control = None;
    out.md5sums = None;
    out.scripts_not_run = Vec::new();
    Ok(out)
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
    Ok(Some(super::unpack::DebEntry {
        path: CACERTS_PATH.to_string(),
        kind: DebEntryKind::File {
            size: bytes.len() as u64,
            content: blob.to_string(),
        },
        mode: 0o644,
        uid: 0,
        gid: 0,
        shipped_path: None,
    }))
}

/// `/.himg/alternatives`: `NAME PATH` lines for `update-alternatives --set`.
fn write_alternatives(
    work: &Path,
    pinned: &BTreeMap<String, String>,
) -> Result<(), ConfigureError> {
    let text: String = pinned
        .iter()
        .map(|(name, path)| format!("{name} {path}\n"))
        .collect();
    let path = work.join("alternatives");
    std::fs::write(&path, text).map_err(|e| ConfigureError::io(&path, e))
}

/// Each pinned alternative now points at its path (`/etc/alternatives/NAME`), else the error
/// lists the choices the packages registered.
fn check_alternatives(
    root: &Path,
    pinned: &BTreeMap<String, String>,
) -> Result<(), ConfigureError> {
    for (name, path) in pinned {
        let link = std::fs::read_link(root.join("etc/alternatives").join(name)).ok();
        if link.as_deref() == Some(Path::new(path)) {
            continue;
        }
        let admin = std::fs::read_to_string(root.join("var/lib/dpkg/alternatives").join(name))
            .unwrap_or_default();
        let choices = alternative_choices(&admin);
        return Err(ConfigureError::Alternative {
            name: name.clone(),
            path: path.clone(),
            choices,
        });
    }
    Ok(())
}

/// The choices of an alternative's admin file (`/var/lib/dpkg/alternatives/NAME`): its mode and
/// master link, `(slave name, slave link)` pairs up to a blank line, then per choice its path, its
/// priority and one line per slave, up to a blank line.
fn alternative_choices(admin: &str) -> Vec<String> {
    let lines: Vec<&str> = admin.lines().collect();
    let mut i = 2;
    let mut slaves = 0;
    while i + 1 < lines.len() && !lines[i].is_empty() {
        slaves += 1;
        i += 2;
    }
    i += 1;
    let mut out = Vec::new();
    while i < lines.len() && !lines[i].is_empty() {
        out.push(lines[i].to_string());
        i += 2 + slaves;
    }
    out
}

fn read_state(work: &Path) -> Result<String, ConfigureError> {
    let path = work.join("fakeroot.state");
    let state = std::fs::read_to_string(&path).map_err(|e| ConfigureError::io(&path, e))?;
    std::fs::remove_file(&path).map_err(|e| ConfigureError::io(&path, e))?;
    Ok(state)
}

/// `info/` in the scratch root: the install-time control files of the image's packages and of
/// the tools, and the tools' file lists.
fn write_info(
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

/// The sandbox's `status`: `unpacked` packages (to configure), `installed` ones, and the
/// stanzas of a base's installed packages.
fn write_status(
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
fn write_driver(root: &Path, work: &Path) -> Result<(), ConfigureError> {
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
fn write_order(
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
fn find_fakeroot_lib(root: &Path) -> Result<String, ConfigureError> {
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
fn install_order(packages: &[(String, FileSet)]) -> Vec<usize> {
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
fn file_triggers(store: &Store, input: &ConfigureInput<'_>) -> Result<String, ConfigureError> {
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

/// Scripts that failed: `preinst` failures the driver printed, and packages dpkg left
/// unconfigured, with the end of what they printed.
fn failures(root: &Path, input: &ConfigureInput<'_>, log: &str) -> Vec<ScriptFailure> {
    let mut out = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("himg: preinst-failed ") {
            let mut words = rest.split_whitespace();
            let package = words.next().unwrap_or_default().to_string();
            let code = words.next().unwrap_or_default();
            out.push(ScriptFailure {
                output: excerpt(log, &format!("himg: preinst {package}")),
                package,
                script: "preinst".into(),
                status: format!("exit {code}"),
            });
        }
    }
    let status = std::fs::read_to_string(root.join("var/lib/dpkg/status")).unwrap_or_default();
    for stanza in status.split("\n\n") {
        let (Some(name), Some(state)) = (
            dpkgdb::control_field(stanza, "Package"),
            dpkgdb::control_field(stanza, "Status"),
        ) else {
            continue;
        };
        if state.ends_with(" installed") || !input.packages.iter().any(|(n, _)| *n == name) {
            continue;
        }
        out.push(ScriptFailure {
            output: excerpt(log, &format!("Setting up {name}")),
            package: name,
            script: "postinst".into(),
            status: state.rsplit(' ').next().unwrap_or_default().to_string(),
        });
    }
    out.sort_by(|a, b| (&a.package, &a.script).cmp(&(&b.package, &b.script)));
    out
}

/// The log lines after the line starting with `start` (up to the next package's), at most 20.
fn excerpt(log: &str, start: &str) -> String {
    let starts = |l: &str| {
        l.strip_prefix(start)
            .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with(':'))
    };
    let mut lines = log.lines().skip_while(|l| !starts(l));
    let Some(first) = lines.next() else {
        return String::new();
    };
    let mut out = vec![first];
    out.extend(
        lines
            .take_while(|l| !l.starts_with("Setting up ") && !l.starts_with("himg: "))
            .take(19),
    );
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(control: &str) -> FileSet {
        FileSet {
            version: crate::debian::fileset::FILESET_VERSION,
            entries: Vec::new(),
            control: Some(control.to_string()),
            md5sums: None,
            conffiles: Vec::new(),
            removed_bytes: 0,
            removed_files: 0,
            setuid_stripped: Vec::new(),
            setuid_kept: Vec::new(),
            scripts_not_run: Vec::new(),
            install_files: Vec::new(),
            configure: None,
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
