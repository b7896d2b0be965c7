//! The blocking registry client: request/auth/retry machinery, push and pull.

use super::auth::{self, Challenge, Grant};
use super::credentials::SOURCES_HINT;
use super::{
    BlobSink, BlobSource, CHUNK_SIZE, Credentials, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, Login,
    MAX_BLOB_SIZE, OCI_INDEX, OCI_MANIFEST, Pulled, PushReport, Reference, RegistryError,
    sha256_digest,
};
use crate::oci::Sha256Digest;
use sha2::Digest as _;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Read;
use std::sync::Mutex;
use std::time::Duration;
use ureq::http::{Request, Response};

/// Largest manifest accepted from a registry.
const MANIFEST_LIMIT: u64 = 8 << 20;
/// Deepest index nesting followed by [`Client::pull`] (an index of indexes is depth 1).
const MAX_DEPTH: usize = 4;
/// Most manifests (the top one and every index's children) one [`Client::pull`] fetches.
const MAX_MANIFESTS: usize = 1024;
/// Most redirects followed for one request.
const MAX_REDIRECTS: u32 = 10;

/// How a [`Client`] behaves.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Talk plain `http://` instead of `https://` (for local test registries).
    pub insecure: bool,
    /// How many times a request is retried on 5xx or I/O errors (with backoff).
    pub retries: u32,
    /// Credentials to answer 401 challenges with.
    pub credentials: Credentials,
    /// Repository on the same registry to try cross-repository blob mounts from.
    pub mount_from: Option<String>,
    /// Per blob (`sha256:` digest), a repository of the same registry known to hold it: tried
    /// first, before [`ClientOptions::mount_from`].
    pub mount_blobs: std::collections::BTreeMap<String, String>,
    /// How long one read may wait for bytes (connect, response headers, each read of a body): a
    /// registry that stops sending mid-body fails the request instead of holding it forever.
    pub read_timeout: Duration,
    /// Where the bytes of blobs pushed and pulled are counted (hidden by default).
    pub progress: crate::printer::Transfer,
}

/// The default [`ClientOptions::read_timeout`]: `$HIMG_REGISTRY_TIMEOUT` seconds, else 60.
pub fn default_read_timeout() -> Duration {
    std::env::var("HIMG_REGISTRY_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .map_or(Duration::from_secs(60), Duration::from_secs)
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure: false,
            retries: 3,
            credentials: Credentials::none(),
            mount_from: None,
            mount_blobs: std::collections::BTreeMap::new(),
            read_timeout: default_read_timeout(),
            progress: crate::printer::Transfer::hidden(),
        }
    }
}

/// A blocking OCI distribution client. Auth tokens are cached per registry and scope.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    opts: ClientOptions,
    auth_cache: Mutex<HashMap<String, String>>,
}

/// Request body: none at all, or bytes (replayable for retries and auth).
#[derive(Clone, Copy)]
enum Body<'a> {
    None,
    Bytes(&'a [u8]),
}

/// One request to send through [`Client::send`].
struct Req<'a> {
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: Body<'a>,
}

impl<'a> Req<'a> {
    fn new(method: &'static str, url: String) -> Self {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: Body::None,
        }
    }
    fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
    fn body(mut self, bytes: &'a [u8]) -> Self {
        self.body = Body::Bytes(bytes);
        self
    }
}

/// Registry, repository and auth scopes of one operation.
struct Target<'a> {
    registry: &'a str,
    repository: &'a str,
    scopes: Vec<String>,
}

impl<'a> Target<'a> {
    /// `registry/repository`, naming the source in errors.
    fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// An error refusing `what` from this repository by `rule`.
    fn refuse(&self, what: impl Into<String>, rule: impl Into<String>) -> RegistryError {
        RegistryError::Refused {
            repository: self.name(),
            what: what.into(),
            rule: rule.into(),
        }
    }

    /// `text` (a digest, from the network) parsed into a [`Sha256Digest`], before it names a
    /// request or a file; `what` says where it was found.
    fn digest(&self, what: &str, text: &str) -> Result<Sha256Digest, RegistryError> {
        text.parse().map_err(|_| {
            self.refuse(
                format!("{what} digest {}", quoted(text)),
                "a digest is `sha256:` followed by 64 lowercase hex digits",
            )
        })
    }

    /// A descriptor's digest and size, validated: the digest becomes a file name, the size bounds
    /// the download.
    fn descriptor(
        &self,
        what: &str,
        d: &serde_json::Value,
    ) -> Result<(Sha256Digest, u64), RegistryError> {
        let digest = d
            .get("digest")
            .and_then(|v| v.as_str())
            .ok_or_else(|| self.refuse(format!("{what} descriptor"), "it has no `digest`"))?;
        let digest = self.digest(what, digest)?;
        let size = d.get("size").and_then(|v| v.as_u64()).ok_or_else(|| {
            self.refuse(
                format!("{what} {digest}"),
                "its descriptor has no numeric `size`",
            )
        })?;
        check_declared_size(self, what, &digest, size)?;
        Ok((digest, size))
    }

