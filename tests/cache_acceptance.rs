//! Shared binary caches (issue 6): two teams with their own stores share outputs through a cache.
//! Team A builds and pushes; team B, with an unreachable Debian mirror, builds the same files from
//! the cache (`"built":0`, identical digests) through `himg cache serve` (with team tokens) and
//! `file://`. Tampered, unsigned and untrusted entries are refused with clear messages and B falls
//! back to building with a consistent store; so does a cache that drops the connection mid-transfer.

#![allow(clippy::unwrap_used)]

mod common;
#[allow(dead_code)]
mod support;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Project, assert_success, himg_bin};
use support::{DebBuilder, TestKey, TestServer, serve};

const UNREACHABLE: &str = "http://127.0.0.1:9";

/// A project with examples/prebuilt.himg and a Debian image `fx.himg` from a signed fixture repository
/// reached as `mirror://fixture`, plus team A's signing key.
struct Teams {
    project: Project,
    repo: TestServer,
    config: PathBuf,
    public_key: String,
}

impl Teams {
    fn new() -> Teams {
        let project = Project::new();
        let key = TestKey::generate("fixture archive");
        let debs = [
            DebBuilder::new("hello-fixture", "1.0-1", "amd64")
                .depends("libgreet")
                .file("./usr/bin/hello-fixture", b"#!/bin/sh\necho hi\n", 0o755)
                .build()
                .unwrap(),
            DebBuilder::new("libgreet", "1.0-1", "amd64")
                .file(
                    "./usr/lib/x86_64-linux-gnu/libgreet.so.1",
                    &[7u8; 200_000],
                    0o644,
                )
                .build()
                .unwrap(),
        ];
        let server = support::serve_fixture(&project.path(""), &key, "stable", &debs).unwrap();
        std::fs::write(
            project.path("fx.himg"),
            r#"image "fx" {
  repository "fixture" {
    url = "mirror://fixture"
    suites = ["stable"]
    keyring = "fixture.gpg"
  }
  packages = ["hello-fixture"]
}
"#,
        )
        .unwrap();
        let config = project.path("config-a");
        let mut teams = Teams {
            project,
            repo: server,
            config,
            public_key: String::new(),
        };
        let o = teams.himg("a", &[], &["key", "generate", "team-a-1"]);
        assert_success(&o, "key generate");
        teams.public_key = String::from_utf8(o.stdout).unwrap().trim().to_owned();
        assert!(
            teams.public_key.starts_with("team-a-1:"),
            "{}",
            teams.public_key
        );
        teams
    }

    fn store(&self, team: &str) -> PathBuf {
        self.project.path(&format!("store-{team}"))
    }

    /// `himg ARGS` as `team` (its own store; team B's mirror is unreachable).
    fn himg(&self, team: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
        self.command(team, env, args).output().unwrap()
    }

    fn command(&self, team: &str, env: &[(&str, &str)], args: &[&str]) -> Command {
        let mirror = if team == "a" {
            self.repo.base_url.as_str()
        } else {
            UNREACHABLE
        };
        let mut cmd = Command::new(himg_bin());
        cmd.current_dir(self.project.dir.path())
            .env("HIMG_STORE", self.store(team))
            .env("HIMG_CONFIG_DIR", &self.config)
            .env("HIMG_MIRROR_FIXTURE", mirror)
            .env("HIMG_MIRROR_DEBIAN", UNREACHABLE)
            .env_remove("HIMG_SUBSTITUTERS")
            .env_remove("HIMG_CACHE_TOKEN")
            .env_remove("SOURCE_DATE_EPOCH");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.args(args);
        cmd
    }

    /// [`Teams::build`] that fails the test if the build takes more than a minute (a build that
    /// reads an endless cache body never ends), or fails.
    fn build_bounded(&self, team: &str, file: &str, extra: &[&str]) -> serde_json::Value {
        let out = format!("out-{team}-{file}");
        let mut args = vec!["build", file, "--out", &out, "--json"];
        args.extend_from_slice(extra);
        let stdout = self.project.path(&format!("{team}.stdout"));
        let stderr = self.project.path(&format!("{team}.stderr"));
        let mut child = self
            .command(team, &[], &args)
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "team {team}'s build of {file} did not end within a minute; stderr:\n{}",
                    std::fs::read_to_string(&stderr).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let err = std::fs::read_to_string(&stderr).unwrap();
        assert!(status.success(), "team {team} builds {file}: {err}");
        let mut report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&stdout).unwrap()).unwrap();
        report["stderr"] = err.into();
        report
    }

    /// The store of `team` is consistent and holds no temporary file.
    fn verify_clean(&self, team: &str) {
        self.verify(team);
        let tmp = self.store(team).join("v1/tmp");
        let left: Vec<_> = std::fs::read_dir(&tmp)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "leftovers in {}: {left:?}", tmp.display());
    }

    fn build(
        &self,
        team: &str,
        file: &str,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> serde_json::Value {
        let out = format!("out-{team}-{file}");
        let mut args = vec!["build", file, "--out", &out, "--json"];
        args.extend_from_slice(extra);
        let o = self.himg(team, env, &args);
        assert_success(&o, &format!("team {team} builds {file}"));
        let mut report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        report["stderr"] = String::from_utf8_lossy(&o.stderr).into_owned().into();
        report
    }

    fn verify(&self, team: &str) {
        let o = self.himg(team, &[], &["store", "verify"]);
        assert_success(&o, &format!("store verify of team {team}"));
    }
}

