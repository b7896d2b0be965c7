//! Integration tests against the real `docker-registry` (distribution 2.x) binary.
#![allow(clippy::unwrap_used)]

mod common;

use common::registry::Registry;

use himg::registry::{
    BlobSink, BlobSource, Client, ClientOptions, Credentials, OCI_INDEX, OCI_MANIFEST, Reference,
    RegistryError, sha256_digest,
};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shared registry starter, with this file's helpers.
trait RegistryExt {
    fn reference(&self, repo_tag: &str) -> Reference;
}

impl RegistryExt for Registry {
    fn reference(&self, repo_tag: &str) -> Reference {
        format!("127.0.0.1:{}/{repo_tag}", self.port)
            .parse()
            .unwrap()
    }
}

/// Blobs as files named by hex digest in a directory; both source and sink.
struct DirBlobs(PathBuf);

impl DirBlobs {
    fn new(dir: &Path) -> DirBlobs {
        std::fs::create_dir_all(dir).unwrap();
        DirBlobs(dir.to_owned())
    }
    fn path(&self, digest: &str) -> PathBuf {
        self.0.join(digest.strip_prefix("sha256:").unwrap())
    }
    fn add(&self, bytes: &[u8]) -> (String, u64) {
        let d = sha256_digest(bytes);
        std::fs::write(self.path(&d), bytes).unwrap();
        (d, bytes.len() as u64)
    }
    fn get(&self, digest: &str) -> Vec<u8> {
        std::fs::read(self.path(digest)).unwrap()
    }
    fn count(&self) -> usize {
        std::fs::read_dir(&self.0).unwrap().count()
    }
}

impl BlobSource for DirBlobs {
    fn open(&self, digest: &str) -> std::io::Result<(Box<dyn Read>, u64)> {
        let f = std::fs::File::open(self.path(digest))?;
        let len = f.metadata()?.len();
        Ok((Box::new(f), len))
    }
}

impl BlobSink for DirBlobs {
    fn put(
        &self,
        digest: &himg::oci::Sha256Digest,
        size: u64,
        reader: &mut dyn Read,
    ) -> std::io::Result<()> {
        let tmp = self.0.join(".tmp");
        let mut f = std::fs::File::create(&tmp)?;
        let n = std::io::copy(reader, &mut f)?;
        assert_eq!(n, size);
        std::fs::rename(tmp, self.0.join(digest.hex()))
    }
}

fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A tiny image: returns (manifest bytes, blobs [config, layers…]).
fn build_image(
    blobs: &DirBlobs,
    arch: &str,
    layer_seeds: &[(u64, usize)],
) -> (Vec<u8>, Vec<(String, u64)>) {
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    for &(seed, len) in layer_seeds {
        let raw = random_bytes(seed, len);
        diff_ids.push(sha256_digest(&raw));
        layers.push(blobs.add(&gzip(&raw)));
    }
    let config = serde_json::json!({
        "architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    let config = blobs.add(&serde_json::to_vec(&config).unwrap());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
        "layers": layers.iter().map(|(d, s)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d, "size": s,
        })).collect::<Vec<_>>(),
    });
    let mut all = vec![config];
    all.extend(layers);
    (serde_json::to_vec_pretty(&manifest).unwrap(), all)
}

fn client(credentials: Credentials) -> Client {
    Client::new(ClientOptions {
        insecure: true,
        credentials,
        ..ClientOptions::default()
    })
}

