//! Live: packages on a registry base (`from = "127.0.0.1:PORT/REPO@sha256:…"` plus `packages`)
//! install only what the base lacks, as apt does with the base's dpkg status: the lock lists the
//! base's packages apart (`base_installed`) and pins only the new ones, the image is the base's
//! layers plus one layer per new package plus the system layer, its dpkg status lists the base's
//! packages and the new ones, and the files are those of the same image built `from` the local
//! base. A requested version the base does not have is refused, naming the base.
//! These tests need the host's Debian mirror, Debian's `docker-registry` and bubblewrap, and fail
//! without them.

mod common;

use std::collections::BTreeMap;

use common::registry::Registry;
use common::{Project, assert_success, image, layer_digests, require_tool};
use himg::image::{FileKind, ImageSource, ImageView};

fn view(layout: &std::path::Path) -> (ImageSource, ImageView) {
    let source = ImageSource::open(layout).expect("open layout");
    let view = source
        .images()
        .expect("images")
        .into_iter()
        .next()
        .expect("one image");
    (source, view)
}

/// The packages of the image's dpkg status (`Package` fields).
fn status_packages(source: &ImageSource, view: &ImageView) -> Vec<String> {
    let status = source
        .read_file(view, "var/lib/dpkg/status")
        .expect("read")
        .expect("a dpkg status");
    String::from_utf8_lossy(&status)
        .lines()
        .filter_map(|l| l.strip_prefix("Package: "))
        .map(str::to_string)
        .collect()
}

/// Path → (kind, mode, owner, content digest) of every entry but the configure record.
fn files(view: &ImageView) -> BTreeMap<String, String> {
    view.files
        .iter()
        .filter(|(p, _)| p.as_str() != "var/lib/himg/configure.json")
        .map(|(p, e)| {
            let kind = match &e.kind {
                FileKind::Hardlink { .. } => "file".to_string(),
                other => format!("{other:?}"),
            };
            (
                p.clone(),
                format!(
                    "{kind} {:o} {}:{} {}",
                    e.mode,
                    e.uid,
                    e.gid,
                    e.sha256.clone().unwrap_or_default()
                ),
            )
        })
        .collect()
}

const PACKAGES: &str =
    r#"packages = ["python3-minimal", "zlib1g", "!perl-base", "!debconf", "!openssl"]"#;

