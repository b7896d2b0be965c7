//! `himg cache serve`: a binary cache over HTTP, with per-team tokens.
//!
//! URLs are `/<namespace>/entries/<key hex>.json` and `/<namespace>/archives/<sha256 hex>.zst`;
//! `GET`/`HEAD` read, `PUT` writes. A client's cache URL is `http://HOST:PORT/<namespace>`. Files
//! live in `DIR/<namespace>/` in the `file://` layout, written through a temp file and renamed;
//! an uploaded archive must hash to its name and an uploaded entry must parse and name its key.
//!
//! Tokens (a TOML file) grant `read` or `push` on namespaces; only their SHA-256 is stored:
//!
//! ```toml
//! [[token]]
//! name = "team-a-ci"
//! sha256 = "<hex, from `himg cache hash-token TOKEN`>"
//! access = "push"          # or "read"
//! namespaces = ["team-a"]  # or ["*"]
//! ```
//!
//! Refused requests are logged on stderr. TLS is left to a reverse proxy.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use sha2::Digest as _;
use tiny_http::{Header, Method, Request, Response};

use super::CacheError;
use super::entry::SignedEntry;
use super::file::FileBackend;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Push,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRule {
    name: String,
    sha256: String,
    access: Access,
    namespaces: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    token: Vec<TokenRule>,
}

/// The server's tokens; `open` when no tokens file was given (anyone may read and push).
#[derive(Debug, Clone)]
pub struct Tokens {
    rules: Vec<TokenRule>,
    open: bool,
}

/// The SHA-256 (hex) under which a token is stored.
pub fn hash_token(token: &str) -> String {
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

impl Tokens {
    /// No authentication at all.
    pub fn open() -> Tokens {
        Tokens {
            rules: Vec::new(),
            open: true,
        }
    }

    /// Reads a tokens file.
    pub fn read(path: &Path) -> Result<Tokens, CacheError> {
        let text = fs::read_to_string(path).map_err(|e| CacheError::io(path.display(), e))?;
        let file: TokensFile = toml::from_str(&text)
            .map_err(|e| CacheError::Entry(format!("{}: {e}", path.display())))?;
        for r in &file.token {
            if r.sha256.len() != 64 || !r.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(CacheError::Entry(format!(
                    "{}: token `{}`: sha256 must be 64 hex digits",
                    path.display(),
                    r.name
                )));
            }
        }
        Ok(Tokens {
            rules: file.token,
            open: false,
        })
    }

    /// Whether `auth` (an Authorization header) may do `want` in `ns`; the refusal otherwise.
    fn check(&self, auth: Option<&str>, ns: &str, want: Access) -> Result<(), (u16, String)> {
        if self.open {
            return Ok(());
        }
        let Some(token) = auth.and_then(|a| a.strip_prefix("Bearer ")) else {
            return Err((
                401,
                "a token is required (Authorization: Bearer TOKEN)".into(),
            ));
        };
        let h = hash_token(token.trim());
        let Some(rule) = self
            .rules
            .iter()
            .find(|r| r.sha256.eq_ignore_ascii_case(&h))
        else {
            return Err((401, "unknown token".into()));
        };
        if !rule.namespaces.iter().any(|n| n == "*" || n == ns) {
            return Err((
                403,
                format!("token `{}` has no access to namespace `{ns}`", rule.name),
            ));
        }
        if want == Access::Push && rule.access == Access::Read {
            return Err((
                403,
                format!("token `{}` may only read namespace `{ns}`", rule.name),
            ));
        }
        Ok(())
    }
}

/// The server's tokens as its file says now: the file is checked (one `stat`) on every request and
/// read again when it changed, so teams are added or revoked without a restart. A file that no
/// longer reads or parses keeps the previous tokens in force (and says so): an edit never opens
/// the cache.
pub struct TokenSource {
    path: Option<PathBuf>,
    state: std::sync::Mutex<(Option<FileStamp>, Tokens)>,
}

/// What identifies one version of the tokens file.
type FileStamp = (std::time::SystemTime, u64, u64);

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt as _;
    let md = fs::metadata(path).ok()?;
    Some((md.modified().ok()?, md.len(), md.ino()))
}

