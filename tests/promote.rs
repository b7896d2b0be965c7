//! `himg promote` end to end against Debian's `docker-registry` on 127.0.0.1: hello is pushed to
//! `dev/hello:1` and promoted dev → staging → prod. Each promotion copies the manifest byte for
//! byte (skopeo reads it back), leaves a signed record artifact under the referrers tag schema, and
//! refuses — pushing nothing — when a gate fails: a policy violation (exit 5), a vulnerability gate
//! with no database (exit 1), a finding at the `--fail-on` severity (exit 11), a missing, untrusted
//! or tampered stage record (exit 12).

#![allow(clippy::unwrap_used)]

mod common;
#[allow(dead_code)]
mod support;

use std::process::{Command, Output};

use common::registry::Registry;
use common::{Project, assert_success, require_tool};
use himg::cache::{PublicKey, TrustedKeys};
use himg::promote::{self, SignedRecord, Subject};
use himg::registry::{Client, ClientOptions, OCI_MANIFEST, Reference};
use serde_json::{Value, json};
use support::{DebBuilder, TestKey};

const NOW: &str = "2026-03-04T05:06:07Z";

/// A project with hello built, a registry, and a signing key `rel` in its own config directory.
struct Stages {
    project: Project,
    registry: Registry,
    /// `rel:base64`, the public key of the only key in the config directory.
    public_key: String,
}

impl Stages {
    fn new() -> Stages {
        require_tool("skopeo");
        let project = Project::new();
        let registry = Registry::start();
        let stages = Stages {
            project,
            registry,
            public_key: String::new(),
        };
        let o = stages.himg(&["key", "generate", "rel"]);
        assert_success(&o, "himg key generate");
        let public_key = String::from_utf8(o.stdout).unwrap().trim().to_owned();
        assert!(public_key.starts_with("rel:"), "{public_key}");
        Stages {
            public_key,
            ..stages
        }
    }

    /// `himg ARGS` with the project's store, config directory and a fixed time.
    fn himg(&self, args: &[&str]) -> Output {
        Command::new(common::himg_bin())
            .current_dir(self.project.dir.path())
            .env("HIMG_STORE", &self.project.store)
            .env("HIMG_CONFIG_DIR", self.project.path("config"))
            .env("HIMG_NOW", NOW)
            .env_remove("SOURCE_DATE_EPOCH")
            .args(args)
            .output()
            .expect("run himg")
    }

    /// `HOST/REPO_TAG` on the test registry.
    fn at(&self, repo_tag: &str) -> String {
        format!("{}/{repo_tag}", self.registry.host())
    }

    /// Builds and pushes `file`'s image to `dev/NAME:1`; returns the local manifest bytes.
    fn push_dev(&self, file: &str, name: &str) -> (String, Vec<u8>) {
        let out = format!("{name}-out");
        let report = self.project.build(file, &out);
        let digest = report["images"][0]["digest"].as_str().unwrap().to_owned();
        let o = self.himg(&[
            "push",
            &out,
            &self.at(&format!("dev/{name}:1")),
            "--insecure",
        ]);
        assert_success(&o, "himg push");
        let manifest = std::fs::read(self.project.path(&format!(
            "{out}/blobs/sha256/{}",
            digest.trim_start_matches("sha256:")
        )))
        .unwrap();
        (digest, manifest)
    }

    /// The manifest bytes `skopeo inspect --raw` reads at `repo_tag`, or `None` when it fails.
    fn raw(&self, repo_tag: &str) -> Option<Vec<u8>> {
        let o = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}", self.at(repo_tag)))
            .output()
            .expect("run skopeo");
        o.status.success().then_some(o.stdout)
    }

    /// The tags of a repository (empty when it does not exist).
    fn tags(&self, repo: &str) -> Vec<String> {
        let client = client();
        client
            .tags(&self.at(repo).parse::<Reference>().unwrap())
            .unwrap()
    }
}

fn client() -> Client {
    Client::new(ClientOptions {
        insecure: true,
        ..ClientOptions::default()
    })
}