#[test]
fn packages_on_a_registry_base_install_only_what_it_lacks() {
    require_tool("bwrap");
    let reg = Registry::start();
    let project = Project::new();
    let o = project.himg(&["lock", "examples/debian-base.himg"]);
    assert_success(&o, "himg lock (needs the host's Debian mirror)");
    let base_report = project.build("examples/debian-base.himg", "base-out");
    let base_img = image(&base_report, "debian-base");
    let base_digest = base_img["digest"].as_str().expect("digest").to_string();
    let base_layers = layer_digests(base_img);
    let base_ref = format!("{}/team/debian-base", reg.host());
    let o = project.himg(&["push", "base-out", &format!("{base_ref}:1"), "--insecure"]);
    assert_success(&o, "push base");
    let pinned = format!("{base_ref}@{base_digest}");

    std::fs::write(
        project.path("examples/on-registry.himg"),
        format!(
            "let d = import \"debian.himg\"\n\nimage \"py\" {{\n  from = \"{pinned}\"\n  repositories = d.repositories\n  {PACKAGES}\n}}\n"
        ),
    )
    .expect("write");
    let o = project.himg(&["lock", "examples/on-registry.himg"]);
    assert_success(&o, "himg lock on a registry base");
    let lock_text =
        std::fs::read_to_string(project.path("examples/on-registry.himg.lock")).expect("lock");
    let lock: serde_json::Value = serde_json::from_str(&lock_text).expect("lock json");
    let names = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .expect("packages")
            .iter()
            .map(|p| p["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let arch = lock["images"]["py"]["architectures"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .expect("an architecture");
    let new = names(&lock["images"]["py"]["architectures"][&arch]);
    let in_base = names(&lock["images"]["py"]["base_installed"][&arch]);
    for p in ["libc6", "base-files", "zlib1g", "libssl3t64"] {
        assert!(in_base.contains(&p.to_string()), "{p} in base: {in_base:?}");
        assert!(!new.contains(&p.to_string()), "{p} locked again: {new:?}");
    }
    assert!(new.contains(&"python3-minimal".to_string()), "{new:?}");
    // zlib1g, requested and in the base, is kept (checked above: not locked again).
    // Locking again gives the same lock.
    let o = project.himg(&["lock", "examples/on-registry.himg"]);
    assert_success(&o, "himg lock again");
    assert_eq!(
        std::fs::read_to_string(project.path("examples/on-registry.himg.lock")).expect("lock"),
        lock_text
    );

    let report = project.build("examples/on-registry.himg", "py-out");
    let img = image(&report, "py");
    let layers = layer_digests(img);
    assert_eq!(&layers[..base_layers.len()], base_layers.as_slice());
    assert_eq!(
        layers.len(),
        base_layers.len() + new.len() + 1,
        "base layers + one per new package + the system layer: {new:?}"
    );
    // Only the new packages' maintainer scripts ran (over the base's files), none failed.
    let configure = &report["configure"][0];
    assert_eq!(configure["failed"], serde_json::Value::Null, "{configure}");
    let ran: Vec<String> = configure["ran"]
        .as_array()
        .map(|r| {
            r.iter()
                .filter_map(|p| p["package"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert!(!ran.is_empty(), "{report}");
    assert!(ran.iter().all(|p| new.contains(p)), "{ran:?}");
    eprintln!(
        "layers {} base {} new {}: ran {ran:?}",
        layers.len(),
        base_layers.len(),
        new.len()
    );
    let (source, py) = view(&project.path("py-out"));
    for layer in &py.layers[base_layers.len()..] {
        let by = layer.created_by.clone().unwrap_or_default();
        for p in &in_base {
            assert_ne!(
                by,
                format!("himg: package {p}"),
                "base package installed again"
            );
        }
    }
    let status = status_packages(&source, &py);
    for p in in_base.iter().chain(&new) {
        assert!(status.contains(p), "{p} in the dpkg status: {status:?}");
    }
    assert_eq!(status.len(), in_base.len() + new.len(), "{status:?}");
    let mut sorted = status.clone();
    sorted.sort();
    assert_eq!(sorted, status, "the status is sorted");
    let passwd = String::from_utf8(
        source
            .read_file(&py, "etc/passwd")
            .expect("read")
            .expect("passwd"),
    )
    .expect("utf-8");
    assert!(passwd.contains("\nnonroot:x:65532:65532:"), "{passwd}");
    // What a scanner reads: every package, the base's and the new ones.
    let scanned: Vec<&str> = py.packages.iter().map(|p| p.name.as_str()).collect();
    for p in in_base.iter().chain(&new) {
        assert!(scanned.contains(&p.as_str()), "{p} scanned: {scanned:?}");
    }

    // The same image `from` the local base: the same files; its layers are the base's plus the
    // same new ones.
    std::fs::write(
        project.path("examples/on-local.himg"),
        format!(
            "let d = import \"debian.himg\"\nlet b = import \"debian-base.himg\"\n\nimage \"py\" {{\n  from = b.images.\"debian-base\"\n  repositories = d.repositories\n  {PACKAGES}\n}}\n"
        ),
    )
    .expect("write");
    let o = project.himg(&["lock", "examples/on-local.himg"]);
    assert_success(&o, "himg lock on the local base");
    let local = project.build("examples/on-local.himg", "local-out");
    let local_layers = layer_digests(image(&local, "py"));
    assert_eq!(
        &local_layers[..base_layers.len()],
        base_layers.as_slice(),
        "{local}"
    );
    assert_eq!(local_layers.len(), layers.len(), "{local}");
    let (_, local_view) = view(&project.path("local-out"));
    let (a, b) = (files(&py), files(&local_view));
    let differ: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| format!("{k}: {:?} / {:?}", a.get(k), b.get(k)))
        .collect();
    assert!(differ.is_empty(), "files differ:\n{}", differ.join("\n"));

    // A version the base does not have is refused, naming the package, both versions and the base.
    let libc = lock["images"]["py"]["base_installed"][&arch]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "libc6"))
        .and_then(|p| p["version"].as_str())
        .expect("libc6 in base")
        .to_string();
    std::fs::write(
        project.path("examples/bad.himg"),
        format!(
            "let d = import \"debian.himg\"\n\nimage \"bad\" {{\n  from = \"{pinned}\"\n  repositories = d.repositories\n  packages = [\"libc6=0.1-1\"]\n}}\n"
        ),
    )
    .expect("write");
    let o = project.himg(&["lock", "examples/bad.himg"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("libc6")
            && err.contains("0.1-1")
            && err.contains(&libc)
            && err.contains(&pinned)
            && err.contains("does not replace"),
        "{err}"
    );
}
