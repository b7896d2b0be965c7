//! `himg inspect` and `himg diff` on real builds: two builds of examples/prebuilt.himg that differ in one
//! copied file, and (issue 4, acceptance 5 in hermetic form) one image built at two versions of a
//! package from the signed fixture repository served on 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod common;
#[allow(dead_code)]
mod support;

use std::process::Output;

use common::registry::Registry;
use common::{Project, assert_success};
use himg::image::ImageSource;
use serde_json::{Value, json};
use support::{Deb, DebBuilder, TestKey, serve};

fn json_of(o: &Output, what: &str) -> Value {
    assert_success(o, what);
    serde_json::from_slice(&o.stdout).unwrap()
}

fn paths(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn diff_of_two_hello_builds_lists_the_changed_file() {
    let project = Project::new();
    project.build("examples/prebuilt.himg", "out1");
    std::fs::write(
        project.path("examples/hello/site/index.html"),
        "<h1>changed</h1>\n",
    )
    .unwrap();
    project.build("examples/prebuilt.himg", "out2");

    let d = json_of(
        &project.himg(&["diff", "out1", "out2", "--json"]),
        "himg diff",
    );
    assert_eq!(d["identical"], false);
    assert_eq!(paths(&d["files"]["changed"]), ["srv/www/index.html"]);
    assert_eq!(d["files"]["changed"][0]["what"], json!(["content"]));
    assert_eq!(paths(&d["files"]["added"]), Vec::<String>::new());
    assert_eq!(paths(&d["files"]["removed"]), Vec::<String>::new());
    assert_eq!(
        d["packages"],
        json!({"added": [], "removed": [], "changed": []})
    );
    assert_eq!(d["config"], json!([]));
    let layers = d["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert!(
        layers[0]["created_by"]
            .as_str()
            .unwrap()
            .starts_with("himg: layer site"),
        "{d}"
    );
    assert_eq!(d["size"]["content_delta"], json!(17 - 15));

    // The human table says the same; the output is deterministic.
    let o = project.himg(&["diff", "out1", "out2"]);
    assert_success(&o, "himg diff");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("~ srv/www/index.html (content)"), "{text}");
    assert!(
        text.contains("Files: 1 changed, 0 added, 0 removed"),
        "{text}"
    );
    assert_eq!(project.himg(&["diff", "out1", "out2"]).stdout, o.stdout);

    // A .himg target is built first; an archive reads like its layout.
    let d = json_of(
        &project.himg(&["diff", "examples/prebuilt.himg", "out2", "--json"]),
        "diff of a .himg and a layout",
    );
    assert_eq!(d["identical"], true, "{d}");
    assert_success(
        &project.himg(&[
            "build",
            "examples/prebuilt.himg",
            "--format",
            "docker-archive",
            "--out",
            "hello.tar",
        ]),
        "build docker-archive",
    );
    let d = json_of(
        &project.himg(&["diff", "out2", "hello.tar", "--json"]),
        "diff of layout and docker-archive",
    );
    assert_eq!(d["identical"], true, "{d}");

    // inspect: JSON and the table.
    let r = json_of(
        &project.himg(&["inspect", "out1", "--json"]),
        "himg inspect --json",
    );
    assert_eq!(r["name"], "hello");
    assert_eq!(r["architecture"], "amd64");
    assert_eq!(r["config"]["entrypoint"], json!(["/usr/local/bin/hello"]));
    assert_eq!(r["config"]["labels"]["org.example.team"], "platform");
    assert_eq!(
        r["annotations"]["org.opencontainers.image.version"],
        "1.0.0"
    );
    assert_eq!(r["totals"]["layers"], r["layers"].as_array().unwrap().len());
    let o = project.himg(&["inspect", "examples/prebuilt.himg"]);
    assert_success(&o, "himg inspect FILE");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("Image:        hello"), "{text}");
    assert!(text.contains("himg: layer app"), "{text}");
    // A target with no such image is a usage error with the choices.
    let o = project.himg(&["inspect", "out1", "--image", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("hello (amd64)"));
}

const SUITE: &str = "stable";

fn libgreet(version: &str) -> Deb {
    DebBuilder::new("libgreet", version, "amd64")
        .multi_arch("same")
        .file(
            "./usr/lib/x86_64-linux-gnu/libgreet.so.1",
            format!("libgreet {version}\n").as_bytes(),
            0o644,
        )
        .build()
        .unwrap()
}

