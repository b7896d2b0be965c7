//! A hostile registry on 127.0.0.1, scripted with `std::net`: digests that climb out of the blob
//! directory, bodies longer than declared or endless, absurd sizes, content that does not match
//! its digest (by tag and by digest), indexes nested without end, redirects to `file://`, and a
//! body that stalls until the user presses Ctrl-C. `himg pull`, `himg inspect` on a registry
//! reference and a build `from` a registry base must refuse each one with a message naming the
//! repository, the digest and the rule, write nothing outside their output and leave no
//! temporary file behind.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use himg::registry::{OCI_INDEX, OCI_MANIFEST, sha256_digest};

/// What the scripted registry answers to one request path.
#[derive(Clone, Debug)]
enum Answer {
    /// A complete response.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// `200` without a length, then zeros until the client goes away, `cap` bytes were sent or
    /// 30 s passed: the server stops by itself.
    Endless { cap: u64 },
    /// `200` with `Content-Length: declared`, the bytes `sent`, then silence until the server is
    /// dropped (at most 60 s).
    Stall { declared: u64, sent: Vec<u8> },
}

impl Answer {
    fn ok(content_type: &str, body: Vec<u8>) -> Answer {
        Answer::Full {
            status: 200,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }

    fn redirect(location: &str) -> Answer {
        Answer::Full {
            status: 302,
            headers: vec![("Location".into(), location.into())],
            body: Vec::new(),
        }
    }
}

/// The scripted registry; stops when dropped.
struct Hostile {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    /// Body bytes sent by `Endless` and `Stall` answers.
    sent: Arc<AtomicU64>,
    /// Set once a `Stall` answer has sent its bytes.
    stalled: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    /// Answers `routes` (by exact path, query ignored), `/v2/` with `{}`, anything else with 404.
    fn start(routes: BTreeMap<String, Answer>) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = Hostile {
            port,
            log: Arc::default(),
            sent: Arc::default(),
            stalled: Arc::default(),
            stop: Arc::default(),
        };
        let routes = Arc::new(routes);
        let (log, sent, stalled, stop) = (
            Arc::clone(&server.log),
            Arc::clone(&server.sent),
            Arc::clone(&server.stalled),
            Arc::clone(&server.stop),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (routes, log, sent, stalled, stop) = (
                    Arc::clone(&routes),
                    Arc::clone(&log),
                    Arc::clone(&sent),
                    Arc::clone(&stalled),
                    Arc::clone(&stop),
                );
                std::thread::spawn(move || {
                    let _ = answer(stream, &routes, &log, &sent, &stalled, &stop);
                });
            }
        });
        server
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn answer(
    stream: TcpStream,
    routes: &BTreeMap<String, Answer>,
    log: &Mutex<Vec<String>>,
    sent: &AtomicU64,
    stalled: &AtomicBool,
    stop: &AtomicBool,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header.trim().is_empty() {
            break;
        }
    }
    log.lock().unwrap().push(format!("{method} {target}"));
    let path = target.split('?').next().unwrap_or("");
    let mut out = stream;
    let head = |status: u16, headers: &[(String, String)], length: Option<u64>| {
        let mut h = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
        for (k, v) in headers {
            h.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(n) = length {
            h.push_str(&format!("Content-Length: {n}\r\n"));
        }
        h.push_str("\r\n");
        h.into_bytes()
    };
    let chosen = match path {
        "/v2/" | "/v2" => Answer::ok("application/json", b"{}".to_vec()),
        _ => routes.get(path).cloned().unwrap_or(Answer::Full {
            status: 404,
            headers: Vec::new(),
            body: br#"{"errors":[{"code":"NOT_FOUND"}]}"#.to_vec(),
        }),
    };
    match chosen {
        Answer::Full {
            status,
            headers,
            body,
        } => {
            out.write_all(&head(status, &headers, Some(body.len() as u64)))?;
            if method != "HEAD" {
                out.write_all(&body)?;
            }
        }
        Answer::Endless { cap } => {
            out.write_all(&head(200, &[], None))?;
            let chunk = vec![0u8; 64 * 1024];
            let start = Instant::now();
            while sent.load(Ordering::SeqCst) < cap
                && start.elapsed() < Duration::from_secs(30)
                && !stop.load(Ordering::SeqCst)
            {
                out.write_all(&chunk)?;
                sent.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
        }
        Answer::Stall { declared, sent: s } => {
            out.write_all(&head(200, &[], Some(declared)))?;
            out.write_all(&s)?;
            out.flush()?;
            sent.fetch_add(s.len() as u64, Ordering::SeqCst);
            stalled.store(true, Ordering::SeqCst);
            let start = Instant::now();
            while !stop.load(Ordering::SeqCst) && start.elapsed() < Duration::from_secs(60) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    out.flush()
}

/// A config blob (one layer's diff id) and an image manifest over `layers` (digest, size), which
/// may be lies.
fn image(layers: &[(&str, u64)]) -> (Vec<u8>, Vec<u8>) {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|_| sha256_digest(b"x")).collect::<Vec<_>>()},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256_digest(&config),
            "size": config.len(),
        },
        "layers": layers.iter().map(|(digest, size)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": digest,
            "size": size,
        })).collect::<Vec<_>>(),
    }))
    .unwrap();
    (config, manifest)
}

