//! HTTP(S) and `file://` fetching with retries, resume and verification.
//!
//! [`Fetcher::get_bytes`] reads small files (InRelease) into memory under a size cap;
//! [`Fetcher::download`] streams a file to a path the caller chose, resumes with `Range` after a
//! dropped connection, retries with exponential backoff on 5xx, 408, 429 and transport errors,
//! and checks size and sha256 when the caller knows them (from a signed index). A file that fails
//! verification is deleted, so a half-trusted file never lingers under the caller's name.
//!
//! Credentials come from an apt-auth.conf/netrc-style file ([`Credentials`]), never from
//! `.himg` files, and are sent (as HTTP Basic) only to URLs that match an entry's scheme, host,
//! port and path prefix. Redirects never carry them along.

use std::fmt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

/// Everything that can go wrong fetching a URL.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// HTTP 404/410 or a missing `file://` path.
    #[error("{url}: not found{}", status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
    NotFound {
        /// The URL.
        url: String,
        /// The HTTP status, if it was HTTP.
        status: Option<u16>,
    },
    /// Any other unexpected HTTP status.
    #[error("{url}: HTTP {status}{hint}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// A hint for the user (may be empty).
        hint: &'static str,
    },
    /// A transport error (DNS, connect, TLS, timeout, protocol).
    #[error("{url}: request failed")]
    Transport {
        /// The URL.
        url: String,
        /// ureq's error.
        #[source]
        source: Box<ureq::Error>,
    },
    /// The body could not be read (connection dropped, short body).
    #[error("{url}: reading the response failed")]
    Body {
        /// The URL.
        url: String,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The retries ran out; the last failure is the source.
    #[error("{url}: gave up after {attempts} attempts")]
    GaveUp {
        /// The URL.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last failure.
        #[source]
        last: Box<FetchError>,
    },
    /// The response exceeded the caller's cap.
    #[error("{url}: larger than the limit of {max} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The cap.
        max: u64,
    },
    /// The size differs from the one the signed index gives.
    #[error("{url}: size {got}{} but the index says {expected}", if *more { " or more" } else { "" })]
    SizeMismatch {
        /// The URL.
        url: String,
        /// Bytes received (a lower bound when `more`).
        got: u64,
        /// Whether the transfer was stopped after exceeding `expected`.
        more: bool,
        /// Size from the index.
        expected: u64,
    },
    /// The sha256 differs from the one the signed index gives.
    #[error("{url}: sha256 {got} but the index says {expected}")]
    Sha256Mismatch {
        /// The URL.
        url: String,
        /// Hex digest of what was received.
        got: String,
        /// Hex digest from the index.
        expected: String,
    },
    /// Writing or reading a local file failed.
    #[error("{}: {what}", path.display())]
    Io {
        /// The local path.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The URL cannot be fetched.
    #[error("invalid URL `{url}`: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// The credentials file is malformed.
    #[error("invalid credentials file {}: {reason}", path.display())]
    AuthSyntax {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The credentials file cannot be read.
    #[error("cannot read credentials file {}", path.display())]
    AuthIo {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

impl FetchError {
    /// Whether this is (or finally was) a 404/410 or a missing local file.
    pub fn is_not_found(&self) -> bool {
        match self {
            FetchError::NotFound { .. } => true,
            FetchError::GaveUp { last, .. } => last.is_not_found(),
            _ => false,
        }
    }
}

/// Size and sha256 a download must have (from a signed index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 digest.
    pub sha256: [u8; 32],
}

/// How a [`Fetcher`] behaves.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Retries after the first attempt for failures that made no progress (5xx, 408, 429,
    /// transport errors). Attempts that received bytes are resumed without counting.
    pub retries: u32,
    /// Connect, response and per-read timeout.
    pub timeout: Duration,
    /// `User-Agent` header.
    pub user_agent: String,
    /// Basic-auth credentials by URL prefix.
    pub credentials: Credentials,
    /// First backoff delay; doubled after each failure, capped at 30 s.
    pub backoff: Duration,
    /// Where downloaded bytes are counted (hidden by default).
    pub progress: crate::printer::Transfer,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            retries: 3,
            timeout: Duration::from_secs(30),
            user_agent: format!("himg/{}", env!("CARGO_PKG_VERSION")),
            credentials: Credentials::none(),
            backoff: Duration::from_millis(500),
            progress: crate::printer::Transfer::hidden(),
        }
    }
}