fn code(o: &Output) -> Option<i32> {
    o.status.code()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn record_tag(digest: &str, stage: &str) -> String {
    format!(
        "sha256-{}.{stage}.himg-promotion",
        digest.trim_start_matches("sha256:")
    )
}

/// dev → staging (policy gate) → prod (stage gate): byte-identical copies, signed records that
/// verify, `--show`; then prod is refused for an untrusted key, a missing record and a tampered one.
#[test]
fn one_digest_moves_through_stages_with_signed_records() {
    let s = Stages::new();
    let (digest, manifest) = s.push_dev("examples/prebuilt.himg", "hello");

    // dev → staging, gated by the baseline policy.
    let o = s.himg(&[
        "promote",
        &s.at("dev/hello:1"),
        &s.at("staging/hello:1"),
        "--stage",
        "staging",
        "--policy",
        "baseline",
        "--json",
    ]);
    assert_success(&o, "promote to staging");
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["digest"], digest.as_str(), "{report}");
    assert_eq!(report["stage"], "staging");
    assert_eq!(report["gates"][0]["gate"], "policy:baseline");
    assert_eq!(report["gates"][0]["passed"], true);
    assert_eq!(report["record"]["tag"], record_tag(&digest, "staging"));
    assert!(stderr(&o).contains(&digest), "the digest is printed");
    assert_eq!(
        s.raw("staging/hello:1").as_deref(),
        Some(manifest.as_slice()),
        "staging serves the dev manifest byte for byte"
    );

    // The record artifact: empty config, one record layer, the image as subject.
    let artifact: Value = serde_json::from_slice(
        &s.raw(&format!("staging/hello:{}", record_tag(&digest, "staging")))
            .expect("the record tag exists"),
    )
    .unwrap();
    assert_eq!(
        artifact["artifactType"],
        "application/vnd.himg.promotion.v1+json"
    );
    assert_eq!(
        artifact["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    assert_eq!(artifact["subject"]["digest"], digest.as_str());
    assert_eq!(artifact["subject"]["size"], manifest.len());
    let staging: Reference = s.at("staging/hello").parse().unwrap();
    // Listed as a referrer of the image (the fallback index: docker-registry has no referrers API).
    let referrers = himg::registry::artifact::referrers(&client(), &staging, &digest).unwrap();
    assert_eq!(referrers.len(), 1, "{referrers:?}");
    assert_eq!(
        referrers[0].artifact_type,
        "application/vnd.himg.promotion.v1+json"
    );
    assert_eq!(report["record"]["digest"], referrers[0].digest.as_str());
    let signed = promote::fetch_record(&client(), &staging, &digest, "staging")
        .unwrap()
        .expect("a staging record");
    let trusted = TrustedKeys::new([PublicKey::parse(&s.public_key).unwrap()]);
    assert_eq!(signed.verify(&trusted).unwrap(), "rel");
    assert_eq!(signed.record.digest, digest);
    assert_eq!(signed.record.stage, "staging");
    assert_eq!(signed.record.promoted_at, NOW);
    assert_eq!(signed.record.source, s.at("dev/hello:1"));
    assert_eq!(signed.record.destination, s.at("staging/hello:1"));

    // `--show` lists it, with a valid signature when the key is trusted.
    let o = s.himg(&[
        "promote",
        "--show",
        &s.at("staging/hello:1"),
        "--trusted-key",
        &s.public_key,
        "--json",
    ]);
    assert_success(&o, "promote --show");
    let shown: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["digest"], digest.as_str());
    assert_eq!(shown["records"][0]["record"]["stage"], "staging", "{shown}");
    assert_eq!(shown["records"][0]["signature"], "valid (`rel`)");
    let o = s.himg(&["promote", "--show", &s.at("staging/hello:1")]);
    assert_success(&o, "promote --show (text)");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("stage staging"), "{text}");
    assert!(text.contains("gate policy:baseline passed"), "{text}");

    // staging → prod with an untrusted key: refused, prod untouched.
    let other = s.himg(&[
        "key",
        "generate",
        "other",
        "--out",
        s.project.path("other.secret").to_str().unwrap(),
    ]);
    assert_success(&other, "key generate other");
    let other_key = String::from_utf8(other.stdout).unwrap().trim().to_owned();
    let to_prod = |from: &str, key: &str| {
        s.himg(&[
            "promote",
            &s.at(from),
            &s.at("prod/hello:1"),
            "--stage",
            "prod",
            "--require-stage",
            "staging",
            "--trusted-key",
            key,
            "--sign-key",
            "rel",
        ])
    };
    let o = to_prod("staging/hello:1", &other_key);
    assert_eq!(code(&o), Some(12), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("untrusted key(s) rel"),
        "{}",
        stderr(&o)
    );
    assert!(s.raw("prod/hello:1").is_none(), "prod has no manifest");

    // From dev, where no staging record exists: refused.
    let o = to_prod("dev/hello:1", &s.public_key);
    assert_eq!(code(&o), Some(12), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no `staging` promotion record"),
        "{}",
        stderr(&o)
    );
    assert!(s.raw("prod/hello:1").is_none(), "prod has no manifest");

    // From staging with the trusted key: promoted, the gate recorded.
    let o = to_prod("staging/hello:1", &s.public_key);
    assert_success(&o, "promote to prod");
    assert_eq!(s.raw("prod/hello:1").as_deref(), Some(manifest.as_slice()));
    let prod: Reference = s.at("prod/hello").parse().unwrap();
    let signed_prod = promote::fetch_record(&client(), &prod, &digest, "prod")
        .unwrap()
        .expect("a prod record");
    assert_eq!(signed_prod.verify(&trusted).unwrap(), "rel");
    assert_eq!(signed_prod.record.gates[0].gate, "require-stage:staging");

    // The key can be trusted in the config file instead (`[promote] trusted-keys`).
    std::fs::write(
        s.project.path("config/config.toml"),
        format!("[promote]\ntrusted-keys = [\"{}\"]\n", s.public_key),
    )
    .unwrap();
    let o = s.himg(&[
        "promote",
        &s.at("staging/hello:1"),
        &s.at("prod3/hello:1"),
        "--stage",
        "prod",
        "--require-stage",
        "staging",
    ]);
    assert_success(&o, "promote with a key trusted in the config file");
    assert_eq!(s.raw("prod3/hello:1").as_deref(), Some(manifest.as_slice()));
    std::fs::remove_file(s.project.path("config/config.toml")).unwrap();

    // A tampered staging record (body changed, old signature kept) is refused.
    let mut tampered: SignedRecord = signed.clone();
    tampered.record.gates[0].detail = "every gate passed, trust me".into();
    let subject = Subject {
        media_type: OCI_MANIFEST.into(),
        digest: digest.clone(),
        size: manifest.len() as u64,
    };
    promote::push_record(&client(), &staging, &subject, &tampered).unwrap();
    let refetched = promote::fetch_record(&client(), &staging, &digest, "staging")
        .unwrap()
        .unwrap();
    assert_eq!(
        refetched, tampered,
        "the registry now serves the tampered record"
    );
    let o = s.himg(&[
        "promote",
        &s.at("staging/hello:1"),
        &s.at("prod2/hello:1"),
        "--stage",
        "prod",
        "--require-stage",
        "staging",
        "--trusted-key",
        &s.public_key,
    ]);
    assert_eq!(code(&o), Some(12), "{}", stderr(&o));
    assert!(stderr(&o).contains("does not match"), "{}", stderr(&o));
    assert!(s.raw("prod2/hello:1").is_none(), "prod2 has no manifest");
    assert!(s.tags("prod2/hello").is_empty());
    let o = s.himg(&[
        "promote",
        "--show",
        &s.at("staging/hello:1"),
        "--trusted-key",
        &s.public_key,
    ]);
    assert_success(&o, "promote --show of a tampered record");
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("INVALID"), "{text}");
}

