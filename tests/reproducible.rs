//! Acceptance 4: a fresh store in another directory, with another working directory and umask, gives the
//! identical digest, and diffoscope finds the two layouts identical.

mod common;

use std::process::Command;

use common::{Project, image, require_tool, run_tool};

#[test]
fn fresh_store_other_cwd_and_umask_give_identical_layouts() {
    let a = Project::new();
    let report_a = a.build("examples/prebuilt.himg", "out");

    // Project B: another temp dir, another store, builds from a sub-directory with umask 077 and the
    // files' modes and times changed (only executable bits and contents matter).
    let b = Project::new();
    let hello = b.path("examples/hello/site/index.html");
    let f = std::fs::File::options()
        .append(true)
        .open(&hello)
        .expect("open");
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000))
        .expect("set mtime");
    drop(f);
    let cwd = b.path("examples/golden");
    let out = Command::new("sh")
        .current_dir(&cwd)
        .env("HIMG_STORE", b.path("other-store"))
        .arg("-c")
        .arg(format!(
            "umask 077 && exec '{}' build ../prebuilt.himg --out ../../out-b --json",
            common::himg_bin().display()
        ))
        .output()
        .expect("run");
    common::assert_success(&out, "build in project B");
    let report_b: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        image(&report_a, "hello")["digest"],
        image(&report_b, "hello")["digest"],
        "same digest across stores, directories and umasks"
    );

    // Names and modes match too (diffoscope below is told to ignore times).
    assert_eq!(modes(&a.path("out")), modes(&b.path("out-b")));

    require_tool("diffoscope");
    run_tool(
        Command::new("diffoscope")
            // Compare contents, names and modes; not the times at which the two directories were written.
            .args(["--no-progress", "--exclude-directory-metadata=recursive"])
            .arg(a.path("out"))
            .arg(b.path("out-b")),
    );
}

#[test]
fn source_date_epoch_changes_the_image_and_only_through_times() {
    let project = Project::new();
    let one = project.build("examples/prebuilt.himg", "out1");
    let out = Command::new(common::himg_bin())
        .current_dir(project.path(""))
        .env("HIMG_STORE", &project.store)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["build", "examples/prebuilt.himg", "--out", "out2", "--json"])
        .output()
        .expect("run");
    common::assert_success(&out, "build with SOURCE_DATE_EPOCH");
    let two: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_ne!(
        image(&one, "hello")["digest"],
        image(&two, "hello")["digest"]
    );
    require_tool("skopeo");
    let cfg = run_tool(
        Command::new("skopeo")
            .args(["inspect", "--config"])
            .arg(format!("oci:{}:hello", project.path("out2").display())),
    );
    assert!(cfg.contains("2023-11-14T22:13:20Z"), "{cfg}");
}

/// `(relative path, mode)` of everything below `root`, sorted.
fn modes(root: &std::path::Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let e = e.expect("entry");
            let meta = e.metadata().expect("metadata");
            if meta.is_dir() {
                stack.push(e.path());
            }
            let rel = e
                .path()
                .strip_prefix(root)
                .expect("prefix")
                .display()
                .to_string();
            out.push((rel, meta.permissions().mode() & 0o7777));
        }
    }
    out.sort();
    out
}
