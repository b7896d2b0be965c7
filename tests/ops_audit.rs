//! The audit, SBOM, inspect and scan operations called directly, without spawning the binary: an
//! image built from files (no packages, no network) fails its declared baseline policy, judged on
//! the `.himg` file's analyses and on the layout read back alike; its SBOM and inspection come
//! from the same targets; a scan without imported advisories is refused.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use himg::ops::audit::{AuditOptions, SbomOptions};
use himg::ops::inspect::{DiffOptions, InspectOptions, Inspected, Selection};
use himg::ops::vuln::ScanOptions;
use himg::ops::{self, Session};
use himg::printer::{ColorChoice, Printer};

/// An image with a setuid file and a world-writable directory, running as root, under the
/// `baseline` policy.
fn project(dir: &Path) -> PathBuf {
    let file = dir.join("bad.himg");
    std::fs::write(
        &file,
        r#"image "bad" {
  policy = "baseline"
  file "/usr/bin/su" { text = "not really su", mode = 0o4755 }
  dir "/srv/drop" { mode = 0o777 }
  file "/etc/app.conf" { text = "ok = true" }
}
"#,
    )
    .unwrap();
    file
}

fn printer() -> Printer {
    Printer::new(true, ColorChoice::Never)
}

fn rules(report: &himg::policy::Report) -> Vec<&'static str> {
    report
        .findings
        .iter()
        .map(|f| f.violation.rule.name())
        .collect()
}

#[test]
fn audit_sbom_and_inspect_through_ops() {
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path());
    let printer = printer();
    let session = Session::new(&printer).with_store(Some(dir.path().join("store")));

    // Built through ops: the layout the other operations read back.
    let out = dir.path().join("out");
    ops::build::build(&session, &ops::build::BuildOptions::new(&file, &out)).unwrap();

    let expected = ["non-root-user", "no-setuid", "no-world-writable-dirs"];
    // The `.himg` file: judged on its build's analysis by its declared policy.
    let from_file = ops::audit::audit(
        &session,
        &AuditOptions {
            target: file.clone(),
            ..AuditOptions::default()
        },
    )
    .unwrap();
    let [report] = from_file.reports.as_slice() else {
        panic!("one report expected, got {}", from_file.reports.len());
    };
    assert!(report.policy.declared);
    assert!(!report.passed());
    assert_eq!(rules(report), expected);
    assert_eq!(from_file.json()["passed"], false);
    let failed = ops::audit::print_reports(&from_file.reports, &printer);
    assert_eq!(failed.len(), 1, "{failed:?}");

    // The layout with a forced baseline: the same facts read back from the image.
    let from_layout = ops::audit::audit(
        &session,
        &AuditOptions {
            target: out.clone(),
            policy: Some("baseline".into()),
            ..AuditOptions::default()
        },
    )
    .unwrap();
    let [report] = from_layout.reports.as_slice() else {
        panic!("one report expected, got {}", from_layout.reports.len());
    };
    assert_eq!(rules(report), expected);
    assert_eq!(from_layout.json()["images"][0]["passed"], false);

    // `none` judges nothing: the image passes.
    let lenient = ops::audit::audit(
        &session,
        &AuditOptions {
            target: out.clone(),
            policy: Some("none".into()),
            ..AuditOptions::default()
        },
    )
    .unwrap();
    assert!(lenient.reports.iter().all(|r| r.passed()));

    // SBOMs: the store's copy for the `.himg` file, modelled from the layout otherwise; both SPDX.
    for target in [&file, &out] {
        let document = ops::audit::sbom(
            &session,
            &SbomOptions {
                target: target.clone(),
                format: himg::sbom::Format::Spdx,
                image: None,
                arch: None,
                insecure: false,
            },
        )
        .unwrap();
        let spdx: serde_json::Value = serde_json::from_str(&document.text).unwrap();
        assert_eq!(spdx["spdxVersion"], "SPDX-2.3", "{}", document.text);
        let written = dir.path().join("bad.spdx.json");
        document.write(&written, &printer).unwrap();
        assert_eq!(std::fs::read_to_string(&written).unwrap(), document.text);
    }

    // Inspect: the report of the one image, no referrers for a local layout.
    let inspected = ops::inspect::inspect(
        &session,
        &InspectOptions {
            target: out.display().to_string(),
            ..InspectOptions::default()
        },
    )
    .unwrap();
    let Inspected::Image { report, referrers } = &inspected else {
        panic!("an image report expected");
    };
    assert!(referrers.is_none());
    assert!(report.name.as_deref().is_some_and(|n| n.starts_with("bad")));
    assert!(inspected.text().contains(&report.digest));

    // An image compared with itself (built again from its file) has no changes.
    let diff = ops::inspect::diff(
        &session,
        &DiffOptions {
            a: out.display().to_string(),
            b: file.display().to_string(),
            selection: Selection::default(),
        },
    )
    .unwrap();
    assert!(diff.identical, "{}", diff.render());

    // A target that is no path and no reference is refused before anything is read.
    let missing = ops::inspect::inspect(
        &session,
        &InspectOptions {
            target: dir.path().join("nope").display().to_string(),
            ..InspectOptions::default()
        },
    );
    assert!(matches!(missing, Err(ops::Error::Io { .. })));

    // No advisories imported: a scan is refused with `EmptyVulnDb`.
    let scanned = ops::vuln::scan(
        &session,
        &ScanOptions {
            target: out.clone(),
            db: Some(dir.path().join("vulndb.sqlite")),
            ..ScanOptions::default()
        },
    );
    assert!(matches!(scanned, Err(ops::Error::EmptyVulnDb { .. })));
}