/// An image with a setuid file fails `--policy baseline`: exit 5, nothing pushed to staging.
#[test]
fn a_failing_policy_gate_pushes_nothing() {
    let s = Stages::new();
    std::fs::write(
        s.project.path("examples/suid.himg"),
        "image \"suid\" {\n  file \"/usr/bin/su\" { text = \"not really su\", mode = 0o4755 }\n}\n",
    )
    .unwrap();
    s.push_dev("examples/suid.himg", "suid");
    let o = s.himg(&[
        "promote",
        &s.at("dev/suid:1"),
        &s.at("staging/suid:1"),
        "--stage",
        "staging",
        "--policy",
        "baseline",
    ]);
    assert_eq!(code(&o), Some(5), "{}", stderr(&o));
    assert!(stderr(&o).contains("no-setuid"), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing was pushed"), "{}", stderr(&o));
    assert!(s.raw("staging/suid:1").is_none());
    assert!(s.tags("staging/suid").is_empty(), "no record either");
}

/// `--fail-on` with no imported vulnerability database cannot be evaluated, so it fails.
#[test]
fn a_vulnerability_gate_without_a_database_is_refused() {
    let s = Stages::new();
    s.push_dev("examples/prebuilt.himg", "hello");
    let o = s.himg(&[
        "promote",
        &s.at("dev/hello:1"),
        &s.at("staging/hello:1"),
        "--stage",
        "staging",
        "--fail-on",
        "high",
    ]);
    assert_eq!(code(&o), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("cannot be evaluated"), "{err}");
    assert!(err.contains("no vulnerability database"), "{err}");
    assert!(s.raw("staging/hello:1").is_none());
    assert!(s.tags("staging/hello").is_empty());
}

/// An image from the fixture repository with a package that has an open high-urgency advisory:
/// `--fail-on high` refuses it (exit 11, nothing pushed), `--fail-on critical` lets it through and
/// records the gate.
#[test]
fn the_vulnerability_gate_matches_like_scan() {
    let s = Stages::new();
    let p = |rel: &str| s.project.path(rel);
    let key = TestKey::generate("fixture archive");
    let deb = DebBuilder::new("unfixed", "2.0-1", "amd64")
        .file("./usr/share/doc/unfixed/copyright", b"MIT\n", 0o644)
        .build()
        .unwrap();
    let server = support::serve_fixture(&p(""), &key, "trixie", &[deb]).unwrap();
    // The keyring belongs to the project of `examples/fx.himg`, which is `examples/`.
    std::fs::copy(p("fixture.gpg"), p("examples/fixture.gpg")).unwrap();
    std::fs::write(
        p("examples/fx.himg"),
        format!(
            r#"image "fx" {{
  repository "fixture" {{
    url = "{}"
    suites = ["trixie"]
    keyring = "fixture.gpg"
  }}
  packages = ["unfixed"]
  run_as = "app"
  user "app" {{ uid = 10001 }}
  file "/etc/os-release" {{ text = "ID=debian\nVERSION_CODENAME=trixie\n" }}
}}
"#,
            server.base_url
        ),
    )
    .unwrap();
    let tracker = json!({
        "unfixed": { "CVE-2026-0002": {
            "releases": { "trixie": { "status": "open", "urgency": "high" } },
            "description": "open high"
        } }
    });
    std::fs::write(p("tracker.json"), tracker.to_string()).unwrap();
    assert_success(
        &s.himg(&["vulndb", "import", "tracker.json"]),
        "vulndb import",
    );
    let (digest, _) = s.push_dev("examples/fx.himg", "fx");
    let promote = |fail_on: &str| {
        s.himg(&[
            "promote",
            &s.at("dev/fx:1"),
            &s.at("staging/fx:1"),
            "--stage",
            "staging",
            "--fail-on",
            fail_on,
            "--json",
        ])
    };
    let o = promote("high");
    assert_eq!(code(&o), Some(11), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 finding(s) at severity high"),
        "{}",
        stderr(&o)
    );
    assert!(s.raw("staging/fx:1").is_none());
    assert!(s.tags("staging/fx").is_empty());

    let o = promote("critical");
    assert_success(&o, "promote with --fail-on critical");
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(report["gates"][0]["gate"], "vulnerabilities:critical");
    assert_eq!(report["gates"][0]["passed"], true);
    assert!(s.raw("staging/fx:1").is_some());
}