    /// `reference`'s repository, to read from.
    fn pull(reference: &'a Reference) -> Target<'a> {
        Target {
            registry: &reference.registry,
            repository: &reference.repository,
            scopes: vec![format!("repository:{}:pull", reference.repository)],
        }
    }
}

/// Reads a manifest (or index) response's body from `t`, at most `MANIFEST_LIMIT` bytes; `what`
/// names it in errors.
fn manifest_body(t: &Target<'_>, resp: &mut Resp, what: String) -> Result<Vec<u8>, RegistryError> {
    resp.body_mut()
        .with_config()
        .limit(MANIFEST_LIMIT)
        .read_to_vec()
        .map_err(|source| match source {
            ureq::Error::BodyExceedsLimit(_) => t.refuse(
                what,
                format!("a manifest or index is at most {MANIFEST_LIMIT} bytes"),
            ),
            source => RegistryError::Http {
                method: "GET".into(),
                url: what,
                source,
            },
        })
}

type Resp = Response<ureq::Body>;

fn header_str<'r>(resp: &'r Resp, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn io_err(context: impl Into<String>, source: std::io::Error) -> RegistryError {
    RegistryError::Io {
        context: context.into(),
        source,
    }
}

fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// `text` in backticks with control characters escaped and at most 200 characters kept: a
/// registry's strings are shown in errors, never interpreted by the terminal.
fn quoted(text: &str) -> String {
    let mut shown: String = text.chars().take(200).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    format!("`{}`", shown.escape_debug())
}

/// Refuses a declared blob size above [`MAX_BLOB_SIZE`] before anything is downloaded.
fn check_declared_size(
    t: &Target<'_>,
    what: &str,
    digest: &Sha256Digest,
    size: u64,
) -> Result<(), RegistryError> {
    if size > MAX_BLOB_SIZE {
        return Err(t.refuse(
            format!("{what} {digest}"),
            format!("it declares {size} bytes, more than the limit of {MAX_BLOB_SIZE} bytes"),
        ));
    }
    Ok(())
}

/// Whether `status` is a redirect that carries a `Location` to follow.
fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The scheme of an absolute URL (`http` in `http://…`), lowercased; `None` for a relative one.
fn url_scheme(url: &str) -> Option<String> {
    let (scheme, _) = url.split_once(':')?;
    let mut bytes = scheme.bytes();
    let valid = bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
    valid.then(|| scheme.to_ascii_lowercase())
}

/// `location` (a redirect's target) resolved against the URL `base` it answered.
fn resolve_redirect(base: &str, location: &str) -> String {
    if url_scheme(location).is_some() {
        return location.to_owned();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    if let Some(authority_relative) = location.strip_prefix("//") {
        return format!("{scheme}://{authority_relative}");
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, "/"),
    };
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = path.split(['?', '#']).next().unwrap_or("/");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{scheme}://{authority}{dir}{location}")
}

impl Client {
    /// A client with the given options.
    pub fn new(opts: ClientOptions) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(opts.read_timeout.min(Duration::from_secs(30))))
            .timeout_recv_response(Some(opts.read_timeout))
            .timeout_per_read(Some(opts.read_timeout))
            .user_agent("himg")
            // Redirects are followed by `send`, which checks each target's scheme.
            .max_redirects(0)
            .build();
        Client {
            agent: ureq::Agent::new_with_config(config),
            opts,
            auth_cache: Mutex::new(HashMap::new()),
        }
    }

    /// This client, counting the bytes of the blobs it pushes and pulls in `progress`.
    pub fn with_progress(mut self, progress: crate::printer::Transfer) -> Self {
        self.opts.progress = progress;
        self
    }

    fn base(&self, registry: &str) -> String {
        let scheme = if self.opts.insecure { "http" } else { "https" };
        format!("{scheme}://{registry}")
    }

    fn resolve_location(&self, registry: &str, resp: &Resp) -> Result<String, RegistryError> {
        let loc = header_str(resp, "location")
            .ok_or_else(|| RegistryError::Protocol("upload response without Location".into()))?;
        Ok(
            if loc.starts_with("http://") || loc.starts_with("https://") {
                loc.to_owned()
            } else if loc.starts_with('/') {
                format!("{}{loc}", self.base(registry))
            } else {
                format!("{}/{loc}", self.base(registry))
            },
        )
    }

    fn cache_key(registry: &str, scopes: &[String]) -> String {
        format!("{registry}|{}", scopes.join(" "))
    }

    fn cached_auth(&self, t: &Target<'_>) -> Option<String> {
        let cache = self.auth_cache.lock().ok()?;
        cache
            .get(&Self::cache_key(t.registry, &t.scopes))
            .or_else(|| cache.get(&format!("{}|basic", t.registry)))
            .cloned()
    }

    fn store_auth(&self, key: String, value: String) {
        if let Ok(mut cache) = self.auth_cache.lock() {
            cache.insert(key, value);
        }
    }

    fn unauthorized(&self, registry: &str, reason: &str) -> RegistryError {
        let credentials = &self.opts.credentials;
        let hint = match credentials.source_of(registry) {
            None => format!("{reason}; no credentials for {registry}: {SOURCES_HINT}"),
            Some(source) => {
                format!("{reason}; the credentials for {registry} from {source} were rejected")
            }
        };
        RegistryError::Unauthorized {
            registry: registry.to_owned(),
            hint,
        }
    }

    /// Answers a 401 challenge, storing the resulting `Authorization` value. The credentials of
    /// the registry are looked up here, so a credential helper runs only for a registry that asks.
    fn authenticate(&self, t: &Target<'_>, resp: &Resp) -> Result<(), RegistryError> {
        let login = self.opts.credentials.lookup(t.registry)?;
        let basic = match &login {
            Some(Login::Password { user, password }) => Some(auth::basic_header(user, password)),
            _ => None,
        };
        let challenge = header_str(resp, "www-authenticate").and_then(auth::parse_challenge);
        match challenge {
            None => Err(self.unauthorized(
                t.registry,
                "HTTP 401 without a usable WWW-Authenticate challenge",
            )),
            Some(Challenge::Basic) => {
                let basic = basic.ok_or_else(|| match login {
                    Some(Login::IdentityToken(_)) => self.unauthorized(
                        t.registry,
                        "the registry asks for Basic auth but the credentials are an identity token, which only a token service takes",
                    ),
                    _ => self.unauthorized(t.registry, "authentication required"),
                })?;
                self.store_auth(format!("{}|basic", t.registry), basic);
                Ok(())
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let mut scopes = t.scopes.clone();
                if let Some(s) = scope {
                    for one in s.split(' ') {
                        if !one.is_empty() && !scopes.iter().any(|x| x == one) {
                            scopes.push(one.to_owned());
                        }
                    }
                }
                let grant = match (&login, &basic) {
                    (Some(Login::IdentityToken(token)), _) => Grant::RefreshToken(token),
                    (_, Some(basic)) => Grant::Basic(basic),
                    _ => Grant::Anonymous,
                };
                let token =
                    auth::fetch_token(&self.agent, &realm, service.as_deref(), &scopes, grant)?
                        .ok_or_else(|| {
                            self.unauthorized(t.registry, "the token service refused")
                        })?;
                self.store_auth(
                    Self::cache_key(t.registry, &t.scopes),
                    format!("Bearer {token}"),
                );
                Ok(())
            }
        }
    }

    fn run_once(&self, req: &Req<'_>, url: &str, auth: Option<&str>) -> Result<Resp, ureq::Error> {
        let mut b = Request::builder().method(req.method).uri(url);
        for (k, v) in &req.headers {
            b = b.header(*k, v);
        }
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        match req.body {
            Body::None => self.agent.run(b.body(())?),
            Body::Bytes(bytes) => self.agent.run(b.body(bytes)?),
        }
    }

    /// Sends `req`, answering auth challenges, following redirects of `GET` and `HEAD` (to
    /// `http(s)://` only, never from `https` down to `http`, without credentials) and retrying
    /// 5xx/I/O failures.
    fn send(&self, t: &Target<'_>, req: &Req<'_>) -> Result<Resp, RegistryError> {
        let mut attempt = 0;
        let mut authenticated = false;
        let mut url = req.url.clone();
        let mut redirects = 0;
        loop {
            // Credentials go to the registry only, never to where it redirects.
            let auth = if redirects == 0 {
                self.cached_auth(t)
            } else {
                None
            };
            match self.run_once(req, &url, auth.as_deref()) {
                Ok(resp)
                    if is_redirect(resp.status().as_u16())
                        && matches!(req.method, "GET" | "HEAD") =>
                {
                    url = self.redirect_target(t, req, &url, &resp, redirects)?;
                    redirects += 1;
                    continue;
                }
                Ok(resp) if resp.status().as_u16() == 401 && redirects == 0 => {
                    if authenticated {
                        return Err(self.unauthorized(t.registry, "access denied"));
                    }
                    self.authenticate(t, &resp)?;
                    authenticated = true;
                    continue;
                }
                Ok(resp) if resp.status().is_server_error() && attempt < self.opts.retries => {}
                Ok(resp) => return Ok(resp),
                Err(source)
                    if attempt >= self.opts.retries
                        || !matches!(
                            source,
                            ureq::Error::Io(_)
                                | ureq::Error::Timeout(_)
                                | ureq::Error::ConnectionFailed
                                | ureq::Error::HostNotFound
                        ) =>
                {
                    return Err(RegistryError::Http {
                        method: req.method.into(),
                        url,
                        source,
                    });
                }
                Err(_) => {}
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(100 << attempt.min(6)));
        }
    }

    /// Where the redirect `resp` (answering `url`) leads, refused unless it is `http(s)://`, does
    /// not downgrade `https` to `http`, and is within [`MAX_REDIRECTS`].
    fn redirect_target(
        &self,
        t: &Target<'_>,
        req: &Req<'_>,
        url: &str,
        resp: &Resp,
        redirects: u32,
    ) -> Result<String, RegistryError> {
        let what = format!("the redirect of {} {}", req.method, quoted(url));
        if redirects >= MAX_REDIRECTS {
            return Err(t.refuse(what, format!("more than {MAX_REDIRECTS} redirects")));
        }
        let location = header_str(resp, "location")
            .ok_or_else(|| t.refuse(what.clone(), "it has no Location header"))?;
        let target = resolve_redirect(url, location);
        let to = url_scheme(&target).unwrap_or_default();
        let from = url_scheme(url).unwrap_or_default();
        let allowed = to == "https" || (to == "http" && from == "http");
        if !allowed {
            return Err(t.refuse(
                format!("{what} to {}", quoted(&target)),
                "a registry may redirect only to https:// URLs (or http:// from a plain-http registry)",
            ));
        }
        Ok(target)
    }

    /// Turns an unexpected response into an error carrying the reason its OCI error body gives
    /// (at most [`super::ERROR_BODY_LIMIT`] bytes of it are read), or the start of its body.
    fn status_error(req: &Req<'_>, mut resp: Resp) -> RegistryError {
        let mut bytes = Vec::new();
        let _ = resp
            .body_mut()
            .as_reader()
            .take(super::ERROR_BODY_LIMIT)
            .read_to_end(&mut bytes);
        let text = String::from_utf8_lossy(&bytes);
        let mut body: String = text.chars().take(super::ERROR_BODY_EXCERPT).collect();
        if body.len() < text.len() {
            body.push('…');
        }
        let (code, message) = super::parse_error_body(&bytes).unzip();
        RegistryError::Status {
            method: req.method.into(),
            url: req.url.clone(),
            status: resp.status().as_u16(),
            body: Box::new(super::ErrorBody {
                code,
                message: message.unwrap_or_default(),
                excerpt: body.escape_debug().to_string(),
            }),
        }
    }

    fn expect(&self, t: &Target<'_>, req: Req<'_>, ok: &[u16]) -> Result<Resp, RegistryError> {
        let resp = self.send(t, &req)?;
        if ok.contains(&resp.status().as_u16()) {
            Ok(resp)
        } else {
            Err(Self::status_error(&req, resp))
        }
    }

    fn blob_exists(&self, t: &Target<'_>, digest: &str) -> Result<bool, RegistryError> {
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.base(t.registry),
            t.repository
        );
        let req = Req::new("HEAD", url);
        let resp = self.send(t, &req)?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(Self::status_error(&req, resp)),
        }
    }

    /// Uploads one blob into the upload session at `location`.
    fn upload(
        &self,
        t: &Target<'_>,
        mut location: String,
        digest: &str,
        size: u64,
        source: &dyn BlobSource,
    ) -> Result<(), RegistryError> {
        let (mut reader, actual) = source
            .open(digest)
            .map_err(|e| io_err(format!("open blob {digest}"), e))?;
        if actual != size {
            return Err(RegistryError::Protocol(format!(
                "blob {digest}: source has {actual} bytes, descriptor says {size}"
            )));
        }
        let mut read_chunk = |n: u64| -> Result<Vec<u8>, RegistryError> {
            let mut buf = Vec::with_capacity(n as usize);
            (&mut reader)
                .take(n)
                .read_to_end(&mut buf)
                .map_err(|e| io_err(format!("read blob {digest}"), e))?;
            if buf.len() as u64 != n {
                return Err(io_err(
                    format!("read blob {digest}"),
                    std::io::ErrorKind::UnexpectedEof.into(),
                ));
            }
            Ok(buf)
        };
        let digest_q = format!("digest={}", auth::query_escape(digest));
        if size <= CHUNK_SIZE {
            let data = read_chunk(size)?;
            let req = Req::new("PUT", with_query(&location, &digest_q))
                .header("Content-Type", "application/octet-stream")
                .body(&data);
            self.expect(t, req, &[201])?;
            self.opts.progress.advance(size);
            return Ok(());
        }
        let mut offset = 0;
        while offset < size {
            let n = CHUNK_SIZE.min(size - offset);
            let data = read_chunk(n)?;
            let req = Req::new("PATCH", location.clone())
                .header("Content-Type", "application/octet-stream")
                .header("Content-Range", format!("{offset}-{}", offset + n - 1))
                .body(&data);
            let resp = self.expect(t, req, &[202])?;
            location = self.resolve_location(t.registry, &resp)?;
            offset += n;
            self.opts.progress.advance(n);
        }
        let req = Req::new("PUT", with_query(&location, &digest_q)).body(&[]);
        self.expect(t, req, &[201])?;
        Ok(())
    }

    fn put_manifest(
        &self,
        t: &Target<'_>,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<String, RegistryError> {
        let digest = sha256_digest(bytes);
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base(t.registry),
            t.repository
        );
        let req = Req::new("PUT", url)
            .header("Content-Type", media_type)
            .body(bytes);
        let resp = self.expect(t, req, &[200, 201])?;
        if let Some(got) = header_str(&resp, "docker-content-digest")
            && got != digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest {reference} as stored by the registry"),
                expected: digest,
                actual: got.to_owned(),
            });
        }
        Ok(digest)
    }

    /// Pushes blobs (missing ones only), then `children` by digest, then the
    /// manifest by tag (or by digest when `reference` has no tag).
    pub fn push(
        &self,
        reference: &Reference,
        manifest_media_type: &str,
        manifest_bytes: &[u8],
        children: &[(String, Vec<u8>)],
        blobs: &[(String, u64)],
        source: &dyn BlobSource,
    ) -> Result<PushReport, RegistryError> {
        let repo = reference.repository.as_str();
        let mount_from = self.opts.mount_from.as_deref().filter(|m| *m != repo);
        let mut scopes = vec![format!("repository:{repo}:pull,push")];
        let mut sources: std::collections::BTreeSet<&str> = mount_from.into_iter().collect();
        sources.extend(
            blobs
                .iter()
                .filter_map(|(d, _)| self.opts.mount_blobs.get(d))
                .map(String::as_str)
                .filter(|m| *m != repo),
        );
        for m in sources {
            scopes.push(format!("repository:{m}:pull"));
        }
        let t = Target {
            registry: &reference.registry,
            repository: repo,
            scopes,
        };
        let mut report = PushReport::default();
        let mut seen = HashSet::new();
        let unique: HashSet<&(String, u64)> = blobs.iter().collect();
        self.opts
            .progress
            .add_total(unique.iter().map(|(_, size)| size).sum());
        for (digest, size) in blobs {
            if !seen.insert(digest.as_str()) {
                continue;
            }
            // A layout's JSON names it: validated before it names a request.
            t.digest("blob", digest)?;
            if self.blob_exists(&t, digest)? {
                report.skipped.push(digest.clone());
                report.bytes_skipped += size;
                self.opts.progress.skip(*size);
                continue;
            }
            let mut url = format!("{}/v2/{repo}/blobs/uploads/", self.base(t.registry));
            let mount = self
                .opts
                .mount_blobs
                .get(digest)
                .map(String::as_str)
                .filter(|m| *m != repo)
                .or(mount_from);
            if let Some(m) = mount {
                url = with_query(
                    &url,
                    &format!(
                        "mount={}&from={}",
                        auth::query_escape(digest),
                        auth::query_escape(m)
                    ),
                );
            }
            let resp = self.expect(&t, Req::new("POST", url).body(&[]), &[201, 202])?;
            if resp.status().as_u16() == 201 {
                report.mounted.push(digest.clone());
                report.bytes_skipped += size;
                self.opts.progress.skip(*size);
                continue;
            }
            let location = self.resolve_location(t.registry, &resp)?;
            self.upload(&t, location, digest, *size, source)?;
            report.uploaded.push(digest.clone());
            report.bytes_uploaded += size;
        }
        for (media_type, bytes) in children {
            self.put_manifest(&t, &sha256_digest(bytes), media_type, bytes)?;
        }
        let manifest_digest = sha256_digest(manifest_bytes);
        let tag = reference.tag.as_deref().unwrap_or(&manifest_digest);
        if let Some(pinned) = &reference.digest
            && *pinned != manifest_digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("manifest for {reference}"),
                expected: pinned.clone(),
                actual: manifest_digest,
            });
        }
        report.manifest_digest = self.put_manifest(&t, tag, manifest_media_type, manifest_bytes)?;
        Ok(report)
    }

    fn get_manifest(
        &self,
        t: &Target<'_>,
        reference: &str,
        expected: Option<&str>,
    ) -> Result<(String, Vec<u8>, String), RegistryError> {
        let expected = expected
            .map(|want| t.digest("pinned manifest", want))
            .transpose()?;
        let url = format!(
            "{}/v2/{}/manifests/{reference}",
            self.base(t.registry),
            t.repository
        );
        let accept = [
            OCI_MANIFEST,
            OCI_INDEX,
            DOCKER_MANIFEST,
            DOCKER_MANIFEST_LIST,
        ]
        .join(", ");
        let req = Req::new("GET", url).header("Accept", accept);
        let mut resp = self.expect(t, req, &[200])?;
        let header_digest = header_str(&resp, "docker-content-digest").map(str::to_owned);
        let content_type = header_str(&resp, "content-type").map(str::to_owned);
        let bytes = manifest_body(t, &mut resp, format!("manifest `{reference}`"))?;
        let what = format!("manifest `{reference}` of `{}`", t.name());
        let digest = sha256_digest(&bytes);
        let announced = header_digest.filter(|h| h.starts_with("sha256:"));
        for want in [expected.map(|d| d.to_string()), announced]
            .into_iter()
            .flatten()
        {
            if want != digest {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected: want,
                    actual: digest,
                });
            }
        }
        let json: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Protocol(format!("{what} is not JSON: {e}")))?;
        let media_type = json
            .get("mediaType")
            .and_then(|m| m.as_str())
            .map(str::to_owned)
            .or(content_type)
            .ok_or_else(|| RegistryError::Protocol(format!("{what} has no media type")))?;
        Ok((media_type, bytes, digest))
    }

    fn fetch_blob(
        &self,
        t: &Target<'_>,
        digest: &Sha256Digest,
        size: u64,
        dest: &dyn BlobSink,
    ) -> Result<(), RegistryError> {
        check_declared_size(t, "blob", digest, size)?;
        let url = format!(
            "{}/v2/{}/blobs/{digest}",
            self.base(t.registry),
            t.repository
        );
        let mut attempt = 0;
        loop {
            let req = Req::new("GET", url.clone());
            let resp = self.expect(t, req, &[200])?;
            // One byte more than declared is let through so that `Verifying` sees the excess.
            let body = resp
                .into_body()
                .into_with_config()
                .limit(size.saturating_add(1))
                .reader();
            let mut reader = Verifying {
                inner: Counting {
                    inner: body,
                    progress: &self.opts.progress,
                },
                hasher: sha2::Sha256::new(),
                seen: 0,
                size,
                expected: digest,
                done: false,
            };
            match dest.put(digest, size, &mut reader) {
                Ok(()) if reader.done => return Ok(()),
                Ok(()) => {
                    return Err(RegistryError::Protocol(format!(
                        "blob sink did not read blob {digest} to the end"
                    )));
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    return Err(t.refuse(format!("blob {digest}"), e.to_string()));
                }
                Err(e) if attempt >= self.opts.retries => {
                    return Err(io_err(
                        format!("fetch blob {digest} from `{}`", t.name()),
                        e,
                    ));
                }
                Err(_) => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(100 << attempt.min(6)));
                }
            }
        }
    }

    /// Stores the children of the index or the blobs of the manifest `manifest` (`depth` indexes
    /// below the top) in `dest`; `fetched` holds what this pull has fetched so far.
    fn fetch_tree(
        &self,
        t: &Target<'_>,
        manifest: &[u8],
        dest: &dyn BlobSink,
        depth: usize,
        fetched: &mut Fetched,
    ) -> Result<(), RegistryError> {
        let json: serde_json::Value = serde_json::from_slice(manifest).map_err(|e| {
            RegistryError::Protocol(format!("a manifest of `{}` is not JSON: {e}", t.name()))
        })?;
        if let Some(children) = json.get("manifests").and_then(|m| m.as_array()) {
            // Every digest is validated before the first request.
            let children = children
                .iter()
                .map(|child| t.descriptor("index entry", child))
                .collect::<Result<Vec<_>, _>>()?;
            for (digest, size) in children {
                if !fetched.digests.insert(digest) {
                    continue;
                }
                fetched.manifests += 1;
                if depth >= MAX_DEPTH {
                    return Err(t.refuse(
                        format!("index entry {digest}"),
                        format!("image indexes nest at most {MAX_DEPTH} deep"),
                    ));
                }
                if fetched.manifests > MAX_MANIFESTS {
                    return Err(t.refuse(
                        format!("index entry {digest}"),
                        format!("one pull fetches at most {MAX_MANIFESTS} manifests"),
                    ));
                }
                let digest_text = digest.to_string();
                let (_, bytes, _) = self.get_manifest(t, &digest_text, Some(&digest_text))?;
                if bytes.len() as u64 != size {
                    return Err(t.refuse(
                        format!("manifest {digest}"),
                        format!(
                            "it is {} bytes but its index entry says {size}",
                            bytes.len()
                        ),
                    ));
                }
                dest.put(&digest, size, &mut bytes.as_slice())
                    .map_err(|e| io_err(format!("store manifest {digest}"), e))?;
                self.fetch_tree(t, &bytes, dest, depth + 1, fetched)?;
            }
            return Ok(());
        }
        let config = json.get("config").map(|d| ("config", d));
        let layers = json
            .get("layers")
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
            .map(|d| ("layer", d));
        // Every digest and size is validated before the first request.
        let blobs = config
            .into_iter()
            .chain(layers)
            .map(|(what, d)| t.descriptor(what, d))
            .collect::<Result<Vec<_>, _>>()?;
        let new: u64 = blobs
            .iter()
            .filter(|(d, _)| !fetched.digests.contains(d))
            .map(|(_, size)| size)
            .sum();
        self.opts.progress.add_total(new);
        for (digest, size) in blobs {
            if fetched.digests.insert(digest) {
                self.fetch_blob(t, &digest, size, dest)?;
            }
        }
        Ok(())
    }

    /// Fetches the one manifest named by `reference` (verified against its digest when pinned),
    /// without its blobs: `(media type, bytes, digest)`. For artifact stores such as the binary cache.
    pub fn manifest(
        &self,
        reference: &Reference,
    ) -> Result<(String, Vec<u8>, String), RegistryError> {
        let t = Target::pull(reference);
        self.get_manifest(&t, reference.manifest_ref(), reference.digest.as_deref())
    }

    /// The referrers API (`GET /v2/NAME/referrers/DIGEST`): the image index listing the manifests
    /// whose `subject` is manifest `digest`; `None` when the registry does not offer the API (it
    /// answers 404, or with something that is not an image index).
    pub fn referrers(
        &self,
        reference: &Reference,
        digest: &str,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let t = Target::pull(reference);
        let digest = t.digest("referrers subject", digest)?;
        let url = format!(
            "{}/v2/{}/referrers/{digest}",
            self.base(t.registry),
            t.repository
        );
        let req = Req::new("GET", url.clone()).header("Accept", OCI_INDEX);
        let mut resp = self.send(&t, &req)?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(Self::status_error(&req, resp)),
        }
        if !header_str(&resp, "content-type").is_some_and(|c| c.starts_with(OCI_INDEX)) {
            return Ok(None);
        }
        Ok(Some(manifest_body(&t, &mut resp, url)?))
    }

    /// Streams blob `digest` of `reference`'s repository into `dest`, verifying its size and digest.
    pub fn blob(
        &self,
        reference: &Reference,
        digest: &str,
        size: u64,
        dest: &dyn BlobSink,
    ) -> Result<(), RegistryError> {
        let t = Target::pull(reference);
        let digest = t.digest("blob", digest)?;
        self.fetch_blob(&t, &digest, size, dest)
    }

    /// Whether `reference`'s repository has blob `digest`.
    pub fn has_blob(&self, reference: &Reference, digest: &str) -> Result<bool, RegistryError> {
        let t = Target::pull(reference);
        self.blob_exists(&t, digest)
    }

    /// The tags of `reference`'s repository, sorted (`GET /v2/NAME/tags/list`, following `Link`
    /// pages); empty when the repository does not exist.
    pub fn tags(&self, reference: &Reference) -> Result<Vec<String>, RegistryError> {
        let t = Target::pull(reference);
        let mut url = format!("{}/v2/{}/tags/list", self.base(t.registry), t.repository);
        let mut tags = Vec::new();
        for _page in 0..10_000 {
            let req = Req::new("GET", url.clone());
            let mut resp = self.send(&t, &req)?;
            match resp.status().as_u16() {
                200 => {}
                404 => return Ok(Vec::new()),
                _ => return Err(Self::status_error(&req, resp)),
            }
            let next = header_str(&resp, "link").and_then(next_link);
            let bytes = resp
                .body_mut()
                .with_config()
                .limit(MANIFEST_LIMIT)
                .read_to_vec()
                .map_err(|source| RegistryError::Http {
                    method: "GET".into(),
                    url: url.clone(),
                    source,
                })?;
            let json: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| RegistryError::Protocol(format!("tag list is not JSON: {e}")))?;
            tags.extend(
                json.get("tags")
                    .and_then(|t| t.as_array())
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(str::to_owned)),
            );
            match next {
                Some(path) if path.starts_with('/') => {
                    url = format!("{}{path}", self.base(t.registry));
                }
                Some(full) if matches!(url_scheme(&full).as_deref(), Some("http" | "https")) => {
                    url = full;
                }
                Some(other) => {
                    return Err(t.refuse(
                        format!("the next tag list page {}", quoted(&other)),
                        "a tag list links only to http(s):// URLs",
                    ));
                }
                None => break,
            }
        }
        tags.sort();
        tags.dedup();
        Ok(tags)
    }

    /// Fetches the manifest named by `reference` (verified against its digest when
    /// pinned), stores it and, for an index, every child manifest in `dest`, then
    /// streams every config and layer blob into `dest`, verifying each one.
    pub fn pull(
        &self,
        reference: &Reference,
        dest: &dyn BlobSink,
    ) -> Result<Pulled, RegistryError> {
        let t = Target::pull(reference);
        let (media_type, manifest_bytes, digest) =
            self.get_manifest(&t, reference.manifest_ref(), reference.digest.as_deref())?;
        let top = Sha256Digest::of(&manifest_bytes);
        dest.put(
            &top,
            manifest_bytes.len() as u64,
            &mut manifest_bytes.as_slice(),
        )
        .map_err(|e| io_err(format!("store manifest {digest}"), e))?;
        let mut fetched = Fetched {
            digests: BTreeSet::from([top]),
            manifests: 1,
        };
        self.fetch_tree(&t, &manifest_bytes, dest, 0, &mut fetched)?;
        Ok(Pulled {
            media_type,
            manifest_bytes,
            digest,
        })
    }
}

