//! Binary package indexes (`Packages` files): stanzas turned into typed [`BinaryPackage`]s.
//!
//! Every stanza must carry `Package`, `Version`, `Architecture`, `Filename`, `Size` and
//! `SHA256` (the last three authenticate the `.deb` in the chain of trust). Relation fields
//! are parsed eagerly; of the rest only what the resolver reads is kept (the `Important`/
//! `Protected` flag, and the names `Recommends`, `Suggests`, `Replaces` and `Enhances` mention,
//! which number packages like apt): a package is typed data, small enough to keep a parsed
//! index on disk (`parsed`) and load it instead of parsing again. The image's dpkg database is
//! written from the `.deb`s' own control files, never from an index stanza.
//! `Source: glibc (2.36-9)` (a binNMU) gives a source version different from the binary
//! version; a bare `Source: name` or no `Source` means the binary's own version.
//!
//! Errors reuse [`ControlError`]: everything that can go wrong here is malformed control
//! data, and callers (the lead's API) expect one error type from `parse_packages`.

use std::fmt;

use super::control::{
    Alternatives, ControlError, Relation, Stanza, for_each_stanza, parse_relations,
};
use super::version::DebVersion;

/// The `Multi-Arch` field.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum MultiArch {
    #[default]
    No,
    Same,
    Foreign,
    Allowed,
}

impl MultiArch {
    pub fn as_str(self) -> &'static str {
        match self {
            MultiArch::No => "no",
            MultiArch::Same => "same",
            MultiArch::Foreign => "foreign",
            MultiArch::Allowed => "allowed",
        }
    }
}

impl fmt::Display for MultiArch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One binary package as listed in a Packages index (its encoding is the payload of a parsed
/// index on disk: a change to this type or to what parsing puts in it bumps
/// `parsed::FORMAT_VERSION`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BinaryPackage {
    pub name: String,
    pub version: DebVersion,
    pub architecture: String,
    pub multi_arch: MultiArch,
    pub essential: bool,
    pub priority: Option<String>,
    pub section: Option<String>,
    /// Source package name; the binary name when the stanza has no `Source`.
    pub source: String,
    /// From `Source: name (version)`, else the binary version (binNMUs differ).
    pub source_version: DebVersion,
    pub depends: Vec<Alternatives>,
    pub pre_depends: Vec<Alternatives>,
    /// `Provides` may not contain alternatives; each entry is one relation
    /// (only `=` versions are meaningful).
    pub provides: Vec<Relation>,
    pub conflicts: Vec<Alternatives>,
    pub breaks: Vec<Alternatives>,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    /// In KiB, as in the index.
    pub installed_size: Option<u64>,
    /// `Important: yes` or `Protected: yes` (apt prefers such a provider).
    pub important: bool,
    /// The names `Recommends`, `Suggests`, `Replaces` and `Enhances` mention, in that order,
    /// each followed by `,` (names with an architecture qualifier left out): the resolver only
    /// numbers them the way apt's cache does.
    pub other_names: Box<str>,
}

impl BinaryPackage {
    /// Builds a package from one stanza of a Packages index.
    pub fn from_stanza(stanza: &Stanza) -> Result<Self, ControlError> {
        Self::typed_fields(stanza, true)
    }

    /// Builds a package from a control or dpkg status stanza, which has no `Filename`, `Size`
    /// or `SHA256` (they are left empty) — for relations among installed packages only.
    pub fn from_installed(stanza: &Stanza) -> Result<Self, ControlError> {
        Self::typed_fields(stanza, false)
    }

    /// The names `Recommends`, `Suggests`, `Replaces` and `Enhances` mention, in order.
    pub fn mentioned_names(&self) -> impl Iterator<Item = &str> {
        self.other_names.split_terminator(',')
    }

