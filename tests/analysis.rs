//! The analysis derivation: a build's SBOMs and policy facts are made once per image manifest and
//! kept in the store (a warm rebuild reads them back instead of re-reading the image), they are
//! GC roots with the image, and policies are still judged on every run (a waiver that expires
//! fails a rebuild whose analysis is cached).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;

use common::{Project, assert_success};

fn himg_on(project: &Project, today: &str, args: &[&str]) -> Output {
    project.himg_on(today, args)
}

fn build_json(
    project: &Project,
    today: &str,
    file: &str,
    out: &str,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec!["build", file, "--out", out, "--json"];
    args.extend_from_slice(extra);
    let o = himg_on(project, today, &args);
    assert_success(&o, &format!("build {file} → {out}"));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn sboms(project: &Project, out: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(project.path(&format!("{out}.sbom")))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn warm_rebuilds_reuse_the_analysis_and_gc_keeps_it() {
    let project = Project::new();
    let today = "2026-11-26";
    let a = build_json(&project, today, "examples/prebuilt.himg", "a", &[]);
    assert_eq!(a["analysis"]["built"], 1, "{a}");

    // Same file again: image and analysis come from the store; the SBOMs are the same bytes.
    let b = build_json(&project, today, "examples/prebuilt.himg", "b", &[]);
    assert_eq!(b["built"], 0, "{b}");
    assert_eq!(
        b["analysis"],
        serde_json::json!({"built": 0, "reused": 1, "substituted": 0, "layers_scanned": 0})
    );
    let first = sboms(&project, "a");
    assert_eq!(
        first.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["hello-amd64.cdx.json", "hello-amd64.spdx.json"]
    );
    assert!(
        first == sboms(&project, "b"),
        "cached SBOMs differ from the first build's"
    );
    // `himg sbom FILE` prints the stored analysis' document.
    let o = project.himg(&["sbom", "examples/prebuilt.himg", "--format", "spdx"]);
    assert_success(&o, "himg sbom FILE");
    assert!(
        o.stdout == first[1].1,
        "`himg sbom` differs from the build's SBOM"
    );

    // The build's GC root holds the analysis: after a collection it is still reused.
    assert_success(&project.himg(&["store", "gc"]), "store gc");
    let c = build_json(&project, today, "examples/prebuilt.himg", "c", &[]);
    assert_eq!(c["analysis"]["reused"], 1, "{c}");
    assert!(first == sboms(&project, "c"));

    // The graph shows the analysis above the manifest.
    let o = project.himg(&["graph", "examples/prebuilt.himg", "--json"]);
    assert_success(&o, "graph");
    let graph: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let nodes = graph["nodes"].as_array().unwrap();
    let analysis = nodes.iter().find(|n| n["kind"] == "analysis").unwrap();
    let input = analysis["inputs"][0].as_u64().unwrap() as usize;
    assert_eq!(nodes[input]["kind"], "manifest");

    // Without SBOMs and policies there is nothing to analyse.
    let d = build_json(
        &project,
        today,
        "examples/prebuilt.himg",
        "d",
        &["--no-sbom", "--no-policy"],
    );
    assert_eq!(
        d["analysis"],
        serde_json::json!({"built": 0, "reused": 0, "substituted": 0, "layers_scanned": 0})
    );
    assert!(!project.path("d.sbom").exists());
}

#[test]
fn policies_are_judged_each_run_on_cached_facts() {
    let project = Project::new();
    let file = project.path("w.himg");
    std::fs::write(
        &file,
        r#"image "w" {
  policy {
    baseline = "baseline"
    waive "non-root-user" { reason = "the init needs root", until = "2027-03-01" }
  }
  file "/etc/app.conf" { text = "ok = true" }
}
"#,
    )
    .unwrap();
    let a = build_json(&project, "2026-11-26", "w.himg", "out", &[]);
    assert_eq!(a["analysis"]["built"], 1, "{a}");
    // The day after the waiver ends, the same (fully cached) build fails.
    let o = himg_on(&project, "2027-03-02", &["build", "w.himg", "--out", "out"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains("expired on 2027-03-01"), "{err}");
    assert!(err.contains("[non-root-user]"), "{err}");
    // A policy made stricter applies to the cached facts too.
    std::fs::write(
        &file,
        std::fs::read_to_string(&file).unwrap().replace(
            "baseline = \"baseline\"",
            "baseline = \"baseline\"\n    max_size = 4",
        ),
    )
    .unwrap();
    let o = himg_on(&project, "2026-11-26", &["build", "w.himg", "--out", "out"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(5), "{err}");
    assert!(err.contains("[max-size]"), "{err}");
}

#[test]
fn a_changed_layer_is_the_only_one_scanned_again() {
    let project = Project::new();
    for l in 0..3 {
        let dir = project.path(&format!("content/l{l}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data.txt"), format!("layer {l}\n")).unwrap();
    }
    std::fs::write(
        project.path("three.himg"),
        r#"image "three" {
  layer "l0" { copy "content/l0" { to = "/srv/l0" } }
  layer "l1" { copy "content/l1" { to = "/srv/l1" } }
  layer "l2" { copy "content/l2" { to = "/srv/l2" } }
}
"#,
    )
    .unwrap();
    let today = "2026-11-26";
    let a = build_json(&project, today, "three.himg", "a", &[]);
    assert_eq!(a["analysis"]["built"], 1, "{a}");
    assert_eq!(a["analysis"]["layers_scanned"], 3, "{a}");
    let before = sboms(&project, "a");

    std::fs::write(project.path("content/l1/data.txt"), "layer 1, edited\n").unwrap();
    let b = build_json(&project, today, "three.himg", "b", &[]);
    assert_eq!(b["analysis"]["built"], 1, "{b}");
    assert_eq!(b["analysis"]["layers_scanned"], 1, "{b}");
    let after = sboms(&project, "b");
    assert!(before != after, "the SBOM must follow the edit");

    // The SBOM made from stored scans equals the one `himg sbom` makes by reading the layout.
    for (format, suffix) in [("spdx", "spdx.json"), ("cyclonedx", "cdx.json")] {
        let o = project.himg(&["sbom", "b", "--format", format]);
        assert_success(&o, "himg sbom");
        let made = after
            .iter()
            .find(|(n, _)| n.ends_with(suffix))
            .map(|(_, b)| b.clone())
            .unwrap();
        assert!(
            o.stdout == made,
            "{suffix} differs between build and `himg sbom`"
        );
    }
}
