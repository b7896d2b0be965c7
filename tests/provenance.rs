//! SLSA provenance: `himg provenance` prints an in-toto Statement v1 that the in-toto attestation
//! bindings accept as SLSA provenance v1 (strict protobuf parsing of the predicate); it is
//! byte-identical from two stores; `--sign` gives a DSSE envelope whose Ed25519 signature verifies
//! with the key's public half and fails after tampering; a Debian fixture image lists every locked
//! `.deb` with the lock's sha256; `himg push --provenance` attaches the envelope as
//! `sha256-<hex>.att` referring to the image.

#![allow(clippy::unwrap_used)]

mod common;
#[allow(dead_code)]
mod support;

use std::path::Path;
use std::process::{Command, Output};

use common::registry::Registry;
use common::{Project, assert_success, require_tool, run_tool};
use himg::cache::sign::{PublicKey, TrustedKeys};
use himg::provenance::{self, Envelope};
use serde_json::Value;
use support::{DebBuilder, TestKey};

/// The in-toto attestation bindings accept `path` as an in-toto Statement v1 whose predicate is
/// SLSA provenance v1: unknown or mistyped predicate fields are errors, every resource descriptor
/// is valid and its digests are sha256 hex.
fn validate_statement(path: &Path) {
    require_tool("python3");
    let script = r#"
import json, re, sys
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
doc = json.load(open(sys.argv[1]))
statement = Statement.copy_from_pb(json_format.ParseDict(doc, statement_pb2.Statement()))
statement.validate()
assert statement.pb.predicate_type == "https://slsa.dev/provenance/v1", statement.pb.predicate_type
provenance = json_format.ParseDict(doc["predicate"], provenance_pb2.Provenance())
definition = provenance.build_definition
assert definition.build_type, "buildType is required"
assert len(definition.external_parameters) > 0, "externalParameters is required"
assert provenance.run_details.builder.id, "builder.id is required"
for rd in list(definition.resolved_dependencies) + list(statement.pb.subject):
    ResourceDescriptor.copy_from_pb(rd).validate()
    for alg, value in rd.digest.items():
        assert alg == "sha256" and re.fullmatch("[0-9a-f]{64}", value), (alg, value)
"#;
    run_tool(Command::new("python3").arg("-c").arg(script).arg(path));
}

/// `himg ARGS` with the project's store and a config directory of its own (for keys).
fn himg(project: &Project, store: &Path, args: &[&str]) -> Output {
    Command::new(common::himg_bin())
        .current_dir(project.dir.path())
        .env("HIMG_STORE", store)
        .env("HIMG_CONFIG_DIR", project.path("config"))
        .env_remove("SOURCE_DATE_EPOCH")
        .args(args)
        .output()
        .expect("run himg")
}