fn skopeo_raw(reference: &Reference, creds: Option<&str>) -> Vec<u8> {
    let mut cmd = Command::new("skopeo");
    cmd.args(["inspect", "--tls-verify=false", "--raw"]);
    if let Some(c) = creds {
        cmd.args(["--creds", c]);
    }
    let out = cmd
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo is installed");
    assert!(
        out.status.success(),
        "skopeo: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn push_inspect_repush_and_change_one_layer() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let blobs = DirBlobs::new(dir.path());
    let (manifest, list) = build_image(&blobs, "amd64", &[(1, 20_000), (2, 30_000)]);
    let r = reg.reference("org/app:1.0");
    let c = client(Credentials::none());

    let rep = c
        .push(&r, OCI_MANIFEST, &manifest, &[], &list, &blobs)
        .unwrap();
    assert_eq!(rep.manifest_digest, sha256_digest(&manifest));
    assert_eq!(
        sorted(rep.uploaded.clone()),
        sorted(list.iter().map(|b| b.0.clone()).collect())
    );
    assert_eq!(rep.bytes_uploaded, list.iter().map(|b| b.1).sum::<u64>());
    assert_eq!(skopeo_raw(&r, None), manifest);

    let again = c
        .push(&r, OCI_MANIFEST, &manifest, &[], &list, &blobs)
        .unwrap();
    assert!(again.uploaded.is_empty());
    assert_eq!(again.bytes_uploaded, 0);
    assert_eq!(
        sorted(again.skipped),
        sorted(list.iter().map(|b| b.0.clone()).collect())
    );
    assert_eq!(again.manifest_digest, rep.manifest_digest);

    // Change the second layer: it, the config and the manifest are new.
    let (manifest2, list2) = build_image(&blobs, "amd64", &[(1, 20_000), (3, 30_000)]);
    let rep2 = c
        .push(&r, OCI_MANIFEST, &manifest2, &[], &list2, &blobs)
        .unwrap();
    assert_eq!(
        sorted(rep2.uploaded),
        sorted(vec![list2[0].0.clone(), list2[2].0.clone()])
    );
    assert_eq!(rep2.skipped, vec![list2[1].0.clone()]);
    assert_eq!(rep2.manifest_digest, sha256_digest(&manifest2));
    assert_eq!(skopeo_raw(&r, None), manifest2);
}

#[test]
fn pull_into_empty_sink_verifies_everything() {
    let reg = Registry::start();
    let src_dir = tempfile::tempdir().unwrap();
    let blobs = DirBlobs::new(src_dir.path());
    let (manifest, list) = build_image(&blobs, "amd64", &[(10, 5_000), (11, 7_000)]);
    let r = reg.reference("app:latest");
    let c = client(Credentials::none());
    c.push(&r, OCI_MANIFEST, &manifest, &[], &list, &blobs)
        .unwrap();

    let dest_dir = tempfile::tempdir().unwrap();
    let sink = DirBlobs::new(dest_dir.path());
    let pulled = c.pull(&r, &sink).unwrap();
    assert_eq!(pulled.digest, sha256_digest(&manifest));
    assert_eq!(pulled.manifest_bytes, manifest);
    assert_eq!(pulled.media_type, OCI_MANIFEST);
    for (d, _) in &list {
        assert_eq!(sha256_digest(&sink.get(d)), *d);
        assert_eq!(sink.get(d), blobs.get(d));
    }
    assert_eq!(sink.count(), list.len() + 1);

    // Pinned by digest.
    let pinned = reg.reference(&format!("app@{}", pulled.digest));
    let again = c
        .pull(&pinned, &DirBlobs::new(&dest_dir.path().join("b")))
        .unwrap();
    assert_eq!(again.digest, pulled.digest);
}

#[test]
fn multi_arch_index_push_and_pull() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let blobs = DirBlobs::new(dir.path());
    let (m_amd, l_amd) = build_image(&blobs, "amd64", &[(20, 4_000), (21, 4_000)]);
    let (m_arm, l_arm) = build_image(&blobs, "arm64", &[(20, 4_000), (22, 4_000)]);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": sha256_digest(&m_amd), "size": m_amd.len(), "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": OCI_MANIFEST, "digest": sha256_digest(&m_arm), "size": m_arm.len(), "platform": {"architecture": "arm64", "os": "linux"}},
        ],
    });
    let index = serde_json::to_vec(&index).unwrap();
    let children = vec![
        (OCI_MANIFEST.to_owned(), m_amd.clone()),
        (OCI_MANIFEST.to_owned(), m_arm.clone()),
    ];
    let mut all = l_amd.clone();
    all.extend(l_arm.clone());
    let r = reg.reference("multi:v1");
    let c = client(Credentials::none());
    let rep = c
        .push(&r, OCI_INDEX, &index, &children, &all, &blobs)
        .unwrap();
    assert_eq!(rep.manifest_digest, sha256_digest(&index));
    assert_eq!(rep.uploaded.len(), 5, "shared layer uploaded once");
    assert_eq!(skopeo_raw(&r, None), index);

    let out = tempfile::tempdir().unwrap();
    let sink = DirBlobs::new(out.path());
    let pulled = c.pull(&r, &sink).unwrap();
    assert_eq!(pulled.media_type, OCI_INDEX);
    assert_eq!(pulled.manifest_bytes, index);
    assert_eq!(sink.get(&sha256_digest(&m_amd)), m_amd);
    assert_eq!(sink.get(&sha256_digest(&m_arm)), m_arm);
    for (d, _) in &all {
        assert_eq!(sink.get(d), blobs.get(d));
    }
    assert_eq!(sink.count(), 3 + 5);
}

