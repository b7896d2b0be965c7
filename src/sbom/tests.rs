//! Hand-made images for the SBOM and policy tests, and the SBOM model's tests.

use std::collections::BTreeMap;

use sha2::Digest as _;

use super::*;
use crate::image::{FileEntry, FileKind, ImageView, InstalledPackage, LayerView};
use crate::oci::{ImageConfig, Platform};

/// A small image under construction.
pub(crate) struct TestImage {
    pub view: ImageView,
    pub contents: BTreeMap<String, Vec<u8>>,
}

impl TestImage {
    pub(crate) fn new(name: &str) -> TestImage {
        let mut config = ImageConfig::new(&Platform::linux("amd64"), 1_700_000_000);
        config.config.user = Some("1000".into());
        TestImage {
            view: ImageView {
                name: Some(name.into()),
                digest: format!(
                    "sha256:{}",
                    hex::encode(sha2::Sha256::digest(name.as_bytes()))
                ),
                annotations: BTreeMap::new(),
                config,
                layers: vec![LayerView {
                    digest: "sha256:00".into(),
                    media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
                    size: 10,
                    diff_id: "sha256:01".into(),
                    content_size: 0,
                    created_by: Some("himg: layer contents".into()),
                    paths: Vec::new(),
                    deletions: Vec::new(),
                }],
                files: BTreeMap::new(),
                packages: Vec::new(),
            },
            contents: BTreeMap::new(),
        }
    }

    /// Adds a directory (and its parents).
    pub(crate) fn dir(&mut self, path: &str, mode: u32) -> &mut Self {
        self.parents(path);
        self.view.files.insert(
            path.into(),
            FileEntry {
                kind: FileKind::Dir,
                mode,
                uid: 0,
                gid: 0,
                size: 0,
                sha256: None,
                facts: None,
                layer: 0,
            },
        );
        self
    }

    fn parents(&mut self, path: &str) {
        let mut acc = String::new();
        let parts: Vec<&str> = path.split('/').collect();
        for p in &parts[..parts.len().saturating_sub(1)] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(p);
            self.view
                .files
                .entry(acc.clone())
                .or_insert_with(|| FileEntry::implicit_dir(0));
        }
    }

    /// Adds a regular file.
    pub(crate) fn file(&mut self, path: &str, content: &[u8], mode: u32) -> &mut Self {
        self.parents(path);
        self.view.files.insert(
            path.into(),
            FileEntry {
                kind: FileKind::File,
                mode,
                uid: 0,
                gid: 0,
                size: content.len() as u64,
                sha256: Some(format!(
                    "sha256:{}",
                    hex::encode(sha2::Sha256::digest(content))
                )),
                facts: None,
                layer: 0,
            },
        );
        self.contents.insert(path.into(), content.to_vec());
        self
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.parents(path);
        self.view.files.insert(
            path.into(),
            FileEntry {
                kind: FileKind::Symlink {
                    target: target.into(),
                },
                mode: 0o777,
                uid: 0,
                gid: 0,
                size: 0,
                sha256: None,
                facts: None,
                layer: 0,
            },
        );
        self
    }

    /// Adds an installed package owning `files` (which must be added separately).
    pub(crate) fn package(
        &mut self,
        name: &str,
        version: &str,
        depends: &[&str],
        provides: &[&str],
        files: &[&str],
    ) -> &mut Self {
        self.view.packages.push(InstalledPackage {
            name: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            source: name.into(),
            source_version: version.into(),
            depends: depends.iter().map(|s| s.to_string()).collect(),
            provides: provides.iter().map(|s| s.to_string()).collect(),
            multi_arch: None,
            installed_size_kib: Some(1),
            files: files.iter().map(|s| s.to_string()).collect(),
            layer: Some(0),
        });
        self.view.packages.sort();
        self
    }
}

fn sample() -> TestImage {
    let mut t = TestImage::new("demo");
    t.file(
        "usr/share/doc/libfoo1/copyright",
        b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: Expat\n",
        0o644,
    )
    .file("usr/lib/libfoo.so.1", b"foo", 0o644)
    .file("usr/bin/app", b"app", 0o755)
    .file("usr/bin/dash", b"dash", 0o755)
    .file("etc/os-release", b"ID=debian\nVERSION_ID=\"13\"\n", 0o644)
    .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644)
    .package(
        "libfoo1",
        "1.2+dfsg-1",
        &[],
        &[],
        &["usr/lib/libfoo.so.1", "usr/share/doc/libfoo1/copyright"],
    )
    .package("dash", "0.5", &[], &["sh"], &["usr/bin/dash"])
    .package(
        "app",
        "1:2.0-1",
        &["libfoo1 (>= 1.0)", "missing | sh", "app"],
        &[],
        &["usr/bin/app"],
    );
    t
}

