//! A tiny HTTP/1.1 file server on 127.0.0.1 for tests (std::net only).
//!
//! Serves a directory with GET and HEAD, single `Range: bytes=A-[B]` requests (206/416), 404s,
//! and `Connection: close` on every response. It counts requests per path (to assert "no
//! network on the second build"), records each request's `Authorization` header (to assert
//! where credentials went), and injects faults on demand: answer 503 the next n times, or send
//! half a body and drop the connection once. It stops when the [`TestServer`] is dropped.

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// `GET` or `HEAD` (or whatever was sent).
    pub method: String,
    /// The URL path, e.g. `/dists/trixie/InRelease`.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The status code answered.
    pub status: u16,
}

#[derive(Debug, Default)]
struct State {
    log: Vec<Request>,
    fail_503: BTreeMap<String, u32>,
    drop_once: BTreeMap<String, u64>,
}

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    state: Mutex<State>,
    stop: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking handler thread must not take the whole test down with a poisoned lock.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running server. `base_url` is `http://127.0.0.1:PORT` (no trailing slash).
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Serves `dir` on 127.0.0.1 on a free port.
pub fn serve(dir: &Path) -> io::Result<TestServer> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        root: dir.to_path_buf(),
        state: Mutex::new(State::default()),
        stop: AtomicBool::new(false),
    });
    let s = Arc::clone(&shared);
    let thread = std::thread::Builder::new()
        .name("himg-test-http".into())
        .spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let s2 = Arc::clone(&s);
                let _ = std::thread::Builder::new()
                    .name("himg-test-http-conn".into())
                    .spawn(move || {
                        let _ = handle(&s2, stream);
                    });
            }
        })?;
    Ok(TestServer {
        base_url: format!("http://{addr}"),
        addr,
        shared,
        thread: Some(thread),
    })
}