fn dash() -> Deb {
    DebBuilder::new("dash-fixture", "1.0", "amd64")
        .file("./bin/dash-fixture", b"shell\n", 0o755)
        .build()
        .unwrap()
}

fn publish(dir: &std::path::Path, key: &TestKey, debs: &[Deb]) {
    support::publish(dir, key, SUITE, debs).unwrap();
}

#[test]
fn diff_between_two_lock_versions_lists_exactly_the_changed_package() {
    let project = Project::new();
    let key = TestKey::generate("fixture archive");
    publish(&project.path("repo"), &key, &[libgreet("1.0-1"), dash()]);
    let server = serve(&project.path("repo")).unwrap();
    std::fs::write(project.path("fixture.gpg"), key.public_keyring()).unwrap();
    std::fs::write(
        project.path("fx.himg"),
        format!(
            r#"image "fx" {{
  repository "fixture" {{
    url = "{}"
    suites = ["{SUITE}"]
    keyring = "fixture.gpg"
  }}
  packages = ["libgreet", "dash-fixture"]
}}
"#,
            server.base_url
        ),
    )
    .unwrap();
    project.build("fx.himg", "out1");

    // The reader sees the dpkg database: versions, files through merged /usr, the layer.
    let source = ImageSource::open(&project.path("out1")).unwrap();
    let view = source.images().unwrap().remove(0);
    let names: Vec<(&str, &str)> = view
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    assert_eq!(names, [("dash-fixture", "1.0"), ("libgreet", "1.0-1")]);
    let dash_pkg = &view.packages[0];
    assert!(
        dash_pkg.files.contains(&"usr/bin/dash-fixture".to_owned()),
        "{:?}",
        dash_pkg.files
    );
    let layer = dash_pkg.layer.unwrap();
    assert_eq!(view.files["usr/bin/dash-fixture"].layer, layer);

    publish(&project.path("repo"), &key, &[libgreet("1.1-1"), dash()]);
    assert_success(&project.himg(&["update", "fx.himg"]), "himg update");
    project.build("fx.himg", "out2");

    let d = json_of(
        &project.himg(&["diff", "out1", "out2", "--json"]),
        "himg diff",
    );
    assert_eq!(
        d["packages"],
        json!({
            "added": [],
            "removed": [],
            "changed": [{"name": "libgreet", "architecture": "amd64", "old": "1.0-1", "new": "1.1-1"}],
        }),
        "{d}"
    );
    let changed = paths(&d["files"]["changed"]);
    assert!(
        changed.contains(&"usr/lib/x86_64-linux-gnu/libgreet.so.1".to_owned()),
        "{changed:?}"
    );
    assert!(
        !changed.iter().any(|p| p.contains("dash-fixture")),
        "{changed:?}"
    );
    let o = project.himg(&["inspect", "out2"]);
    assert_success(&o, "himg inspect");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("libgreet=1.1-1"), "{text}");
}