fn bom(t: &TestImage) -> Bom {
    let locked = vec![LockedPackage {
        name: "libfoo1".into(),
        version: "1.2+dfsg-1".into(),
        architecture: "amd64".into(),
        source: "libfoo".into(),
        source_version: "1.2+dfsg-1".into(),
        repository: "debian".into(),
        suite: "trixie".into(),
        filename: "pool/main/libf/libfoo/libfoo1_1.2+dfsg-1_amd64.deb".into(),
        size: 3,
        sha256: "ab".repeat(32),
    }];
    Bom::new(&Input {
        view: &t.view,
        name: "demo",
        locked: &locked,
        codenames: &[],
        contents: &t.contents,
    })
}

#[test]
fn packages_purls_licences_dependencies() {
    let b = bom(&sample());
    let names: Vec<&str> = b.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["app", "dash", "libfoo1"]);
    let app = &b.packages[0];
    assert_eq!(
        app.purl,
        "pkg:deb/debian/app@1%3A2.0-1?arch=amd64&distro=debian-13"
    );
    assert_eq!(app.depends_on, ["dash", "libfoo1"]);
    let foo = &b.packages[2];
    assert_eq!(
        foo.purl,
        "pkg:deb/debian/libfoo1@1.2%2Bdfsg-1?arch=amd64&distro=debian-13"
    );
    assert_eq!(foo.license.as_deref(), Some("MIT"));
    assert_eq!(foo.deb_sha256.as_deref(), Some("ab".repeat(32).as_str()));
    assert_eq!(
        foo.deb_filename.as_deref(),
        Some("libfoo1_1.2+dfsg-1_amd64.deb")
    );
    assert_eq!(b.packages[1].license, None);
    let files: Vec<&str> = b.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(files, ["/etc/os-release", "/etc/passwd"]);
    assert!(b.image.purl.starts_with("pkg:oci/demo@sha256%3A"));
    assert!(b.image.purl.ends_with("?arch=amd64"));
    assert_eq!(b.created, "2023-11-14T22:13:20Z");
}

#[test]
fn documents_are_deterministic_and_consistent() {
    let t = sample();
    for format in [Format::Spdx, Format::CycloneDx] {
        let a = format.render(&bom(&t));
        assert_eq!(a, format.render(&bom(&t)));
        assert!(a.ends_with('\n'));
    }
    let cdx: serde_json::Value = serde_json::from_str(&Format::CycloneDx.render(&bom(&t))).unwrap();
    let refs: BTreeSet<&str> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap())
        .chain([cdx["metadata"]["component"]["bom-ref"].as_str().unwrap()])
        .collect();
    for d in cdx["dependencies"].as_array().unwrap() {
        assert!(refs.contains(d["ref"].as_str().unwrap()));
        for r in d["dependsOn"].as_array().unwrap() {
            assert!(refs.contains(r.as_str().unwrap()), "{r}");
        }
    }
    let spdx: serde_json::Value = serde_json::from_str(&Format::Spdx.render(&bom(&t))).unwrap();
    assert_eq!(spdx["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    let rels = spdx["relationships"].as_array().unwrap();
    assert!(rels.iter().any(|r| r["relationshipType"] == "DEPENDS_ON"
        && r["spdxElementId"] == "SPDXRef-Package-deb-app-amd64"
        && r["relatedSpdxElement"] == "SPDXRef-Package-deb-dash-amd64"));
}

#[test]
fn distro_falls_back_to_the_lock_codename() {
    let mut t = TestImage::new("x");
    t.file("etc/hostname", b"x", 0o644);
    let none: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    assert_eq!(
        distro(&t.view, &none, &["trixie".into()]),
        Some("debian-13".into())
    );
    assert_eq!(distro(&t.view, &none, &["sid".into()]), None);
    assert_eq!(uuid5("a").len(), 36);
    assert_eq!(&uuid5("a")[14..15], "5");
}

/// Resolved `Depends` follow the resolver's rules: a version that does not fit meets nothing, so
/// the next alternative is the one (the SBOM used to take the first alternative installed by name).
#[test]
fn resolved_dependencies_respect_versions_like_the_resolver() {
    let mut t = TestImage::new("demo");
    t.package("libold", "1.0", &[], &[], &[])
        .package("libnew", "3.0", &[], &[], &[])
        .package("app", "1.0", &["libold (>= 2.0) | libnew"], &[], &[]);
    let deps = resolve_dependencies(&t.view.packages, "amd64");
    assert_eq!(deps["app"], ["libnew"]);
}