/// Routes serving `manifest` as `repo:latest` and by its digest, and `config` as a blob.
fn routes(repo: &str, config: &[u8], manifest: &[u8]) -> BTreeMap<String, Answer> {
    let media = |body: &[u8]| Answer::Full {
        status: 200,
        headers: vec![
            ("Content-Type".into(), OCI_MANIFEST.into()),
            ("Docker-Content-Digest".into(), sha256_digest(body)),
        ],
        body: body.to_vec(),
    };
    BTreeMap::from([
        (format!("/v2/{repo}/manifests/latest"), media(manifest)),
        (
            format!("/v2/{repo}/manifests/{}", sha256_digest(manifest)),
            media(manifest),
        ),
        (
            format!("/v2/{repo}/blobs/{}", sha256_digest(config)),
            Answer::ok("application/octet-stream", config.to_vec()),
        ),
    ])
}

/// A scratch directory `root` with `work/` (where outputs go), `tmp/` (the children's TMPDIR)
/// and `store/`: whatever lands in `root` outside an output is a leak.
struct Scratch {
    root: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Scratch {
        let root = tempfile::tempdir().unwrap();
        for d in ["work", "tmp"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        Scratch { root }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_himg"));
        cmd.current_dir(self.path("work"))
            .env("HIMG_STORE", self.path("store"))
            .env("TMPDIR", self.path("tmp"))
            .args(args);
        cmd
    }

    fn himg(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Everything under the scratch root (relative paths, sorted), the store's database and
    /// object directories aside.
    fn files(&self) -> Vec<String> {
        let mut out = Vec::new();
        for entry in walkdir::WalkDir::new(self.root.path()).min_depth(1) {
            let entry = entry.unwrap();
            let rel = entry.path().strip_prefix(self.root.path()).unwrap();
            out.push(rel.display().to_string());
        }
        out.sort();
        out
    }

    /// Asserts that nothing was written outside `outputs` (each `work/NAME`) and the store, that
    /// `tmp/` is empty and that no temporary file is left anywhere.
    fn assert_clean(&self, outputs: &[&str]) {
        let files = self.files();
        let leaked: Vec<&String> = files
            .iter()
            .filter(|f| {
                let inside_output = outputs.iter().any(|o| {
                    f.as_str() == format!("work/{o}") || f.starts_with(&format!("work/{o}/"))
                });
                !(f.as_str() == "work"
                    || f.as_str() == "tmp"
                    || f.starts_with("store")
                    || inside_output)
            })
            .collect();
        assert!(leaked.is_empty(), "written outside the outputs: {leaked:?}");
        let temporary: Vec<&String> = files
            .iter()
            .filter(|f| {
                let name = Path::new(f.as_str())
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                name.contains(".tmp") || name.starts_with(".himg-pull") || name.ends_with(".tmp")
            })
            .collect();
        assert!(temporary.is_empty(), "temporary files left: {temporary:?}");
        // Nothing next to the scratch directory either (a digest climbing further up).
        let parent = self.root.path().parent().unwrap();
        assert!(!parent.join("escaped").exists() && !self.path("escaped").exists());
    }
}

/// Asserts the command failed and its error names every one of `needles`; returns stderr.
fn refused(output: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "expected a refusal:\n{stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "`{needle}` not in:\n{stderr}");
    }
    assert!(
        !stderr.contains("panicked") && !stderr.contains("assertion"),
        "{stderr}"
    );
    stderr
}

const DIGEST_RULE: &str = "a digest is `sha256:` followed by 64 lowercase hex digits";

#[test]
fn a_digest_that_climbs_out_of_the_blob_directory_is_refused_before_any_request() {
    let traversal = "sha256:../../../../escaped";
    let (config, manifest) = image(&[(traversal, 10)]);
    let mut r = routes("hostile", &config, &manifest);
    r.insert(
        format!("/v2/hostile/blobs/{traversal}"),
        Answer::ok("application/octet-stream", b"attacker!!".to_vec()),
    );
    let server = Hostile::start(r);
    let scratch = Scratch::new();
    let reference = format!("{}/hostile:latest", server.host());
    let repository = format!("`{}/hostile`", server.host());

    let o = scratch.himg(&["pull", &reference, "--out", "out"]);
    refused(&o, &[traversal, DIGEST_RULE, &repository]);
    // A fresh output is removed when the pull fails.
    scratch.assert_clean(&[]);

    let o = scratch.himg(&["inspect", &reference]);
    refused(&o, &[traversal, DIGEST_RULE, &repository]);
    let o = scratch.himg(&["sbom", &reference]);
    refused(&o, &[traversal, DIGEST_RULE]);
    scratch.assert_clean(&[]);

    // The digest never became a request either.
    let requests = server.requests();
    assert!(requests.iter().all(|r| !r.contains("..")), "{requests:?}");
}

#[test]
fn a_registry_base_with_a_climbing_digest_is_refused() {
    let traversal = "sha256:../../../../../escaped";
    let (config, manifest) = image(&[(traversal, 10)]);
    let server = Hostile::start(routes("base", &config, &manifest));
    let scratch = Scratch::new();
    let pinned = format!("{}/base@{}", server.host(), sha256_digest(&manifest));
    std::fs::write(
        scratch.path("work/app.himg"),
        format!("image \"app\" {{\n  from = \"{pinned}\"\n}}\n"),
    )
    .unwrap();
    let o = scratch.himg(&["build", "app.himg", "--out", "out"]);
    refused(
        &o,
        &[traversal, DIGEST_RULE, &format!("{}/base", server.host())],
    );
    scratch.assert_clean(&["app.himg"]);
    let store_tmp = scratch.path("store/v1/tmp");
    let left: Vec<_> = std::fs::read_dir(&store_tmp)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert!(server.requests().iter().all(|r| !r.contains("..")));
}

#[test]
fn a_body_longer_than_its_descriptor_is_cut_off_at_the_declared_size() {
    let layer = vec![7u8; 1000];
    let layer_digest = sha256_digest(&layer);
    // `lie`: 2000 bytes for a descriptor of 1000; `endless`: zeros without end.
    let (config, manifest) = image(&[(&layer_digest, 1000)]);
    let mut r = routes("lie", &config, &manifest);
    r.extend(routes("endless", &config, &manifest));
    r.insert(
        format!("/v2/lie/blobs/{layer_digest}"),
        Answer::ok("application/octet-stream", vec![7u8; 2000]),
    );
    r.insert(
        format!("/v2/endless/blobs/{layer_digest}"),
        Answer::Endless { cap: 4 << 30 },
    );
    let server = Hostile::start(r);
    let scratch = Scratch::new();
    let rule = "longer than the 1000 bytes its descriptor declares";

    let o = scratch.himg(&[
        "pull",
        &format!("{}/lie:latest", server.host()),
        "--out",
        "out",
    ]);
    refused(
        &o,
        &[&layer_digest, rule, &format!("{}/lie", server.host())],
    );
    scratch.assert_clean(&[]);

    let start = Instant::now();
    let o = scratch.himg(&[
        "pull",
        &format!("{}/endless:latest", server.host()),
        "--out",
        "out",
    ]);
    refused(
        &o,
        &[&layer_digest, rule, &format!("{}/endless", server.host())],
    );
    assert!(start.elapsed() < Duration::from_secs(20));
    // Cut off at once: what the server managed to send is socket buffers, not gigabytes.
    let sent = server.sent.load(Ordering::SeqCst);
    assert!(sent < 64 << 20, "the server sent {sent} bytes");
    scratch.assert_clean(&[]);
    // Refused for what it is, not retried.
    let fetches = server
        .requests()
        .iter()
        .filter(|r| r.contains("/v2/endless/blobs/") && r.contains(&layer_digest))
        .count();
    assert_eq!(fetches, 1);
}

#[test]
fn an_absurd_declared_size_is_refused_before_downloading() {
    let layer_digest = sha256_digest(b"whatever");
    let absurd = 1u64 << 62;
    let (config, manifest) = image(&[(&layer_digest, absurd)]);
    let mut r = routes("absurd", &config, &manifest);
    r.insert(
        format!("/v2/absurd/blobs/{layer_digest}"),
        Answer::Endless { cap: 4 << 30 },
    );
    // A manifest without end is cut off at the manifest limit.
    r.insert(
        "/v2/absurd/manifests/endless".to_owned(),
        Answer::Endless { cap: 4 << 30 },
    );
    let server = Hostile::start(r);
    let scratch = Scratch::new();
    let reference = format!("{}/absurd:latest", server.host());
    let o = scratch.himg(&["pull", &reference, "--out", "out"]);
    refused(
        &o,
        &[
            &layer_digest,
            &format!("declares {absurd} bytes, more than the limit of"),
            &format!("{}/absurd", server.host()),
        ],
    );
    let o = scratch.himg(&["inspect", &reference]);
    refused(&o, &[&format!("declares {absurd} bytes")]);
    scratch.assert_clean(&[]);
    assert!(
        server.requests().iter().all(|r| !r.contains(&layer_digest)),
        "{:?}",
        server.requests()
    );
    assert_eq!(server.sent.load(Ordering::SeqCst), 0);

    let o = scratch.himg(&[
        "pull",
        &format!("{}/absurd:endless", server.host()),
        "--out",
        "out",
    ]);
    refused(
        &o,
        &[
            "manifest `endless`",
            &format!("{}/absurd", server.host()),
            "a manifest or index is at most 8388608 bytes",
        ],
    );
    let sent = server.sent.load(Ordering::SeqCst);
    assert!(sent < 64 << 20, "the server sent {sent} bytes");
    scratch.assert_clean(&[]);
}

#[test]
fn content_that_does_not_match_its_digest_is_refused_by_tag_and_by_digest() {
    let layer = b"the layer".to_vec();
    let layer_digest = sha256_digest(&layer);
    let (config, manifest) = image(&[(&layer_digest, layer.len() as u64)]);
    let other = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
    let mut r = BTreeMap::new();
    // By tag: the registry announces one digest and serves other bytes.
    r.insert(
        "/v2/bytag/manifests/latest".to_owned(),
        Answer::Full {
            status: 200,
            headers: vec![
                ("Content-Type".into(), OCI_MANIFEST.into()),
                ("Docker-Content-Digest".into(), sha256_digest(&manifest)),
            ],
            body: other.to_vec(),
        },
    );
    // By digest: other bytes under the pinned digest (no header to agree with).
    r.insert(
        format!("/v2/bydigest/manifests/{}", sha256_digest(&manifest)),
        Answer::ok(OCI_MANIFEST, other.to_vec()),
    );
    // A blob whose bytes (of the declared size) hash to something else.
    r.extend(routes("blob", &config, &manifest));
    r.insert(
        format!("/v2/blob/blobs/{layer_digest}"),
        Answer::ok("application/octet-stream", b"THE LAYER".to_vec()),
    );
    let server = Hostile::start(r);
    let scratch = Scratch::new();
    let host = server.host();

    let o = scratch.himg(&["pull", &format!("{host}/bytag:latest"), "--out", "out"]);
    refused(
        &o,
        &[
            "digest mismatch",
            &sha256_digest(&manifest),
            &format!("{host}/bytag"),
        ],
    );
    let pinned = format!("{host}/bydigest@{}", sha256_digest(&manifest));
    let o = scratch.himg(&["pull", &pinned, "--out", "out"]);
    refused(
        &o,
        &[
            "digest mismatch",
            &sha256_digest(other),
            &format!("{host}/bydigest"),
        ],
    );
    let o = scratch.himg(&["inspect", &pinned]);
    refused(&o, &["digest mismatch"]);
    let o = scratch.himg(&["pull", &format!("{host}/blob:latest"), "--out", "out"]);
    refused(&o, &[&layer_digest, "hash to", &format!("{host}/blob")]);
    scratch.assert_clean(&[]);
}

#[test]
fn indexes_nested_without_end_or_too_wide_are_refused() {
    // index 0 → index 1 → … → index 7 → an (unfetched) manifest.
    let mut child =
        serde_json::json!({"mediaType": OCI_MANIFEST, "digest": sha256_digest(b"leaf"), "size": 4});
    let mut r = BTreeMap::new();
    let mut top = Vec::new();
    for _ in 0..8 {
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [child],
        }))
        .unwrap();
        let digest = sha256_digest(&index);
        r.insert(
            format!("/v2/deep/manifests/{digest}"),
            Answer::ok(OCI_INDEX, index.clone()),
        );
        child = serde_json::json!({"mediaType": OCI_INDEX, "digest": digest, "size": index.len()});
        top = index;
    }
    r.insert(
        "/v2/deep/manifests/latest".to_owned(),
        Answer::ok(OCI_INDEX, top),
    );
    // An index of 1100 distinct (empty) indexes: more manifests than one pull fetches.
    let mut children = Vec::new();
    for i in 0..1100 {
        let index = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [],
            "annotations": {"n": i.to_string()},
        }))
        .unwrap();
        let digest = sha256_digest(&index);
        children.push(
            serde_json::json!({"mediaType": OCI_INDEX, "digest": digest, "size": index.len()}),
        );
        r.insert(
            format!("/v2/wide/manifests/{digest}"),
            Answer::ok(OCI_INDEX, index),
        );
    }
    let wide = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": children,
    }))
    .unwrap();
    r.insert(
        "/v2/wide/manifests/latest".to_owned(),
        Answer::ok(OCI_INDEX, wide),
    );
    let server = Hostile::start(r);
    let scratch = Scratch::new();
    let o = scratch.himg(&[
        "pull",
        &format!("{}/wide:latest", server.host()),
        "--out",
        "out",
    ]);
    refused(
        &o,
        &[
            "one pull fetches at most 1024 manifests",
            &format!("{}/wide", server.host()),
        ],
    );
    scratch.assert_clean(&[]);
    let wide_requests = server.requests().len();
    assert!(wide_requests <= 1025, "{wide_requests} requests");

    let o = scratch.himg(&[
        "pull",
        &format!("{}/deep:latest", server.host()),
        "--out",
        "out",
    ]);
    refused(
        &o,
        &[
            "image indexes nest at most 4 deep",
            &format!("{}/deep", server.host()),
        ],
    );
    scratch.assert_clean(&[]);
    let deep_requests = server.requests().len() - wide_requests;
    assert!(deep_requests < 10, "{:?}", server.requests());
}

