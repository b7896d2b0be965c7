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
