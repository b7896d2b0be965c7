use std::collections::BTreeMap;

use super::*;
use crate::image::model::{FileEntry, InstalledPackage, LayerView};
use crate::oci::{ImageConfig, Platform};

#[test]
fn report_groups_packages_by_layer() {
    let mut config = ImageConfig::new(&Platform::linux("arm64"), 0);
    config.config.user = Some("app".into());
    config.config.exposed_ports.insert("80/tcp".into());
    let layer = |i: usize| LayerView {
        digest: format!("sha256:{i:064}"),
        media_type: "application/vnd.oci.image.layer.v1.tar+zstd".into(),
        size: 2048,
        diff_id: format!("sha256:d{i}"),
        content_size: 10,
        created_by: Some(format!("himg: layer l{i}")),
        paths: vec!["a".into()],
        deletions: vec![],
    };
    let pkg = |name: &str, layer: usize| InstalledPackage {
        name: name.into(),
        version: "1.0".into(),
        architecture: "arm64".into(),
        source: name.into(),
        source_version: "1.0".into(),
        depends: vec![],
        provides: vec![],
        multi_arch: None,
        installed_size_kib: Some(1),
        files: vec![],
        layer: Some(layer),
    };
    let mut files = BTreeMap::new();
    files.insert(
        "a".to_owned(),
        FileEntry {
            kind: FileKind::File,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 10,
            sha256: Some("sha256:x".into()),
            facts: None,
            layer: 1,
        },
    );
    let view = ImageView {
        name: Some("app".into()),
        digest: "sha256:m".into(),
        annotations: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
        config,
        layers: vec![layer(0), layer(1)],
        files,
        packages: vec![pkg("zlib", 1), pkg("base", 0), pkg("libc", 1)],
    };
    let r = inspect(&view);
    assert_eq!(r.architecture, "arm64");
    assert_eq!(r.layers[0].packages, ["base=1.0"]);
    assert_eq!(r.layers[1].packages, ["libc=1.0", "zlib=1.0"]);
    assert_eq!(
        (
            r.totals.layers,
            r.totals.size,
            r.totals.files,
            r.totals.content_size,
            r.totals.packages
        ),
        (2, 4096, 1, 10, 3)
    );
    let text = r.render();
    assert!(text.contains("Platform:     linux/arm64"), "{text}");
    assert!(text.contains("packages: libc=1.0 zlib=1.0"), "{text}");
    assert!(text.contains("Ports:        80/tcp"), "{text}");
    assert_eq!(crate::printer::size(1536), "1.5 KiB");
    assert_eq!(crate::printer::size(12), "12 B");
}
