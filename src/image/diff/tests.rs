use std::collections::BTreeMap;

use super::*;
use crate::image::model::{InstalledPackage, LayerView};
use crate::oci::{ImageConfig, Platform};

fn file(layer: usize, sha: &str, size: u64) -> FileEntry {
    FileEntry {
        kind: FileKind::File,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size,
        sha256: Some(sha.to_owned()),
        facts: None,
        layer,
    }
}

fn pkg(name: &str, version: &str) -> InstalledPackage {
    InstalledPackage {
        name: name.to_owned(),
        version: version.to_owned(),
        architecture: "amd64".to_owned(),
        source: name.to_owned(),
        source_version: version.to_owned(),
        depends: vec![],
        provides: vec![],
        multi_arch: None,
        installed_size_kib: None,
        files: vec![],
        layer: Some(0),
    }
}

fn view(digest: &str, files: &[(&str, FileEntry)], packages: Vec<InstalledPackage>) -> ImageView {
    let layer = |i: usize| LayerView {
        digest: format!("sha256:l{i}"),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        size: 100 * (i as u64 + 1),
        diff_id: format!("sha256:d{i}"),
        content_size: 0,
        created_by: Some(format!("himg: layer l{i}")),
        paths: vec![],
        deletions: vec![],
    };
    ImageView {
        name: Some("x".into()),
        digest: digest.into(),
        annotations: BTreeMap::new(),
        config: ImageConfig::new(&Platform::linux("amd64"), 0),
        layers: vec![layer(0), layer(1)],
        files: files
            .iter()
            .map(|(p, e)| ((*p).to_owned(), e.clone()))
            .collect(),
        packages,
    }
}

#[test]
fn lists_exactly_what_differs() {
    let a = view(
        "sha256:a",
        &[
            ("etc/keep", file(0, "k", 1)),
            ("etc/gone", file(0, "g", 2)),
            ("srv/page", file(1, "old", 3)),
        ],
        vec![pkg("libc6", "1"), pkg("old", "1"), pkg("same", "2")],
    );
    let mut b = view(
        "sha256:b",
        &[
            ("etc/keep", file(0, "k", 1)),
            ("etc/new", file(1, "n", 10)),
            ("srv/page", file(1, "new", 5)),
        ],
        vec![pkg("libc6", "2"), pkg("same", "2"), pkg("zz", "1")],
    );
    b.config.config.user = Some("app".into());
    b.config.config.labels.insert("team".into(), "x".into());
    let d = diff(&a, &b);
    assert!(!d.identical);
    assert_eq!(
        d.packages.changed,
        [PackageChange {
            name: "libc6".into(),
            architecture: "amd64".into(),
            old: "1".into(),
            new: "2".into()
        }]
    );
    assert_eq!(d.packages.added.len(), 1);
    assert_eq!(d.packages.removed[0].name, "old");
    assert_eq!(d.files.changed.len(), 1);
    assert_eq!(d.files.changed[0].path, "srv/page");
    assert_eq!(d.files.changed[0].what, ["content"]);
    assert_eq!(d.files.added[0].path, "etc/new");
    assert_eq!(d.files.removed[0].path, "etc/gone");
    assert_eq!(d.layers.len(), 2);
    assert_eq!(
        (d.layers[0].side, d.layers[0].index, d.layers[0].removed),
        ("a", 0, 1)
    );
    assert_eq!(
        (d.layers[1].side, d.layers[1].added, d.layers[1].changed),
        ("b", 1, 1)
    );
    let fields: Vec<&str> = d.config.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["user", "label.team"]);
    assert_eq!(
        (d.size.content_a, d.size.content_b, d.size.content_delta),
        (6, 16, 10)
    );
    let text = d.render();
    assert!(text.contains("~ libc6:amd64 1 -> 2"), "{text}");
    assert!(text.contains("~ srv/page (content)"), "{text}");
    assert!(text.contains("- etc/gone"), "{text}");
    // Deterministic.
    assert_eq!(diff(&a, &b), d);
}

#[test]
fn identical_images() {
    let a = view("sha256:a", &[("f", file(0, "s", 1))], vec![]);
    let d = diff(&a, &a.clone());
    assert!(d.identical);
    assert!(d.files.changed.is_empty() && d.config.is_empty());
    assert!(d.render().contains("identical"));
}
