//! The registry operations called directly, without spawning the binary: a built image pushed to
//! Debian's `docker-registry` on 127.0.0.1 keeps its local manifest digest, and a promotion
//! through its policy gate copies that digest with a signed record beside it.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::registry::Registry;
use himg::cache::{SecretKey, TrustedKeys};
use himg::ops::Session;
use himg::ops::build::{BuildOptions, build};
use himg::ops::promote::{PromoteOptions, promote};
use himg::ops::push::{PushOptions, push};
use himg::printer::{ColorChoice, Printer};
use himg::registry::{Client, ClientOptions, Reference};

/// A one-file image run as a non-root user: nothing to compile, nothing to fetch.
const TINY: &str = r#"
image "tiny" {
  architectures = ["amd64"]
  run_as = "app"
  group "app" { gid = 10001 }
  user "app" { uid = 10001, gid = 10001 }
  file "/etc/tiny.conf" { text = "tiny = true\n" }
}
"#;

/// Builds `TINY` in `dir` (store `dir/store`) into `dir/out`; returns the manifest digest.
fn build_tiny(session: &Session<'_>, dir: &Path) -> String {
    let file = dir.join("tiny.himg");
    std::fs::write(&file, TINY).unwrap();
    let built = build(session, &BuildOptions::new(&file, dir.join("out"))).unwrap();
    assert_eq!(built.images.len(), 1);
    built.images[0].top.digest.to_string()
}

fn session_in<'p>(printer: &'p Printer, dir: &Path) -> Session<'p> {
    Session::new(printer).with_store(Some(dir.join("store")))
}

/// Pushes `dir/out` to `REGISTRY/REPO_TAG`; returns the pushed manifest digest.
fn push_tiny(session: &Session<'_>, dir: &Path, registry: &Registry, repo_tag: &str) -> String {
    let reference: Reference = format!("{}/{repo_tag}", registry.host()).parse().unwrap();
    let pushed = push(session, &PushOptions::new(&dir.join("out"), reference)).unwrap();
    assert_eq!(pushed.json()["digest"], pushed.report.manifest_digest);
    pushed.report.manifest_digest
}

fn client() -> Client {
    Client::new(ClientOptions {
        insecure: true,
        ..ClientOptions::default()
    })
}

#[test]
fn a_pushed_image_keeps_its_manifest_digest() {
    let printer = Printer::new(true, ColorChoice::Never);
    let dir = tempfile::tempdir().unwrap();
    let session = session_in(&printer, dir.path());
    let digest = build_tiny(&session, dir.path());
    let registry = Registry::start();
    let pushed = push_tiny(&session, dir.path(), &registry, "ops/tiny:1");
    assert_eq!(pushed, digest);
    let reference: Reference = format!("{}/ops/tiny:1", registry.host()).parse().unwrap();
    let (_, bytes, served) = client().manifest(&reference).unwrap();
    assert_eq!(served, digest, "the registry serves the local manifest");
    let local = std::fs::read(
        dir.path()
            .join("out/blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    assert_eq!(bytes, local, "byte for byte");
}

#[test]
fn a_promotion_through_the_policy_gate_copies_the_digest_and_records_it() {
    let printer = Printer::new(true, ColorChoice::Never);
    let dir = tempfile::tempdir().unwrap();
    let session = session_in(&printer, dir.path());
    build_tiny(&session, dir.path());
    let registry = Registry::start();
    let digest = push_tiny(&session, dir.path(), &registry, "dev/tiny:1");
    let key = SecretKey::generate("rel").unwrap();
    let key_file = dir.path().join("rel.key");
    key.save(&key_file).unwrap();

    let at = |repo_tag: &str| format!("{}/{repo_tag}", registry.host());
    let promoted = promote(
        &session,
        &PromoteOptions {
            source: at("dev/tiny:1"),
            destination: at("staging/tiny:1"),
            stage: "staging".into(),
            policy: Some("baseline".into()),
            sign_key: Some(key_file.display().to_string()),
            ..PromoteOptions::default()
        },
    )
    .unwrap();
    assert_eq!(promoted.digest, digest);
    assert_eq!(promoted.signer, "rel");
    let gates = &promoted.record.record.gates;
    assert_eq!(gates.len(), 1, "{gates:?}");
    assert_eq!(gates[0].gate, "policy:baseline");
    assert!(gates[0].passed);

    let staging: Reference = at("staging/tiny:1").parse().unwrap();
    let (_, _, served) = client().manifest(&staging).unwrap();
    assert_eq!(served, digest, "staging serves the dev digest");
    let record = himg::promote::fetch_record(&client(), &staging, &digest, "staging")
        .unwrap()
        .expect("a staging record");
    let trusted = TrustedKeys::new([key.public()]);
    assert_eq!(record.verify(&trusted).unwrap(), "rel");
    assert_eq!(record.record.destination, at("staging/tiny:1"));
}