/// `himg key generate NAME` in the project's config directory; returns the public key.
fn generate_key(project: &Project, name: &str) -> PublicKey {
    let o = himg(project, &project.store, &["key", "generate", name]);
    assert_success(&o, "himg key generate");
    PublicKey::parse(String::from_utf8(o.stdout).unwrap().trim()).unwrap()
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn hello_provenance_validates_and_is_reproducible() {
    let project = Project::new();
    let report = project.build("examples/prebuilt.himg", "out");
    let digest = common::image(&report, "hello")["digest"]
        .as_str()
        .unwrap()
        .to_owned();
    let o = himg(
        &project,
        &project.store,
        &["provenance", "examples/prebuilt.himg", "--out", "one.json"],
    );
    assert_success(&o, "himg provenance --out");
    validate_statement(&project.path("one.json"));
    let statement: Value = serde_json::from_slice(&read(&project.path("one.json"))).unwrap();
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(statement["subject"][0]["name"], "hello");
    assert_eq!(
        format!(
            "sha256:{}",
            statement["subject"][0]["digest"]["sha256"]
                .as_str()
                .unwrap()
        ),
        digest
    );
    let definition = &statement["predicate"]["buildDefinition"];
    assert_eq!(definition["buildType"], "urn:himg:build:v1");
    assert_eq!(
        definition["externalParameters"],
        serde_json::json!({"file": "examples/prebuilt.himg", "image": "hello", "architecture": "amd64"})
    );
    assert_eq!(definition["internalParameters"]["SOURCE_DATE_EPOCH"], "1");
    assert_eq!(
        definition["resolvedDependencies"][0]["digest"]["sha256"],
        sha256_hex(&read(&project.path("examples/prebuilt.himg")))
    );
    // Every copied project file, by path and sha256; what the copy's globs leave out is not listed.
    let deps = definition["resolvedDependencies"].as_array().unwrap();
    let names: Vec<&str> = deps.iter().filter_map(|d| d["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "examples/prebuilt.himg",
            "examples/hello/build/hello",
            "examples/hello/site/about.html",
            "examples/hello/site/index.html"
        ]
    );
    for dep in &deps[1..] {
        let path = project.path(dep["name"].as_str().unwrap());
        assert_eq!(dep["digest"]["sha256"], sha256_hex(&read(&path)), "{dep}");
    }
    assert_eq!(
        statement["predicate"]["runDetails"]["builder"]["id"],
        "urn:himg:builder:v1"
    );

    // Byte-identical from another store (everything rebuilt), and on stdout.
    let o = himg(
        &project,
        &project.path("store2"),
        &[
            "provenance",
            "examples/prebuilt.himg",
            "--image",
            "hello",
            "--arch",
            "amd64",
        ],
    );
    assert_success(&o, "himg provenance in a second store");
    assert!(project.path("store2").exists());
    assert_eq!(
        String::from_utf8(o.stdout).unwrap(),
        format!(
            "{}\n",
            String::from_utf8(read(&project.path("one.json"))).unwrap()
        )
    );

    // An architecture the file does not build is refused (exit 1, a usage-like selection error).
    let o = himg(
        &project,
        &project.store,
        &["provenance", "examples/prebuilt.himg", "--arch", "riscv64"],
    );
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn signed_envelope_verifies_and_detects_tampering() {
    let project = Project::new();
    let public = generate_key(&project, "prov-test");
    let sign = |out: &str| {
        let o = himg(
            &project,
            &project.store,
            &[
                "provenance",
                "examples/prebuilt.himg",
                "--sign",
                "--sign-key",
                "prov-test",
                "--out",
                out,
            ],
        );
        assert_success(&o, "himg provenance --sign");
        read(&project.path(out))
    };
    let bytes = sign("env1.json");
    // Ed25519 is deterministic: the envelope is reproducible too.
    assert_eq!(bytes, sign("env2.json"));
    let raw: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(raw["payloadType"], "application/vnd.in-toto+json");
    assert_eq!(raw["signatures"][0]["keyid"], "prov-test");

    let envelope = Envelope::parse(&bytes).unwrap();
    let trusted = TrustedKeys::new([public]);
    let (key, statement) = envelope.verify(&trusted).unwrap();
    assert_eq!(key, "prov-test");
    // The payload is the bare statement, byte for byte.
    let bare = himg(
        &project,
        &project.store,
        &["provenance", "examples/prebuilt.himg"],
    );
    assert_success(&bare, "himg provenance");
    let bare_statement: Value = serde_json::from_slice(&bare.stdout).unwrap();
    assert_eq!(statement, bare_statement);
    {
        use base64::Engine;
        let payload = base64::engine::general_purpose::STANDARD
            .decode(&envelope.payload)
            .unwrap();
        assert_eq!(
            format!("{}\n", String::from_utf8(payload).unwrap()),
            String::from_utf8(bare.stdout).unwrap()
        );
    }

    // Tampering with the payload (another subject digest) breaks the signature.
    let mut tampered = envelope.clone();
    {
        use base64::Engine;
        let engine = base64::engine::general_purpose::STANDARD;
        let text = String::from_utf8(engine.decode(&envelope.payload).unwrap()).unwrap();
        let hex = statement["subject"][0]["digest"]["sha256"]
            .as_str()
            .unwrap();
        tampered.payload = engine.encode(text.replace(hex, &"0".repeat(64)));
    }
    assert!(matches!(
        tampered.verify(&trusted),
        Err(provenance::ProvenanceError::Signature(_))
    ));
    // Another key is not trusted.
    let other = himg::cache::sign::SecretKey::generate("other").unwrap();
    assert!(
        envelope
            .verify(&TrustedKeys::new([other.public()]))
            .is_err()
    );
}

#[test]
fn debian_fixture_lists_locked_debs_with_the_lock_sha256() {
    let project = Project::new();
    let key = TestKey::generate("provenance fixture");
    let debs = vec![
        DebBuilder::new("app-fixture", "1:2.0-1", "amd64")
            .depends("libgreet (>= 1.0)")
            .file("./usr/bin/app-fixture", b"app\n", 0o755)
            .build()
            .unwrap(),
        DebBuilder::new("libgreet", "1.0-1", "amd64")
            .file(
                "./usr/lib/x86_64-linux-gnu/libgreet.so.1",
                b"greet\n",
                0o644,
            )
            .build()
            .unwrap(),
    ];
    let server = support::serve_fixture(&project.path(""), &key, "stable", &debs).unwrap();
    std::fs::write(
        project.path("fx.himg"),
        format!(
            r#"image "fx" {{
  repository "fixture" {{
    url = "{}"
    suites = ["stable"]
    keyring = "fixture.gpg"
  }}
  packages = ["app-fixture"]
}}
"#,
            server.base_url
        ),
    )
    .unwrap();
    let o = himg(
        &project,
        &project.store,
        &["provenance", "fx.himg", "--out", "fx.json"],
    );
    assert_success(&o, "himg provenance fx.himg");
    validate_statement(&project.path("fx.json"));
    let statement: Value = serde_json::from_slice(&read(&project.path("fx.json"))).unwrap();
    let lock_bytes = read(&project.path("fx.himg.lock"));
    let lock: Value = serde_json::from_slice(&lock_bytes).unwrap();
    let locked = lock["images"]["fx"]["architectures"]["amd64"]
        .as_array()
        .unwrap();
    assert_eq!(locked.len(), 2);
    let deps = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .unwrap();
    assert_eq!(deps[0]["name"], "fx.himg");
    assert_eq!(deps[1]["name"], "fx.himg.lock");
    assert_eq!(deps[1]["digest"]["sha256"], sha256_hex(&lock_bytes));
    // The keyring the repository is trusted with is an input too.
    assert_eq!(deps[2]["name"], "fixture.gpg");
    assert_eq!(
        deps[2]["digest"]["sha256"],
        sha256_hex(&read(&project.path("fixture.gpg")))
    );
    for pkg in locked {
        let name = pkg["name"].as_str().unwrap();
        let dep = deps
            .iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not in {deps:?}"));
        assert_eq!(dep["digest"]["sha256"], pkg["sha256"]);
        assert_eq!(
            dep["uri"],
            format!("mirror://fixture/{}", pkg["filename"].as_str().unwrap())
        );
        assert_eq!(dep["annotations"]["version"], pkg["version"]);
        // The lock's sha256 is the .deb's.
        let deb = debs
            .iter()
            .find(|d| d.file_name().starts_with(name))
            .unwrap();
        assert_eq!(pkg["sha256"], deb.sha256_hex());
    }
    assert_eq!(deps.len(), 3 + locked.len());
    // Sorted by package name; nothing names a host.
    let names: Vec<&str> = deps[3..]
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app-fixture", "libgreet"]);
    let text = String::from_utf8(read(&project.path("fx.json"))).unwrap();
    assert!(!text.contains("127.0.0.1"), "{text}");
}