#[test]
fn registry_references_are_pulled_and_read() {
    let project = Project::new();
    project.build("examples/prebuilt.himg", "out");
    let reg = Registry::start();
    let reference = format!("127.0.0.1:{}/hello:1", reg.port);
    assert_success(
        &project.himg(&["push", "out", &reference, "--insecure"]),
        "himg push",
    );
    let r = json_of(
        &project.himg(&["inspect", &reference, "--insecure", "--json"]),
        "himg inspect REF",
    );
    let local = json_of(&project.himg(&["inspect", "out", "--json"]), "inspect out");
    assert_eq!(r["digest"], local["digest"]);
    assert_eq!(r["layers"], local["layers"]);
    let d = json_of(
        &project.himg(&["diff", "out", &reference, "--insecure", "--json"]),
        "himg diff out REF",
    );
    assert_eq!(d["identical"], true, "{d}");

    // SBOM, audit and scan take registry references too (pulled and verified first).
    let sbom = json_of(
        &project.himg(&["sbom", &reference, "--format", "cyclonedx"]),
        "himg sbom REF",
    );
    let hex = local["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let purl = sbom["metadata"]["component"]["purl"].as_str().unwrap();
    assert!(purl.contains(hex), "{purl}");
    let files = |v: &serde_json::Value| v["components"].as_array().map(Vec::len);
    let local_sbom = json_of(
        &project.himg(&["sbom", "out", "--format", "cyclonedx"]),
        "himg sbom out",
    );
    assert_eq!(files(&sbom), files(&local_sbom));
    let audit = project.himg(&["audit", &reference, "--policy", "strict", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&audit.stdout).unwrap();
    assert_eq!(report["images"][0]["policy"], "strict", "{report}");
    std::fs::write(
        project.path("tracker.json"),
        r#"{"busybox": {"CVE-2026-1": {"releases": {"trixie": {"status": "open", "urgency": "high"}}}}}"#,
    )
    .unwrap();
    assert_success(
        &project.himg(&["vulndb", "import", "tracker.json"]),
        "vulndb import",
    );
    let scan = json_of(
        &project.himg(&["scan", &reference, "--release", "trixie", "--json"]),
        "himg scan REF",
    );
    assert_eq!(scan["images"][0]["digest"], local["digest"], "{scan}");
}

/// `himg push --sbom` attaches both SBOMs as artifacts referring to the pushed manifest, under the
/// referrers tag schema, with the same bytes `himg sbom` writes; pushing again changes nothing.
#[test]
fn push_attaches_sboms_as_referring_artifacts() {
    use himg::registry::artifact;
    let project = Project::new();
    let reg = Registry::start();
    let reference = format!("127.0.0.1:{}/team/hello:1", reg.port);
    let push = || {
        json_of(
            &project.himg(&[
                "push",
                "examples/prebuilt.himg",
                &reference,
                "--insecure",
                "--sbom",
                "--json",
            ]),
            "himg push --sbom",
        )
    };
    let first = push();
    let digest = first["digest"].as_str().unwrap().to_owned();
    let hex = digest.trim_start_matches("sha256:");
    let sboms = first["sboms"].as_array().unwrap();
    assert_eq!(sboms.len(), 2, "{first}");
    assert_eq!(sboms[0]["tag"], format!("sha256-{hex}.spdx"));
    assert_eq!(sboms[1]["tag"], format!("sha256-{hex}.cdx"));

    // What a registry client (skopeo) reads under a tag of the image's repository.
    let raw_tag = |tag: &str| {
        let raw = std::process::Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://127.0.0.1:{}/team/hello:{tag}", reg.port))
            .output()
            .expect("skopeo");
        assert!(
            raw.status.success(),
            "{}",
            String::from_utf8_lossy(&raw.stderr)
        );
        raw.stdout
    };
    // Under the SBOM's tag: an artifact manifest whose subject is the image.
    let manifest: Value = serde_json::from_slice(&raw_tag(&format!("sha256-{hex}.spdx"))).unwrap();
    assert_eq!(manifest["artifactType"], "application/spdx+json");
    assert_eq!(manifest["subject"]["digest"], digest.as_str());

    // The payloads are `himg sbom`'s documents, byte for byte.
    let client = himg::registry::Client::new(himg::registry::ClientOptions {
        insecure: true,
        ..Default::default()
    });
    let repo: himg::registry::Reference = reference.parse().unwrap();
    for (format, artifact_type, suffix) in [
        ("spdx", "application/spdx+json", "spdx"),
        ("cyclonedx", "application/vnd.cyclonedx+json", "cdx"),
    ] {
        let tag = artifact::tag(&digest, suffix).unwrap();
        let payload = artifact::fetch(&client, &repo, &tag, artifact_type, &digest, 1 << 24)
            .unwrap()
            .expect("an attached SBOM");
        let local = project.himg(&["sbom", "examples/prebuilt.himg", "--format", format]);
        assert_success(&local, "himg sbom");
        assert!(
            payload == local.stdout,
            "the attached {suffix} differs from `himg sbom`"
        );
    }
    // Every other client finds them as referrers of the image: docker-registry has no referrers
    // API, so the fallback tag `sha256-<hex>` holds an image index listing both.
    let index_of = || raw_tag(&format!("sha256-{hex}"));
    let index_bytes = index_of();
    let index: Value = serde_json::from_slice(&index_bytes).unwrap();
    assert_eq!(
        index["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let listed: Vec<(&str, &str)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["artifactType"].as_str().unwrap(),
                m["digest"].as_str().unwrap(),
            )
        })
        .collect();
    let mut expected: Vec<(&str, &str)> = sboms
        .iter()
        .map(|a| {
            (
                a["artifact_type"].as_str().unwrap(),
                a["digest"].as_str().unwrap(),
            )
        })
        .collect();
    expected.sort();
    assert_eq!(listed, expected);
    // `himg inspect REF` lists them too.
    let inspected = json_of(
        &project.himg(&["inspect", &reference, "--insecure", "--json"]),
        "himg inspect REF",
    );
    let referrers: Vec<&str> = inspected["referrers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        referrers,
        expected.iter().map(|e| e.1).collect::<Vec<_>>(),
        "{inspected}"
    );
    let human = project.himg(&["inspect", &reference, "--insecure"]);
    assert!(
        String::from_utf8_lossy(&human.stdout).contains("Referrers (2):"),
        "{}",
        String::from_utf8_lossy(&human.stdout)
    );

    // Reproducible: a second push attaches the very same artifacts and leaves the index alone.
    assert_eq!(push()["sboms"], first["sboms"]);
    assert_eq!(index_of(), index_bytes);

    // Pushing the built layout (SBOMs rendered from its layers, not from the build's analysis)
    // attaches the same documents.
    project.build("examples/prebuilt.himg", "out");
    let other = format!("127.0.0.1:{}/team/other:1", reg.port);
    let from_layout = json_of(
        &project.himg(&["push", "out", &other, "--insecure", "--sbom", "--json"]),
        "himg push LAYOUT --sbom",
    );
    assert_eq!(from_layout["digest"], first["digest"]);
    assert_eq!(from_layout["sboms"], first["sboms"]);
}

/// Issue acceptance: a Debian image pushed to a registry is served byte for byte; a pull into an empty
/// store gives the same digest; a second push uploads nothing; after one package changes, the push
/// uploads exactly that package's layer, the dpkg-database layer that records its new version, and the
/// config (the manifest goes up under the tag).
#[test]
fn push_after_one_package_changes_uploads_its_layer_and_config() {
    let project = Project::new();
    let key = TestKey::generate("fixture archive");
    publish(&project.path("repo"), &key, &[libgreet("1.0-1"), dash()]);
    let server = serve(&project.path("repo")).unwrap();
    std::fs::write(project.path("fixture.gpg"), key.public_keyring()).unwrap();
    std::fs::write(
        project.path("fx.himg"),
        format!(
            "image \"fx\" {{\n  repository \"fixture\" {{\n    url = \"{}\"\n    suites = [\"{SUITE}\"]\n    keyring = \"fixture.gpg\"\n  }}\n  packages = [\"libgreet\", \"dash-fixture\"]\n}}\n",
            server.base_url
        ),
    )
    .unwrap();
    let first = project.build("fx.himg", "out1");
    let reg = Registry::start();
    let reference = format!("127.0.0.1:{}/team/fx:1", reg.port);
    let push = |dir: &str| {
        json_of(
            &project.himg(&["push", dir, &reference, "--insecure", "--json"]),
            "push",
        )
    };
    let p1 = push("out1");
    assert_eq!(p1["digest"], first["images"][0]["digest"]);
    let digest = first["images"][0]["digest"].as_str().unwrap().to_owned();
    let raw = std::process::Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo");
    let local =
        std::fs::read(project.path(&format!("out1/blobs/sha256/{}", &digest[7..]))).unwrap();
    assert_eq!(raw.stdout, local, "the registry serves our manifest");

    // A pull into an empty store and layout gives the same digest.
    let other_store = project.path("store-b");
    let o = project.himg_in(
        &project.path("."),
        &other_store,
        &["pull", &reference, "--out", "pulled", "--insecure"],
    );
    assert_success(&o, "pull");
    let index: Value =
        serde_json::from_slice(&std::fs::read(project.path("pulled/index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], digest.as_str());

    let again = push("out1");
    assert_eq!(again["uploaded"], json!([]), "{again}");
    assert_eq!(again["bytes_uploaded"], 0);

    publish(&project.path("repo"), &key, &[libgreet("1.1-1"), dash()]);
    assert_success(&project.himg(&["update", "fx.himg", "libgreet"]), "update");
    let second = project.build("fx.himg", "out2");
    let old: std::collections::BTreeSet<String> = common::layer_digests(&first["images"][0])
        .into_iter()
        .collect();
    let new: std::collections::BTreeSet<String> = common::layer_digests(&second["images"][0])
        .into_iter()
        .collect();
    let changed: Vec<&String> = new.difference(&old).collect();
    assert_eq!(
        changed.len(),
        2,
        "libgreet's layer and the dpkg database: {changed:?}"
    );
    let p2 = push("out2");
    let uploaded: std::collections::BTreeSet<String> = p2["uploaded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(uploaded.len(), 3, "two layers and the config: {p2}");
    for layer in changed {
        assert!(uploaded.contains(layer), "{layer} not uploaded: {p2}");
    }
    drop(server);
}