/// One `machine … login … password …` entry.
#[derive(Clone, PartialEq, Eq)]
struct AuthEntry {
    /// `Some("http")`/`Some("https")` when the entry names one; `None` means https only.
    scheme: Option<String>,
    host: String,
    port: Option<u16>,
    /// Path prefix without trailing slash ("" = whole host).
    path: String,
    login: String,
    password: String,
}

/// Credentials for private repositories, from an apt-auth.conf/netrc-style file:
///
/// ```text
/// # comment
/// machine https://repo.example/debian login alice password s3cret
/// machine repo.example:8443/private
///   login bob
///   password hunter2
/// ```
///
/// Matching follows apt's auth.conf: an entry without a scheme applies to `https://` only (name
/// `http://` explicitly to send a password in clear); a port, when given, must match; a path
/// must be a prefix of the URL path at a `/` boundary; the longest matching path wins.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    entries: Vec<AuthEntry>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print logins or passwords.
        let machines: Vec<String> = self
            .entries
            .iter()
            .map(|e| {
                format!(
                    "{}{}{}{}",
                    e.scheme
                        .as_deref()
                        .map(|s| format!("{s}://"))
                        .unwrap_or_default(),
                    e.host,
                    e.port.map(|p| format!(":{p}")).unwrap_or_default(),
                    e.path
                )
            })
            .collect();
        f.debug_struct("Credentials")
            .field("machines", &machines)
            .finish()
    }
}