fn digest(report: &serde_json::Value) -> String {
    report["images"][0]["digest"].as_str().unwrap().to_owned()
}

const FILES: [&str; 2] = ["examples/prebuilt.himg", "fx.himg"];

/// A builds and pushes both files, B builds them from the cache: nothing built, same digests.
fn a_pushes_b_substitutes(
    teams: &Teams,
    url: &str,
    a_env: &[(&str, &str)],
    b_env: &[(&str, &str)],
) {
    let mut digests = Vec::new();
    for file in FILES {
        let a = teams.build("a", file, a_env, &["--push-to", url]);
        assert!(
            a["stderr"].as_str().unwrap().contains("Pushed"),
            "{}",
            a["stderr"]
        );
        digests.push(digest(&a));
    }
    for (file, want) in FILES.iter().zip(&digests) {
        let b = teams.build(
            "b",
            file,
            b_env,
            &["--substituters", url, "--trusted-key", &teams.public_key],
        );
        assert_eq!(b["built"], 0, "team B built something: {b}");
        assert!(b["substituted"].as_u64().unwrap() > 0, "{b}");
        assert_eq!(&digest(&b), want, "{file}: B's image differs from A's");
        // The SBOMs and policy facts come from the cache too: B reads nothing back.
        assert_eq!(b["analysis"]["built"], 0, "{file}: {b}");
        assert_eq!(b["analysis"]["substituted"], 1, "{file}: {b}");
        for suffix in ["spdx.json", "cdx.json"] {
            let sbom = |team: &str| {
                let dir = teams.project.path(&format!("out-{team}-{file}.sbom"));
                let entry = std::fs::read_dir(&dir)
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .find(|p| p.to_string_lossy().ends_with(suffix))
                    .unwrap_or_else(|| panic!("no {suffix} in {}", dir.display()));
                std::fs::read(entry).unwrap()
            };
            assert!(
                sbom("a") == sbom("b"),
                "{file}: B's {suffix} differs from A's"
            );
        }
    }
    teams.verify("b");
}

