//! The fixture repository is a real apt repository: apt itself (gpgv, hashes, by-hash) accepts
//! it, downloads its packages, and refuses it once tampered. Needs `apt-get` (Debian hosts);
//! elsewhere the test says so and passes without checking.

#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::Command;

use support::{DebBuilder, RepoBuilder, TestKey};

fn apt(dir: &Path, args: &[&str]) -> (bool, String) {
    let d = |p: &str| dir.join(p).display().to_string();
    let opts = [
        format!("Dir::Etc::SourceList={}", d("sources.list")),
        "Dir::Etc::SourceParts=/nonexistent".to_string(),
        format!("Dir::State::Lists={}", d("lists")),
        format!("Dir::State::status={}", d("status")),
        format!("Dir::Cache={}", d("cache")),
        "Debug::NoLocking=1".to_string(),
        "APT::Architecture=amd64".to_string(),
        "APT::Sandbox::User=root".to_string(),
    ];
    let mut cmd = Command::new(args[0]);
    for o in &opts {
        cmd.arg("-o").arg(o);
    }
    let out = cmd
        .args(&args[1..])
        .current_dir(dir.join("dl"))
        .output()
        .expect("run apt");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // apt-get update exits 0 even when an index is refused; errors are `E:`/`W:` lines.
    (
        out.status.success()
            && !text
                .lines()
                .any(|l| l.starts_with("E:") || l.starts_with("W: GPG")),
        text,
    )
}

#[test]
fn apt_accepts_the_fixture_and_refuses_it_tampered() {
    assert!(
        Command::new("apt-get")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "the test needs apt-get (bash tests/run.sh installs it)"
    );
    let key = TestKey::generate("archive");
    let hello = DebBuilder::new("hello", "1.0-1", "amd64")
        .file("/usr/bin/hello", b"#!/bin/sh\necho hi\n", 0o755)
        .build()
        .expect("deb");
    let doc = DebBuilder::new("hello-doc", "1.0-1", "all")
        .file("/usr/share/doc/hello-doc/README", b"doc\n", 0o644)
        .build()
        .expect("deb");
    let mut rb = RepoBuilder::new();
    rb.sign_with(&key)
        .suite("trixie")
        .add("main", &hello)
        .add("main", &doc);
    let repo = rb.write_temp().expect("repo");

    let dir = tempfile::tempdir().expect("tmp");
    for sub in ["lists/partial", "cache/archives/partial", "dl"] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
    }
    std::fs::write(dir.path().join("status"), "").expect("status");
    std::fs::write(dir.path().join("key.gpg"), key.public_keyring()).expect("key");
    std::fs::write(
        dir.path().join("sources.list"),
        format!(
            "deb [signed-by={}] {} trixie main\n",
            dir.path().join("key.gpg").display(),
            repo.file_url()
        ),
    )
    .expect("sources");

    let (ok, out) = apt(dir.path(), &["apt-get", "update"]);
    assert!(ok, "apt-get update refused the fixture:\n{out}");
    let (ok, out) = apt(dir.path(), &["apt-cache", "show", "hello", "hello-doc"]);
    assert!(ok && out.contains("Package: hello-doc"), "{out}");
    let (ok, out) = apt(dir.path(), &["apt-get", "download", "hello", "hello-doc"]);
    assert!(ok, "apt-get download: {out}");
    assert_eq!(
        std::fs::read(dir.path().join("dl/hello_1.0-1_amd64.deb")).expect("downloaded"),
        hello.bytes
    );

    repo.tamper_inrelease_body("trixie").expect("tamper");
    std::fs::remove_dir_all(dir.path().join("lists")).expect("rm lists");
    std::fs::create_dir_all(dir.path().join("lists/partial")).expect("mkdir");
    let (ok, out) = apt(dir.path(), &["apt-get", "update"]);
    assert!(!ok, "apt-get update accepted a tampered InRelease:\n{out}");
    assert!(out.contains("BADSIG"), "refused for the signature:\n{out}");
}