impl Credentials {
    /// No credentials.
    pub fn none() -> Self {
        Credentials::default()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `$HIMG_AUTH_FILE` (must exist when set), else `~/.config/himg/auth.conf` (optional).
    pub fn from_env() -> Result<Self, FetchError> {
        if let Some(p) = std::env::var_os("HIMG_AUTH_FILE").filter(|p| !p.is_empty()) {
            return Self::load(Path::new(&p));
        }
        let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
            return Ok(Self::none());
        };
        let path = Path::new(&home).join(".config/himg/auth.conf");
        match Self::load(&path) {
            Err(FetchError::AuthIo { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                Ok(Self::none())
            }
            other => other,
        }
    }

    /// Reads a credentials file.
    pub fn load(path: &Path) -> Result<Self, FetchError> {
        let text = std::fs::read_to_string(path).map_err(|source| FetchError::AuthIo {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|reason| FetchError::AuthSyntax {
            path: path.to_path_buf(),
            reason,
        })
    }

    /// Parses credentials text; the error says what is wrong (never echoing a password).
    pub fn parse(text: &str) -> Result<Self, String> {
        let tokens: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(str::split_whitespace)
            .collect();
        let mut entries = Vec::new();
        let mut i = 0;
        let mut cur: Option<(String, Option<String>, Option<String>)> = None;
        let finish = |cur: Option<(String, Option<String>, Option<String>)>,
                      entries: &mut Vec<AuthEntry>|
         -> Result<(), String> {
            if let Some((machine, login, password)) = cur {
                let (Some(login), Some(password)) = (login, password) else {
                    return Err(format!(
                        "machine `{machine}` needs both `login` and `password`"
                    ));
                };
                entries.push(parse_machine(&machine, login, password)?);
            }
            Ok(())
        };
        while i < tokens.len() {
            let key = tokens[i];
            let value = tokens
                .get(i + 1)
                .ok_or_else(|| format!("`{key}` at the end of the file has no value"))?;
            match key {
                "machine" => {
                    finish(cur.take(), &mut entries)?;
                    cur = Some(((*value).to_string(), None, None));
                }
                "login" | "password" => {
                    let Some(c) = cur.as_mut() else {
                        return Err(format!("`{key}` before any `machine`"));
                    };
                    if key == "login" {
                        c.1 = Some((*value).to_string());
                    } else {
                        c.2 = Some((*value).to_string());
                    }
                }
                other => {
                    return Err(format!(
                        "unknown keyword `{other}` (expected machine, login, password)"
                    ));
                }
            }
            i += 2;
        }
        finish(cur, &mut entries)?;
        Ok(Credentials { entries })
    }

    /// The (login, password) for a URL, if an entry matches.
    pub fn for_url(&self, url: &str) -> Option<(&str, &str)> {
        let u = ParsedUrl::parse(url)?;
        self.entries
            .iter()
            .filter(|e| {
                let scheme_ok = match &e.scheme {
                    Some(s) => *s == u.scheme,
                    None => u.scheme == "https",
                };
                scheme_ok
                    && e.host.eq_ignore_ascii_case(&u.host)
                    && e.port.is_none_or(|p| p == u.port)
                    && (e.path.is_empty()
                        || u.path == e.path
                        || u.path.starts_with(&format!("{}/", e.path)))
            })
            .max_by_key(|e| e.path.len())
            .map(|e| (e.login.as_str(), e.password.as_str()))
    }
}

fn parse_machine(machine: &str, login: String, password: String) -> Result<AuthEntry, String> {
    let (scheme, rest) = match machine.split_once("://") {
        Some((s, r)) => {
            let s = s.to_ascii_lowercase();
            if s != "http" && s != "https" {
                return Err(format!(
                    "machine `{machine}`: only http:// and https:// are supported"
                ));
            }
            (Some(s), r)
        }
        None => (None, machine),
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let (host, port) = split_host_port(hostport)
        .ok_or_else(|| format!("machine `{machine}`: bad host or port"))?;
    Ok(AuthEntry {
        scheme,
        host: host.to_ascii_lowercase(),
        port,
        path: path.trim_end_matches('/').to_string(),
        login,
        password,
    })
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (h, tail) = rest.split_once(']')?;
        let port = match tail.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if tail.is_empty() => None,
            None => return None,
        };
        return Some((format!("[{h}]"), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h.to_string(), Some(p.parse().ok()?))),
        Some(_) => None,
        None if !s.is_empty() => Some((s.to_string(), None)),
        None => None,
    }
}

/// The parts of an http(s) URL that credential matching needs.
struct ParsedUrl {
    scheme: String,
    host: String,
    port: u16,
    path: String,
}

impl ParsedUrl {
    fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        // userinfo in the URL is not used for matching
        let hostport = authority.rsplit_once('@').map_or(authority, |x| x.1);
        let (host, port) = split_host_port(hostport)?;
        let path_end = rest[end..].find(['?', '#']).map_or(rest.len(), |i| end + i);
        Some(ParsedUrl {
            scheme,
            host,
            port: port.unwrap_or(default_port),
            path: rest[end..path_end].to_string(),
        })
    }
}

fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(T[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Fetches URLs. Cheap to clone? No: build one and share it by reference (it pools connections).
#[derive(Debug)]
pub struct Fetcher {
    agent: ureq::Agent,
    opts: FetchOptions,
}

/// The outcome of one download attempt that did not succeed.
enum Attempt {
    /// Give up now with this error.
    Fatal(FetchError),
    /// Try again; `progressed` says whether bytes were received.
    Retry { err: FetchError, progressed: bool },
}

/// How far a streamed download got.
struct Progress {
    transfer: crate::printer::Transfer,
    file: File,
    hasher: Sha256,
    written: u64,
}

impl Progress {
    fn restart(&mut self, dest: &Path) -> Result<(), FetchError> {
        self.file
            .set_len(0)
            .and_then(|()| self.file.seek(SeekFrom::Start(0)).map(|_| ()))
            .map_err(|source| FetchError::Io {
                path: dest.to_path_buf(),
                what: "truncating",
                source,
            })?;
        self.hasher = Sha256::new();
        self.written = 0;
        Ok(())
    }
}

/// Resolves each host once per fetcher. The default resolver asks the system on every request; in
/// containers a lost UDP answer (parallel A and AAAA queries) then stalls a request for the
/// resolver's 5-second timeout, and a build downloading dozens of packages meets it almost surely.
#[derive(Debug, Default)]
struct CachingResolver {
    inner: ureq::unversioned::resolver::DefaultResolver,
    cache: std::sync::Mutex<
        std::collections::HashMap<String, ureq::unversioned::resolver::ResolvedSocketAddrs>,
    >,
}

impl ureq::unversioned::resolver::Resolver for CachingResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let key = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or(""),
            uri.authority().map(|a| a.as_str()).unwrap_or("")
        );
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
        {
            return Ok(hit.clone());
        }
        let addrs = self.inner.resolve(uri, config, timeout)?;
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, addrs.clone());
        Ok(addrs)
    }
}

impl Fetcher {
    /// A fetcher with these options.
    pub fn new(opts: FetchOptions) -> Self {
        let t = Some(opts.timeout);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(t)
            .timeout_recv_response(t)
            .timeout_per_read(t)
            .user_agent(opts.user_agent.as_str())
            .max_redirects(10)
            .build();
        Fetcher {
            agent: ureq::Agent::with_parts(
                config,
                ureq::unversioned::transport::DefaultConnector::new(),
                CachingResolver::default(),
            ),
            opts,
        }
    }

    /// The options this fetcher was built with.
    pub fn options(&self) -> &FetchOptions {
        &self.opts
    }

    fn backoff(&self, failures: u32) {
        let factor = 1u32 << failures.saturating_sub(1).min(6);
        let d = self
            .opts
            .backoff
            .saturating_mul(factor)
            .min(Duration::from_secs(30));
        std::thread::sleep(d);
    }