#[test]
fn file_cache_shares_hello_and_debian_images() {
    let teams = Teams::new();
    let url = format!("file://{}", teams.project.path("cache").display());
    a_pushes_b_substitutes(&teams, &url, &[], &[]);
    // A second push sends nothing new.
    let o = teams.himg("a", &[], &["cache", "push", &url, "fx.himg", "--json"]);
    assert_success(&o, "cache push");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["bytes"], 0, "{report}");
    assert!(report["skipped"].as_u64().unwrap() > 0, "{report}");

    // `--roots` pushes the closure of every image built into A's store; a third team builds both
    // files from that cache alone.
    let roots_url = format!("file://{}", teams.project.path("cache-roots").display());
    let o = teams.himg(
        "a",
        &[],
        &["cache", "push", &roots_url, "--roots", "--json"],
    );
    assert_success(&o, "cache push --roots");
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(report["pushed"].as_u64().unwrap() > 0, "{report}");
    for file in FILES {
        let c = teams.build(
            "c",
            file,
            &[],
            &[
                "--substituters",
                &roots_url,
                "--trusted-key",
                &teams.public_key,
            ],
        );
        assert_eq!(c["built"], 0, "{c}");
    }

    // The config file alone: substituters and trusted keys.
    let config = teams.project.path("config-d");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.toml"),
        format!(
            "[cache]\nsubstituters = [\"{url}\"]\ntrusted-keys = [\"{}\"]\n",
            teams.public_key
        ),
    )
    .unwrap();
    let d = teams.build(
        "d",
        "examples/prebuilt.himg",
        &[("HIMG_CONFIG_DIR", config.to_str().unwrap())],
        &[],
    );
    assert_eq!(d["built"], 0, "{d}");
}

/// `himg cache serve` on 127.0.0.1 with a tokens file; killed on drop.
struct CacheServer {
    child: Option<Child>,
    url: String,
    log: PathBuf,
}