impl TokenSource {
    /// No tokens file: anyone may read and push.
    pub fn open() -> TokenSource {
        TokenSource {
            path: None,
            state: std::sync::Mutex::new((None, Tokens::open())),
        }
    }

    /// The tokens of `path`, which must read and parse now.
    pub fn file(path: &Path) -> Result<TokenSource, CacheError> {
        let at = stamp(path);
        let tokens = Tokens::read(path)?;
        Ok(TokenSource {
            path: Some(path.to_owned()),
            state: std::sync::Mutex::new((at, tokens)),
        })
    }

    /// The tokens in force, re-reading the file if it changed; `warn` hears of a bad new version.
    fn current(&self, warn: &dyn Fn(&str)) -> Tokens {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(path) = &self.path {
            let now = stamp(path);
            if now != state.0 {
                state.0 = now;
                match Tokens::read(path) {
                    Ok(t) => state.1 = t,
                    Err(e) => warn(&format!(
                        "tokens file changed but cannot be used ({e}); the previous tokens stay in force"
                    )),
                }
            }
        }
        state.1.clone()
    }
}

/// How to run the server.
pub struct ServeOptions<'a> {
    pub listen: &'a str,
    pub dir: &'a Path,
    pub tokens: &'a TokenSource,
    pub retention: Option<Duration>,
    pub warn: &'a (dyn Fn(&str) + Sync),
    pub info: &'a (dyn Fn(&str) + Sync),
}

/// The parsed target of a request.
struct Target {
    ns: String,
    /// `entries/<hex>.json` or `archives/<hex>.zst`.
    rel: String,
    /// The hex name.
    name: String,
    is_entry: bool,
}

fn parse_target(url: &str) -> Option<Target> {
    let path = url.split('?').next()?;
    let mut parts = path.trim_start_matches('/').split('/');
    let (ns, kind, file) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || ns.is_empty()
        || ns.len() > 128
        || !ns
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        || ns.starts_with('.')
    {
        return None;
    }
    let (name, is_entry) = match kind {
        "entries" => (file.strip_suffix(".json")?, true),
        "archives" => (file.strip_suffix(".zst")?, false),
        _ => return None,
    };
    if name.len() != 64 || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Some(Target {
        ns: ns.to_owned(),
        rel: format!("{kind}/{file}"),
        name: name.to_owned(),
        is_entry,
    })
}

fn text(status: u16, msg: &str) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_string(format!("{msg}\n")).with_status_code(status)
}

/// Serves until the process is killed.
pub fn serve(opts: &ServeOptions<'_>) -> Result<(), CacheError> {
    fs::create_dir_all(opts.dir).map_err(|e| CacheError::io(opts.dir.display(), e))?;
    let cannot = |e: &dyn std::fmt::Display| CacheError::Backend {
        cache: opts.listen.to_owned(),
        message: format!("cannot listen: {e}"),
    };
    let listener = std::net::TcpListener::bind(opts.listen).map_err(|e| cannot(&e))?;
    // tiny_http writes a response's headers and body separately; with Nagle's algorithm the body
    // then waits for the client's delayed ACK (40 ms per small response). Accepted sockets
    // inherit TCP_NODELAY from the listener on Linux.
    rustix::net::sockopt::set_tcp_nodelay(&listener, true).map_err(|e| cannot(&e))?;
    let server = tiny_http::Server::from_listener(listener, None).map_err(|e| cannot(&e))?;
    let addr = server
        .server_addr()
        .to_ip()
        .map_or_else(|| opts.listen.to_owned(), |a| a.to_string());
    (opts.info)(&format!(
        "http://{addr}/<namespace> from {}",
        opts.dir.display()
    ));
    std::thread::scope(|s| {
        if let Some(max_age) = opts.retention {
            s.spawn(move || {
                loop {
                    match gc(opts.dir, max_age) {
                        Ok(n) if n > 0 => (opts.info)(&format!("gc removed {n} files")),
                        Ok(_) => {}
                        Err(e) => (opts.warn)(&format!("gc: {e}")),
                    }
                    std::thread::sleep(Duration::from_secs(3600));
                }
            });
        }
        for _ in 0..8 {
            let server = &server;
            s.spawn(move || {
                while let Ok(req) = server.recv() {
                    handle(opts, req);
                }
            });
        }
    });
    Ok(())
}

