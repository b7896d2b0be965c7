//! The rules: each one's name, what it checks, how to fix a violation, and the check itself.

use std::collections::BTreeMap;

use crate::image::{FileKind, ImageView, secrets};
use crate::sbom::FileContents;

/// One hardening rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    NonRootUser,
    NoSetuid,
    NoWorldWritable,
    NoWorldWritableDirs,
    NoTempFiles,
    NoSecrets,
    CaBundle,
    NoShell,
    NoPackageManager,
    NoCompiler,
    MaxSize,
    MaxVulnerabilities,
}

/// Rules are written by name in cached facts.
impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Rule, D::Error> {
        let name = String::deserialize(d)?;
        Rule::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown rule `{name}`")))
    }
}

/// Every rule, in report order.
pub const ALL: &[Rule] = &[
    Rule::NonRootUser,
    Rule::NoSetuid,
    Rule::NoWorldWritable,
    Rule::NoWorldWritableDirs,
    Rule::NoTempFiles,
    Rule::NoSecrets,
    Rule::CaBundle,
    Rule::NoShell,
    Rule::NoPackageManager,
    Rule::NoCompiler,
    Rule::MaxSize,
    Rule::MaxVulnerabilities,
];

impl Rule {
    /// The name used in `.himg` files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Rule::NonRootUser => "non-root-user",
            Rule::NoSetuid => "no-setuid",
            Rule::NoWorldWritable => "no-world-writable",
            Rule::NoWorldWritableDirs => "no-world-writable-dirs",
            Rule::NoTempFiles => "no-temp-files",
            Rule::NoSecrets => "no-secrets",
            Rule::CaBundle => "ca-bundle",
            Rule::NoShell => "no-shell",
            Rule::NoPackageManager => "no-package-manager",
            Rule::NoCompiler => "no-compiler",
            Rule::MaxSize => "max-size",
            Rule::MaxVulnerabilities => "max-vulnerabilities",
        }
    }

    pub fn from_name(name: &str) -> Option<Rule> {
        ALL.iter().copied().find(|r| r.name() == name)
    }

    /// How to fix a violation (without waiving it).
    pub fn fix(self) -> &'static str {
        match self {
            Rule::NonRootUser => {
                "declare a `user` and set `run_as` to it (or to a uid other than 0)"
            }
            Rule::NoSetuid => "give the file a mode without 0o4000/0o2000, or leave it out",
            Rule::NoWorldWritable => "give the file a mode without the 0o002 bit",
            Rule::NoWorldWritableDirs => {
                "give the directory mode 0o1777 (sticky) or drop the 0o002 bit"
            }
            Rule::NoTempFiles => "leave build leftovers out of /tmp, /var/tmp and /var/cache",
            Rule::NoSecrets => "keep keys and credentials out of the image; mount them at run time",
            Rule::CaBundle => {
                "add `ca-certificates` to `packages` so /etc/ssl/certs/ca-certificates.crt exists"
            }
            Rule::NoShell => "exclude the shell's package (`!dash`) or use a smaller base",
            Rule::NoPackageManager => "exclude the package manager (`!apt`, `!dpkg`)",
            Rule::NoCompiler => "build in another image and copy only the result",
            Rule::MaxSize => "drop packages or files, or raise `max_size`",
            Rule::MaxVulnerabilities => {
                "`himg update` to fixed versions, or raise `max_vulnerabilities`"
            }
        }
    }
}

/// One breach of a rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Violation {
    pub rule: Rule,
    /// The file, as an absolute path, when the violation is about one.
    pub path: Option<String>,
    /// The Debian package that shipped the file (or that the violation is about).
    pub package: Option<String>,
    pub message: String,
}

/// What the rules look at.
pub struct Subject<'a> {
    view: &'a ImageView,
    contents: &'a dyn FileContents,
    /// Path → the package that owns it (from the dpkg file lists), made once for every rule.
    owners: BTreeMap<&'a str, &'a str>,
}

const BIN_DIRS: &[&str] = &[
    "bin",
    "sbin",
    "usr/bin",
    "usr/sbin",
    "usr/local/bin",
    "usr/local/sbin",
];
const SHELLS: &[&str] = &[
    "sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox",
];
const PACKAGE_MANAGERS: &[&str] = &[
    "apt",
    "apt-get",
    "apt-cache",
    "aptitude",
    "dpkg",
    "dpkg-deb",
    "dpkg-query",
    "rpm",
    "yum",
    "dnf",
    "microdnf",
    "apk",
];
const COMPILERS: &[&str] = &[
    "gcc", "g++", "cc", "c++", "clang", "clang++", "tcc", "rustc", "go", "javac", "gfortran",
];

