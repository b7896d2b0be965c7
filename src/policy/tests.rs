//! Policy rules on hand-made images.

use himg_lang::{PolicySpec, WaiverSpec};

use super::*;
use crate::image::secrets;
use crate::sbom::tests::TestImage;

fn day(s: &str) -> Date {
    Date::parse(s).unwrap()
}

fn bad_image() -> TestImage {
    let mut t = TestImage::new("bad");
    t.view.config.config.user = None;
    t.file("usr/bin/su", b"su", 0o4755)
        .package("login", "1", &[], &[], &["usr/bin/su"])
        .dir("srv/drop", 0o777)
        .dir("tmp", 0o1777)
        .file("tmp/leftover", b"x", 0o644)
        .file(
            "etc/key.pem",
            b"-----BEGIN RSA PRIVATE KEY-----\nabc\n",
            0o600,
        )
        .file("etc/app.env", b"KEY=AKIAABCDEFGHIJKLMNOP\n", 0o666)
        .file("usr/lib/libssl.so.3", b"ssl", 0o644)
        .file("usr/bin/dash", b"sh", 0o755)
        .symlink("usr/bin/sh", "dash")
        .file("usr/bin/dpkg", b"dpkg", 0o755)
        .file("usr/bin/gcc-14", b"gcc", 0o755);
    t
}

fn run(t: &TestImage, spec: Option<&PolicySpec>, today: &str) -> Report {
    let policy = Policy::from_spec(spec).unwrap();
    // Facts go through their cached JSON form, as after a build.
    let facts = Facts::gather(&t.view, &t.contents);
    let facts: Facts = serde_json::from_slice(&serde_json::to_vec(&facts).unwrap()).unwrap();
    evaluate("bad", &facts, &policy, None, day(today))
}

fn rules_hit(r: &Report) -> Vec<(&'static str, Option<String>, Option<String>)> {
    r.violations()
        .map(|v| (v.rule.name(), v.path.clone(), v.package.clone()))
        .collect()
}

#[test]
fn every_rule_reports_on_a_bad_image() {
    let t = bad_image();
    let strict = PolicySpec {
        baseline: "strict".into(),
        max_size: Some(10),
        ..PolicySpec::default()
    };
    let r = run(&t, Some(&strict), "2026-01-01");
    let hit = rules_hit(&r);
    let has = |rule: &str, path: Option<&str>| {
        hit.iter()
            .any(|(r, p, _)| *r == rule && p.as_deref() == path)
    };
    assert!(has("non-root-user", None), "{hit:?}");
    assert!(has("no-setuid", Some("/usr/bin/su")));
    assert!(hit.contains(&(
        "no-setuid",
        Some("/usr/bin/su".into()),
        Some("login".into())
    )));
    assert!(has("no-world-writable-dirs", Some("/srv/drop")));
    assert!(!has("no-world-writable-dirs", Some("/tmp")));
    assert!(has("no-world-writable", Some("/etc/app.env")));
    assert!(has("no-temp-files", Some("/tmp/leftover")));
    assert!(has("no-secrets", Some("/etc/key.pem")));
    assert!(has("no-secrets", Some("/etc/app.env")));
    assert!(has("ca-bundle", Some("/etc/ssl/certs/ca-certificates.crt")));
    assert!(has("no-shell", Some("/usr/bin/dash")));
    assert!(has("no-shell", Some("/usr/bin/sh")));
    assert!(has("no-package-manager", Some("/usr/bin/dpkg")));
    assert!(has("no-compiler", Some("/usr/bin/gcc-14")));
    assert!(has("max-size", None));
    assert!(!r.passed());
    assert!(r.lines()[0].contains("fix:"));

    // `baseline` leaves the strict-only rules out.
    let r = run(&t, None, "2026-01-01");
    assert!(!r.policy.declared);
    assert!(
        rules_hit(&r)
            .iter()
            .all(|(rule, _, _)| !["no-shell", "no-compiler", "no-package-manager"].contains(rule))
    );
}

#[test]
fn waivers_expire_and_are_listed() {
    let mut t = TestImage::new("ok");
    t.file("usr/bin/su", b"su", 0o4755)
        .package("login", "1", &[], &[], &["usr/bin/su"]);
    let waive = |until: &str, package: bool| PolicySpec {
        waivers: vec![WaiverSpec {
            rule: "no-setuid".into(),
            path: (!package).then(|| "/usr/bin/*".into()),
            package: package.then(|| "login".into()),
            reason: "su is needed".into(),
            until: until.into(),
        }],
        ..PolicySpec::default()
    };
    assert!(!run(&t, Some(&PolicySpec::default()), "2026-11-26").passed());
    for package in [false, true] {
        let r = run(&t, Some(&waive("2027-03-01", package)), "2026-11-26");
        assert!(r.passed(), "{:?}", r.lines());
        assert_eq!(r.in_force.len(), 1);
        assert!(r.findings[0].waived_by.is_some());
        let json = r.to_json();
        assert_eq!(json["waivers_in_force"][0]["reason"], "su is needed");
        // The last day still holds; the day after fails.
        assert!(run(&t, Some(&waive("2026-11-26", package)), "2026-11-26").passed());
        let r = run(&t, Some(&waive("2026-11-25", package)), "2026-11-26");
        assert!(!r.passed());
        assert_eq!(r.expired.len(), 1);
        assert!(
            r.lines()
                .iter()
                .any(|l| l.contains("expired on 2026-11-25"))
        );
    }
}

#[test]
fn vulnerability_limits_use_scan_results() {
    let t = TestImage::new("v");
    let spec = PolicySpec {
        max_vulnerabilities: [("critical".to_string(), 0), ("high".to_string(), 2)].into(),
        ..PolicySpec::default()
    };
    let policy = Policy::from_spec(Some(&spec)).unwrap();
    let facts = Facts::gather(&t.view, &t.contents);
    let r = evaluate("v", &facts, &policy, None, day("2026-01-01"));
    assert!(r.vulnerabilities_unchecked && r.passed());
    let found = vec![("HIGH".to_string(), 3), ("critical".to_string(), 0)];
    let r = evaluate("v", &facts, &policy, Some(&found), day("2026-01-01"));
    assert_eq!(rules_hit(&r), [("max-vulnerabilities", None, None)]);
}

#[test]
fn rule_names_match_the_language() {
    let ours: Vec<&str> = rules::ALL.iter().map(|r| r.name()).collect();
    assert_eq!(ours, himg_lang::POLICY_RULES);
    for b in himg_lang::POLICY_BASELINES {
        assert!(baseline::rules_of(b).is_some());
    }
    assert_eq!(secrets::secret_in(b"xAKIAABCDEFGHIJKLMNOP"), None);
    assert_eq!(secrets::secret_in(b"-----BEGIN CERTIFICATE-----"), None);
}

#[test]
fn facts_record_every_intrinsic_rule_and_round_trip() {
    let t = bad_image();
    let facts = Facts::gather(&t.view, &t.contents);
    let text = serde_json::to_string(&facts).unwrap();
    assert!(text.contains("\"rule\":\"no-secrets\""), "{text}");
    assert_eq!(serde_json::from_str::<Facts>(&text).unwrap(), facts);
    // Parameterised rules are judged at evaluation, never recorded.
    assert!(facts.violations.iter().all(|v| facts::is_intrinsic(v.rule)));
    assert_eq!(
        facts.files_size,
        t.view.files.values().map(|e| e.size).sum::<u64>()
    );
    assert!(serde_json::from_str::<Rule>("\"no-such-rule\"").is_err());
}
