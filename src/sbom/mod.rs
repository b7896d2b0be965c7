//! Software bills of materials: what an image is made of, as SPDX 2.3 and CycloneDX 1.6 JSON.
//!
//! [`Bom::new`] gathers one image (one architecture) into a neutral model — the image itself, every
//! Debian package (with purl, source package, licences from DEP-5 copyright files, the `.deb`'s sha256
//! from the lock), every regular file no package owns (copied or generated) and the dependencies
//! between packages — and [`spdx`] and [`cyclonedx`] render it. Output is a pure function of the image:
//! the timestamp is the config's `created` (the build epoch), identifiers derive from the image digest,
//! keys are sorted and lists come in a fixed order.

pub mod cyclonedx;
pub mod licenses;
pub mod spdx;

use std::collections::{BTreeMap, BTreeSet};

use sha1::Digest as _;

use crate::debian::control::Stanza;
use crate::debian::deps;
use crate::debian::index::BinaryPackage;
use crate::debian::lockfile::LockedPackage;
use crate::image::{FileKind, ImageView, InstalledPackage};

/// The SBOM formats himg writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Spdx,
    CycloneDx,
}

impl Format {
    /// The file suffix for this format (`spdx.json`, `cdx.json`).
    pub fn suffix(self) -> &'static str {
        match self {
            Format::Spdx => "spdx.json",
            Format::CycloneDx => "cdx.json",
        }
    }

    /// Renders a model in this format: pretty, canonical JSON ending in a newline.
    pub fn render(self, bom: &Bom) -> String {
        let value = match self {
            Format::Spdx => spdx::document(bom),
            Format::CycloneDx => cyclonedx::document(bom),
        };
        let mut text = serde_json::to_string_pretty(&value).unwrap_or_default();
        text.push('\n');
        text
    }
}

pub use crate::image::FileContents;

/// What an SBOM is built from.
pub struct Input<'a> {
    pub view: &'a ImageView,
    /// The image name (the layout's ref name, else the `.himg` image name).
    pub name: &'a str,
    /// The lock's packages for this image and architecture (empty when there is no lock).
    pub locked: &'a [LockedPackage],
    /// Codenames of the lock's suites (`trixie`), used for the purl `distro` when the image has no
    /// `/etc/os-release`.
    pub codenames: &'a [String],
    pub contents: &'a dyn FileContents,
}