fn handle(opts: &ServeOptions<'_>, mut req: Request) {
    let method = req.method().clone();
    let url = req.url().to_owned();
    let peer = req
        .remote_addr()
        .map_or_else(|| "?".to_owned(), |a| a.to_string());
    let Some(t) = parse_target(&url) else {
        let _ = req.respond(text(404, "not found"));
        return;
    };
    let want = match method {
        Method::Get | Method::Head => Access::Read,
        Method::Put => Access::Push,
        _ => {
            let _ = req.respond(text(405, "method not allowed"));
            return;
        }
    };
    let auth = req
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str().to_owned());
    let tokens = opts.tokens.current(opts.warn);
    if let Err((status, why)) = tokens.check(auth.as_deref(), &t.ns, want) {
        (opts.warn)(&format!("refused {method} {url} from {peer}: {why}"));
        // The reason also goes in a header, for HEAD requests, which have no body.
        let mut resp = text(status, &why);
        if let Ok(h) = Header::from_bytes("X-Himg-Error", why.as_bytes()) {
            resp = resp.with_header(h);
        }
        let _ = req.respond(resp);
        return;
    }
    let backend = FileBackend::new("", &opts.dir.join(&t.ns));
    let path = backend.path(&t.rel);
    if want == Access::Read {
        match fs::File::open(&path) {
            Ok(f) => {
                if t.is_entry {
                    let _ = f.set_modified(SystemTime::now());
                }
                let ct = if t.is_entry {
                    "application/json"
                } else {
                    "application/zstd"
                };
                let mut resp = Response::from_file(f);
                if let Ok(h) = Header::from_bytes("Content-Type", ct) {
                    resp = resp.with_header(h);
                }
                let _ = req.respond(resp);
            }
            Err(_) => {
                let _ = req.respond(text(404, "not found"));
            }
        }
        return;
    }
    let result = if t.is_entry {
        put_entry(&backend, &t, req.as_reader())
    } else {
        put_archive(&backend, &t, req.as_reader())
    };
    match result {
        Ok(()) => {
            let _ = req.respond(text(201, "stored"));
        }
        Err(why) => {
            (opts.warn)(&format!("refused {method} {url} from {peer}: {why}"));
            let _ = req.respond(text(400, &why));
        }
    }
}

fn put_entry(backend: &FileBackend, t: &Target, body: &mut dyn Read) -> Result<(), String> {
    let mut bytes = Vec::new();
    body.take(16 << 20)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    let signed = SignedEntry::parse(&bytes).map_err(|e| e.to_string())?;
    if signed.entry.key.to_hex() != t.name {
        return Err(format!(
            "the entry is for {}, not {}",
            signed.entry.key, t.name
        ));
    }
    backend
        .write_with(&t.rel, |f| f.write_all(&bytes))
        .map_err(|e| e.to_string())
}

fn put_archive(backend: &FileBackend, t: &Target, body: &mut dyn Read) -> Result<(), String> {
    let mut actual = String::new();
    backend
        .write_with(&t.rel, |f| {
            let mut hasher = sha2::Sha256::new();
            let mut buf = vec![0u8; 1 << 16];
            loop {
                let n = body.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                f.write_all(&buf[..n])?;
            }
            actual = hex::encode(hasher.finalize());
            if actual != t.name {
                return Err(io::Error::other(format!(
                    "the archive's sha256 is {actual}, not {}",
                    t.name
                )));
            }
            Ok(())
        })
        .map_err(|e| e.to_string())
}