/// The book's order: resolve, pull, gates, then the signing key. With two keys in the config
/// directory and no `--sign-key`, a missing stage record is still exit 12 (not "several keys"),
/// an unknown `--sign-key` likewise; once the gates pass, the ambiguous key is refused (exit 3)
/// and nothing is written to DEST.
#[test]
fn a_missing_stage_is_reported_before_the_signing_key() {
    let s = Stages::new();
    assert_success(&s.himg(&["key", "generate", "other"]), "second key");
    s.push_dev("examples/prebuilt.himg", "hello");
    let gated = |extra: &[&str]| {
        let (src, dest) = (s.at("dev/hello:1"), s.at("prod/hello:1"));
        let mut args = vec![
            "promote",
            src.as_str(),
            dest.as_str(),
            "--stage",
            "prod",
            "--require-stage",
            "staging",
            "--trusted-key",
            s.public_key.as_str(),
        ];
        args.extend_from_slice(extra);
        s.himg(&args)
    };
    let o = gated(&[]);
    assert_eq!(code(&o), Some(12), "{}", stderr(&o));
    assert!(!stderr(&o).contains("several keys"), "{}", stderr(&o));
    let o = gated(&["--sign-key", "no-such-key"]);
    assert_eq!(code(&o), Some(12), "{}", stderr(&o));
    assert!(s.tags("prod/hello").is_empty(), "nothing pushed");

    // No gate: the key is resolved before the copy, so nothing reaches DEST either.
    let o = s.himg(&[
        "promote",
        &s.at("dev/hello:1"),
        &s.at("staging/hello:1"),
        "--stage",
        "staging",
    ]);
    assert_eq!(code(&o), Some(3), "{}", stderr(&o));
    assert!(stderr(&o).contains("several keys"), "{}", stderr(&o));
    assert!(stderr(&o).contains("other, rel"), "{}", stderr(&o));
    assert!(s.tags("staging/hello").is_empty(), "nothing pushed");
    let o = s.himg(&[
        "promote",
        &s.at("dev/hello:1"),
        &s.at("staging/hello:1"),
        "--stage",
        "staging",
        "--sign-key",
        "rel",
        "--json",
    ]);
    assert_success(&o, "promote with --sign-key NAME");
    let report: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["signer"], "rel", "{report}");
}