impl<'a> Subject<'a> {
    pub fn new(view: &'a ImageView, contents: &'a dyn FileContents) -> Subject<'a> {
        let mut owners = BTreeMap::new();
        for p in &view.packages {
            for f in &p.files {
                owners.insert(f.as_str(), p.name.as_str());
            }
        }
        Subject {
            view,
            contents,
            owners,
        }
    }

    /// Violations of `rule`.
    pub fn check(&self, rule: Rule) -> Vec<Violation> {
        let owners = &self.owners;
        let v = |path: &str, message: String| Violation {
            rule,
            path: Some(format!("/{path}")),
            package: owners.get(path).map(|s| s.to_string()),
            message,
        };
        let files = &self.view.files;
        match rule {
            Rule::NonRootUser => self.non_root().into_iter().collect(),
            Rule::NoSetuid => files
                .iter()
                .filter(|(_, e)| e.kind == FileKind::File && e.mode & 0o6000 != 0)
                .map(|(p, e)| {
                    let bits = match (e.mode & 0o4000 != 0, e.mode & 0o2000 != 0) {
                        (true, true) => "setuid and setgid",
                        (true, false) => "setuid",
                        _ => "setgid",
                    };
                    v(p, format!("{bits} file (mode {:04o})", e.mode & 0o7777))
                })
                .collect(),
            Rule::NoWorldWritable => files
                .iter()
                .filter(|(_, e)| {
                    !matches!(e.kind, FileKind::Dir | FileKind::Symlink { .. })
                        && e.mode & 0o002 != 0
                })
                .map(|(p, e)| {
                    v(
                        p,
                        format!("world-writable file (mode {:04o})", e.mode & 0o7777),
                    )
                })
                .collect(),
            Rule::NoWorldWritableDirs => files
                .iter()
                .filter(|(_, e)| {
                    e.kind == FileKind::Dir && e.mode & 0o002 != 0 && e.mode & 0o1000 == 0
                })
                .map(|(p, e)| {
                    v(
                        p,
                        format!(
                            "world-writable directory without the sticky bit (mode {:04o})",
                            e.mode & 0o7777
                        ),
                    )
                })
                .collect(),
            Rule::NoTempFiles => files
                .iter()
                .filter(|(p, e)| {
                    e.kind != FileKind::Dir
                        && ["tmp/", "var/tmp/", "var/cache/"]
                            .iter()
                            .any(|d| p.starts_with(d))
                })
                .map(|(p, _)| v(p, "left in a temporary or cache directory".into()))
                .collect(),
            Rule::NoSecrets => files
                .iter()
                .filter(|(p, e)| {
                    e.kind == FileKind::File
                        && e.size <= secrets::SCAN_LIMIT
                        && (!owners.contains_key(p.as_str())
                            || ["etc/", "root/", "home/"].iter().any(|d| p.starts_with(d)))
                })
                .filter_map(|(p, e)| {
                    // Facts gathered with the layer, else the file itself.
                    let what = match &e.facts {
                        Some(f) => f.secret.clone(),
                        None => secrets::secret_in(&self.contents.read(p)?).map(str::to_owned),
                    };
                    what.map(|what| v(p, format!("contains {what}")))
                })
                .collect(),
            Rule::CaBundle => self.ca_bundle().into_iter().collect(),
            Rule::NoShell => self.binaries(SHELLS, &v, "a shell"),
            Rule::NoPackageManager => self.binaries(PACKAGE_MANAGERS, &v, "a package manager"),
            Rule::NoCompiler => {
                let mut out = self.binaries(COMPILERS, &v, "a compiler");
                // Versioned drivers: gcc-14, clang-19.
                for dir in BIN_DIRS {
                    for (p, _) in files.range(format!("{dir}/")..format!("{dir}0")) {
                        let name = &p[dir.len() + 1..];
                        if name.contains('/') {
                            continue;
                        }
                        if let Some((base, ver)) = name.split_once('-')
                            && ["gcc", "g++", "clang", "clang++", "cc"].contains(&base)
                            && !ver.is_empty()
                            && ver.chars().all(|c| c.is_ascii_digit() || c == '.')
                        {
                            out.push(v(p, format!("`{name}` is a compiler")));
                        }
                    }
                }
                out
            }
            // Parameterised rules: judged from facts by [`max_size`] and [`max_vulnerabilities`].
            Rule::MaxSize | Rule::MaxVulnerabilities => Vec::new(),
        }
    }

    fn binaries(
        &self,
        names: &[&str],
        v: &dyn Fn(&str, String) -> Violation,
        what: &str,
    ) -> Vec<Violation> {
        let mut out = Vec::new();
        for dir in BIN_DIRS {
            for name in names {
                let path = format!("{dir}/{name}");
                if let Some(e) = self.view.files.get(&path)
                    && !matches!(e.kind, FileKind::Dir)
                {
                    out.push(v(&path, format!("`{name}` is {what}")));
                }
            }
        }
        out
    }

    /// The user the image runs as is root (unset, `root`, `0`, or a name whose passwd uid is 0).
    fn non_root(&self) -> Option<Violation> {
        let user = self.view.config.config.user.clone().unwrap_or_default();
        let name = user.split(':').next().unwrap_or("").to_string();
        let uid = if name.is_empty() {
            Some(0)
        } else if let Ok(n) = name.parse::<u32>() {
            Some(n)
        } else {
            self.contents
                .read("etc/passwd")
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|t| {
                    t.lines().find_map(|l| {
                        let f: Vec<&str> = l.split(':').collect();
                        (f.first() == Some(&name.as_str()))
                            .then(|| f.get(2).and_then(|u| u.parse().ok()))
                            .flatten()
                    })
                })
                .or(if name == "root" { Some(0) } else { None })
        };
        (uid == Some(0)).then(|| Violation {
            rule: Rule::NonRootUser,
            path: None,
            package: None,
            message: if user.is_empty() {
                "the image runs as root (no `run_as`)".to_string()
            } else {
                format!("the image runs as `{user}`, which is root")
            },
        })
    }

    /// TLS libraries without a CA bundle.
    fn ca_bundle(&self) -> Option<Violation> {
        let tls = self
            .view
            .packages
            .iter()
            .find(|p| p.name.starts_with("libssl") || p.name.starts_with("libgnutls"))
            .map(|p| p.name.clone())
            .or_else(|| {
                self.view.files.keys().find_map(|p| {
                    let base = p.rsplit('/').next().unwrap_or(p);
                    (base.starts_with("libssl.so") || base.starts_with("libgnutls.so"))
                        .then(|| format!("/{p}"))
                })
            })?;
        let bundle = "etc/ssl/certs/ca-certificates.crt";
        let present = match self.view.files.get(bundle) {
            Some(e) => e.kind != FileKind::File || e.size > 0,
            None => false,
        };
        (!present).then(|| Violation {
            rule: Rule::CaBundle,
            path: Some(format!("/{bundle}")),
            package: (!tls.starts_with('/')).then(|| tls.clone()),
            message: format!(
                "TLS library `{tls}` is present but there is no CA bundle at /{bundle}"
            ),
        })
    }
}

