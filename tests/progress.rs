//! Transfer progress and registry errors on the command line: without a terminal, a transfer
//! prints a plain progress line every `HIMG_PROGRESS_INTERVAL_MS` (made short here); `-q` prints
//! none; a missing tag names the registry's error code and a hint, not its raw JSON; `--insecure`
//! is accepted by every command that takes a registry reference; a build on a registry base and a
//! command reading a reference show the pull the same way.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::registry::Registry;
use sha2::Digest as _;

fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Writes an OCI layout at `dir` whose one image has a layer holding one file of `size`
/// pseudo-random bytes.
fn big_layout(dir: &Path, size: usize) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let put = |bytes: &[u8]| {
        let hex = sha(bytes);
        std::fs::write(blobs.join(&hex), bytes).unwrap();
        format!("sha256:{hex}")
    };
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let layer: Vec<u8> = (0..size / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    // A real tar (one file of those bytes), so that an image built on it can read it back.
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(layer.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, "big", layer.as_slice())
        .unwrap();
    let layer = tar.into_inner().unwrap();
    let layer_digest = put(&layer);
    let config = serde_json::to_vec(&serde_json::json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_digest]}})).unwrap();
    let config = config.as_slice();
    let config_digest = put(config);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let manifest_digest = put(&manifest);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len(), "annotations": {"org.opencontainers.image.ref.name": "big"}}],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

fn himg(store: &Path, args: &[&str]) -> Output {
    Command::new(common::himg_bin())
        .env("HIMG_STORE", store)
        .env("HIMG_PROGRESS_INTERVAL_MS", "1")
        .env_remove("CI")
        .args(args)
        .output()
        .expect("run himg")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn progress_lines<'a>(err: &'a str, verb: &str) -> Vec<&'a str> {
    err.lines()
        .filter(|l| l.trim_start().starts_with(verb) && l.contains("/s) "))
        .collect()
}

#[test]
fn a_long_push_and_pull_print_periodic_progress_lines_and_quiet_prints_none() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let layout = tmp.path().join("layout");
    big_layout(&layout, 24 << 20);
    let reference = format!("{}/big:v1", reg.host());

    let out = himg(&store, &["push", layout.to_str().unwrap(), &reference]);
    common::assert_success(&out, "push");
    let err = stderr(&out);
    let lines = progress_lines(&err, "Pushing");
    assert!(!lines.is_empty(), "no progress line in:\n{err}");
    assert!(
        lines.iter().any(|l| l.contains("/24.0 MiB (")),
        "the total is shown: {lines:?}"
    );
    assert!(lines.iter().all(|l| l.ends_with(&reference)), "{lines:?}");
    assert!(err.contains("24.0 MiB"), "the summary in MiB:\n{err}");

    let pulled = tmp.path().join("pulled");
    let out = himg(
        &store,
        &["pull", &reference, "--out", pulled.to_str().unwrap()],
    );
    common::assert_success(&out, "pull");
    let err = stderr(&out);
    assert!(!progress_lines(&err, "Pulling").is_empty(), "{err}");

    // A command that reads a registry reference (inspect, scan, sbom, audit) pulls it the same way.
    let out = himg(&store, &["inspect", &reference]);
    common::assert_success(&out, "inspect a reference");
    let err = stderr(&out);
    assert!(!progress_lines(&err, "Pulling").is_empty(), "{err}");

    let quiet = tmp.path().join("quiet");
    let out = himg(
        &store,
        &["-q", "pull", &reference, "--out", quiet.to_str().unwrap()],
    );
    common::assert_success(&out, "pull -q");
    assert_eq!(stderr(&out), "", "-q prints nothing");
    let out = himg(
        &store,
        &[
            "--quiet",
            "push",
            layout.to_str().unwrap(),
            &format!("{}/big:v2", reg.host()),
        ],
    );
    common::assert_success(&out, "push -q");
    assert!(progress_lines(&stderr(&out), "Pushing").is_empty());
}

#[test]
fn a_build_on_a_registry_base_shows_the_base_being_pulled() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    big_layout(&layout, 8 << 20);
    let reference = format!("{}/base:v1", reg.host());
    let pusher = tmp.path().join("pusher");
    let out = himg(
        &pusher,
        &["push", layout.to_str().unwrap(), &reference, "--json"],
    );
    common::assert_success(&out, "push");
    let pushed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let digest = pushed["digest"].as_str().unwrap();
    let file = tmp.path().join("app.himg");
    std::fs::write(
        &file,
        format!(
            "image \"app\" {{\n  from = \"{reference}@{digest}\"\n  env = {{ MODE = \"on\" }}\n}}\n"
        ),
    )
    .unwrap();
    // A fresh store: the build pulls the base first, with the same progress lines as `himg pull`.
    let out = Command::new(common::himg_bin())
        .env("HIMG_STORE", tmp.path().join("store"))
        .env("HIMG_CONFIG_DIR", tmp.path().join("config"))
        .env("HIMG_PROGRESS_INTERVAL_MS", "1")
        .env_remove("CI")
        .current_dir(tmp.path())
        .args(["build", "app.himg", "--no-sbom", "--out", "out"])
        .output()
        .unwrap();
    common::assert_success(&out, "build on the registry base");
    let err = stderr(&out);
    assert!(!progress_lines(&err, "Pulling").is_empty(), "{err}");
    assert!(
        err.contains(&format!("Pulled base {reference}@{digest}")),
        "{err}"
    );
}

#[test]
fn a_short_transfer_prints_no_progress_line_by_default() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    big_layout(&layout, 64 << 10);
    let out = Command::new(common::himg_bin())
        .env("HIMG_STORE", tmp.path().join("store"))
        .env_remove("HIMG_PROGRESS_INTERVAL_MS")
        .args([
            "push",
            layout.to_str().unwrap(),
            &format!("{}/small:v1", reg.host()),
        ])
        .output()
        .unwrap();
    common::assert_success(&out, "push");
    assert!(progress_lines(&stderr(&out), "Pushing").is_empty());
}

#[test]
fn a_missing_tag_names_the_registry_error_and_a_hint() {
    let reg = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let layout = tmp.path().join("layout");
    big_layout(&layout, 1 << 10);
    let out = himg(
        &store,
        &[
            "push",
            layout.to_str().unwrap(),
            &format!("{}/app:v1", reg.host()),
        ],
    );
    common::assert_success(&out, "push");
    let out = himg(
        &store,
        &[
            "pull",
            &format!("{}/app:nope", reg.host()),
            "--out",
            tmp.path().join("o").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("HTTP 404: MANIFEST_UNKNOWN"), "{err}");
    assert!(err.contains("hint: check the reference"), "{err}");
    assert!(!err.contains("{\"errors\""), "no raw JSON: {err}");
}

#[test]
fn every_command_taking_a_registry_reference_accepts_insecure() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    for cmd in [
        "sbom",
        "scan",
        "audit",
        "inspect",
        "inventory",
        "promote",
        "pull",
        "push",
    ] {
        let out = himg(&store, &[cmd, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("--insecure"), "{cmd} --help: {help}");
    }
    let reg = Registry::start();
    let layout = tmp.path().join("layout");
    big_layout(&layout, 1 << 10);
    let reference = format!("{}/ins:v1", reg.host());
    let out = himg(
        &store,
        &["push", "--insecure", layout.to_str().unwrap(), &reference],
    );
    common::assert_success(&out, "push --insecure");
    let out = himg(&store, &["sbom", "--insecure", &reference]);
    common::assert_success(&out, "sbom --insecure");
}
