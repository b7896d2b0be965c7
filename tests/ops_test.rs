//! The operations called directly, without spawning the binary: testing an image built from files
//! (a passing and a failing test, then the result cache), the store's maintenance, and locking a
//! file that declares no packages.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use himg::ops::{self, Session};
use himg::printer::{ColorChoice, Printer};

/// The OCI spelling of this machine's architecture (tests run natively only).
fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// A project with one image made of a single file and two tests: one passes, one fails.
fn project(dir: &Path) -> PathBuf {
    let file = dir.join("tiny.himg");
    std::fs::write(
        &file,
        format!(
            r#"image "tiny" {{
  architectures = ["{}"]
  file "/etc/greeting" {{ text = "hello from ops\n" }}

  test "greeting is there" {{
    file "/etc/greeting" {{ type = "file", contains = "hello from ops" }}
  }}
  test "greeting says goodbye" {{
    file "/etc/greeting" {{ contains = "goodbye" }}
  }}
}}
"#,
            host_architecture()
        ),
    )
    .unwrap();
    file
}

fn printer() -> Printer {
    Printer::new(true, ColorChoice::Never)
}

#[test]
fn test_reports_one_passed_and_one_failed_then_caches_the_pass() {
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path());
    let printer = printer();
    let session = Session::new(&printer).with_store(Some(dir.path().join("store")));
    let junit = dir.path().join("report.xml");
    let opts = ops::test::TestOptions {
        file: file.clone(),
        junit: Some(junit.clone()),
        ..Default::default()
    };

    let first = ops::test::test(&session, &opts).unwrap();
    assert_eq!(first.outcomes.len(), 2);
    assert_eq!((first.passed(), first.failed(), first.cached()), (1, 1, 0));
    let failed = first.outcomes.iter().find(|o| !o.passed).unwrap();
    assert_eq!(failed.test, "greeting says goodbye");
    assert!(!failed.failures.is_empty());
    assert!(
        first
            .summary()
            .starts_with("2 tests: 1 passed (0 cached), 1 failed, in ")
    );
    assert_eq!(first.json()["failed"], 1);
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("greeting says goodbye")
    );

    // Only the pass is cached: the failure runs again.
    let second = ops::test::test(&session, &opts).unwrap();
    assert_eq!(
        (second.passed(), second.failed(), second.cached()),
        (1, 1, 1)
    );

    let no_cache = ops::test::TestOptions {
        no_cache: true,
        ..opts
    };
    let third = ops::test::test(&session, &no_cache).unwrap();
    assert_eq!(third.cached(), 0);

    // The build registered a root; the store is consistent and nothing rooted is collected.
    let roots = ops::store::roots(&session).unwrap();
    assert!(
        roots.iter().any(|r| r.name.ends_with("tiny.himg#tiny")),
        "{}",
        ops::store::roots_text(&roots)
    );
    assert!(ops::store::verify(&session).unwrap().is_ok());
    let collected = ops::store::gc(&session, true).unwrap();
    assert_eq!(collected.caches.entries, 0);
    assert_eq!(collected.json()["cache_entries_removed"], 0);
}

#[test]
fn lock_and_update_of_a_file_without_packages_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path());
    let printer = printer();
    let session = Session::new(&printer).with_store(Some(dir.path().join("store")));

    let locked = ops::lock::lock(&session, &file).unwrap();
    assert!(locked.lock.is_none());
    assert_eq!(locked.package_count(), 0);
    assert!(!locked.path.exists());

    let updated = ops::lock::update(
        &session,
        &ops::lock::UpdateOptions {
            file: file.clone(),
            check: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(updated.nothing_to_lock);
    assert!(updated.updates.is_empty());
    assert!(!updated.written);
    assert_eq!(updated.status, ops::lock::UpdateStatus::Done);
    assert_eq!(updated.json()["written"], false);
}

#[test]
fn check_and_fmt_need_no_store() {
    let dir = tempfile::tempdir().unwrap();
    let file = project(dir.path());
    let printer = printer();
    let session = Session::new(&printer);
    let checked = ops::lang::check(&session, &file).unwrap();
    assert_eq!(checked.images, vec!["tiny".to_string()]);
    assert!(checked.summary().ends_with("(1 image: tiny)"));
    let files = std::slice::from_ref(&file);
    // Checking never rewrites; formatting leaves nothing for a check to report.
    let before = std::fs::read(&file).unwrap();
    ops::lang::fmt(&session, files, true).unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), before);
    ops::lang::fmt(&session, files, false).unwrap();
    assert!(
        ops::lang::fmt(&session, files, true)
            .unwrap()
            .unformatted
            .is_empty()
    );
}