impl Drop for CacheServer {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl CacheServer {
    fn start(teams: &Teams, dir: &Path, tokens: Option<&Path>) -> CacheServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.with_extension("log");
        let mut cmd = Command::new(himg_bin());
        cmd.env("HIMG_STORE", teams.store("server"))
            .args([
                "cache",
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--dir",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(t) = tokens {
            cmd.arg("--tokens").arg(t);
        }
        let child = cmd.spawn().unwrap();
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "cache server did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        CacheServer {
            child: Some(child),
            url: format!("http://127.0.0.1:{port}/shared"),
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

fn hash_token(teams: &Teams, token: &str) -> String {
    let o = teams.himg("a", &[], &["cache", "hash-token", token]);
    assert_success(&o, "hash-token");
    String::from_utf8(o.stdout).unwrap().trim().to_owned()
}

#[test]
fn http_cache_server_with_team_tokens() {
    let teams = Teams::new();
    let tokens = teams.project.path("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            r#"[[token]]
name = "team-a-ci"
sha256 = "{}"
access = "push"
namespaces = ["shared"]

[[token]]
name = "team-b"
sha256 = "{}"
access = "read"
namespaces = ["shared"]
"#,
            hash_token(&teams, "token-of-a"),
            hash_token(&teams, "token-of-b")
        ),
    )
    .unwrap();
    let server = CacheServer::start(&teams, &teams.project.path("served"), Some(&tokens));
    a_pushes_b_substitutes(
        &teams,
        &server.url,
        &[("HIMG_CACHE_TOKEN", "token-of-a")],
        &[("HIMG_CACHE_TOKEN", "token-of-b")],
    );
    // The tokens are not stored in clear.
    assert!(
        !std::fs::read_to_string(&tokens)
            .unwrap()
            .contains("token-of-a")
    );

    // B's read-only token cannot push, and neither can anyone without a token: B builds an image
    // A never pushed, then tries to push it.
    std::fs::write(
        teams.project.path("examples/extra.himg"),
        "image \"extra\" {\n  file \"/etc/motd\" { text = \"team b\\n\" }\n}\n",
    )
    .unwrap();
    let o = teams.build("b", "examples/extra.himg", &[], &[]);
    assert!(o["built"].as_u64().unwrap() > 0, "{o}");
    for (env, want) in [
        (
            vec![("HIMG_CACHE_TOKEN", "token-of-b")],
            "token `team-b` may only read namespace `shared`",
        ),
        (vec![], "a token is required"),
    ] {
        let o = teams.himg(
            "b",
            &env,
            &["cache", "push", &server.url, "examples/extra.himg"],
        );
        assert!(!o.status.success(), "push should be refused");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "missing `{want}` in: {err}");
        assert!(err.contains("refused"), "{err}");
    }
    let log = server.log();
    assert!(log.contains("refused PUT /shared/"), "server log: {log}");
    assert!(log.contains("may only read"), "server log: {log}");
}

/// Replaces the first `from` in `path` by `to`.
fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from} not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn tampered_unsigned_and_untrusted_entries_are_refused() {
    let teams = Teams::new();
    let cache = teams.project.path("cache");
    let url = format!("file://{}", cache.display());
    let a = teams.build("a", "examples/prebuilt.himg", &[], &["--push-to", &url]);
    let want = digest(&a);
    let entries: Vec<PathBuf> = std::fs::read_dir(cache.join("entries"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // The image manifest's entry is the one B asks for first.
    let manifest = entries
        .iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("image.manifest.v1")
        })
        .unwrap()
        .clone();
    let signed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest).unwrap()).unwrap();
    let archive = cache.join(format!(
        "archives/{}.zst",
        signed["entry"]["file_hash"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:")
    ));
    let original_entry = std::fs::read(&manifest).unwrap();
    let original_archive = std::fs::read(&archive).unwrap();

    let other = TestKeyPair::new(&teams);
    type Tamper = Box<dyn Fn()>;
    let cases: Vec<(&str, Tamper, String, &str)> = vec![
        (
            "tampered blob",
            Box::new({
                let archive = archive.clone();
                let bytes = original_archive.clone();
                move || {
                    let mut b = bytes.clone();
                    let n = b.len() / 2;
                    b[n] ^= 0x55;
                    std::fs::write(&archive, b).unwrap();
                }
            }),
            teams.public_key.clone(),
            "the archive does not match its entry",
        ),
        (
            "tampered metadata",
            Box::new({
                let manifest = manifest.clone();
                move || edit(&manifest, "\"size\":", "\"size\":1")
            }),
            teams.public_key.clone(),
            "does not match the entry (tampered metadata?)",
        ),
        (
            "unsigned",
            Box::new({
                let manifest = manifest.clone();
                let original = original_entry.clone();
                move || {
                    let mut v: serde_json::Value = serde_json::from_slice(&original).unwrap();
                    v["signatures"] = serde_json::json!([]);
                    std::fs::write(&manifest, v.to_string()).unwrap();
                }
            }),
            teams.public_key.clone(),
            "the entry is not signed",
        ),
        (
            "untrusted signer",
            Box::new(|| {}),
            other.public,
            "signed only by untrusted key(s) team-a-1",
        ),
    ];
    for (i, (what, tamper, trusted, message)) in cases.into_iter().enumerate() {
        std::fs::write(&manifest, &original_entry).unwrap();
        std::fs::write(&archive, &original_archive).unwrap();
        tamper();
        let team = format!("b{i}");
        let b = teams.build(
            &team,
            "examples/prebuilt.himg",
            &[],
            &["--substituters", &url, "--trusted-key", &trusted],
        );
        let stderr = b["stderr"].as_str().unwrap();
        assert!(
            stderr.contains(message),
            "{what}: missing `{message}` in: {stderr}"
        );
        assert!(b["built"].as_u64().unwrap() > 0, "{what}: {b}");
        assert_eq!(digest(&b), want, "{what}");
        teams.verify(&team);
    }
}

/// A second key pair (another team's), for the untrusted-signer case.
struct TestKeyPair {
    public: String,
}