/// One image, ready to render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bom {
    pub image: ImageComponent,
    /// Sorted by name, then architecture.
    pub packages: Vec<PackageComponent>,
    /// Regular files no package owns, sorted by path.
    pub files: Vec<FileComponent>,
    /// RFC 3339 time of the build (the config's `created`).
    pub created: String,
    /// A UUID derived from the image digest (SPDX namespace, CycloneDX serial number).
    pub uuid: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageComponent {
    pub name: String,
    /// Manifest digest `sha256:<hex>`.
    pub digest: String,
    pub architecture: String,
    /// `pkg:oci/NAME@sha256%3A<hex>?arch=ARCH`.
    pub purl: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageComponent {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub source: String,
    pub source_version: String,
    /// `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-N`.
    pub purl: String,
    /// `pkg:deb/debian/SOURCE@VERSION?arch=source`.
    pub source_purl: String,
    /// SPDX licence expression from the DEP-5 copyright file; `None` = NOASSERTION.
    pub license: Option<String>,
    /// sha256 (hex) of the `.deb`, from the lock.
    pub deb_sha256: Option<String>,
    /// The `.deb`'s file name, from the lock.
    pub deb_filename: Option<String>,
    /// Names of the installed packages this one depends on (sorted).
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileComponent {
    /// Absolute path in the image.
    pub path: String,
    /// Hex digests.
    pub sha256: String,
    pub sha1: Option<String>,
}

/// Percent-encodes a purl component (name, version, qualifier value): everything outside
/// `A-Za-z0-9.-_~` (`+` → `%2B`, `:` → `%3A`).
pub fn purl_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The purl of a Debian binary package.
pub fn deb_purl(name: &str, version: &str, arch: &str, distro: Option<&str>) -> String {
    let mut purl = format!(
        "pkg:deb/debian/{}@{}?arch={}",
        purl_encode(name),
        purl_encode(version),
        purl_encode(arch)
    );
    if let Some(d) = distro {
        purl.push_str(&format!("&distro={}", purl_encode(d)));
    }
    purl
}

/// Debian releases by codename, for images without `/etc/os-release`.
const CODENAMES: &[(&str, &str)] = &[
    ("buster", "10"),
    ("bullseye", "11"),
    ("bookworm", "12"),
    ("trixie", "13"),
    ("forky", "14"),
    ("duke", "15"),
];

/// The purl `distro` qualifier (`debian-13`, as Syft spells it): `/etc/os-release` of the image
/// (`ID` and the major part of `VERSION_ID`), else the lock's codename; `None` when neither says.
pub fn distro(
    view: &ImageView,
    contents: &dyn FileContents,
    codenames: &[String],
) -> Option<String> {
    for path in ["etc/os-release", "usr/lib/os-release"] {
        if let Some(text) = read_text(view, contents, path) {
            let get = |key: &str| {
                text.lines().find_map(|l| {
                    l.strip_prefix(key)
                        .and_then(|r| r.strip_prefix('='))
                        .map(|v| v.trim().trim_matches('"').to_string())
                })
            };
            let id = get("ID").unwrap_or_else(|| "debian".into());
            if let Some(version) = get("VERSION_ID") {
                let major = version.split('.').next().unwrap_or(&version).to_string();
                return Some(format!("{id}-{major}"));
            }
        }
    }
    codenames.iter().find_map(|c| {
        CODENAMES
            .iter()
            .find(|(name, _)| name == c)
            .map(|(_, n)| format!("debian-{n}"))
    })
}

/// Reads a text file of the image, following symlinks within the image's root.
pub(crate) fn read_text(
    view: &ImageView,
    contents: &dyn FileContents,
    path: &str,
) -> Option<String> {
    let key = crate::image::links::resolve(path, true, view)?.join("/");
    let key = match &view.files.get(&key)?.kind {
        FileKind::File => key,
        FileKind::Hardlink { target } => target.clone(),
        _ => return None,
    };
    contents.read(&key).and_then(|b| String::from_utf8(b).ok())
}

/// A name-based UUID (version 5, SHA-1) of `name` in the URL namespace.
pub fn uuid5(name: &str) -> String {
    const URL_NAMESPACE: [u8; 16] = [
        0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8,
    ];
    let mut h = sha1::Sha1::new();
    h.update(URL_NAMESPACE);
    h.update(name.as_bytes());
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// For each installed package (by name, `name:arch` for another architecture than `native`), the
/// installed packages its `Depends`/`Pre-Depends` groups resolve to: per group, the solution the
/// resolver would choose among the installed ones ([`crate::debian::deps`]). A package whose status
/// stanza does not parse has no dependencies and meets none.
pub fn resolve_dependencies(
    packages: &[InstalledPackage],
    native: &str,
) -> BTreeMap<String, Vec<String>> {
    let parsed: Vec<BinaryPackage> = packages
        .iter()
        .filter_map(|p| {
            let mut fields = vec![
                ("Package", p.name.clone()),
                ("Version", p.version.clone()),
                ("Architecture", p.architecture.clone()),
                ("Depends", p.depends.join(", ")),
                ("Provides", p.provides.join(", ")),
            ];
            if let Some(m) = &p.multi_arch {
                fields.push(("Multi-Arch", m.clone()));
            }
            BinaryPackage::from_installed(&Stanza::from_fields(fields)).ok()
        })
        .collect();
    deps::first_solutions(&deps::dependency_edges(&parsed, native))
}

impl Bom {
    /// Gathers the model of one image.
    pub fn new(input: &Input<'_>) -> Bom {
        let view = input.view;
        let arch = view.config.architecture.clone();
        let hex = view
            .digest
            .strip_prefix("sha256:")
            .unwrap_or(&view.digest)
            .to_string();
        let image = ImageComponent {
            name: input.name.to_string(),
            digest: view.digest.clone(),
            architecture: arch.clone(),
            purl: format!(
                "pkg:oci/{}@{}?arch={}",
                purl_encode(&input.name.to_ascii_lowercase()),
                purl_encode(&format!("sha256:{hex}")),
                purl_encode(&arch)
            ),
        };
        let distro = distro(view, input.contents, input.codenames);
        let deps = resolve_dependencies(&view.packages, &arch);
        let packages = view
            .packages
            .iter()
            .map(|p| {
                let locked = input
                    .locked
                    .iter()
                    .find(|l| l.name == p.name && l.version == p.version);
                let copyright = format!("usr/share/doc/{}/copyright", p.name);
                let license = read_text(view, input.contents, &copyright)
                    .and_then(|t| licenses::from_copyright(&t));
                PackageComponent {
                    purl: deb_purl(&p.name, &p.version, &p.architecture, distro.as_deref()),
                    source_purl: format!(
                        "pkg:deb/debian/{}@{}?arch=source",
                        purl_encode(&p.source),
                        purl_encode(&p.source_version)
                    ),
                    name: p.name.clone(),
                    version: p.version.clone(),
                    architecture: p.architecture.clone(),
                    source: p.source.clone(),
                    source_version: p.source_version.clone(),
                    license,
                    deb_sha256: locked.map(|l| l.sha256.clone()),
                    deb_filename: locked.map(|l| {
                        l.filename
                            .rsplit_once('/')
                            .map_or(l.filename.as_str(), |(_, f)| f)
                            .to_string()
                    }),
                    depends_on: deps
                        .get(&deps::qualified_name(&p.name, &p.architecture, &arch))
                        .cloned()
                        .unwrap_or_default(),
                }
            })
            .collect();
        let owned: BTreeSet<&str> = view
            .packages
            .iter()
            .flat_map(|p| p.files.iter().map(String::as_str))
            .collect();
        let files = view
            .files
            .iter()
            .filter(|(path, e)| e.kind == FileKind::File && !owned.contains(path.as_str()))
            .map(|(path, e)| {
                let sha1 = match &e.facts {
                    Some(f) => Some(f.sha1.clone()),
                    None => input
                        .contents
                        .read(path)
                        .map(|b| hex::encode(sha1::Sha1::digest(&b))),
                };
                FileComponent {
                    path: format!("/{path}"),
                    sha256: e
                        .sha256
                        .as_deref()
                        .map(|s| s.strip_prefix("sha256:").unwrap_or(s).to_string())
                        .unwrap_or_default(),
                    sha1,
                }
            })
            .collect();
        Bom {
            image,
            packages,
            files,
            created: view
                .config
                .created
                .clone()
                .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_string()),
            uuid: uuid5(&format!("himg-sbom:{}", view.digest)),
        }
    }

    /// The tool that wrote the SBOM.
    pub fn tool_version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
}

#[cfg(test)]
pub(crate) mod tests;