#[test]
fn big_blob_goes_through_chunked_upload() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let blobs = DirBlobs::new(dir.path());
    let (manifest, list) = build_image(&blobs, "amd64", &[(30, 17 * 1024 * 1024 + 123), (31, 100)]);
    assert!(list[1].1 > 2 * 8 * 1024 * 1024, "layer spans three chunks");
    let r = reg.reference("big:1");
    let c = client(Credentials::none());
    let rep = c
        .push(&r, OCI_MANIFEST, &manifest, &[], &list, &blobs)
        .unwrap();
    assert_eq!(rep.uploaded.len(), 3);
    assert_eq!(
        reg.log_count("\"PATCH /v2/big/blobs/uploads/"),
        3,
        "17 MiB in three chunks"
    );
    let out = tempfile::tempdir().unwrap();
    let sink = DirBlobs::new(out.path());
    c.pull(&r, &sink).unwrap();
    assert_eq!(sha256_digest(&sink.get(&list[1].0)), list[1].0);
}

#[test]
fn cross_repository_mount() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let blobs = DirBlobs::new(dir.path());
    let (manifest, list) = build_image(&blobs, "amd64", &[(40, 3_000), (41, 3_000)]);
    client(Credentials::none())
        .push(
            &reg.reference("base:1"),
            OCI_MANIFEST,
            &manifest,
            &[],
            &list,
            &blobs,
        )
        .unwrap();
    let c = Client::new(ClientOptions {
        insecure: true,
        mount_from: Some("base".into()),
        ..ClientOptions::default()
    });
    let rep = c
        .push(
            &reg.reference("derived:1"),
            OCI_MANIFEST,
            &manifest,
            &[],
            &list,
            &blobs,
        )
        .unwrap();
    assert_eq!(
        sorted(rep.mounted),
        sorted(list.iter().map(|b| b.0.clone()).collect())
    );
    assert!(rep.uploaded.is_empty());
    assert_eq!(rep.bytes_uploaded, 0);
}