/// The `max-size` violation when the image's files take more than `max` bytes.
pub fn max_size(total: u64, max: Option<u64>) -> Option<Violation> {
    let max = max.filter(|m| total > *m)?;
    Some(Violation {
        rule: Rule::MaxSize,
        path: None,
        package: None,
        message: format!(
            "the image's files take {} bytes ({:.1} MiB), more than the maximum {} bytes ({:.1} MiB)",
            total,
            total as f64 / 1048576.0,
            max,
            max as f64 / 1048576.0
        ),
    })
}

/// The `max-vulnerabilities` violations: one per severity whose count (from `found`, `(severity,
/// count)` pairs of a scan) exceeds its limit.
pub fn max_vulnerabilities(
    found: &[(String, u64)],
    limits: &BTreeMap<String, u32>,
) -> Vec<Violation> {
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for (sev, n) in found {
        *counts.entry(sev.to_ascii_lowercase()).or_default() += n;
    }
    limits
        .iter()
        .filter_map(|(sev, max)| {
            let n = counts.get(sev).copied().unwrap_or(0);
            (n > u64::from(*max)).then(|| Violation {
                rule: Rule::MaxVulnerabilities,
                path: None,
                package: None,
                message: format!("{n} known {sev} vulnerabilities, more than the maximum {max}"),
            })
        })
        .collect()
}
