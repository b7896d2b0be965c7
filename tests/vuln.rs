//! Vulnerability scanning (issue 4/5, acceptance 2): advisories written by the test (the Debian
//! security tracker JSON and OSV records, as files, a directory and a zip) are imported into the
//! vulnerability database and matched against an image built from the hermetic fixture repository.
//! Each case of the matcher appears once: fixed, unfixed, not-affected, unimportant, end-of-life, a
//! binNMU whose source version differs from the binary one, epochs; then OpenVEX, SARIF, --fail-on
//! and the result cache.

#![allow(clippy::unwrap_used)]

mod common;
#[allow(dead_code)]
mod support;

use std::io::Write;
use std::process::Output;

use common::{Project, assert_success};
use serde_json::{Value, json};
use support::{DebBuilder, TestKey, serve};

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout_json(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&o.stdout),
            stderr(o)
        )
    })
}

/// The tracker document: one issue per rule of the matcher.
fn tracker() -> Value {
    let rel = |status: &str, fixed: Option<&str>, urgency: &str| {
        let mut r = json!({ "status": status, "urgency": urgency });
        if let Some(f) = fixed {
            r["fixed_version"] = json!(f);
        }
        json!({ "releases": { "trixie": r }, "description": format!("{status} {urgency}") })
    };
    json!({
        // Fixed in a later revision than the installed one: a finding with the fix.
        "fixedsrc": { "CVE-2026-0001": rel("resolved", Some("1.0-2"), "high") },
        // No fix yet.
        "unfixed": { "CVE-2026-0002": rel("open", None, "medium") },
        // fixed_version 0: never affected.
        "notaff": { "CVE-2026-0003": rel("resolved", Some("0"), "high") },
        // Unimportant: reported as negligible.
        "minor": { "CVE-2026-0004": rel("open", None, "unimportant") },
        // The release no longer supports the package.
        "oldpkg": { "CVE-2026-0005": rel("open", None, "end-of-life") },
        // Epochs: 1:1.0-1 is newer than 2.0-1 (not affected) and older than 1:1.1-1 (affected).
        "epochpkg": {
            "CVE-2026-0006": rel("resolved", Some("2.0-1"), "high"),
            "CVE-2026-0007": rel("resolved", Some("1:1.1-1"), "low"),
        },
        // Fixed in an older version than installed; and a release the image is not on.
        "unfixed-old": {},
        "fixedsrc2": {},
        "othersrc": {
            "CVE-2026-0008": {
                "releases": { "bookworm": { "status": "open", "urgency": "high" } }
            }
        },
    })
}

/// OSV records for Debian:13 (and one for another ecosystem, skipped).
fn osv_records() -> Vec<(String, Value)> {
    vec![
        // A binNMU: libbin1 1.2-3+b1 is built from binsrc 1.2-3; last_affected 1.2-3 covers the source
        // version (comparing the binary version would miss it).
        (
            "DEBIAN-CVE-2026-0010.json".into(),
            json!({
                "id": "DEBIAN-CVE-2026-0010",
                "upstream": ["CVE-2026-0010"],
                "summary": "binNMU case",
                "affected": [{
                    "package": { "ecosystem": "Debian:13", "name": "binsrc" },
                    "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "last_affected": "1.2-3" }] }],
                }],
                "database_specific": { "severity": "HIGH" },
            }),
        ),
        // Fixed upstream in a version newer than installed.
        (
            "DEBIAN-CVE-2026-0011.json".into(),
            json!({
                "id": "DEBIAN-CVE-2026-0011",
                "affected": [{
                    "package": { "ecosystem": "Debian:13", "name": "osvpkg" },
                    "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "fixed": "3.0-2" }] }],
                    "ecosystem_specific": { "urgency": "low" },
                }],
            }),
        ),
        // Already fixed in the installed version: no finding.
        (
            "DEBIAN-CVE-2026-0012.json".into(),
            json!({
                "id": "DEBIAN-CVE-2026-0012",
                "affected": [{
                    "package": { "ecosystem": "Debian:13", "name": "osvpkg" },
                    "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "fixed": "2.0-1" }] }],
                }],
            }),
        ),
        // The tracker already decides CVE-2026-0002 for `unfixed`: this record is not used.
        (
            "DEBIAN-CVE-2026-0002.json".into(),
            json!({
                "id": "DEBIAN-CVE-2026-0002",
                "affected": [{
                    "package": { "ecosystem": "Debian:13", "name": "unfixed" },
                    "ranges": [{ "type": "ECOSYSTEM", "events": [{ "introduced": "0" }, { "fixed": "9.0" }] }],
                }],
            }),
        ),
        (
            "PYSEC-1.json".into(),
            json!({ "id": "PYSEC-1", "affected": [{ "package": { "ecosystem": "PyPI", "name": "x" } }] }),
        ),
    ]
}