#[test]
fn htpasswd_auth() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("htpasswd")
        .args(["-Bbn", "himg", "s3cret-pw"])
        .output()
        .expect("htpasswd (apache2-utils) is installed");
    assert!(out.status.success());
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, &out.stdout).unwrap();
    let reg = Registry::start_with(Some(&htpasswd));
    let blobs = DirBlobs::new(&dir.path().join("blobs"));
    let (manifest, list) = build_image(&blobs, "amd64", &[(50, 2_000), (51, 2_000)]);
    let r = reg.reference("private/app:1");

    let err = client(Credentials::none())
        .push(&r, OCI_MANIFEST, &manifest, &[], &list, &blobs)
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("REGISTRY_AUTH_FILE") && msg.contains("HIMG_REGISTRY_USER"),
        "{msg}"
    );
    assert!(msg.contains(&r.registry), "{msg}");

    let write_auth = |name: &str, pw: &str| {
        use base64::Engine as _;
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("himg:{pw}"));
        let path = dir.path().join(name);
        let json = serde_json::json!({"auths": {r.registry.clone(): {"auth": auth}}});
        std::fs::write(&path, serde_json::to_vec(&json).unwrap()).unwrap();
        path.display().to_string()
    };
    let load = |file: String| {
        Credentials::load_with(|k| (k == "REGISTRY_AUTH_FILE").then(|| file.clone())).unwrap()
    };

    let wrong = load(write_auth("wrong.json", "nope"));
    let err = client(wrong)
        .push(&r, OCI_MANIFEST, &manifest, &[], &list, &blobs)
        .unwrap_err();
    assert!(err.to_string().contains("rejected"), "{err}");
    assert!(!err.to_string().contains("nope"));

    let good = client(load(write_auth("auth.json", "s3cret-pw")));
    let rep = good
        .push(&r, OCI_MANIFEST, &manifest, &[], &list, &blobs)
        .unwrap();
    assert_eq!(rep.uploaded.len(), 3);
    assert_eq!(skopeo_raw(&r, Some("himg:s3cret-pw")), manifest);
    let sink_dir = tempfile::tempdir().unwrap();
    let pulled = good.pull(&r, &DirBlobs::new(sink_dir.path())).unwrap();
    assert_eq!(pulled.digest, rep.manifest_digest);
}

/// The CLI end to end: `himg build` → `himg push` → skopeo sees our exact manifest; pushing again
/// uploads nothing; after one file changes only that layer and the config go up; `himg pull` into an
/// empty layout gives the same digest.
#[test]
fn cli_push_and_pull_round_trip_with_a_local_registry() {
    let reg = Registry::start();
    let project = common::Project::new();
    let report = project.build("examples/prebuilt.himg", "out");
    let digest = report["images"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let target = format!("127.0.0.1:{}/himg/hello:1", reg.port);
    let push = |what: &str| -> serde_json::Value {
        // A loopback registry is spoken to over plain HTTP without `--insecure`.
        let o = project.himg(&["push", "out", &target, "--json"]);
        common::assert_success(&o, what);
        serde_json::from_slice(&o.stdout).expect("push json")
    };
    let first = push("first push");
    assert_eq!(first["digest"], digest.as_str());
    let raw = common::run_tool(
        Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://{target}")),
    );
    let local = std::fs::read(project.path(&format!(
        "out/blobs/sha256/{}",
        digest.trim_start_matches("sha256:")
    )))
    .expect("local manifest");
    assert_eq!(
        raw.as_bytes(),
        local.as_slice(),
        "the registry serves our manifest byte for byte"
    );

    let again = push("second push");
    assert_eq!(again["bytes_uploaded"], 0);
    assert_eq!(again["uploaded"].as_array().map(Vec::len), Some(0));

    std::fs::write(
        project.path("examples/hello/site/about.html"),
        "<p>changed</p>\n",
    )
    .expect("write");
    let rebuilt = project.build("examples/prebuilt.himg", "out");
    let third = push("push after one change");
    let uploaded = third["uploaded"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        uploaded.len(),
        2,
        "the changed layer and the config: {third}"
    );
    let new_layers = common::layer_digests(&rebuilt["images"][0]);
    assert!(
        uploaded
            .iter()
            .any(|u| new_layers.contains(&u.as_str().unwrap_or("").to_string()))
    );

    let o = project.himg(&["pull", &target, "--out", "pulled"]);
    common::assert_success(&o, "pull");
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(project.path("pulled/index.json")).expect("index.json"),
    )
    .expect("json");
    assert_eq!(
        index["manifests"][0]["digest"],
        rebuilt["images"][0]["digest"]
    );
    common::run_tool(
        Command::new("oci-image-tool")
            .args(["validate", "--type", "image"])
            .arg(project.path("pulled"))
            .args(["--ref", "name=1"]),
    );
}