impl TestKeyPair {
    fn new(teams: &Teams) -> TestKeyPair {
        let o = teams.himg(
            "a",
            &[(
                "HIMG_CONFIG_DIR",
                teams.project.path("config-other").to_str().unwrap(),
            )],
            &["key", "generate", "team-c-1"],
        );
        assert_success(&o, "key generate");
        TestKeyPair {
            public: String::from_utf8(o.stdout).unwrap().trim().to_owned(),
        }
    }
}

#[test]
fn a_cache_dropping_the_connection_mid_transfer_falls_back_to_building() {
    let teams = Teams::new();
    let cache = teams.project.path("cache");
    let url = format!("file://{}", cache.display());
    let a = teams.build("a", "fx.himg", &[], &["--push-to", &url]);
    // Serve the cache directory over HTTP and cut every archive mid-transfer (the server dies).
    let http = serve(&cache).unwrap();
    for archive in std::fs::read_dir(cache.join("archives")).unwrap() {
        let archive = archive.unwrap();
        http.drop_connection_once(
            &format!("/archives/{}", archive.file_name().to_str().unwrap()),
            archive.metadata().unwrap().len() / 2,
        );
    }
    // B's mirror is reachable here: what the cache cannot give is built.
    let b = teams.build(
        "a-clone",
        "fx.himg",
        &[("HIMG_MIRROR_FIXTURE", teams.repo.base_url.as_str())],
        &[
            "--substituters",
            &http.base_url,
            "--trusted-key",
            &teams.public_key,
        ],
    );
    let stderr = b["stderr"].as_str().unwrap();
    assert!(stderr.contains("is not usable"), "{stderr}");
    assert!(b["built"].as_u64().unwrap() > 0, "{b}");
    assert_eq!(digest(&b), digest(&a));
    teams.verify("a-clone");

    // A cache server that is down: a warning, and the build goes on.
    let server = CacheServer::start(&teams, &teams.project.path("served"), None);
    let down = server.url.clone();
    drop(server);
    let c = teams.build(
        "c",
        "examples/prebuilt.himg",
        &[],
        &["--substituters", &down, "--trusted-key", &teams.public_key],
    );
    assert!(
        c["stderr"].as_str().unwrap().contains("is not usable"),
        "{}",
        c["stderr"]
    );
    assert!(c["built"].as_u64().unwrap() > 0);
}

#[test]
fn oci_registry_shares_hello_and_debian_images() {
    let teams = Teams::new();
    let registry = common::registry::Registry::start();
    let url = format!("oci://{}/teams/cache", registry.host());
    a_pushes_b_substitutes(&teams, &url, &[], &[]);
}

