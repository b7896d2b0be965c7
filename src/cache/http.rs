//! `http(s)://HOST/PATH`: a cache over plain HTTP — `GET`/`HEAD` to read, `PUT` to push, with an
//! optional bearer token. `himg cache serve` is one such server; any WebDAV-style server that
//! stores what is `PUT` works too.

use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use himg_store::{B3Digest, Sha256Digest};

use super::CacheError;
use super::backend::{Backend, archive_path, entry_path};
use super::entry::ENTRY_LIMIT;

/// A cache at an HTTP base URL.
#[derive(Debug)]
pub struct HttpBackend {
    url: String,
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

type Resp = ureq::http::Response<ureq::Body>;

impl HttpBackend {
    pub fn new(url: &str, token: Option<String>) -> HttpBackend {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(Duration::from_secs(120)))
            .timeout_recv_body(Some(Duration::from_secs(600)))
            .user_agent("himg")
            .build();
        HttpBackend {
            url: url.to_owned(),
            base: url.trim_end_matches('/').to_owned(),
            token,
            agent: ureq::Agent::new_with_config(config),
        }
    }

    fn target(&self, rel: &str) -> String {
        format!("{}/{rel}", self.base)
    }

    fn err(&self, e: impl std::fmt::Display) -> CacheError {
        CacheError::Backend {
            cache: self.url.clone(),
            message: e.to_string(),
        }
    }

    fn auth(&self) -> Option<String> {
        self.token.as_ref().map(|t| format!("Bearer {t}"))
    }

    fn request(
        &self,
        method: &str,
        rel: &str,
        body: Option<&mut dyn io::Read>,
    ) -> Result<Resp, CacheError> {
        let mut b = ureq::http::Request::builder()
            .method(method)
            .uri(self.target(rel));
        if let Some(a) = self.auth() {
            b = b.header("Authorization", a);
        }
        let r = match body {
            None => self.agent.run(b.body(()).map_err(|e| self.err(e))?),
            Some(reader) => self.agent.run(
                b.body(ureq::SendBody::from_reader(reader))
                    .map_err(|e| self.err(e))?,
            ),
        };
        r.map_err(|e| self.err(e))
    }

    /// Maps an error status to an error; `Ok(false)` for 404.
    fn check(&self, resp: Resp) -> Result<Option<Resp>, CacheError> {
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(Some(resp)),
            404 => Ok(None),
            _ => {
                let header: Option<String> = resp
                    .headers()
                    .get("X-Himg-Error")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body: String = resp
                    .into_body()
                    .read_to_string()
                    .unwrap_or_default()
                    .trim()
                    .chars()
                    .take(500)
                    .collect();
                let message = match header {
                    Some(h) if body.is_empty() => h,
                    _ => body,
                };
                if status == 401 || status == 403 {
                    Err(CacheError::Denied {
                        cache: self.url.clone(),
                        status,
                        message,
                    })
                } else {
                    Err(self.err(format!("HTTP {status}: {message}")))
                }
            }
        }
    }

    fn exists(&self, rel: &str) -> Result<bool, CacheError> {
        Ok(self.check(self.request("HEAD", rel, None)?)?.is_some())
    }
}

impl Backend for HttpBackend {
    fn url(&self) -> &str {
        &self.url
    }

    fn get_entry(&self, key: &B3Digest) -> Result<Option<Vec<u8>>, CacheError> {
        let Some(resp) = self.check(self.request("GET", &entry_path(key), None)?)? else {
            return Ok(None);
        };
        let mut buf = Vec::new();
        // One byte more than allowed, so that a longer entry is told apart and refused.
        io::Read::read_to_end(
            &mut io::Read::take(
                resp.into_body().into_with_config().limit(u64::MAX).reader(),
                ENTRY_LIMIT + 1,
            ),
            &mut buf,
        )
        .map_err(|e| self.err(e))?;
        if buf.len() as u64 > ENTRY_LIMIT {
            return Err(self.err(format!(
                "{} is longer than the {ENTRY_LIMIT} bytes an entry may have",
                entry_path(key)
            )));
        }
        Ok(Some(buf))
    }

    fn has_entry(&self, key: &B3Digest) -> Result<bool, CacheError> {
        self.exists(&entry_path(key))
    }

    fn has_archive(&self, hash: &Sha256Digest) -> Result<bool, CacheError> {
        self.exists(&archive_path(hash))
    }

    fn get_archive(
        &self,
        hash: &Sha256Digest,
        size: u64,
        out: &mut dyn Write,
    ) -> Result<u64, CacheError> {
        let rel = archive_path(hash);
        let Some(resp) = self.check(self.request("GET", &rel, None)?)? else {
            return Err(self.err(format!("{rel} is missing")));
        };
        let declared = resp
            .headers()
            .get("Content-Length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(len) = declared.filter(|len| *len != size) {
            return Err(self.err(format!(
                "{rel} is {len} bytes long, but its signed entry says {size}"
            )));
        }
        // Never more than one byte past the signed size (the caller refuses that byte).
        let mut reader = io::Read::take(
            resp.into_body().into_with_config().limit(u64::MAX).reader(),
            size.saturating_add(1),
        );
        io::copy(&mut reader, out).map_err(|e| self.err(e))
    }

    fn put_archive(&self, hash: &Sha256Digest, _size: u64, file: &Path) -> Result<(), CacheError> {
        let mut f = std::fs::File::open(file).map_err(|e| CacheError::io(file.display(), e))?;
        let resp = self.request("PUT", &archive_path(hash), Some(&mut f))?;
        self.check(resp)?
            .map(|_| ())
            .ok_or_else(|| self.err("PUT answered 404"))
    }

    fn put_entry(
        &self,
        key: &B3Digest,
        entry: &[u8],
        _archive: (&Sha256Digest, u64),
    ) -> Result<(), CacheError> {
        let mut body = entry;
        let resp = self.request("PUT", &entry_path(key), Some(&mut body))?;
        self.check(resp)?
            .map(|_| ())
            .ok_or_else(|| self.err("PUT answered 404"))
    }
}