/// `himg push FILE.himg REF` builds then pushes; against a registry with htpasswd auth, a push without
/// credentials fails with a message that says where credentials come from, and with them it works.
#[test]
fn cli_push_of_a_himg_file_with_and_without_credentials() {
    let project = common::Project::new();
    let out = Command::new("htpasswd")
        .args(["-Bbn", "team", "pw-123"])
        .output()
        .expect("htpasswd (apache2-utils) is installed");
    assert!(out.status.success());
    let htpasswd = project.path("htpasswd");
    std::fs::write(&htpasswd, &out.stdout).unwrap();
    let reg = Registry::start_with(Some(&htpasswd));
    let target = format!("127.0.0.1:{}/team/hello:1", reg.port);
    let push = |auth_file: Option<&Path>| {
        let mut cmd = Command::new(common::himg_bin());
        cmd.current_dir(project.path("."))
            .env("HIMG_STORE", project.path("store"))
            .env("HOME", project.path("."))
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("HIMG_REGISTRY_USER")
            .env_remove("HIMG_REGISTRY_PASSWORD")
            .args([
                "push",
                "examples/prebuilt.himg",
                &target,
                "--insecure",
                "--json",
            ]);
        if let Some(f) = auth_file {
            cmd.env("REGISTRY_AUTH_FILE", f);
        }
        cmd.output().expect("run himg")
    };

    let denied = push(None);
    assert!(!denied.status.success());
    let stderr = String::from_utf8_lossy(&denied.stderr);
    assert!(
        stderr.contains("REGISTRY_AUTH_FILE")
            && stderr.contains(&format!("127.0.0.1:{}", reg.port))
            && !stderr.contains("index.json"),
        "{stderr}"
    );

    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode("team:pw-123");
    let auth_file = project.path("auth.json");
    std::fs::write(
        &auth_file,
        serde_json::to_vec(
            &serde_json::json!({"auths": {format!("127.0.0.1:{}", reg.port): {"auth": auth}}}),
        )
        .unwrap(),
    )
    .unwrap();
    let ok = push(Some(&auth_file));
    common::assert_success(&ok, "push with credentials");
    let report: serde_json::Value = serde_json::from_slice(&ok.stdout).expect("push json");
    // The pushed digest is the one `himg build` gives.
    let built = project.build("examples/prebuilt.himg", "out");
    assert_eq!(report["digest"], built["images"][0]["digest"]);
    let raw = common::run_tool(
        Command::new("skopeo")
            .args([
                "inspect",
                "--tls-verify=false",
                "--raw",
                "--creds",
                "team:pw-123",
            ])
            .arg(format!("docker://{target}")),
    );
    let digest = built["images"][0]["digest"].as_str().unwrap_or_default();
    let local = std::fs::read(project.path(&format!(
        "out/blobs/sha256/{}",
        digest.trim_start_matches("sha256:")
    )))
    .unwrap();
    assert_eq!(raw.as_bytes(), local.as_slice());
}

