//! Hardening policies (issue 4/5, acceptance 3): a fixture image with a setuid file, a world-writable
//! directory and a root user fails `himg build` and `himg audit` (exit 5) with one violation per rule,
//! each naming the file and the fix; a waiver whose date has passed fails; future-dated waivers pass
//! and are listed in the report. "Today" is injected with `HIMG_TODAY`.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;

use common::Project;

const BAD: &str = r#"image "bad" {
  policy = "baseline"
  file "/usr/bin/su" { text = "not really su", mode = 0o4755 }
  dir "/srv/drop" { mode = 0o777 }
  dir "/tmp" { mode = 0o1777 }
  file "/etc/app.conf" { text = "ok = true" }
}
"#;

fn waived(until: &str) -> String {
    BAD.replace(
        r#"  policy = "baseline"
"#,
        &format!(
            r#"  policy {{
    baseline = "baseline"
    waive "non-root-user" {{ reason = "the init needs root", until = "{until}" }}
    waive "no-setuid" {{ path = "/usr/bin/su", reason = "login shell for operators", until = "{until}" }}
    waive "no-world-writable-dirs" {{ path = "/srv/**", reason = "drop box", until = "2030-01-01" }}
  }}
"#
        ),
    )
}

fn himg(project: &Project, today: &str, args: &[&str]) -> Output {
    project.himg_on(today, args)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn audit_json(project: &Project, today: &str, file: &str) -> (Option<i32>, serde_json::Value) {
    let o = himg(project, today, &["audit", file, "--json"]);
    let v = serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("json: {}", stderr(&o)));
    (o.status.code(), v)
}

#[test]
fn each_rule_reports_and_waivers_expire() {
    let project = Project::new();
    std::fs::write(project.path("bad.himg"), BAD).unwrap();

    // The build writes the image, then fails on the policy.
    let o = himg(
        &project,
        "2026-11-26",
        &["build", "bad.himg", "--out", "out"],
    );
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let err = stderr(&o);
    for needle in [
        "[non-root-user] the image runs as root",
        "[no-setuid] setuid file (mode 4755): /usr/bin/su",
        "[no-world-writable-dirs] world-writable directory without the sticky bit (mode 0777): /srv/drop",
        "fix: ",
        "or waive: waive \"no-setuid\" { path = \"/usr/bin/su\",",
        "policy violated by bad (amd64)",
    ] {
        assert!(err.contains(needle), "`{needle}` not in:\n{err}");
    }
    assert!(!err.contains("/tmp:"), "a sticky /tmp is fine:\n{err}");
    // `--no-policy` builds anyway.
    let o = himg(
        &project,
        "2026-11-26",
        &["build", "bad.himg", "--out", "out", "--no-policy"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    let (code, report) = audit_json(&project, "2026-11-26", "bad.himg");
    assert_eq!(code, Some(5));
    let img = &report["images"][0];
    assert_eq!(img["passed"], false);
    let rules: Vec<&str> = img["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["non-root-user", "no-setuid", "no-world-writable-dirs"]
    );

    // The same audit on the layout with an explicit baseline.
    let o = himg(
        &project,
        "2026-11-26",
        &["audit", "out", "--policy", "strict"],
    );
    assert_eq!(o.status.code(), Some(5));

    // Waivers with a past date: the waived violations come back and each expired waiver fails.
    std::fs::write(project.path("bad.himg"), waived("2026-11-01")).unwrap();
    let (code, report) = audit_json(&project, "2026-11-26", "bad.himg");
    assert_eq!(code, Some(5));
    let img = &report["images"][0];
    assert_eq!(img["waivers_expired"].as_array().unwrap().len(), 2);
    assert_eq!(img["waivers_in_force"].as_array().unwrap().len(), 1);
    let o = himg(&project, "2026-11-26", &["audit", "bad.himg"]);
    assert!(
        stderr(&o).contains("expired on 2026-11-01"),
        "{}",
        stderr(&o)
    );

    // Future dates: the image passes and the report lists every waiver in force.
    std::fs::write(project.path("bad.himg"), waived("2027-03-01")).unwrap();
    let (code, report) = audit_json(&project, "2026-11-26", "bad.himg");
    assert_eq!(code, Some(0), "{report}");
    let img = &report["images"][0];
    assert_eq!(img["passed"], true);
    let in_force = img["waivers_in_force"].as_array().unwrap();
    assert_eq!(in_force.len(), 3);
    assert!(
        in_force
            .iter()
            .any(|w| w["reason"] == "login shell for operators")
    );
    assert!(
        img["violations"]
            .as_array()
            .unwrap()
            .iter()
            .all(|v| v["waived"] == true)
    );
    let o = himg(
        &project,
        "2026-11-26",
        &["build", "bad.himg", "--out", "out"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("Waived"), "{}", stderr(&o));
    // The next day after expiry it fails again.
    let (code, _) = audit_json(&project, "2027-03-02", "bad.himg");
    assert_eq!(code, Some(5));
}

#[test]
fn undeclared_policy_warns_and_policies_do_not_change_digests() {
    let project = Project::new();
    let plain = "image \"p\" {\n  dir \"/srv/drop\" { mode = 0o777 }\n}\n";
    std::fs::write(project.path("p.himg"), plain).unwrap();
    let o = himg(
        &project,
        "2026-11-26",
        &["build", "p.himg", "--out", "a", "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("declares no `policy`"),
        "{}",
        stderr(&o)
    );
    let a: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();

    let with_policy = plain.replace("{\n", "{\n  policy { baseline = \"none\" }\n");
    std::fs::write(project.path("p.himg"), with_policy).unwrap();
    let o = himg(
        &project,
        "2026-11-26",
        &["build", "p.himg", "--out", "b", "--json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let b: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        common::image(&a, "p")["digest"],
        common::image(&b, "p")["digest"]
    );
    // hello passes `baseline` as it is.
    let (code, report) = audit_json(&project, "2026-11-26", "examples/prebuilt.himg");
    assert_eq!(code, Some(0), "{report}");
    assert_eq!(report["images"][0]["violations"], serde_json::json!([]));
}

#[test]
fn hardened_example_passes_strict_with_its_waiver_until_it_expires() {
    let project = Project::new();
    let o = himg(
        &project,
        "2026-11-26",
        &["build", "examples/hardened.himg", "--out", "out"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("Waived"), "{}", stderr(&o));
    let (code, report) = audit_json(&project, "2026-11-26", "examples/hardened.himg");
    assert_eq!(code, Some(0), "{report}");
    let img = &report["images"][0];
    assert_eq!(img["policy"], "strict");
    assert!(
        img["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "max-size")
    );
    assert_eq!(img["vulnerabilities_unchecked"], true);
    assert_eq!(img["waivers_in_force"][0]["path"], "/srv/inbox");
    let (code, _) = audit_json(&project, "2027-07-01", "examples/hardened.himg");
    assert_eq!(code, Some(5));
}