/// What one [`Client::pull`] has fetched: each digest once, and at most [`MAX_MANIFESTS`]
/// manifests.
struct Fetched {
    digests: BTreeSet<Sha256Digest>,
    manifests: usize,
}

/// The target of a `Link: <URL>; rel="next"` header.
pub(super) fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_owned()
        })
    })
}

/// Reader that counts the bytes it passes on in a [`crate::printer::Transfer`].
struct Counting<'p, R> {
    inner: R,
    progress: &'p crate::printer::Transfer,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Reader that checks size and sha256 and fails with `InvalidData` as soon as more bytes than
/// declared arrive, or at EOF on a short or mismatching body.
struct Verifying<'e, R> {
    inner: R,
    hasher: sha2::Sha256,
    seen: u64,
    size: u64,
    expected: &'e Sha256Digest,
    done: bool,
}

impl<R: Read> Read for Verifying<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let invalid = |msg: String| std::io::Error::new(std::io::ErrorKind::InvalidData, msg);
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if self.seen != self.size {
                return Err(invalid(format!(
                    "its body ended after {} bytes, its descriptor declares {}",
                    self.seen, self.size
                )));
            }
            let actual = Sha256Digest::from_bytes(self.hasher.clone().finalize().into());
            if actual != *self.expected {
                return Err(invalid(format!(
                    "its bytes hash to {actual}, not to the digest they were fetched by"
                )));
            }
            self.done = true;
            return Ok(0);
        }
        self.seen += n as u64;
        if self.seen > self.size {
            return Err(invalid(format!(
                "its body is longer than the {} bytes its descriptor declares",
                self.size
            )));
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verify(data: &[u8], size: u64, digest: &str) -> std::io::Result<Vec<u8>> {
        let expected: Sha256Digest = digest.parse().unwrap();
        let mut r = Verifying {
            inner: data,
            hasher: sha2::Sha256::new(),
            seen: 0,
            size,
            expected: &expected,
            done: false,
        };
        let mut out = Vec::new();
        r.read_to_end(&mut out)?;
        assert!(r.done);
        Ok(out)
    }

    #[test]
    fn verifying_reader_rejects_bad_content() {
        let d = sha256_digest(b"hello");
        assert_eq!(verify(b"hello", 5, &d).unwrap(), b"hello");
        let kind = |r: std::io::Result<Vec<u8>>| r.unwrap_err().kind();
        assert_eq!(
            kind(verify(b"hellp", 5, &d)),
            std::io::ErrorKind::InvalidData
        );
        assert_eq!(
            kind(verify(b"hell", 5, &d)),
            std::io::ErrorKind::InvalidData
        );
        assert_eq!(
            kind(verify(b"hello!", 5, &d)),
            std::io::ErrorKind::InvalidData
        );
    }

    #[test]
    fn query_and_location_helpers() {
        assert_eq!(
            with_query("http://h/u?_state=x", "digest=a"),
            "http://h/u?_state=x&digest=a"
        );
        assert_eq!(with_query("http://h/u", "digest=a"), "http://h/u?digest=a");
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=x&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=x&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }

    #[test]
    fn redirect_targets_resolve_and_keep_their_scheme() {
        let base = "http://127.0.0.1:5000/v2/app/blobs/sha256:ab?x=1";
        assert_eq!(
            resolve_redirect(base, "/storage/b"),
            "http://127.0.0.1:5000/storage/b"
        );
        assert_eq!(
            resolve_redirect(base, "c?sig=1"),
            "http://127.0.0.1:5000/v2/app/blobs/c?sig=1"
        );
        assert_eq!(resolve_redirect(base, "//cdn.test/b"), "http://cdn.test/b");
        assert_eq!(
            resolve_redirect(base, "file:///etc/passwd"),
            "file:///etc/passwd"
        );
        assert_eq!(url_scheme("FILE:///x").as_deref(), Some("file"));
        assert_eq!(url_scheme("data:text/plain,x").as_deref(), Some("data"));
        assert_eq!(url_scheme("/a:b"), None);
        assert_eq!(url_scheme("c?x=a:b"), None);
    }

    #[test]
    fn quoted_escapes_and_shortens() {
        assert_eq!(quoted("sha256:../x\n"), "`sha256:../x\\n`");
        assert_eq!(quoted("a\u{1b}[31m"), "`a\\u{1b}[31m`");
        assert_eq!(quoted(&"x".repeat(250)).chars().count(), 203);
    }
}