/// `from = "127.0.0.1:PORT/REPO@sha256:…"`: the registry image's layers are reused as they are (same
/// digests), its config is the starting point, and once pulled the base needs no network.
#[test]
fn registry_base_image_pinned_by_digest() {
    let mut reg = Registry::start();
    let project = common::Project::new();
    let base_report = project.build("examples/prebuilt.himg", "base-out");
    let base_digest = base_report["images"][0]["digest"]
        .as_str()
        .expect("digest")
        .to_string();
    let base_ref = format!("127.0.0.1:{}/team/hello", reg.port);
    let o = project.himg(&["push", "base-out", &format!("{base_ref}:1"), "--insecure"]);
    common::assert_success(&o, "push base");

    let pinned = format!("{base_ref}:1@{base_digest}");
    std::fs::write(
        project.path("examples/on-registry.himg"),
        format!(
            "image \"derived\" {{\n  from = \"{pinned}\"\n  env = {{ MODE = \"derived\" }}\n  file \"/etc/derived.conf\" {{ text = \"derived = true\\n\" }}\n}}\n"
        ),
    )
    .unwrap();
    let report = project.build("examples/on-registry.himg", "derived-out");
    let base_layers = common::layer_digests(&base_report["images"][0]);
    let layers = common::layer_digests(&report["images"][0]);
    assert_eq!(layers.len(), base_layers.len() + 1, "{report}");
    assert_eq!(&layers[..base_layers.len()], base_layers.as_slice());

    // Pushed to another repository of the same registry, the base's layers are mounted from the
    // base's repository, not uploaded again; only the new layer and config travel.
    let pushed = |args: &[&str]| -> serde_json::Value {
        let o = project.himg(args);
        common::assert_success(&o, "push");
        serde_json::from_slice(&o.stdout).expect("push json")
    };
    let mounted = |report: &serde_json::Value| -> Vec<String> {
        let mut m: Vec<String> = report["mounted"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d.as_str().map(str::to_owned))
            .collect();
        m.sort();
        m
    };
    let mut base_sorted = base_layers.clone();
    base_sorted.sort();
    let derived_ref = format!("127.0.0.1:{}/team/derived:1", reg.port);
    let from_file = pushed(&["push", "examples/on-registry.himg", &derived_ref, "--json"]);
    assert_eq!(mounted(&from_file), base_sorted, "{from_file}");
    assert_eq!(
        from_file["uploaded"].as_array().map(Vec::len),
        Some(2),
        "{from_file}"
    );
    // A layout has no `from` to go by: `--mount-from` names the repository.
    let other_ref = format!("127.0.0.1:{}/team/other:1", reg.port);
    let from_layout = pushed(&[
        "push",
        "derived-out",
        &other_ref,
        "--mount-from",
        "team/derived",
        "--json",
    ]);
    assert_eq!(
        from_layout["uploaded"].as_array().map(Vec::len),
        Some(0),
        "{from_layout}"
    );
    assert_eq!(
        mounted(&from_layout).len(),
        layers.len() + 1,
        "{from_layout}"
    );

    let config = |dir: &str| -> serde_json::Value {
        serde_json::from_str(&common::run_tool(
            Command::new("skopeo")
                .args(["inspect", "--config"])
                .arg(format!("oci:{}", project.path(dir).display())),
        ))
        .expect("config json")
    };
    let (base_cfg, cfg) = (config("base-out"), config("derived-out"));
    assert_eq!(
        cfg["config"]["Entrypoint"],
        base_cfg["config"]["Entrypoint"]
    );
    assert_eq!(cfg["config"]["User"], base_cfg["config"]["User"]);
    let env = cfg["config"]["Env"].as_array().cloned().unwrap_or_default();
    assert!(env.contains(&serde_json::json!("MODE=derived")), "{env:?}");
    assert_eq!(
        cfg["rootfs"]["diff_ids"]
            .as_array()
            .map(|d| d[..base_layers.len()].to_vec()),
        base_cfg["rootfs"]["diff_ids"].as_array().cloned()
    );

    // Accounts declared on a registry base extend the base's own `/etc/passwd` and `/etc/group`
    // (hello's `app` user stays), they do not replace them.
    std::fs::write(
        project.path("examples/with-accounts.himg"),
        format!(
            "image \"svc\" {{\n  from = \"{pinned}\"\n  group \"svc\" {{ gid = 2000 }}\n  user \"svc\" {{ uid = 2000, gid = 2000 }}\n  run_as = \"svc\"\n}}\n"
        ),
    )
    .unwrap();
    let with_accounts = project.build("examples/with-accounts.himg", "svc-out");
    let account_files = |dir: &str| {
        let source = himg::image::ImageSource::open(&project.path(dir)).unwrap();
        let view = source.images().unwrap().remove(0);
        let read = |path: &str| {
            String::from_utf8(source.read_file(&view, path).unwrap().expect(path)).unwrap()
        };
        (read("etc/passwd"), read("etc/group"))
    };
    let (passwd, group) = account_files("svc-out");
    for line in [
        "root:x:0:0:root:/root:/sbin/nologin",
        "svc:x:2000:2000:svc:/home/svc:/sbin/nologin",
        "app:x:10001:10001:app:/home/app:/sbin/nologin",
    ] {
        assert!(passwd.lines().any(|l| l == line), "{line} in\n{passwd}");
    }
    assert!(group.lines().any(|l| l == "app:x:10001:"), "{group}");
    assert!(group.lines().any(|l| l == "svc:x:2000:"), "{group}");

    // `run_as` may name an account only the registry base declares: the evaluator cannot see it,
    // the composer checks it against the base's /etc/passwd.
    std::fs::write(
        project.path("examples/as-app.himg"),
        format!("image \"as-app\" {{\n  from = \"{pinned}\"\n  run_as = \"app:app\"\n  file \"/srv/app.conf\" {{ text = \"x\", owner = \"app\" }}\n  dir \"/srv/data\" {{ owner = 7, group = \"app\" }}\n}}\n"),
    )
    .unwrap();
    project.build("examples/as-app.himg", "as-app-out");
    assert_eq!(config("as-app-out")["config"]["User"], "app:app");
    // File owners too: `app` (uid 10001, primary group 10001) comes from the base's /etc/passwd.
    let source = himg::image::ImageSource::open(&project.path("as-app-out")).unwrap();
    let view = source.images().unwrap().remove(0);
    let ids = |path: &str| {
        let entry = &view.files[path];
        (entry.uid, entry.gid)
    };
    assert_eq!(ids("srv/app.conf"), (10001, 10001));
    assert_eq!(ids("srv/data"), (7, 10001));
    std::fs::write(
        project.path("examples/ghost.himg"),
        format!("image \"ghost\" {{\n  from = \"{pinned}\"\n  run_as = \"ghost\"\n}}\n"),
    )
    .unwrap();
    let o = project.himg(&["build", "examples/ghost.himg", "--out", "ghost-out"]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "the build fails (not the evaluation)"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("no user `ghost` in its /etc/passwd") && err.contains(&pinned),
        "{err}"
    );
    std::fs::write(
        project.path("examples/ghost-owner.himg"),
        format!("image \"ghost-owner\" {{\n  from = \"{pinned}\"\n  file \"/x\" {{ text = \"x\", group = \"ghosts\" }}\n}}\n"),
    )
    .unwrap();
    let o = project.himg(&[
        "build",
        "examples/ghost-owner.himg",
        "--out",
        "ghost-owner-out",
    ]);
    assert_eq!(o.status.code(), Some(3));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no group `ghosts` in its /etc/group"), "{err}");

    // The registry goes away: the base is in the store, so the build needs no network.
    reg.stop();
    let again = project.build("examples/on-registry.himg", "derived-again");
    assert_eq!(again["images"][0]["digest"], report["images"][0]["digest"]);
    assert_eq!(again["built"], 0);
    let svc_again = project.build("examples/with-accounts.himg", "svc-again");
    assert_eq!(
        svc_again["images"][0]["digest"],
        with_accounts["images"][0]["digest"]
    );

    // A digest the registry does not have: a clear refusal naming the reference.
    let missing = format!("{base_ref}@sha256:{}", "0".repeat(64));
    std::fs::write(
        project.path("examples/missing.himg"),
        format!("image \"x\" {{\n  from = \"{missing}\"\n}}\n"),
    )
    .unwrap();
    let o = project.himg(&["build", "examples/missing.himg", "--out", "x"]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("cannot pull base image") && stderr.contains(&missing),
        "{stderr}"
    );
}

