//! Bearer-token auth against a minimal fake registry + token service on 127.0.0.1.
#![allow(clippy::unwrap_used)]

use himg::registry::{
    BlobSink, Client, ClientOptions, Credentials, OCI_MANIFEST, RegistryError, sha256_digest,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// Requests seen: (method+path, authorization header).
type Log = Arc<Mutex<Vec<(String, String)>>>;

const MANIFEST: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;

fn serve(listener: TcpListener, log: Log) {
    let port = listener.local_addr().unwrap().port();
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            continue;
        }
        let target = line.split(' ').take(2).collect::<Vec<_>>().join(" ");
        let mut auth = String::new();
        let mut length = 0usize;
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("authorization") {
                    auth = v.trim().to_owned();
                } else if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut form = vec![0; length];
        if reader.read_exact(&mut form).is_err() {
            continue;
        }
        let form = String::from_utf8_lossy(&form).into_owned();
        let seen_before = {
            let mut log = log.lock().unwrap();
            let n = log.iter().filter(|(t, _)| *t == target).count();
            log.push((target.clone(), auth.clone()));
            n
        };
        let (status, extra, body): (&str, String, Vec<u8>) = if target
            == "GET /v2/flaky/manifests/1"
            && seen_before < 2
        {
            ("503 Service Unavailable", String::new(), Vec::new())
        } else if target == "GET /v2/flaky/manifests/1" {
            ("200 OK", format!("Content-Type: {OCI_MANIFEST}\r\n"), br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#.to_vec())
        } else if target == "POST /token" {
            // An identity token, as an OAuth2 refresh token.
            let fields: Vec<&str> = form.split('&').collect();
            if fields.contains(&"grant_type=refresh_token")
                && fields.contains(&"refresh_token=id-tok")
                && fields.contains(&"service=fake")
            {
                (
                    "200 OK",
                    String::new(),
                    br#"{"access_token":"tok-123"}"#.to_vec(),
                )
            } else {
                (
                    "400 Bad Request",
                    String::new(),
                    br#"{"error":"invalid_grant"}"#.to_vec(),
                )
            }
        } else if target.starts_with("GET /token?") {
            // user:pw = himg:pw
            if auth == "Basic aGltZzpwdw==" {
                ("200 OK", String::new(), br#"{"token":"tok-123"}"#.to_vec())
            } else {
                ("401 Unauthorized", String::new(), Vec::new())
            }
        } else if auth != "Bearer tok-123" {
            let h = format!(
                "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\",scope=\"repository:app:pull\"\r\n"
            );
            ("401 Unauthorized", h, Vec::new())
        } else if target.starts_with("GET /v2/app/manifests/") {
            let h = format!(
                "Content-Type: {OCI_MANIFEST}\r\nDocker-Content-Digest: {}\r\n",
                sha256_digest(MANIFEST)
            );
            ("200 OK", h, MANIFEST.to_vec())
        } else if target.starts_with("GET /v2/app/blobs/sha256:4413") {
            ("200 OK", String::new(), b"{}".to_vec())
        } else {
            ("404 Not Found", String::new(), Vec::new())
        };
        let head = format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body);
    }
}

struct MemSink(Mutex<Vec<(String, Vec<u8>)>>);

impl BlobSink for MemSink {
    fn put(
        &self,
        digest: &himg::oci::Sha256Digest,
        _size: u64,
        reader: &mut dyn Read,
    ) -> std::io::Result<()> {
        let mut v = Vec::new();
        reader.read_to_end(&mut v)?;
        self.0.lock().unwrap().push((digest.to_string(), v));
        Ok(())
    }
}

#[test]
fn bearer_token_is_fetched_once_and_reused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let l2 = log.clone();
    std::thread::spawn(move || serve(listener, l2));
    let r = format!("127.0.0.1:{port}/app:1").parse().unwrap();

    let anon = Client::new(ClientOptions {
        insecure: true,
        ..ClientOptions::default()
    });
    let err = anon.pull(&r, &MemSink(Mutex::default())).unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");

    let c = Client::new(ClientOptions {
        insecure: true,
        credentials: Credentials::with_login(&format!("127.0.0.1:{port}"), "himg", "pw"),
        ..ClientOptions::default()
    });
    log.lock().unwrap().clear();
    for _ in 0..2 {
        let sink = MemSink(Mutex::default());
        let pulled = c.pull(&r, &sink).unwrap();
        assert_eq!(pulled.manifest_bytes, MANIFEST);
        assert_eq!(sink.0.lock().unwrap().len(), 2);
    }
    let log = log.lock().unwrap();
    let tokens: Vec<_> = log
        .iter()
        .filter(|(t, _)| t.starts_with("GET /token?"))
        .collect();
    assert_eq!(tokens.len(), 1, "{log:?}");
    assert!(
        tokens[0].0.contains("service=fake")
            && tokens[0].0.contains("scope=repository%3Aapp%3Apull")
    );
}

/// A Docker identity token (`identitytoken` in `auths`, or a helper's `<token>` user) is sent to
/// the token service as an OAuth2 refresh token; a refused one is an unauthorized error.
#[test]
fn an_identity_token_is_exchanged_as_a_refresh_token() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let l2 = log.clone();
    std::thread::spawn(move || serve(listener, l2));
    let r = format!("127.0.0.1:{port}/app:1").parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client_with = |token: &str| {
        let file = dir.path().join(format!("auth-{}.json", token.len()));
        let json =
            serde_json::json!({"auths": {format!("127.0.0.1:{port}"): {"identitytoken": token}}});
        std::fs::write(&file, serde_json::to_vec(&json).unwrap()).unwrap();
        let file = file.display().to_string();
        Client::new(ClientOptions {
            insecure: true,
            credentials: Credentials::load_with(|k| {
                (k == "REGISTRY_AUTH_FILE").then(|| file.clone())
            })
            .unwrap(),
            ..ClientOptions::default()
        })
    };
    let pulled = client_with("id-tok")
        .pull(&r, &MemSink(Mutex::default()))
        .unwrap();
    assert_eq!(pulled.manifest_bytes, MANIFEST);
    assert!(
        log.lock().unwrap().iter().any(|(t, _)| t == "POST /token"),
        "{:?}",
        log.lock().unwrap()
    );
    let err = client_with("revoked")
        .pull(&r, &MemSink(Mutex::default()))
        .unwrap_err();
    assert!(matches!(err, RegistryError::Unauthorized { .. }), "{err:?}");
    assert!(!err.to_string().contains("revoked"), "{err}");
}

#[test]
fn server_errors_are_retried() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log: Log = Arc::default();
    let l2 = log.clone();
    std::thread::spawn(move || serve(listener, l2));
    let r = format!("127.0.0.1:{port}/flaky:1").parse().unwrap();
    let c = Client::new(ClientOptions {
        insecure: true,
        ..ClientOptions::default()
    });
    let pulled = c.pull(&r, &MemSink(Mutex::default())).unwrap();
    assert_eq!(pulled.media_type, OCI_MANIFEST);
    assert_eq!(log.lock().unwrap().len(), 3, "two 503s, then success");
}