impl TestServer {
    /// `base_url` + `path` (which should start with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// How many requests (any method, any status) were made for `path`.
    pub fn requests(&self, path: &str) -> usize {
        self.shared
            .state()
            .log
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// How many requests were made in total.
    pub fn total_requests(&self) -> usize {
        self.shared.state().log.len()
    }

    /// Every request so far, in order.
    pub fn request_log(&self) -> Vec<Request> {
        self.shared.state().log.clone()
    }

    /// Forgets the request log.
    pub fn reset_log(&self) {
        self.shared.state().log.clear();
    }

    /// Answers the next `n` requests for `path` with 503.
    pub fn fail_with_503(&self, path: &str, n: u32) {
        self.shared.state().fail_503.insert(path.to_string(), n);
    }

    /// The next full GET of `path` sends the headers and `after_bytes` of the body, then drops
    /// the connection (once).
    pub fn drop_connection_once(&self, path: &str, after_bytes: u64) {
        self.shared
            .state()
            .drop_once
            .insert(path.to_string(), after_bytes);
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `bytes=A-B` / `bytes=A-` / `bytes=-N` → inclusive (start, end) within `len`, or None if
/// unsatisfiable; Err(()) when the header is not a single byte range.
#[allow(clippy::result_unit_err)]
fn parse_range(v: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let spec = v.trim().strip_prefix("bytes=").ok_or(())?;
    if spec.contains(',') {
        return Err(());
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || len == 0 {
            return Ok(None);
        }
        return Ok(Some((len.saturating_sub(n), len - 1)));
    }
    let start: u64 = a.parse().map_err(|_| ())?;
    let end: u64 = if b.is_empty() {
        len.saturating_sub(1)
    } else {
        b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
    };
    if start >= len || end < start {
        return Ok(None);
    }
    Ok(Some((start, end)))
}

fn handle(shared: &Shared, mut stream: TcpStream) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut range = None;
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "range" => range = Some(v.trim().to_string()),
                "authorization" => authorization = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    let path = target.split(['?', '#']).next().unwrap_or("/").to_string();
    let mut req = Request {
        method: method.clone(),
        path: path.clone(),
        range: range.clone(),
        authorization,
        status: 0,
    };

    let respond = |stream: &mut TcpStream,
                   status: u16,
                   reason: &str,
                   headers: &str,
                   body: &[u8]| {
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes())?;
        stream.write_all(body)?;
        stream.flush()
    };

    let log = |req: Request| shared.state().log.push(req);

    if method != "GET" && method != "HEAD" {
        req.status = 405;
        log(req);
        return respond(&mut stream, 405, "Method Not Allowed", "", b"");
    }
    {
        let mut st = shared.state();
        if let Some(n) = st.fail_503.get_mut(&path)
            && *n > 0
        {
            *n -= 1;
            drop(st);
            req.status = 503;
            log(req);
            return respond(
                &mut stream,
                503,
                "Service Unavailable",
                "Retry-After: 0\r\n",
                b"busy\n",
            );
        }
    }
    let file = percent_decode(&path).and_then(|p| {
        let rel = Path::new(p.trim_start_matches('/'));
        rel.components()
            .all(|c| matches!(c, Component::Normal(_)))
            .then(|| shared.root.join(rel))
    });
    let body = match file.filter(|f| f.is_file()).map(std::fs::read) {
        Some(Ok(b)) => b,
        _ => {
            req.status = 404;
            log(req);
            return respond(&mut stream, 404, "Not Found", "", b"not found\n");
        }
    };
    let len = body.len() as u64;
    let head_only = method == "HEAD";
    if let Some(r) = &range {
        match parse_range(r, len) {
            Ok(Some((start, end))) => {
                req.status = 206;
                log(req);
                let part = &body[start as usize..=end as usize];
                let headers =
                    format!("Content-Range: bytes {start}-{end}/{len}\r\nAccept-Ranges: bytes\r\n");
                if head_only {
                    let head = format!(
                        "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n",
                        part.len()
                    );
                    return stream.write_all(head.as_bytes());
                }
                return respond(&mut stream, 206, "Partial Content", &headers, part);
            }
            Ok(None) => {
                req.status = 416;
                log(req);
                let headers = format!("Content-Range: bytes */{len}\r\n");
                return respond(&mut stream, 416, "Range Not Satisfiable", &headers, b"");
            }
            Err(()) => {} // ignore a malformed Range, as servers may: send the whole file
        }
    }
    let drop_after = if head_only {
        None
    } else {
        shared.state().drop_once.remove(&path)
    };
    req.status = 200;
    log(req);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes())?;
    if head_only {
        return stream.flush();
    }
    match drop_after {
        Some(n) => {
            let n = (n as usize).min(body.len());
            stream.write_all(&body[..n])?;
            stream.flush()?;
            // Drain what the client may still send, then close hard.
            let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
            let _ = reader.read(&mut [0u8; 64]);
            stream.shutdown(Shutdown::Both)
        }
        None => {
            stream.write_all(&body)?;
            stream.flush()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(server: &TestServer, request: &str) -> String {
        let mut s = TcpStream::connect(server.addr).expect("connect");
        s.write_all(request.as_bytes()).expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("read");
        out
    }

    #[test]
    fn serves_get_head_range_404_and_counts() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("a")).expect("mkdir");
        std::fs::write(dir.path().join("a/f.txt"), "0123456789").expect("write");
        let server = serve(dir.path()).expect("serve");
        let get = raw(&server, "GET /a/f.txt HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            get.starts_with("HTTP/1.1 200 OK\r\n") && get.ends_with("\r\n\r\n0123456789"),
            "{get}"
        );
        let head = raw(&server, "HEAD /a/f.txt HTTP/1.1\r\n\r\n");
        assert!(
            head.contains("Content-Length: 10\r\n") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        let part = raw(
            &server,
            "GET /a/%66.txt HTTP/1.1\r\nRange: bytes=-3\r\n\r\n",
        );
        assert!(
            part.starts_with("HTTP/1.1 206") && part.contains("Content-Range: bytes 7-9/10"),
            "{part}"
        );
        assert!(part.ends_with("789"), "{part}");
        let bad = raw(&server, "GET /a/f.txt HTTP/1.1\r\nRange: bytes=10-\r\n\r\n");
        assert!(bad.starts_with("HTTP/1.1 416"), "{bad}");
        for path in ["/nope", "/a/../a/f.txt", "/a/%2e%2e/a/f.txt", "/a"] {
            let r = raw(&server, &format!("GET {path} HTTP/1.1\r\n\r\n"));
            assert!(r.starts_with("HTTP/1.1 404"), "{path}: {r}");
        }
        assert_eq!(server.requests("/a/f.txt"), 3);
        assert_eq!(server.total_requests(), 8);
        server.reset_log();
        assert_eq!(server.total_requests(), 0);
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-", 10), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=5-", 10), Ok(Some((5, 9))));
        assert_eq!(parse_range("bytes=2-3", 10), Ok(Some((2, 3))));
        assert_eq!(parse_range("bytes=-3", 10), Ok(Some((7, 9))));
        assert_eq!(parse_range("bytes=10-", 10), Ok(None));
        assert_eq!(parse_range("bytes=0-1,3-4", 10), Err(()));
        assert_eq!(parse_range("items=0-1", 10), Err(()));
    }
}