/// `himg update` follows a pinned registry base's tag (issue 10/11, item 3): a re-published base is
/// shown as a move (`--check` exits 10 and writes nothing), then written into the file that pins it,
/// and the next build is on the new base.
#[test]
fn a_re_published_registry_base_moves_its_pin() {
    let mut reg = Registry::start();
    let project = common::Project::new();
    let publish = |text: &str, out: &str| -> String {
        std::fs::write(project.path("examples/base.himg"), text).unwrap();
        let report = project.build("examples/base.himg", out);
        let o = project.himg(&[
            "push",
            out,
            &format!("127.0.0.1:{}/platform/base:1", reg.port),
        ]);
        common::assert_success(&o, "push base");
        report["images"][0]["digest"].as_str().unwrap().to_owned()
    };
    let first = publish(
        "image \"base\" {\n  file \"/etc/base-release\" { text = \"1\\n\" }\n}\n",
        "base-1",
    );
    let pin = |digest: &str| format!("127.0.0.1:{}/platform/base:1@{digest}", reg.port);
    let product = project.path("examples/product.himg");
    std::fs::write(
        &product,
        format!(
            "image \"product\" {{\n  from = \"{}\"\n  file \"/etc/product\" {{ text = \"p\\n\" }}\n}}\n",
            pin(&first)
        ),
    )
    .unwrap();
    let o = project.himg(&["update", "examples/product.himg", "--check"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let second = publish(
        "image \"base\" {\n  file \"/etc/base-release\" { text = \"2\\n\" }\n}\n",
        "base-2",
    );
    assert_ne!(first, second);
    let o = project.himg(&["update", "examples/product.himg", "--check", "--json"]);
    assert_eq!(
        o.status.code(),
        Some(10),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        report["base_pins"][0]["from"],
        pin(&first).as_str(),
        "{report}"
    );
    assert_eq!(
        report["base_pins"][0]["to"],
        pin(&second).as_str(),
        "{report}"
    );
    assert_eq!(report["base_pins"][0]["images"][0], "product", "{report}");
    assert!(
        std::fs::read_to_string(&product).unwrap().contains(&first),
        "--check wrote the file"
    );

    let o = project.himg(&["update", "examples/product.himg"]);
    common::assert_success(&o, "update");
    assert!(String::from_utf8_lossy(&o.stderr).contains("Moved"));
    let text = std::fs::read_to_string(&product).unwrap();
    assert!(text.contains(&pin(&second)), "{text}");
    let built = project.build("examples/product.himg", "product-out");
    let base_layers =
        common::layer_digests(&project.build("examples/base.himg", "base-2")["images"][0]);
    let layers = common::layer_digests(&built["images"][0]);
    assert_eq!(&layers[..base_layers.len()], base_layers.as_slice());
    let o = project.himg(&["update", "examples/product.himg", "--check"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    reg.stop();
}

/// `himg push DIR HOST/PREFIX`: every image of a workspace goes to `PREFIX/IMAGE:TAG`, and a layer
/// two images share is uploaded once — the second repository mounts it from the first.
#[test]
fn a_workspace_push_uploads_a_shared_layer_once() {
    let mut reg = Registry::start();
    let project = common::Project::new();
    let ws = project.path("ws");
    std::fs::create_dir_all(&ws).unwrap();
    for name in ["one", "two"] {
        std::fs::write(
            ws.join(format!("{name}.himg")),
            format!(
                "image \"{name}\" {{\n  layer \"shared\" {{\n    file \"/etc/shared\" {{ text = \"the same in both\\n\" }}\n  }}\n  layer \"own\" {{\n    file \"/etc/{name}\" {{ text = \"{name}\\n\" }}\n  }}\n}}\n"
            ),
        )
        .unwrap();
    }
    let prefix = format!("127.0.0.1:{}/team", reg.port);
    let o = project.himg(&["push", "ws", &prefix, "--tag", "7", "--json"]);
    common::assert_success(&o, "push a workspace");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let pushed = report["pushed"].as_array().unwrap();
    assert_eq!(
        pushed[0]["reference"],
        format!("{prefix}/one:7").as_str(),
        "{report}"
    );
    assert_eq!(
        pushed[1]["reference"],
        format!("{prefix}/two:7").as_str(),
        "{report}"
    );
    assert_eq!(
        pushed[0]["mounted"].as_array().map(Vec::len),
        Some(0),
        "{report}"
    );
    assert_eq!(
        pushed[1]["mounted"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    assert_eq!(
        pushed[1]["uploaded"].as_array().map(Vec::len),
        Some(2),
        "{report}"
    );
    reg.stop();
}