fn write_osv_dir(dir: &std::path::Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, v) in osv_records() {
        std::fs::write(dir.join(name), serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    }
}

fn write_osv_zip(path: &std::path::Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, v) in osv_records() {
        zip.start_file(name, opts).unwrap();
        zip.write_all(&serde_json::to_vec(&v).unwrap()).unwrap();
    }
    zip.finish().unwrap();
}

fn scratch() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    (dir, store)
}

fn himg(dir: &std::path::Path, store: &std::path::Path, args: &[&str]) -> Output {
    std::process::Command::new(common::himg_bin())
        .current_dir(dir)
        .env("HIMG_STORE", store)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn vulndb_imports_tracker_osv_dir_and_zip_and_replaces_a_source() {
    let (dir, store) = scratch();
    let d = dir.path();
    std::fs::write(d.join("tracker.json"), tracker().to_string()).unwrap();
    write_osv_zip(&d.join("osv.zip"));

    let o = himg(d, &store, &["vulndb", "status", "--json"]);
    assert_success(&o, "status of an empty database");
    let empty = stdout_json(&o);
    assert_eq!(empty["records"], 0);

    let o = himg(d, &store, &["vulndb", "import", "tracker.json", "--json"]);
    assert_success(&o, "import tracker");
    // 8 releases rows in the tracker document.
    assert_eq!(
        stdout_json(&o)["imported"],
        json!([{"source": "debian-tracker", "records": 8}])
    );

    let o = himg(d, &store, &["vulndb", "import", "osv.zip", "--json"]);
    assert_success(&o, "import zip");
    let v = stdout_json(&o);
    assert_eq!(
        v["imported"],
        json!([{"source": "osv:Debian:13", "records": 4}])
    );
    assert_eq!(v["skipped"], 1);

    let o = himg(d, &store, &["vulndb", "status", "--json"]);
    let status = stdout_json(&o);
    let names: Vec<&str> = status["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["debian-tracker", "osv:Debian:13"]);
    assert_eq!(status["records"], 12);
    assert!(
        status["sources"][0]["imported_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    assert_eq!(status["sources"][1]["location"], "osv.zip");
    let version = status["version"].as_str().unwrap().to_string();
    assert_ne!(version, empty["version"].as_str().unwrap());

    // The same records from a directory: same contents, same version.
    write_osv_dir(&d.join("osv"));
    assert_success(&himg(d, &store, &["vulndb", "import", "osv"]), "import dir");
    let again = stdout_json(&himg(d, &store, &["vulndb", "status", "--json"]));
    assert_eq!(again["version"], json!(version));

    // The same zip from a URL (the HTTP client of Debian fetches).
    let server = serve(d).unwrap();
    let url = format!("{}/osv.zip", server.base_url);
    assert_success(&himg(d, &store, &["vulndb", "import", &url]), "import URL");
    let by_url = stdout_json(&himg(d, &store, &["vulndb", "status", "--json"]));
    assert_eq!(by_url["version"], json!(version));
    assert_eq!(by_url["sources"][1]["location"], json!(url));
    drop(server);

    // Re-importing the tracker replaces its rows (and only its rows).
    std::fs::write(
        d.join("tracker.json"),
        json!({"zlib": {"CVE-1": {"releases": {"trixie": {"status": "open", "urgency": "low"}}}}})
            .to_string(),
    )
    .unwrap();
    assert_success(
        &himg(d, &store, &["vulndb", "import", "tracker.json"]),
        "re-import",
    );
    let after = stdout_json(&himg(d, &store, &["vulndb", "status", "--json"]));
    assert_eq!(after["records"], 5);
    assert_ne!(after["version"], json!(version));

    // Not vulnerability data at all.
    std::fs::write(d.join("bad.json"), "[1, 2]").unwrap();
    let o = himg(d, &store, &["vulndb", "import", "bad.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // The human status.
    let o = himg(d, &store, &["vulndb", "status"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("source   debian-tracker: 1 records"),
        "{text}"
    );
}

#[test]
fn scan_without_a_database_says_how_to_import() {
    let (dir, store) = scratch();
    let o = himg(dir.path(), &store, &["scan", "missing.himg"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("himg vulndb import"), "{}", stderr(&o));
}

fn fixture_debs() -> Vec<support::Deb> {
    let deb = |name: &str, version: &str, source: Option<&str>| {
        let mut b = DebBuilder::new(name, version, "amd64").file(
            &format!("./usr/share/doc/{name}/copyright"),
            b"MIT\n",
            0o644,
        );
        if let Some(s) = source {
            b = b.source(s);
        }
        b.build().unwrap()
    };
    vec![
        deb("libfixed1", "1.0-1", Some("fixedsrc")),
        deb("unfixed", "2.0-1", None),
        deb("notaff", "1.0-1", None),
        deb("minor", "1.0-1", None),
        deb("oldpkg", "1.0-1", None),
        deb("epochpkg", "1:1.0-1", None),
        deb("libbin1", "1.2-3+b1", Some("binsrc (1.2-3)")),
        deb("osvpkg", "3.0-1", None),
    ]
}

fn vex_doc(path: &std::path::Path) {
    let doc = json!({
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.invalid/vex/fx-1",
        "author": "test",
        "timestamp": "2026-01-01T00:00:00Z",
        "version": 1,
        "statements": [{
            "vulnerability": { "name": "CVE-2026-0002" },
            "products": [{ "@id": "pkg:deb/debian/unfixed@2.0-1?arch=amd64" }],
            "status": "not_affected",
            "justification": "vulnerable_code_not_in_execute_path",
        }],
    });
    std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
}

/// (id, source, state, severity, fixed version) of every finding.
fn summary(report: &Value) -> Vec<(String, String, String, String, String, bool)> {
    report["images"][0]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_string(),
                f["source"].as_str().unwrap().to_string(),
                f["state"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["fixed_version"].as_str().unwrap_or("-").to_string(),
                f["suppressed"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn scan_fixture_image_findings_vex_sarif_fail_on_and_cache() {
    let project = Project::new();
    let p = |rel: &str| project.path(rel);
    let key = TestKey::generate("fixture archive");
    let server = support::serve_fixture(&p(""), &key, "trixie", &fixture_debs()).unwrap();
    let himg_text = |vex: &str| {
        format!(
            r#"image "fx" {{
  repository "fixture" {{
    url = "{}"
    suites = ["trixie"]
    keyring = "fixture.gpg"
  }}
  packages = ["libfixed1", "unfixed", "notaff", "minor", "oldpkg", "epochpkg", "libbin1", "osvpkg"]
{vex}}}
"#,
            server.base_url
        )
    };
    std::fs::write(p("fx.himg"), himg_text("")).unwrap();
    std::fs::write(p("tracker.json"), tracker().to_string()).unwrap();
    write_osv_dir(&p("osv"));
    assert_success(
        &project.himg(&["vulndb", "import", "tracker.json"]),
        "import tracker",
    );
    assert_success(&project.himg(&["vulndb", "import", "osv"]), "import osv");

    let o = project.himg(&["scan", "fx.himg", "--json"]);
    assert_success(&o, "scan");
    assert!(!stderr(&o).contains("Cached"), "{}", stderr(&o));
    let report = stdout_json(&o);
    let s = |id: &str, src: &str, state: &str, sev: &str, fixed: &str, sup: bool| {
        (
            id.into(),
            src.into(),
            state.into(),
            sev.into(),
            fixed.into(),
            sup,
        )
    };
    let expected = vec![
        s(
            "CVE-2026-0001",
            "fixedsrc",
            "fix-available",
            "high",
            "1.0-2",
            false,
        ),
        s("CVE-2026-0010", "binsrc", "no-fix-yet", "high", "-", false),
        s(
            "CVE-2026-0002",
            "unfixed",
            "no-fix-yet",
            "medium",
            "-",
            false,
        ),
        s(
            "CVE-2026-0007",
            "epochpkg",
            "fix-available",
            "low",
            "1:1.1-1",
            false,
        ),
        s(
            "CVE-2026-0011",
            "osvpkg",
            "fix-available",
            "low",
            "3.0-2",
            false,
        ),
        s(
            "CVE-2026-0004",
            "minor",
            "no-fix-yet",
            "negligible",
            "-",
            false,
        ),
        s(
            "CVE-2026-0005",
            "oldpkg",
            "end-of-life",
            "unknown",
            "-",
            false,
        ),
    ];
    assert_eq!(summary(&report), expected);
    let img = &report["images"][0];
    assert_eq!(img["release"], "trixie");
    assert_eq!(img["image"], "fx");
    let findings = img["findings"].as_array().unwrap();
    // The binNMU: matched by its source version, reported with its binary version.
    let bin = findings.iter().find(|f| f["source"] == "binsrc").unwrap();
    assert_eq!(bin["installed"], "1.2-3");
    assert_eq!(bin["packages"][0]["name"], "libbin1");
    assert_eq!(bin["packages"][0]["version"], "1.2-3+b1");
    assert_eq!(findings[0]["packages"][0]["name"], "libfixed1");
    assert_eq!(findings[0]["update"], "himg update fx.himg libfixed1");
    assert_eq!(findings[0]["data_source"], "debian-tracker");
    assert_eq!(bin["data_source"], "osv:Debian:13");

    // Second scan: the cached match.
    let o = project.himg(&["scan", "fx.himg", "--json"]);
    assert_success(&o, "second scan");
    assert!(stderr(&o).contains("Cached"), "{}", stderr(&o));
    assert_eq!(summary(&stdout_json(&o)), expected);

    // --fail-on.
    let o = project.himg(&["scan", "fx.himg", "--fail-on", "critical"]);
    assert_success(&o, "fail-on critical");
    let o = project.himg(&["scan", "fx.himg", "--fail-on", "high"]);
    assert_eq!(o.status.code(), Some(11), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("2 finding(s) at severity high or higher"),
        "{}",
        stderr(&o)
    );
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(table.contains("himg update fx.himg libfixed1"), "{table}");
    assert!(table.contains("no fix yet"), "{table}");
    assert!(table.contains("end-of-life"), "{table}");

    // OpenVEX from --vex suppresses CVE-2026-0002; the report keeps it with the justification.
    vex_doc(&p("triage.openvex.json"));
    let o = project.himg(&["scan", "fx.himg", "--json", "--vex", "triage.openvex.json"]);
    assert_success(&o, "scan with vex");
    let report = stdout_json(&o);
    let mut with_vex = expected.clone();
    with_vex[2].5 = true;
    assert_eq!(summary(&report), with_vex);
    let f = &report["images"][0]["findings"][2];
    assert_eq!(f["vex"]["status"], "not_affected");
    assert_eq!(
        f["vex"]["justification"],
        "vulnerable_code_not_in_execute_path"
    );
    assert_eq!(report["images"][0]["suppressed"], 1);
    assert_eq!(report["images"][0]["summary"]["medium"], 0);
    // The same file declared in the .himg, shown in the table.
    std::fs::write(
        p("fx.himg"),
        himg_text("  vex = [\"triage.openvex.json\"]\n"),
    )
    .unwrap();
    let o = project.himg(&["scan", "fx.himg", "--fail-on", "medium"]);
    assert_eq!(o.status.code(), Some(11));
    let table = String::from_utf8_lossy(&o.stdout);
    assert!(
        table.contains("Suppressed by VEX:")
            && table.contains(
                "CVE-2026-0002 unfixed not_affected: vulnerable_code_not_in_execute_path"
            ),
        "{table}"
    );
    assert!(
        stderr(&o).contains("Cached"),
        "VEX is applied after the cache"
    );

    // SARIF 2.1.0 shape.
    let o = project.himg(&["scan", "fx.himg", "--sarif"]);
    assert_success(&o, "sarif");
    let sarif = stdout_json(&o);
    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].as_str().unwrap().contains("sarif-2.1.0"));
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "himg");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 7);
    for r in rules {
        assert!(r["id"].is_string() && r["shortDescription"]["text"].is_string());
    }
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 7);
    for r in results {
        assert!(r["ruleId"].is_string());
        assert!(r["message"]["text"].is_string());
        assert!(["error", "warning", "note"].contains(&r["level"].as_str().unwrap()));
        let idx = r["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[idx]["id"], r["ruleId"]);
        assert_eq!(
            r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "fx.himg"
        );
    }
    let suppressed: Vec<&Value> = results
        .iter()
        .filter(|r| r.get("suppressions").is_some())
        .collect();
    assert_eq!(suppressed.len(), 1);
    assert_eq!(suppressed[0]["ruleId"], "CVE-2026-0002");
    assert_eq!(suppressed[0]["suppressions"][0]["kind"], "external");

    // A built layout scans the same, with the release from /etc/os-release absent: --release.
    project.build("fx.himg", "out");
    let o = project.himg(&["scan", "out", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--release"), "{}", stderr(&o));
    let o = project.himg(&["scan", "out", "--json", "--release", "Debian:13"]);
    assert_success(&o, "scan a layout");
    assert_eq!(summary(&stdout_json(&o)), expected);

    // The `max-vulnerabilities` policy rule counts the same findings (VEX applied) as `himg scan`.
    let with_policy = |limits: &str| {
        std::fs::write(
            p("fx.himg"),
            himg_text(&format!(
                "  vex = [\"triage.openvex.json\"]\n  policy {{\n    baseline = \"none\"\n    max_vulnerabilities = {{ {limits} }}\n  }}\n"
            )),
        )
        .unwrap();
        project.himg(&["audit", "fx.himg", "--json"])
    };
    let o = with_policy("high = 0, critical = 0");
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let audit = stdout_json(&o);
    assert_eq!(audit["passed"], false, "{audit}");
    assert!(audit.to_string().contains("max-vulnerabilities"), "{audit}");
    let o = with_policy("high = 100, critical = 100, medium = 100");
    assert_success(&o, "audit within the limits");
    let audit = stdout_json(&o);
    assert_eq!(audit["passed"], true, "{audit}");
    assert_eq!(
        audit["images"][0]["vulnerabilities_unchecked"], false,
        "{audit}"
    );
    drop(server);
}

/// `himg update` names the advisories each package move fixes (with an imported database): a
/// scheduled job can title its change "fixes CVE-…" from `--check --json`.
#[test]
fn update_reports_the_advisories_each_move_fixes() {
    let project = Project::new();
    let p = |rel: &str| project.path(rel);
    let key = TestKey::generate("fixture archive");
    let deb = |name: &str, version: &str, source: &str| {
        DebBuilder::new(name, version, "amd64")
            .source(source)
            .file(
                &format!("./usr/share/doc/{name}/copyright"),
                b"MIT\n",
                0o644,
            )
            .build()
            .unwrap()
    };
    let old = vec![
        deb("libfixed1", "1.0-1", "fixedsrc"),
        deb("unfixed", "2.0-1", "unfixed"),
    ];
    let server = support::serve_fixture(&p(""), &key, "trixie", &old).unwrap();
    std::fs::write(
        p("fx.himg"),
        format!(
            "image \"fx\" {{\n  repository \"fixture\" {{\n    url = \"{}\"\n    suites = [\"trixie\"]\n    keyring = \"fixture.gpg\"\n  }}\n  packages = [\"libfixed1\", \"unfixed\"]\n}}\n",
            server.base_url
        ),
    )
    .unwrap();
    assert_success(&project.himg(&["lock", "fx.himg"]), "lock");

    // Without a database: the moves, no fixes.
    let mut new = old.clone();
    new[0] = deb("libfixed1", "1.0-2", "fixedsrc");
    new[1] = deb("unfixed", "2.0-2", "unfixed");
    support::publish(&p("repo"), &key, "trixie", &new).unwrap();
    let o = project.himg(&["update", "fx.himg", "--check", "--json"]);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    let report = stdout_json(&o);
    assert_eq!(report["written"], false);
    let updates = report["updates"].as_array().unwrap();
    assert_eq!(updates.len(), 2, "{report}");
    assert!(updates.iter().all(|u| u["fixes"] == json!([])), "{report}");

    // With the tracker imported: libfixed1 1.0-2 fixes CVE-2026-0001; `unfixed` moves but its
    // advisory has no fix yet, so it fixes nothing.
    std::fs::write(p("tracker.json"), tracker().to_string()).unwrap();
    assert_success(
        &project.himg(&["vulndb", "import", "tracker.json"]),
        "import tracker",
    );
    let o = project.himg(&["update", "fx.himg", "--check", "--json"]);
    assert_eq!(o.status.code(), Some(10), "{}", stderr(&o));
    let report = stdout_json(&o);
    let updates = report["updates"].as_array().unwrap();
    let fixed = updates
        .iter()
        .find(|u| u["package"] == "libfixed1")
        .unwrap();
    assert_eq!(fixed["locked"], "1.0-1");
    assert_eq!(fixed["available"], "1.0-2");
    assert_eq!(fixed["architecture"], "amd64");
    assert_eq!(
        fixed["fixes"],
        json!([{"id": "CVE-2026-0001", "severity": "high"}])
    );
    let unfixed = updates.iter().find(|u| u["package"] == "unfixed").unwrap();
    assert_eq!(unfixed["fixes"], json!([]));

    // The table says it too; then the update is written.
    let o = project.himg(&["update", "fx.himg"]);
    assert_success(&o, "update");
    let table = String::from_utf8_lossy(&o.stdout).into_owned();
    let row = table.lines().find(|l| l.contains("libfixed1")).unwrap();
    assert!(row.ends_with("CVE-2026-0001 (high)"), "{table}");
    let o = project.himg(&["update", "fx.himg", "--json"]);
    assert_success(&o, "update again");
    assert_eq!(stdout_json(&o)["updates"], json!([]));
}