#[test]
fn redirects_lead_only_to_http_urls_and_leftovers_go_on_the_next_run() {
    let layer = b"redirected layer".to_vec();
    let layer_digest = sha256_digest(&layer);
    let (config, manifest) = image(&[(&layer_digest, layer.len() as u64)]);
    let mut r = routes("tofile", &config, &manifest);
    r.extend(routes("fine", &config, &manifest));
    r.insert(
        format!("/v2/tofile/blobs/{layer_digest}"),
        Answer::redirect("file:///etc/passwd"),
    );
    // A registry may redirect to storage over http(s): followed.
    r.insert(
        format!("/v2/fine/blobs/{layer_digest}"),
        Answer::redirect("/storage/layer?signature=1"),
    );
    r.insert(
        "/storage/layer".to_owned(),
        Answer::ok("application/octet-stream", layer.clone()),
    );
    let server = Hostile::start(r);
    let scratch = Scratch::new();
    let host = server.host();

    let o = scratch.himg(&["pull", &format!("{host}/tofile:latest"), "--out", "out"]);
    refused(
        &o,
        &[
            "file:///etc/passwd",
            "may redirect only to https://",
            &format!("{host}/tofile"),
        ],
    );
    scratch.assert_clean(&[]);

    let o = scratch.himg(&["pull", &format!("{host}/fine:latest"), "--out", "out"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let blob = scratch.path(&format!(
        "work/out/blobs/sha256/{}",
        layer_digest.trim_start_matches("sha256:")
    ));
    assert_eq!(std::fs::read(&blob).unwrap(), layer);
    // What an interrupted run left in the layout goes on the next one.
    let stale = scratch.path("work/out/blobs/sha256/.tmp-0000-1");
    std::fs::write(&stale, b"half").unwrap();
    let o = scratch.himg(&["pull", &format!("{host}/fine:latest"), "--out", "out"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!stale.exists());
    scratch.assert_clean(&["out"]);
}

/// Starts `args`, waits until the registry stalls mid-body and the blob's temporary file is
/// there (when `tmp_in` is given), sends `signal`, and returns how the child ended.
fn interrupt(
    scratch: &Scratch,
    server: &Hostile,
    args: &[&str],
    tmp_in: Option<&Path>,
    signal: rustix::process::Signal,
) -> std::process::ExitStatus {
    let mut child = scratch
        .command(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let ready = || {
        server.stalled.load(Ordering::SeqCst)
            && tmp_in.is_none_or(|dir| {
                std::fs::read_dir(dir).is_ok_and(|d| {
                    d.flatten().any(|e| {
                        e.file_name().to_string_lossy().starts_with(".tmp-")
                            && e.metadata().is_ok_and(|m| m.len() > 0)
                    })
                })
            })
    };
    while !ready() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the pull did not reach the stalled body"
        );
        assert!(child.try_wait().unwrap().is_none(), "the pull ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The temporary file exists, inside the output; now the user presses Ctrl-C.
    rustix::process::kill_process(rustix::process::Pid::from_child(&child), signal).unwrap();
    use wait_timeout::ChildExt as _;
    let status = child
        .wait_timeout(Duration::from_secs(30))
        .unwrap()
        .expect("the interrupted pull ends");
    server.stalled.store(false, Ordering::SeqCst);
    status
}

#[test]
fn an_interrupted_pull_leaves_nothing_behind() {
    use std::os::unix::process::ExitStatusExt as _;
    let layer_digest = sha256_digest(&[1u8; 1 << 20]);
    let (config, manifest) = image(&[(&layer_digest, 1 << 20)]);
    let mut r = routes("slow", &config, &manifest);
    r.insert(
        format!("/v2/slow/blobs/{layer_digest}"),
        Answer::Stall {
            declared: 1 << 20,
            sent: vec![1u8; 256 << 10],
        },
    );
    let server = Hostile::start(r);
    let scratch = Scratch::new();
    let reference = format!("{}/slow:latest", server.host());
    let signal = rustix::process::Signal::INT;

    // Into a fresh output: it goes entirely.
    let status = interrupt(
        &scratch,
        &server,
        &["pull", &reference, "--out", "out"],
        Some(&scratch.path("work/out/blobs/sha256")),
        signal,
    );
    assert_eq!(status.signal(), Some(signal.as_raw()), "{status:?}");
    assert!(!scratch.path("work/out").exists());
    scratch.assert_clean(&[]);

    // Into an existing layout: it stays, without the temporary file.
    std::fs::create_dir_all(scratch.path("work/kept")).unwrap();
    std::fs::write(
        scratch.path("work/kept/oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let status = interrupt(
        &scratch,
        &server,
        &["pull", &reference, "--out", "kept"],
        Some(&scratch.path("work/kept/blobs/sha256")),
        signal,
    );
    assert_eq!(status.signal(), Some(signal.as_raw()), "{status:?}");
    assert!(scratch.path("work/kept/oci-layout").exists());
    scratch.assert_clean(&["kept"]);

    // `himg inspect` pulls into a temporary directory: SIGTERM removes it too.
    let status = interrupt(
        &scratch,
        &server,
        &["inspect", &reference],
        None,
        rustix::process::Signal::TERM,
    );
    assert_eq!(
        status.signal(),
        Some(rustix::process::Signal::TERM.as_raw()),
        "{status:?}"
    );
    scratch.assert_clean(&["kept"]);
}

#[test]
fn a_registry_that_stops_sending_mid_blob_fails_the_pull_instead_of_holding_it() {
    let layer_digest = sha256_digest(&[1u8; 1 << 20]);
    let (config, manifest) = image(&[(&layer_digest, 1 << 20)]);
    let mut r = routes("stuck", &config, &manifest);
    r.insert(
        format!("/v2/stuck/blobs/{layer_digest}"),
        Answer::Stall {
            declared: 1 << 20,
            sent: vec![1u8; 64 << 10],
        },
    );
    let server = Hostile::start(r);
    let scratch = Scratch::new();
    let o = scratch
        .command(&[
            "pull",
            &format!("{}/stuck:latest", server.host()),
            "--out",
            "out",
        ])
        .env("HIMG_REGISTRY_TIMEOUT", "1")
        .output()
        .unwrap();
    let err = refused(&o, &[&layer_digest]);
    assert!(
        err.contains("timed out") || err.contains("timeout"),
        "{err}"
    );
    scratch.assert_clean(&[]);
}