    fn request(
        &self,
        url: &str,
        range_from: u64,
    ) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
        let mut req = self.agent.get(url);
        if range_from > 0 {
            req = req.header("Range", format!("bytes={range_from}-"));
        }
        if let Some((login, password)) = self.opts.credentials.for_url(url) {
            req = req.header(
                "Authorization",
                format!("Basic {}", base64(format!("{login}:{password}").as_bytes())),
            );
        }
        req.call()
    }

    /// Fetches a small file (at most `max` bytes) into memory, with retries.
    pub fn get_bytes(&self, url: &str, max: u64) -> Result<Vec<u8>, FetchError> {
        if let Some(path) = file_url_path(url)? {
            let f = File::open(&path).map_err(|e| local_open_error(url, &path, e))?;
            let mut out = Vec::new();
            f.take(max.saturating_add(1))
                .read_to_end(&mut out)
                .map_err(|source| FetchError::Io {
                    path: path.clone(),
                    what: "reading",
                    source,
                })?;
            if out.len() as u64 > max {
                return Err(FetchError::TooLarge {
                    url: url.to_string(),
                    max,
                });
            }
            return Ok(out);
        }
        check_http_url(url)?;
        let mut failures = 0u32;
        loop {
            let err = match self.request(url, 0) {
                Err(e) => FetchError::Transport {
                    url: url.to_string(),
                    source: Box::new(e),
                },
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 200 {
                        let mut out = Vec::new();
                        let read = resp
                            .into_body()
                            .into_reader()
                            .take(max.saturating_add(1))
                            .read_to_end(&mut out);
                        match read {
                            Ok(_) if out.len() as u64 > max => {
                                return Err(FetchError::TooLarge {
                                    url: url.to_string(),
                                    max,
                                });
                            }
                            Ok(_) => return Ok(out),
                            Err(source) => FetchError::Body {
                                url: url.to_string(),
                                source,
                            },
                        }
                    } else {
                        let err = status_error(url, status);
                        if !is_retryable_status(status) {
                            return Err(err);
                        }
                        err
                    }
                }
            };
            failures += 1;
            if failures > self.opts.retries {
                return Err(gave_up(url, failures, err));
            }
            self.backoff(failures);
        }
    }

    /// Streams `url` to `dest` (created or truncated), resuming with `Range` after a dropped
    /// connection and retrying with backoff. With `expect`, checks size (stopping early when the
    /// body grows past it) and sha256, deleting `dest` on a mismatch.
    pub fn download(
        &self,
        url: &str,
        dest: &Path,
        expect: Option<Expected>,
    ) -> Result<(), FetchError> {
        let result = self.download_inner(url, dest, expect);
        if result.is_err() {
            let _ = std::fs::remove_file(dest);
        }
        result
    }

    fn download_inner(
        &self,
        url: &str,
        dest: &Path,
        expect: Option<Expected>,
    ) -> Result<(), FetchError> {
        let local = file_url_path(url)?;
        if local.is_none() {
            check_http_url(url)?;
        }
        let file = File::create(dest).map_err(|source| FetchError::Io {
            path: dest.to_path_buf(),
            what: "creating",
            source,
        })?;
        if let Some(exp) = expect {
            self.opts.progress.add_total(exp.size);
        }
        let mut p = Progress {
            transfer: self.opts.progress.clone(),
            file,
            hasher: Sha256::new(),
            written: 0,
        };
        if let Some(path) = local {
            let src = File::open(&path).map_err(|e| local_open_error(url, &path, e))?;
            copy_verified(url, src, dest, &mut p, expect).map_err(|a| match a {
                Attempt::Fatal(e) | Attempt::Retry { err: e, .. } => e,
            })?;
        } else {
            let mut failures = 0u32;
            // Attempts that made progress are free, but bounded so a server that trickles one
            // byte per connection cannot keep us forever.
            let mut attempts = 0u32;
            loop {
                attempts += 1;
                match self.attempt(url, dest, &mut p, expect) {
                    Ok(()) => break,
                    Err(Attempt::Fatal(e)) => return Err(e),
                    Err(Attempt::Retry { err, progressed }) => {
                        if !progressed {
                            failures += 1;
                        }
                        if failures > self.opts.retries || attempts > self.opts.retries + 100 {
                            return Err(gave_up(url, attempts, err));
                        }
                        if !progressed {
                            self.backoff(failures);
                        }
                    }
                }
            }
        }
        p.file
            .flush()
            .and_then(|()| p.file.sync_all())
            .map_err(|source| FetchError::Io {
                path: dest.to_path_buf(),
                what: "writing",
                source,
            })?;
        if let Some(exp) = expect {
            verify_digest(url, p.written, p.hasher.finalize().into(), exp)?;
        }
        Ok(())
    }

    /// One HTTP attempt, continuing from `p.written`.
    fn attempt(
        &self,
        url: &str,
        dest: &Path,
        p: &mut Progress,
        expect: Option<Expected>,
    ) -> Result<(), Attempt> {
        let resp = self.request(url, p.written).map_err(|e| Attempt::Retry {
            err: FetchError::Transport {
                url: url.to_string(),
                source: Box::new(e),
            },
            progressed: false,
        })?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let mut total: Option<u64> = header("content-length").and_then(|v| v.trim().parse().ok());
        match status {
            200 => {
                if p.written > 0 {
                    // The server ignored the Range: start over.
                    p.restart(dest).map_err(Attempt::Fatal)?;
                }
            }
            206 => {
                let cr = header("content-range").unwrap_or_default();
                match parse_content_range(&cr) {
                    Some((start, _end, complete)) if start == p.written => {
                        total = complete.or(total.map(|len| start + len));
                    }
                    _ => {
                        // A range we did not ask for: start over without Range.
                        p.restart(dest).map_err(Attempt::Fatal)?;
                        return Err(Attempt::Retry {
                            err: FetchError::Body {
                                url: url.to_string(),
                                source: std::io::Error::other(format!(
                                    "unexpected Content-Range `{cr}`"
                                )),
                            },
                            progressed: true,
                        });
                    }
                }
            }
            416 if p.written > 0 => {
                // We may already hold the whole file; otherwise start over.
                if expect.is_some_and(|e| e.size == p.written) {
                    return Ok(());
                }
                p.restart(dest).map_err(Attempt::Fatal)?;
                return Err(Attempt::Retry {
                    err: status_error(url, status),
                    progressed: true,
                });
            }
            s => {
                let err = status_error(url, s);
                return Err(if is_retryable_status(s) {
                    Attempt::Retry {
                        err,
                        progressed: false,
                    }
                } else {
                    Attempt::Fatal(err)
                });
            }
        }
        let started_at = p.written;
        let reader = resp.into_body().into_reader();
        let res = copy_verified(url, reader, dest, p, expect);
        let progressed = p.written > started_at;
        match res {
            Err(Attempt::Retry { err, .. }) => Err(Attempt::Retry { err, progressed }),
            Err(fatal) => Err(fatal),
            Ok(()) => match total {
                Some(t) if p.written < t => Err(Attempt::Retry {
                    err: FetchError::Body {
                        url: url.to_string(),
                        source: std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            format!("connection closed after {} of {t} bytes", p.written),
                        ),
                    },
                    progressed,
                }),
                _ => Ok(()),
            },
        }
    }
}