#[test]
fn push_attaches_the_signed_provenance() {
    use himg::registry::artifact;
    require_tool("skopeo");
    let project = Project::new();
    let public = generate_key(&project, "prov-push");
    let public_text = public.to_string();
    let reg = Registry::start();
    let reference = format!("127.0.0.1:{}/team/hello:1", reg.port);
    let o = himg(
        &project,
        &project.store,
        &[
            "push",
            "examples/prebuilt.himg",
            &reference,
            "--insecure",
            "--provenance",
            "--sign-key",
            "prov-push",
            "--json",
        ],
    );
    assert_success(&o, "himg push --provenance");
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    let digest = report["digest"].as_str().unwrap().to_owned();
    let hex = digest.trim_start_matches("sha256:");
    let attached = report["provenance"].as_array().unwrap();
    assert_eq!(attached.len(), 1, "{report}");
    assert_eq!(attached[0]["tag"], format!("sha256-{hex}.att"));

    // What any registry client sees under the tag: an artifact whose subject is the image.
    let raw = run_tool(Command::new("skopeo").args([
        "inspect",
        "--tls-verify=false",
        "--raw",
        &format!(
            "docker://127.0.0.1:{}/team/hello:sha256-{hex}.att",
            reg.port
        ),
    ]));
    let manifest: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        manifest["artifactType"],
        "application/vnd.dsse.envelope.v1+json"
    );
    assert_eq!(manifest["subject"]["digest"], digest.as_str());

    // Its payload is the signed envelope `himg provenance --sign` prints, about the pushed image.
    let client = himg::registry::Client::new(himg::registry::ClientOptions {
        insecure: true,
        ..Default::default()
    });
    let repo: himg::registry::Reference = reference.parse().unwrap();
    let tag = artifact::tag(&digest, provenance::ENVELOPE_TAG_SUFFIX).unwrap();
    let payload = artifact::fetch(
        &client,
        &repo,
        &tag,
        provenance::ENVELOPE_ARTIFACT_TYPE,
        &digest,
        1 << 24,
    )
    .unwrap()
    .expect("an attached envelope");
    let envelope = Envelope::parse(&payload).unwrap();
    let (key, statement) = envelope.verify(&TrustedKeys::new([public])).unwrap();
    assert_eq!(key, "prov-push");
    provenance::check_subject(&statement, &digest).unwrap();
    let local = himg(
        &project,
        &project.store,
        &[
            "provenance",
            "examples/prebuilt.himg",
            "--sign",
            "--sign-key",
            "prov-push",
        ],
    );
    assert_success(&local, "himg provenance --sign");
    assert_eq!(
        String::from_utf8(local.stdout).unwrap(),
        format!("{}\n", String::from_utf8(payload).unwrap())
    );

    // `himg provenance --verify` accepts it with the signer's public key, and only with it.
    let verify = |reference: &str, key: &str| {
        himg(
            &project,
            &project.store,
            &[
                "provenance",
                "--verify",
                reference,
                "--trusted-key",
                key,
                "--json",
            ],
        )
    };
    let o = verify(&reference, &public_text);
    assert_success(&o, "himg provenance --verify");
    let verified: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(verified["verified"][0]["subject"], digest.as_str());
    assert_eq!(verified["verified"][0]["key"], "prov-push");
    assert_eq!(verified["verified"][0]["statement"], statement);
    let stranger = himg::cache::sign::SecretKey::generate("prov-push")
        .unwrap()
        .public()
        .to_string();
    let o = verify(&reference, &stranger);
    assert_eq!(
        o.status.code(),
        Some(13),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // An image pushed without provenance has none to verify.
    let bare = format!("127.0.0.1:{}/team/bare:1", reg.port);
    assert_success(
        &himg(
            &project,
            &project.store,
            &["push", "examples/prebuilt.himg", &bare, "--insecure"],
        ),
        "himg push",
    );
    let o = verify(&bare, &public_text);
    assert_eq!(
        o.status.code(),
        Some(13),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no provenance is attached"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