    /// The package's fields; `index` requires the fields only an index has.
    fn typed_fields<'a>(stanza: &'a Stanza, index: bool) -> Result<Self, ControlError> {
        // One pass over the fields instead of a lookup per field.
        let mut slot: [Option<&str>; FIELDS.len()] = [None; FIELDS.len()];
        for (n, v) in stanza.fields() {
            if let Some(i) = FIELDS
                .iter()
                .position(|f| f.len() == n.len() && f.eq_ignore_ascii_case(n))
            {
                slot[i] = Some(v);
            }
        }
        let [
            package,
            version,
            architecture,
            filename,
            size,
            sha256,
            multi_arch,
            essential,
            installed_size,
            source,
            depends,
            pre_depends,
            conflicts,
            breaks,
            provides,
            priority,
            section,
            recommends,
            suggests,
            replaces,
            enhances,
            important,
            protected,
        ] = slot;
        let name = match package {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => {
                return Err(ControlError::MissingField {
                    stanza: describe(stanza),
                    field: "Package",
                });
            }
        };
        let required =
            |value: Option<&'a str>, field: &'static str| -> Result<&'a str, ControlError> {
                match value {
                    Some(v) if !v.is_empty() => Ok(v),
                    _ => Err(ControlError::MissingField {
                        stanza: name.clone(),
                        field,
                    }),
                }
            };
        let invalid = |field: &str, value: &str, reason: String| ControlError::InvalidField {
            package: name.clone(),
            field: field.to_string(),
            value: value.to_string(),
            reason,
        };
        let vtext = required(version, "Version")?;
        let version: DebVersion = vtext
            .parse()
            .map_err(|e: super::version::VersionError| invalid("Version", vtext, e.to_string()))?;
        let architecture = required(architecture, "Architecture")?.to_string();
        let (filename, size, sha256) = if index {
            let filename = required(filename, "Filename")?.to_string();
            let size_text = required(size, "Size")?;
            let size = size_text
                .parse::<u64>()
                .map_err(|e| invalid("Size", size_text, e.to_string()))?;
            let sha256 = required(sha256, "SHA256")?;
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(
                    "SHA256",
                    sha256,
                    "expected 64 hexadecimal digits".into(),
                ));
            }
            (filename, size, sha256.to_ascii_lowercase())
        } else {
            (String::new(), 0, String::new())
        };
        let multi_arch = match multi_arch {
            None => MultiArch::No,
            Some(m) => match m.to_ascii_lowercase().as_str() {
                "no" => MultiArch::No,
                "same" => MultiArch::Same,
                "foreign" => MultiArch::Foreign,
                "allowed" => MultiArch::Allowed,
                _ => {
                    return Err(invalid(
                        "Multi-Arch",
                        m,
                        "expected no, same, foreign or allowed".into(),
                    ));
                }
            },
        };
        let essential = match essential {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("yes") => true,
            Some(v) if v.eq_ignore_ascii_case("no") => false,
            Some(v) => return Err(invalid("Essential", v, "expected yes or no".into())),
        };
        let installed_size = match installed_size {
            None => None,
            Some(t) => Some(
                t.parse::<u64>()
                    .map_err(|e| invalid("Installed-Size", t, e.to_string()))?,
            ),
        };
        let (source, source_version) = match source {
            None => (name.clone(), version.clone()),
            Some(s) => match s.split_once('(') {
                None => (s.trim().to_string(), version.clone()),
                Some((n, rest)) => {
                    let vt = rest.trim().strip_suffix(')').ok_or_else(|| {
                        invalid("Source", s, "missing `)` after the source version".into())
                    })?;
                    let sv: DebVersion =
                        vt.parse().map_err(|e: super::version::VersionError| {
                            invalid("Source", s, e.to_string())
                        })?;
                    (n.trim().to_string(), sv)
                }
            },
        };
        let rel = |value: Option<&str>| -> Result<Vec<Alternatives>, ControlError> {
            value.map_or(Ok(Vec::new()), parse_relations)
        };
        let provides_text = provides;
        let depends = rel(depends)?;
        let pre_depends = rel(pre_depends)?;
        let conflicts = rel(conflicts)?;
        let breaks = rel(breaks)?;
        let mut provides = Vec::new();
        for group in rel(provides_text)? {
            if group.len() != 1 {
                return Err(invalid(
                    "Provides",
                    provides_text.unwrap_or_default(),
                    "alternatives (`|`) are not allowed in Provides".into(),
                ));
            }
            provides.extend(group);
        }
        let yes = |v: Option<&str>| v.is_some_and(|v| v.eq_ignore_ascii_case("yes"));
        let important = yes(important) || yes(protected);
        let mut other_names = String::new();
        for text in [recommends, suggests, replaces, enhances]
            .into_iter()
            .flatten()
        {
            for name in quick_relation_names(text) {
                other_names.push_str(name);
                other_names.push(',');
            }
        }
        Ok(BinaryPackage {
            important,
            other_names: other_names.into_boxed_str(),
            priority: priority.map(str::to_string),
            section: section.map(str::to_string),
            name,
            version,
            architecture,
            multi_arch,
            essential,
            source,
            source_version,
            depends,
            pre_depends,
            provides,
            conflicts,
            breaks,
            filename,
            size,
            sha256,
            installed_size,
        })
    }
}