/// A TCP proxy in front of a cache server that kills the server as soon as an archive response
/// (`Content-Type: application/zstd`) starts flowing, after forwarding part of it.
fn killing_proxy(server: std::sync::Arc<std::sync::Mutex<Child>>, upstream: u16) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut client) = conn else { continue };
            let Ok(mut up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (mut client_r, mut up_w) = (client.try_clone().unwrap(), up.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut client_r, &mut up_w);
                let _ = up_w.shutdown(std::net::Shutdown::Write);
            });
            let server = std::sync::Arc::clone(&server);
            std::thread::spawn(move || {
                let mut buf = [0u8; 16384];
                loop {
                    let n = match up.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let chunk = &buf[..n];
                    if chunk.windows(16).any(|w| w == b"application/zstd") {
                        let _ = client.write_all(&chunk[..n * 3 / 4]);
                        let _ = client.flush();
                        let _ = server.lock().unwrap().kill();
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                    if client.write_all(chunk).is_err() {
                        break;
                    }
                }
                let _ = client.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

#[test]
fn cache_server_killed_mid_transfer_falls_back_to_building() {
    let teams = Teams::new();
    let server = CacheServer::start(&teams, &teams.project.path("served"), None);
    let a = teams.build("a", "fx.himg", &[], &["--push-to", &server.url]);
    let upstream: u16 = server
        .url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/shared")
        .parse()
        .unwrap();
    // Hand the server process to the proxy, which kills it mid-transfer.
    let mut server = server;
    let log = server.log.clone();
    let child = std::sync::Arc::new(std::sync::Mutex::new(server.child.take().unwrap()));
    let port = killing_proxy(std::sync::Arc::clone(&child), upstream);
    let url = format!("http://127.0.0.1:{port}/shared");
    // B's mirror is reachable here: what the dead cache cannot give is built.
    let b = teams.build(
        "b",
        "fx.himg",
        &[("HIMG_MIRROR_FIXTURE", teams.repo.base_url.as_str())],
        &["--substituters", &url, "--trusted-key", &teams.public_key],
    );
    let status = child.lock().unwrap().try_wait().unwrap();
    assert!(
        status.is_some(),
        "the proxy should have killed the cache server; log: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let stderr = b["stderr"].as_str().unwrap();
    assert!(stderr.contains("is not usable"), "{stderr}");
    assert!(b["built"].as_u64().unwrap() > 0, "{b}");
    assert_eq!(digest(&b), digest(&a));
    teams.verify("b");
}

// ------------------------------------------------------------------------------------------------
// Hostile caches (issue 11, items 2 and 3): every download is bounded by what was signed, and a
// signed entry whose sizes lie cannot poison the store.

/// Archive bytes a hostile server sends at most before giving up by itself.
const ENDLESS_CAP: u64 = 256 << 20;

/// An HTTP cache on 127.0.0.1 that serves the entries of the cache directory `dir` as they are
/// (real, signed) but answers every archive with an endless body of zeros, without a length. It
/// counts the archive bytes it managed to send; it stops on its own after [`ENDLESS_CAP`] bytes
/// per answer.
struct EndlessCache {
    url: String,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl EndlessCache {
    fn start(dir: &Path) -> EndlessCache {
        use std::io::{BufRead, BufReader, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = std::sync::Arc::clone(&sent);
        let dir = dir.to_owned();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let counter = std::sync::Arc::clone(&counter);
                let dir = dir.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut request = String::new();
                    let _ = reader.read_line(&mut request);
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                            break;
                        }
                    }
                    let path = request.split(' ').nth(1).unwrap_or("/").to_owned();
                    if path.starts_with("/archives/") {
                        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/zstd\r\nConnection: close\r\n\r\n";
                        if conn.write_all(head.as_bytes()).is_err() {
                            return;
                        }
                        let chunk = vec![0u8; 64 * 1024];
                        let mut total = 0u64;
                        while total < ENDLESS_CAP && conn.write_all(&chunk).is_ok() {
                            total += chunk.len() as u64;
                            counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                        }
                        return;
                    }
                    let file = dir.join(path.trim_start_matches('/'));
                    let answer = match std::fs::read(&file) {
                        Ok(body) if !path.contains("..") => {
                            let mut a = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            a.extend_from_slice(&body);
                            a
                        }
                        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec(),
                    };
                    let _ = conn.write_all(&answer);
                });
            }
        });
        EndlessCache {
            url: format!("http://127.0.0.1:{port}"),
            sent,
        }
    }
}

