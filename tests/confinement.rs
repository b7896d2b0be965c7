//! A build reads only the project: imports, copy sources, keyrings and VEX files that leave the
//! project root through a symlink are refused (H0100), a FIFO is refused at once rather than read
//! (H0101), and a diagnostic never quotes a file that is not a `.himg` file.

mod common;

use std::os::unix::fs::symlink;
use std::time::{Duration, Instant};

use common::{Project, assert_success};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A project directory `proj/` holding `etclink -> /etc`, plus a secret file beside the project.
fn project_with_links() -> Project {
    let project = Project::new();
    std::fs::create_dir_all(project.path("proj/sub")).expect("mkdir");
    symlink("/etc", project.path("proj/etclink")).expect("symlink");
    std::fs::write(project.path("secret.txt"), "TOP-SECRET-CONTENT\n").expect("write");
    symlink("../secret.txt", project.path("proj/secretlink")).expect("symlink");
    project
}

fn check(project: &Project, text: &str) -> std::process::Output {
    std::fs::write(project.path("proj/main.himg"), text).expect("write");
    project.himg(&["check", "proj/main.himg"])
}

#[test]
fn a_copy_through_a_symlink_out_of_the_project_is_refused() {
    let project = project_with_links();
    let out = check(
        &project,
        "image \"a\" {\n  copy \"etclink/passwd\" { to = \"/etc/passwd\" }\n}\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("error[H0100]"), "{err}");
    assert!(err.contains("proj/main.himg:2:8"), "{err}");
    assert!(err.contains("leads outside the project root"), "{err}");
    // The build is refused the same way and writes nothing.
    std::fs::write(
        project.path("proj/main.himg"),
        "image \"a\" {\n  copy \"etclink/passwd\" { to = \"/etc/passwd\" }\n}\n",
    )
    .expect("write");
    let out = project.himg(&["build", "proj/main.himg", "--out", "o"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!project.path("o").exists());
}

#[test]
fn a_copy_of_a_symlink_copies_the_link_not_its_target() {
    let project = project_with_links();
    // The link itself lies in the project: it is copied as a symlink, its target is never read.
    let out = check(
        &project,
        "image \"a\" {\n  copy \"secretlink\" { to = \"/secret\" }\n}\n",
    );
    assert_success(&out, "check of a copied symlink");
}

#[test]
fn a_symlink_inside_a_copied_tree_is_copied_as_a_link_and_never_followed() {
    let project = project_with_links();
    std::fs::create_dir_all(project.path("proj/tree")).expect("mkdir");
    std::fs::write(project.path("proj/tree/a.txt"), "hi\n").expect("write");
    symlink("/etc", project.path("proj/tree/etclink")).expect("symlink");
    std::fs::write(
        project.path("proj/main.himg"),
        "image \"a\" {\n  copy \"tree\" { to = \"/t\" }\n}\n",
    )
    .expect("write");
    let out = project.himg(&["build", "proj/main.himg", "--out", "o"]);
    assert_success(&out, "build of a tree holding a symlink to /etc");
    let out = project.himg(&["inspect", "o", "--json"]);
    assert_success(&out, "inspect");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    // `/t`, `/t/a.txt` and the link `/t/etclink`: one regular file of three bytes, nothing of /etc.
    assert_eq!(report["layers"][0]["paths"], 3, "{report}");
    assert_eq!(report["totals"]["files"], 1, "{report}");
    assert_eq!(report["totals"]["content_size"], 3, "{report}");
}

#[test]
fn an_import_through_a_symlink_out_of_the_project_is_refused_without_quoting_it() {
    let project = project_with_links();
    std::fs::create_dir_all(project.path("outside")).expect("mkdir");
    std::fs::write(
        project.path("outside/lib.himg"),
        "let x = TOP-SECRET-CONTENT\n",
    )
    .expect("write");
    symlink("../outside", project.path("proj/outlink")).expect("symlink");
    symlink("../outside/lib.himg", project.path("proj/lib.himg")).expect("symlink");
    for (import, code) in [
        ("etclink/passwd", "H0106"),
        ("outlink/lib.himg", "H0100"),
        ("lib.himg", "H0100"),
    ] {
        let out = check(
            &project,
            &format!("let x = import \"{import}\"\n\nimage \"a\" {{}}\n"),
        );
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(&format!("error[{code}]")), "{import}: {err}");
        assert!(err.contains("proj/main.himg:1:"), "{import}: {err}");
        assert!(!err.contains("root:"), "{import}: quotes the file: {err}");
        assert!(
            !err.contains("TOP-SECRET"),
            "{import}: quotes the file: {err}"
        );
    }
}

#[test]
fn a_keyring_or_vex_file_through_a_symlink_out_of_the_project_is_refused() {
    let project = project_with_links();
    std::fs::create_dir_all(project.path("outside")).expect("mkdir");
    std::fs::write(project.path("outside/k.gpg"), "key").expect("write");
    std::fs::write(project.path("outside/v.json"), "{}").expect("write");
    symlink("../outside", project.path("proj/outlink")).expect("symlink");
    let out = check(
        &project,
        "image \"a\" {\n  repository \"r\" {\n    url = \"http://127.0.0.1:9/debian\"\n    suites = [\"trixie\"]\n    keyring = \"outlink/k.gpg\"\n  }\n  packages = [\"x\"]\n  vex = [\"outlink/v.json\"]\n}\n",
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.matches("error[H0100]").count(), 2, "{err}");
}

#[test]
fn a_wider_project_root_admits_what_lies_inside_it() {
    let project = project_with_links();
    std::fs::write(project.path("shared.himg"), "let port = 8080\n").expect("write");
    let text = "let shared = import \"../shared.himg\"\n\nimage \"a\" { ports = [shared.port] }\n";
    let out = check(&project, text);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("error[H0100]"), "{}", stderr(&out));
    let root = project.path("");
    let out = project.himg(&[
        "check",
        "--project-root",
        root.to_str().expect("utf-8 path"),
        "proj/main.himg",
    ]);
    assert_success(&out, "check with --project-root");
    // The file itself must lie inside the root.
    let out = project.himg(&["check", "--project-root", "proj/sub", "proj/main.himg"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not inside the project root"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_fifo_is_refused_at_once_as_an_import_and_as_a_copy() {
    let project = project_with_links();
    let fifo = project.path("proj/pipe.himg");
    nix_mkfifo(&fifo);
    for text in [
        "let x = import \"pipe.himg\"\n\nimage \"a\" {}\n",
        "image \"a\" {\n  copy \"pipe.himg\" { to = \"/pipe\" }\n}\n",
    ] {
        std::fs::write(project.path("proj/main.himg"), text).expect("write");
        let out = check_within(&project, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("error[H0101]"), "{err}");
        assert!(err.contains("is a FIFO"), "{err}");
    }
}

/// `himg check proj/main.himg`, killed (and the test failed) if it runs longer than `limit`.
fn check_within(project: &Project, limit: Duration) -> std::process::Output {
    let mut child = std::process::Command::new(common::himg_bin())
        .current_dir(project.path(""))
        .env("HIMG_STORE", &project.store)
        .args(["check", "proj/main.himg"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn himg");
    let started = Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("himg check hung on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("output")
}

/// Makes a FIFO with mkfifo(1) (git cannot hold one).
fn nix_mkfifo(path: &std::path::Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo failed");
}

#[test]
fn fmt_reports_invalid_utf8_like_check() {
    let project = Project::new();
    std::fs::write(project.path("bad.himg"), b"let x = \"\xff\"\n").expect("write");
    let check = project.himg(&["check", "bad.himg"]);
    let fmt = project.himg(&["fmt", "bad.himg"]);
    assert_eq!(check.status.code(), Some(1), "{}", stderr(&check));
    assert_eq!(fmt.status.code(), Some(1), "{}", stderr(&fmt));
    assert!(stderr(&fmt).contains("error[H0010]"), "{}", stderr(&fmt));
    assert!(stderr(&fmt).contains("bad.himg:1:10"), "{}", stderr(&fmt));
}