/// Copies `src` into the progress file, hashing; stops with a size error past `expect.size`.
/// Read errors are retryable, write errors and size overruns are not.
fn copy_verified(
    url: &str,
    mut src: impl Read,
    dest: &Path,
    p: &mut Progress,
    expect: Option<Expected>,
) -> Result<(), Attempt> {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Attempt::Retry {
                    err: FetchError::Body {
                        url: url.to_string(),
                        source,
                    },
                    progressed: false,
                });
            }
        };
        if let Some(exp) = expect
            && p.written + n as u64 > exp.size
        {
            return Err(Attempt::Fatal(FetchError::SizeMismatch {
                url: url.to_string(),
                got: p.written + n as u64,
                more: true,
                expected: exp.size,
            }));
        }
        p.file.write_all(&buf[..n]).map_err(|source| {
            Attempt::Fatal(FetchError::Io {
                path: dest.to_path_buf(),
                what: "writing",
                source,
            })
        })?;
        p.hasher.update(&buf[..n]);
        p.written += n as u64;
        p.transfer.advance(n as u64);
    }
}

fn verify_digest(url: &str, size: u64, got: [u8; 32], exp: Expected) -> Result<(), FetchError> {
    if size != exp.size {
        return Err(FetchError::SizeMismatch {
            url: url.to_string(),
            got: size,
            more: false,
            expected: exp.size,
        });
    }
    if got != exp.sha256 {
        return Err(FetchError::Sha256Mismatch {
            url: url.to_string(),
            got: hex::encode(got),
            expected: hex::encode(exp.sha256),
        });
    }
    Ok(())
}

/// `bytes START-END/TOTAL` → (start, end, Some(total)) (`*` total → None).
fn parse_content_range(v: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    let total = if total.trim() == "*" {
        None
    } else {
        Some(total.trim().parse().ok()?)
    };
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?, total))
}

fn is_retryable_status(s: u16) -> bool {
    s >= 500 || s == 408 || s == 429
}

fn status_error(url: &str, status: u16) -> FetchError {
    match status {
        404 | 410 => FetchError::NotFound {
            url: url.to_string(),
            status: Some(status),
        },
        401 | 403 => FetchError::Status {
            url: url.to_string(),
            status,
            hint: "\nhint: a private repository needs `machine HOST/PATH login USER password PASS` in $HIMG_AUTH_FILE or ~/.config/himg/auth.conf",
        },
        _ => FetchError::Status {
            url: url.to_string(),
            status,
            hint: "",
        },
    }
}

