//! SBOMs (issue 4/5, acceptance 1): the SBOMs `himg build` writes for examples/prebuilt.himg and for a
//! hermetic Debian fixture image validate with `pyspdxtools -i` and CycloneDX's JsonStrictValidator;
//! every locked package appears with its purl and .deb sha256; every `dependsOn` exists; two builds
//! (the second in an empty store) give byte-identical SBOMs; `himg sbom` prints the same documents.

#![allow(clippy::unwrap_used)]

mod common;
#[allow(dead_code)]
mod support;

use common::sbom::{check_built_sboms, validate_cyclonedx, validate_spdx};
use common::{Project, assert_success};
use support::{DebBuilder, TestKey};

fn read(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn hello_sboms_validate_and_are_reproducible() {
    let project = Project::new();
    let report = project.build("examples/prebuilt.himg", "out");
    let digest = common::image(&report, "hello")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    check_built_sboms(&project.path("out"), "hello", "amd64", &[], None);

    let cdx: serde_json::Value =
        serde_json::from_str(&read(&project.path("out.sbom/hello-amd64.cdx.json"))).unwrap();
    let hex = digest.trim_start_matches("sha256:");
    assert_eq!(
        cdx["metadata"]["component"]["purl"],
        format!("pkg:oci/hello@sha256%3A{hex}?arch=amd64")
    );
    // The copied program, the generated files: each with its sha256.
    let files: Vec<&str> = cdx["components"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "file")
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for f in [
        "/usr/local/bin/hello",
        "/etc/hello.conf",
        "/etc/passwd",
        "/srv/www/index.html",
    ] {
        assert!(files.contains(&f), "{f} not in {files:?}");
    }
    let hello = std::fs::read(project.path("examples/hello/build/hello")).unwrap();
    let sha = {
        use std::process::Command;
        let out = Command::new("sha256sum")
            .arg(project.path("examples/hello/build/hello"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    assert!(!hello.is_empty());
    assert!(read(&project.path("out.sbom/hello-amd64.spdx.json")).contains(&sha));

    // Reproducible: a second build into an empty store gives the same bytes; `himg sbom` agrees.
    let o = project.himg_in(
        project.dir.path(),
        &project.path("store2"),
        &["build", "examples/prebuilt.himg", "--out", "out2"],
    );
    assert_success(&o, "second build");
    for suffix in ["spdx.json", "cdx.json"] {
        assert_eq!(
            read(&project.path(&format!("out.sbom/hello-amd64.{suffix}"))),
            read(&project.path(&format!("out2.sbom/hello-amd64.{suffix}")))
        );
    }
    for (format, suffix) in [("spdx", "spdx.json"), ("cyclonedx", "cdx.json")] {
        let o = project.himg(&["sbom", "out", "--format", format]);
        assert_success(&o, "himg sbom LAYOUT");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            read(&project.path(&format!("out.sbom/hello-amd64.{suffix}")))
        );
        let path = project.path(&format!("from-file.{suffix}"));
        let o = project.himg(&[
            "sbom",
            "examples/prebuilt.himg",
            "--format",
            format,
            "--out",
            path.to_str().unwrap(),
        ]);
        assert_success(&o, "himg sbom FILE.himg");
        assert_eq!(
            read(&path),
            read(&project.path(&format!("out.sbom/hello-amd64.{suffix}")))
        );
    }
}

#[test]
fn debian_fixture_sboms_list_every_locked_package() {
    let project = Project::new();
    let key = TestKey::generate("sbom fixture");
    let copyright = b"Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nCopyright: 2024 Someone\nLicense: GPL-2+\n\nFiles: lib/*\nLicense: Expat or public-domain\n";
    let debs = vec![
        DebBuilder::new("app-fixture", "1:2.0+dfsg-1", "amd64")
            .depends("libgreet (>= 1.0), sh-provider | missing-alt")
            .source("app-src (2.0+dfsg-1)")
            .file("./usr/bin/app-fixture", b"app\n", 0o755)
            .file("./usr/share/doc/app-fixture/copyright", copyright, 0o644)
            .build()
            .unwrap(),
        DebBuilder::new("libgreet", "1.0-1", "amd64")
            .file(
                "./usr/lib/x86_64-linux-gnu/libgreet.so.1",
                b"greet\n",
                0o644,
            )
            .file(
                "./usr/share/doc/libgreet/copyright",
                b"not machine readable\n",
                0o644,
            )
            .build()
            .unwrap(),
        DebBuilder::new("dash-fixture", "1.0", "amd64")
            .provides("sh-provider")
            .file("./usr/bin/dash-fixture", b"shell\n", 0o755)
            .build()
            .unwrap(),
    ];
    let server = support::serve_fixture(&project.path(""), &key, "stable", &debs).unwrap();
    std::fs::write(
        project.path("fx.himg"),
        format!(
            r#"image "fx" {{
  repository "fixture" {{
    url = "{}"
    suites = ["stable"]
    keyring = "fixture.gpg"
  }}
  packages = ["app-fixture"]
  group "app" {{ gid = 1000 }}
  user "app" {{ uid = 1000, gid = 1000 }}
  run_as = "app"
}}
"#,
            server.base_url
        ),
    )
    .unwrap();
    project.build("fx.himg", "out");
    let lock: serde_json::Value =
        serde_json::from_str(&read(&project.path("fx.himg.lock"))).unwrap();
    let locked = lock["images"]["fx"]["architectures"]["amd64"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(locked.len(), 3);
    let codename = lock["images"]["fx"]["repositories"][0]["suites"][0]["codename"].as_str();
    let distro = match codename {
        Some("bookworm") => Some("debian-12"),
        Some("trixie") => Some("debian-13"),
        _ => None,
    };
    check_built_sboms(&project.path("out"), "fx", "amd64", &locked, distro);

    let cdx: serde_json::Value =
        serde_json::from_str(&read(&project.path("out.sbom/fx-amd64.cdx.json"))).unwrap();
    let comp = |name: &str| {
        cdx["components"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    let app = comp("app-fixture");
    assert_eq!(
        app["licenses"][0]["expression"],
        "GPL-2.0-or-later AND (MIT OR LicenseRef-public-domain)"
    );
    assert!(comp("libgreet")["licenses"].is_null());
    assert!(app["properties"].to_string().contains("app-src"));
    let deps = cdx["dependencies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["ref"] == app["bom-ref"])
        .unwrap();
    let on: Vec<&str> = deps["dependsOn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(on.len(), 2, "{on:?}");
    assert!(
        on.iter().any(|r| r.contains("/dash-fixture@"))
            && on.iter().any(|r| r.contains("/libgreet@"))
    );

    let spdx: serde_json::Value =
        serde_json::from_str(&read(&project.path("out.sbom/fx-amd64.spdx.json"))).unwrap();
    assert!(
        spdx["hasExtractedLicensingInfos"]
            .to_string()
            .contains("LicenseRef-public-domain")
    );
    let depends_on = spdx["relationships"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["relationshipType"] == "DEPENDS_ON")
        .count();
    assert_eq!(depends_on, 2);

    // `himg sbom` on the .himg (locked, built from the store) gives the same documents.
    let o = project.himg(&["sbom", "fx.himg", "--format", "cyclonedx"]);
    assert_success(&o, "himg sbom fx.himg");
    // Its build goes to a temporary layout: no SBOM files are written (or announced) beside it.
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("SBOM 2 files"), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        read(&project.path("out.sbom/fx-amd64.cdx.json"))
    );
    let path = project.path("x.spdx.json");
    std::fs::write(&path, read(&project.path("out.sbom/fx-amd64.spdx.json"))).unwrap();
    validate_spdx(&path);
    validate_cyclonedx(&project.path("out.sbom/fx-amd64.cdx.json"));
}

/// The other hermetic examples (the golden platform and product images, the hardened image): their
/// SBOMs validate with both tools (the Debian examples are checked in tests/debian_live.rs).
#[test]
fn every_hermetic_example_has_valid_sboms() {
    let project = Project::new();
    for (file, name) in [
        ("examples/golden/platform.himg", "platform"),
        ("examples/golden/app.himg", "app"),
        ("examples/hardened.himg", "hardened"),
    ] {
        let out = format!("out-{name}");
        // The golden product copies from `examples/hello/`: the project is `examples/`.
        let built = project.himg(&[
            "build",
            file,
            "--project-root",
            "examples",
            "--out",
            &out,
            "--json",
        ]);
        assert_success(&built, file);
        validate_spdx(&project.path(&format!("{out}.sbom/{name}-amd64.spdx.json")));
        validate_cyclonedx(&project.path(&format!("{out}.sbom/{name}-amd64.cdx.json")));
    }
}