/// The fields `from_stanza` reads.
const FIELDS: [&str; 23] = [
    "Package",
    "Version",
    "Architecture",
    "Filename",
    "Size",
    "SHA256",
    "Multi-Arch",
    "Essential",
    "Installed-Size",
    "Source",
    "Depends",
    "Pre-Depends",
    "Conflicts",
    "Breaks",
    "Provides",
    "Priority",
    "Section",
    "Recommends",
    "Suggests",
    "Replaces",
    "Enhances",
    "Important",
    "Protected",
];

/// Names in a relation field without building relations (for the apt ID numbering);
/// names with an architecture qualifier are skipped, as apt files them separately.
fn quick_relation_names(text: &str) -> impl Iterator<Item = &str> {
    text.split([',', '|']).filter_map(|part| {
        let part = part.trim_start();
        let end = part
            .find(|c: char| c.is_whitespace() || c == '(' || c == '[' || c == '<')
            .unwrap_or(part.len());
        let name = &part[..end];
        (!name.is_empty() && !name.contains(':')).then_some(name)
    })
}

fn describe(stanza: &Stanza) -> String {
    stanza
        .fields()
        .next()
        .map(|(n, v)| format!("starting `{n}: {v}`"))
        .unwrap_or_else(|| "(empty)".into())
}