fn gave_up(url: &str, attempts: u32, last: FetchError) -> FetchError {
    FetchError::GaveUp {
        url: url.to_string(),
        attempts,
        last: Box::new(last),
    }
}

fn check_http_url(url: &str) -> Result<(), FetchError> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        Ok(())
    } else {
        Err(FetchError::BadUrl {
            url: url.to_string(),
            reason: "only http://, https:// and file:// are fetched (resolve mirror:// first)",
        })
    }
}

/// `file:///abs/path` (or `file://localhost/abs/path`) → the path, percent-decoded.
fn file_url_path(url: &str) -> Result<Option<PathBuf>, FetchError> {
    let Some(rest) = url.strip_prefix("file://") else {
        return Ok(None);
    };
    let rest = rest.strip_prefix("localhost").unwrap_or(rest);
    if !rest.starts_with('/') {
        return Err(FetchError::BadUrl {
            url: url.to_string(),
            reason: "a file:// URL needs an absolute path (file:///…)",
        });
    }
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    let s = String::from_utf8(out).map_err(|_| FetchError::BadUrl {
        url: url.to_string(),
        reason: "the path is not UTF-8",
    })?;
    Ok(Some(PathBuf::from(s)))
}

fn local_open_error(url: &str, path: &Path, e: std::io::Error) -> FetchError {
    if e.kind() == std::io::ErrorKind::NotFound {
        FetchError::NotFound {
            url: url.to_string(),
            status: None,
        }
    } else {
        FetchError::Io {
            path: path.to_path_buf(),
            what: "opening",
            source: e,
        }
    }
}

/// The sha256 of a byte slice.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn credentials_matching() {
        let c = Credentials::parse(
            "# c\nmachine repo.test/debian login a password pa\n\
             machine http://127.0.0.1:8080/private\n login b\n password pb\n\
             machine https://repo.test/debian/deep login c password pc\n",
        )
        .expect("parses");
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.for_url("https://repo.test/debian/dists/x"),
            Some(("a", "pa"))
        );
        assert_eq!(c.for_url("https://REPO.test/debian"), Some(("a", "pa")));
        // no scheme → https only
        assert_eq!(c.for_url("http://repo.test/debian/dists/x"), None);
        // path boundary
        assert_eq!(c.for_url("https://repo.test/debian-security/x"), None);
        assert_eq!(c.for_url("https://other.test/debian/x"), None);
        // longest path wins
        assert_eq!(
            c.for_url("https://repo.test/debian/deep/x"),
            Some(("c", "pc"))
        );
        assert_eq!(
            c.for_url("http://127.0.0.1:8080/private/x"),
            Some(("b", "pb"))
        );
        assert_eq!(c.for_url("http://127.0.0.1:8081/private/x"), None);
        assert!(!format!("{c:?}").contains("pa"));
    }

    #[test]
    fn credentials_errors() {
        assert!(Credentials::parse("machine x login a").is_err());
        assert!(Credentials::parse("login a password b").is_err());
        assert!(Credentials::parse("machine x login a password b default").is_err());
        assert!(Credentials::parse("machine ftp://x login a password b").is_err());
        let e = Credentials::parse("machine x login a password").expect_err("dangling");
        assert!(!e.contains("a password"), "{e}");
    }

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 10-99/100"),
            Some((10, 99, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 10-99/*"), Some((10, 99, None)));
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }

    #[test]
    fn file_urls() {
        assert_eq!(
            file_url_path("file:///a%20b/c").expect("ok"),
            Some(PathBuf::from("/a b/c"))
        );
        assert!(file_url_path("file://rel/x").is_err());
        assert_eq!(file_url_path("http://x/").expect("ok"), None);
    }
}