/// The largest archive in the cache directory `cache`.
fn largest_archive(cache: &Path) -> u64 {
    std::fs::read_dir(cache.join("archives"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .max()
        .unwrap()
}

#[test]
fn an_endless_archive_body_is_cut_off_at_the_signed_size() {
    let teams = Teams::new();
    let cache = teams.project.path("cache");
    let url = format!("file://{}", cache.display());
    let a = teams.build("a", "examples/prebuilt.himg", &[], &["--push-to", &url]);
    let server = EndlessCache::start(&cache);
    let key = teams.public_key.clone();
    let b = teams.build_bounded(
        "b",
        "examples/prebuilt.himg",
        &["--substituters", &server.url, "--trusted-key", &key],
    );
    let stderr = b["stderr"].as_str().unwrap();
    assert!(
        stderr.contains("longer than the") && stderr.contains("bytes its entry declares"),
        "{stderr}"
    );
    assert!(b["built"].as_u64().unwrap() > 0, "{b}");
    assert_eq!(digest(&b), digest(&a));
    // What went over the wire: each archive's signed size and what the sockets buffer, not more.
    let entries = std::fs::read_dir(cache.join("entries")).unwrap().count() as u64;
    let sent = server.sent.load(std::sync::atomic::Ordering::Relaxed);
    let bound = entries * (largest_archive(&cache) + (16 << 20));
    assert!(
        sent < bound,
        "{sent} archive bytes were sent (bound {bound})"
    );
    teams.verify_clean("b");
    // The next build, with the same cache, succeeds and builds nothing.
    let again = teams.build_bounded(
        "b",
        "examples/prebuilt.himg",
        &["--substituters", &server.url, "--trusted-key", &key],
    );
    assert_eq!(again["built"], 0, "{again}");
    assert_eq!(digest(&again), digest(&a));
}

#[test]
fn file_cache_entries_and_archives_linked_to_dev_zero_are_refused() {
    let teams = Teams::new();
    let cache = teams.project.path("cache");
    let url = format!("file://{}", cache.display());
    let a = teams.build("a", "examples/prebuilt.himg", &[], &["--push-to", &url]);
    let key = teams.public_key.clone();
    for (team, dir) in [("b-archives", "archives"), ("b-entries", "entries")] {
        let hostile = teams.project.path(&format!("cache-{dir}"));
        common::copy_dir(&cache, &hostile);
        for f in std::fs::read_dir(hostile.join(dir)).unwrap() {
            let f = f.unwrap().path();
            std::fs::remove_file(&f).unwrap();
            std::os::unix::fs::symlink("/dev/zero", &f).unwrap();
        }
        let hostile_url = format!("file://{}", hostile.display());
        let b = teams.build_bounded(
            team,
            "examples/prebuilt.himg",
            &["--substituters", &hostile_url, "--trusted-key", &key],
        );
        let stderr = b["stderr"].as_str().unwrap();
        assert!(stderr.contains("not a regular file"), "{team}: {stderr}");
        assert!(b["built"].as_u64().unwrap() > 0, "{team}: {b}");
        assert_eq!(digest(&b), digest(&a), "{team}");
        teams.verify_clean(team);
        let again = teams.build_bounded(
            team,
            "examples/prebuilt.himg",
            &["--substituters", &hostile_url, "--trusted-key", &key],
        );
        assert_eq!(again["built"], 0, "{team}: {again}");
    }
}

/// Writes an uncompressed `himg-archive-v1` of `objects` (files of `store`, in order) with `tree`
/// appended as the last record, zstd-compressed; returns (bytes, payload bytes).
fn forged_archive(
    store: &himg_store::Store,
    objects: &[himg_store::ObjectRef],
    tree: &[u8],
) -> (Vec<u8>, u64) {
    use himg::cache::archive::{MAGIC, VERSION};
    use himg_store::ObjectRef;
    let mut raw = MAGIC.to_vec();
    raw.push(VERSION);
    let mut payload = 0u64;
    for obj in objects {
        let kind = match obj {
            ObjectRef::Blob(_) => 1u8,
            ObjectRef::Tree(_) => 2,
            ObjectRef::Oci(_) => 3,
        };
        let bytes = std::fs::read(store.object_path(obj)).unwrap();
        raw.push(kind);
        raw.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        raw.extend_from_slice(&bytes);
        payload += bytes.len() as u64;
    }
    raw.push(2);
    raw.extend_from_slice(&(tree.len() as u64).to_le_bytes());
    raw.extend_from_slice(tree);
    payload += tree.len() as u64;
    raw.push(0);
    (zstd::encode_all(raw.as_slice(), 3).unwrap(), payload)
}

#[test]
fn a_signed_tree_whose_file_size_lies_is_refused() {
    use himg_store::{Node, ObjectRef, Tree};
    use sha2::Digest as _;
    let teams = Teams::new();
    let cache = teams.project.path("cache");
    let url = format!("file://{}", cache.display());
    let a = teams.build("a", "examples/prebuilt.himg", &[], &["--push-to", &url]);

    // The entry of a copied directory: a tree with a file at its top.
    let scratch = himg_store::Store::open(&teams.project.path("scratch-store")).unwrap();
    let mut forged = None;
    for path in std::fs::read_dir(cache.join("entries")).unwrap() {
        let path = path.unwrap().path();
        let signed = himg::cache::SignedEntry::parse(&std::fs::read(&path).unwrap()).unwrap();
        let ObjectRef::Tree(root) = signed.entry.content else {
            continue;
        };
        let archive = cache.join(format!("archives/{}.zst", signed.entry.file_hash.to_hex()));
        himg::cache::archive::unpack(&scratch, &mut std::fs::File::open(&archive).unwrap())
            .unwrap();
        let mut tree = scratch.get_tree(&root).unwrap();
        let Some(file) = tree
            .entries
            .iter_mut()
            .find(|e| matches!(e.node, Node::File { .. }))
        else {
            continue;
        };
        if let Node::File { size, .. } = &mut file.node {
            *size += 1;
        }
        let tree = Tree::from_entries(tree.entries).unwrap();
        let tree_bytes = tree.encode().unwrap();
        let lying_root = ObjectRef::Tree(himg_store::B3Digest::of(&tree_bytes));
        let others: Vec<ObjectRef> =
            himg::cache::archive::closure(&scratch, &[ObjectRef::Tree(root)])
                .unwrap()
                .into_iter()
                .filter(|o| *o != ObjectRef::Tree(root))
                .chain(
                    signed
                        .entry
                        .objects
                        .iter()
                        .copied()
                        .filter(|o| *o != ObjectRef::Tree(root)),
                )
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
        let mut ordered = Vec::new();
        for o in himg::cache::archive::closure(&scratch, &others).unwrap() {
            ordered.push(o);
        }
        let (bytes, payload) = forged_archive(&scratch, &ordered, &tree_bytes);
        let hash =
            himg_store::Sha256Digest::from_hex(&hex::encode(sha2::Sha256::digest(&bytes))).unwrap();
        std::fs::write(
            cache.join(format!("archives/{}.zst", hash.to_hex())),
            &bytes,
        )
        .unwrap();
        let mut entry = signed.entry.clone();
        entry.content = lying_root;
        entry.objects = std::iter::once(lying_root).chain(others).collect();
        entry.file_hash = hash;
        entry.file_size = bytes.len() as u64;
        entry.nar_size = payload;
        forged = Some((path, entry));
        break;
    }
    let (entry_path, entry) = forged.expect("no tree entry with a file at its top");
    // Only the forged entry is left, so that team B asks for it.
    for path in std::fs::read_dir(cache.join("entries")).unwrap() {
        std::fs::remove_file(path.unwrap().path()).unwrap();
    }
    let secret = himg::cache::SecretKey::read(&himg::cache::sign::secret_key_path(
        &teams.config,
        "team-a-1",
    ))
    .unwrap();
    std::fs::write(
        &entry_path,
        entry.sign(&secret).unwrap().to_bytes().unwrap(),
    )
    .unwrap();

    let key = teams.public_key.clone();
    let b = teams.build_bounded(
        "b",
        "examples/prebuilt.himg",
        &["--substituters", &url, "--trusted-key", &key],
    );
    let stderr = b["stderr"].as_str().unwrap();
    assert!(stderr.contains("refused entry"), "{stderr}");
    assert!(stderr.contains("declares"), "{stderr}");
    assert_eq!(b["substituted"], 0, "{b}");
    assert_eq!(digest(&b), digest(&a));
    teams.verify_clean("b");
    let again = teams.build_bounded(
        "b",
        "examples/prebuilt.himg",
        &["--substituters", &url, "--trusted-key", &key],
    );
    assert_eq!(again["built"], 0, "{again}");
}