/// Removes entries not read or written for `max_age`, then archives no entry names and older than
/// `max_age`. Returns how many files were removed.
pub fn gc(dir: &Path, max_age: Duration) -> Result<u64, CacheError> {
    let now = SystemTime::now();
    let old = |p: &Path| {
        fs::metadata(p)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| now.duration_since(t).ok())
            .is_some_and(|age| age > max_age)
    };
    let list = |d: PathBuf| -> Vec<PathBuf> {
        fs::read_dir(d)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    let mut removed = 0;
    for ns in list(dir.to_owned()) {
        let mut live = std::collections::BTreeSet::new();
        for e in list(ns.join("entries")) {
            if old(&e) {
                if fs::remove_file(&e).is_ok() {
                    removed += 1;
                }
                continue;
            }
            if let Ok(bytes) = fs::read(&e)
                && let Ok(s) = SignedEntry::parse(&bytes)
            {
                live.insert(s.entry.file_hash.to_hex());
            }
        }
        for a in list(ns.join("archives")) {
            let name = a
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".zst"))
                .unwrap_or_default()
                .to_owned();
            if !live.contains(&name) && old(&a) && fs::remove_file(&a).is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let h = "ab".repeat(32);
        assert!(parse_target(&format!("/team-a/entries/{h}.json")).is_some());
        assert!(parse_target(&format!("/team-a/archives/{h}.zst")).is_some());
        assert!(parse_target(&format!("/../entries/{h}.json")).is_none());
        assert!(parse_target(&format!("/a/b/entries/{h}.json")).is_none());
        assert!(parse_target("/a/entries/x.json").is_none());
    }

    #[test]
    fn gc_removes_old_entries_then_unnamed_archives() {
        let dir = tempfile::tempdir().unwrap();
        let ns = dir.path().join("team");
        for d in ["entries", "archives"] {
            std::fs::create_dir_all(ns.join(d)).unwrap();
        }
        let old_entry = ns.join("entries/old.json");
        let archive = ns.join(format!("archives/{}.zst", "cd".repeat(32)));
        std::fs::write(&old_entry, b"{}").unwrap();
        std::fs::write(&archive, b"x").unwrap();
        let fresh = ns.join("entries/fresh.json");
        std::fs::write(&fresh, b"{}").unwrap();
        let past = SystemTime::now() - Duration::from_secs(10 * 86_400);
        for p in [&old_entry, &archive] {
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(past)
                .unwrap();
        }
        assert_eq!(gc(dir.path(), Duration::from_secs(86_400)).unwrap(), 2);
        assert!(!old_entry.exists() && !archive.exists() && fresh.exists());
    }

    #[test]
    fn tokens_file_changes_apply_without_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let rule = |name: &str, token: &str, access: &str| {
            format!(
                "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\naccess = \"{access}\"\nnamespaces = [\"team-a\"]\n",
                hash_token(token)
            )
        };
        fs::write(&path, rule("a", "one", "read")).unwrap();
        let source = TokenSource::file(&path).unwrap();
        let warned = std::sync::Mutex::new(Vec::new());
        let warn = |m: &str| warned.lock().unwrap().push(m.to_owned());
        let can = |token: &str, want| {
            source
                .current(&warn)
                .check(Some(&format!("Bearer {token}")), "team-a", want)
                .is_ok()
        };
        assert!(can("one", Access::Read) && !can("two", Access::Read));
        // A new team, and the old one revoked: both apply to the next request.
        let tmp = dir.path().join("tokens.new");
        fs::write(&tmp, rule("b", "two", "push")).unwrap();
        fs::rename(&tmp, &path).unwrap();
        assert!(can("two", Access::Push) && !can("one", Access::Read));
        // A broken edit keeps the tokens in force, never opens the cache.
        fs::write(&path, "[[token]]\nname = ").unwrap();
        assert!(can("two", Access::Push) && !can("anything", Access::Read));
        assert!(warned.lock().unwrap()[0].contains("previous tokens stay in force"));
    }

    #[test]
    fn token_rules() {
        let tokens = Tokens {
            open: false,
            rules: vec![TokenRule {
                name: "b".into(),
                sha256: hash_token("secret"),
                access: Access::Read,
                namespaces: vec!["team-a".into()],
            }],
        };
        assert!(
            tokens
                .check(Some("Bearer secret"), "team-a", Access::Read)
                .is_ok()
        );
        assert_eq!(
            tokens
                .check(Some("Bearer secret"), "team-a", Access::Push)
                .unwrap_err()
                .0,
            403
        );
        assert_eq!(
            tokens.check(None, "team-a", Access::Read).unwrap_err().0,
            401
        );
        assert_eq!(
            tokens
                .check(Some("Bearer x"), "team-a", Access::Read)
                .unwrap_err()
                .0,
            401
        );
        assert_eq!(
            tokens
                .check(Some("Bearer secret"), "team-c", Access::Read)
                .unwrap_err()
                .0,
            403
        );
    }
}