/// Parses a whole Packages index (each stanza typed as soon as it is read, so the index text
/// is never held twice).
pub fn parse_packages(text: &str) -> Result<Vec<BinaryPackage>, ControlError> {
    let mut out = Vec::new();
    for_each_stanza(text, |stanza| {
        out.push(BinaryPackage::from_stanza(&stanza)?);
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian::control::Op;

    const SAMPLE: &str = "\
Package: libc6
Source: glibc (2.36-9+deb12u4)
Version: 2.36-9+deb12u4+b1
Installed-Size: 12988
Maintainer: GNU Libc Maintainers <libc@example.org>
Architecture: amd64
Multi-Arch: same
Replaces: libc6-amd64
Depends: libgcc-s1, libcrypt1 (>= 1:4.4.10-10~)
Recommends: libidn2-0 (>= 2.0.5~)
Suggests: glibc-doc, debconf | debconf-2.0, libc-l10n, locales (>= 2.36), libnss-nis, libnss-nisplus
Breaks: aide (<< 0.17.3-4+b3), busybox (<< 1.30.1-6)
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
Priority: optional
Section: libs
Filename: pool/main/g/glibc/libc6_2.36-9+deb12u4_amd64.deb
Size: 2757936
SHA256: 8DD3B3F47A1D4EAB7C3A8E5A1A35D1E4A0A6B2E3B4B1F5B6A1D0AAB3C2B1A0F0

Package: mawk
Version: 1.3.4.20200120-3.1
Architecture: amd64
Multi-Arch: foreign
Essential: no
Priority: required
Pre-Depends: libc6 (>= 2.34)
Provides: awk
Filename: pool/main/m/mawk/mawk_1.3.4.20200120-3.1_amd64.deb
Size: 1
SHA256: 0000000000000000000000000000000000000000000000000000000000000000

Package: dpkg
Version: 1.21.22
Architecture: amd64
Essential: yes
Source: dpkg
Provides: dpkg-dev (= 1.21.22)
Filename: pool/main/d/dpkg/dpkg_1.21.22_amd64.deb
Size: 2
SHA256: 1111111111111111111111111111111111111111111111111111111111111111
";

    #[test]
    fn parses_sample() {
        let p = parse_packages(SAMPLE).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.len(), 3);
        let libc = &p[0];
        assert_eq!(libc.name, "libc6");
        assert_eq!(libc.version.to_string(), "2.36-9+deb12u4+b1");
        assert_eq!(libc.source, "glibc");
        assert_eq!(libc.source_version.to_string(), "2.36-9+deb12u4");
        assert_eq!(libc.multi_arch, MultiArch::Same);
        assert_eq!(libc.depends.len(), 2);
        assert_eq!(libc.breaks.len(), 2);
        assert_eq!(libc.installed_size, Some(12988));
        assert_eq!(libc.priority.as_deref(), Some("optional"));
        assert_eq!(libc.section.as_deref(), Some("libs"));
        assert_eq!(libc.size, 2757936);
        assert_eq!(&libc.sha256[..4], "8dd3");
        // Recommends, then Suggests, then Replaces: every name, in order.
        assert_eq!(
            libc.mentioned_names().collect::<Vec<_>>(),
            [
                "libidn2-0",
                "glibc-doc",
                "debconf",
                "debconf-2.0",
                "libc-l10n",
                "locales",
                "libnss-nis",
                "libnss-nisplus",
                "libc6-amd64"
            ]
        );
        assert!(!libc.important);
        let mawk = &p[1];
        assert_eq!(mawk.source, "mawk");
        assert_eq!(mawk.source_version, mawk.version);
        assert!(!mawk.essential);
        assert_eq!(mawk.multi_arch, MultiArch::Foreign);
        assert_eq!(mawk.pre_depends[0][0].name, "libc6");
        assert_eq!(mawk.provides[0].name, "awk");
        let dpkg = &p[2];
        assert!(dpkg.essential);
        assert_eq!(dpkg.source, "dpkg");
        assert_eq!(
            dpkg.provides[0]
                .version
                .as_ref()
                .map(|(o, v)| (*o, v.to_string())),
            Some((Op::Eq, "1.21.22".to_string()))
        );
    }

    #[test]
    fn errors_name_the_package_and_field() {
        let no_sha = "Package: a\nVersion: 1\nArchitecture: all\nFilename: x\nSize: 1\n";
        assert_eq!(
            parse_packages(no_sha),
            Err(ControlError::MissingField {
                stanza: "a".into(),
                field: "SHA256"
            })
        );
        let bad = SAMPLE.replace("Multi-Arch: foreign", "Multi-Arch: sometimes");
        let e = parse_packages(&bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("mawk") && e.contains("Multi-Arch"), "{e}");
        let bad = SAMPLE.replace("Essential: no", "Essential: maybe");
        assert!(parse_packages(&bad).is_err());
        let bad = SAMPLE.replace("Version: 1.21.22", "Version: 1.21.22-");
        assert!(parse_packages(&bad).is_err());
        let bad = SAMPLE.replace("Provides: awk", "Provides: awk | nawk");
        assert!(parse_packages(&bad).is_err());
        assert!(parse_packages("Version: 1\n").is_err());
    }
}
