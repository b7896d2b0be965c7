//! OCI distribution (registry) client: push and pull images over the
//! [distribution API](https://github.com/opencontainers/distribution-spec).
//!
//! Blocking, built on `ureq` 3. Authentication follows `WWW-Authenticate`
//! challenges (Basic, or Bearer tokens from the realm), credentials come from
//! [`Credentials`]. Manifests are always sent byte-identical to what the caller
//! passes in, and every blob fetched is verified against its digest while it
//! streams into the caller's [`BlobSink`].
//!
//! A registry is not trusted: every digest it sends is parsed into a
//! [`Sha256Digest`] before it names a request or a file, a descriptor may declare
//! at most [`MAX_BLOB_SIZE`] bytes and a body is cut off at its declared size,
//! index nesting, manifests per pull and redirects are bounded, and redirects
//! lead only to `https://` (or `http://` from a plain-http registry) without
//! credentials. Each refusal is a [`RegistryError::Refused`] naming the
//! repository, what was refused and the rule.

pub mod artifact;
mod auth;
pub mod base;
mod client;
mod credentials;
mod credhelper;
mod reference;

pub use client::{Client, ClientOptions};
pub use credentials::{Credentials, Login};
pub use credhelper::HelperError;
pub use reference::Reference;

use crate::oci::Sha256Digest;

/// The pure parts of the client's response handling, public for the fuzz targets (`fuzz/`):
/// what a `WWW-Authenticate` header asks for (a summary of the challenge chosen), and the next
/// page a `Link` header names. Used by nothing else.
pub fn interpret_response_headers(
    www_authenticate: &str,
    link: &str,
) -> (Option<String>, Option<String>) {
    (
        auth::parse_challenge(www_authenticate).map(|c| format!("{c:?}")),
        client::next_link(link),
    )
}

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// Blobs larger than this are uploaded in chunks of this size (PATCH), smaller
/// ones in one monolithic PUT.
pub const CHUNK_SIZE: u64 = 8 * 1024 * 1024;

/// Where [`Client::push`] reads blob contents from.
pub trait BlobSource {
    /// Opens the blob `digest`, returning a reader and its size in bytes.
    fn open(&self, digest: &str) -> std::io::Result<(Box<dyn std::io::Read>, u64)>;
}

/// The largest blob a registry may declare: a descriptor announcing more is refused before
/// anything is downloaded, and every body is cut off at its declared size.
pub const MAX_BLOB_SIZE: u64 = 64 << 30;

/// Where [`Client::pull`] writes blobs (and manifests) to.
///
/// The digest is validated before `put` is called (it may name a file). The reader handed to
/// [`BlobSink::put`] verifies size and digest: it returns an `InvalidData` error as soon as more
/// bytes than declared arrive, and at end of stream when the content does not match, so a sink
/// that propagates read errors never commits a corrupt blob.
pub trait BlobSink {
    /// Stores the blob `digest` of `size` bytes read from `reader`.
    fn put(
        &self,
        digest: &Sha256Digest,
        size: u64,
        reader: &mut dyn std::io::Read,
    ) -> std::io::Result<()>;
}

/// What [`Client::push`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Digests of blobs uploaded.
    pub uploaded: Vec<String>,
    /// Digests of blobs the registry already had.
    pub skipped: Vec<String>,
    /// Digests of blobs mounted from another repository.
    pub mounted: Vec<String>,
    /// Bytes sent for uploaded blobs.
    pub bytes_uploaded: u64,
    /// Bytes of blobs not sent (skipped or mounted).
    pub bytes_skipped: u64,
    /// `sha256:` digest of the pushed manifest.
    pub manifest_digest: String,
}

/// What [`Client::pull`] fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// Media type of the top-level manifest.
    pub media_type: String,
    /// The top-level manifest exactly as served.
    pub manifest_bytes: Vec<u8>,
    /// `sha256:` digest of `manifest_bytes`.
    pub digest: String,
}

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The image reference could not be parsed.
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference {
        /// The text given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The registry refused access.
    #[error("unauthorized at registry {registry}: {hint}")]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// What to do about it.
        hint: String,
    },
    /// The registry answered with an unexpected status: the reason its OCI error body gives
    /// (`errors[].code: message`), else an excerpt of the body.
    #[error("{method} {url} returned HTTP {status}: {body}")]
    Status {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// What the body says.
        body: Box<ErrorBody>,
    },
    /// Network or protocol failure.
    #[error("{method} {url}: {source}")]
    Http {
        /// HTTP method.
        method: String,
        /// Request URL.
        url: String,
        /// Underlying error.
        #[source]
        source: ureq::Error,
    },
    /// Content did not match its digest.
    #[error("digest mismatch for {what}: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was checked.
        what: String,
        /// Expected digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },
    /// The registry sent something that breaks a rule himg holds every registry to (a digest
    /// that is not `sha256:<hex>`, a body longer than declared, a redirect to `file://`, …).
    #[error("refused {what} from `{repository}`: {rule}")]
    Refused {
        /// `registry/repository`.
        repository: String,
        /// What was refused (with its digest or URL).
        what: String,
        /// The rule it breaks.
        rule: String,
    },
    /// The registry sent something malformed.
    #[error("bad response from registry: {0}")]
    Protocol(String),
    /// The credentials file could not be read or parsed.
    #[error("credentials file {path}: {reason}")]
    Credentials {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A credential helper failed (it is named with the host; the secret never is).
    #[error(transparent)]
    CredentialHelper(#[from] HelperError),
    /// Local I/O (blob source or sink) failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// How much of an error body is read from a registry.
pub const ERROR_BODY_LIMIT: u64 = 16 * 1024;
/// How much of an error body is kept (for debugging) when it is not an OCI error body.
pub const ERROR_BODY_EXCERPT: usize = 200;

/// The body of a registry's error answer.
#[derive(Debug, Default)]
pub struct ErrorBody {
    /// The first error code of the OCI distribution error body (`MANIFEST_UNKNOWN`, …).
    pub code: Option<String>,
    /// Its message (and those of the further errors), escaped and bounded.
    pub message: String,
    /// The start of the raw body (at most [`ERROR_BODY_EXCERPT`] characters), escaped.
    pub excerpt: String,
}

/// The reason shown for a [`RegistryError::Status`].
impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.code {
            Some(code) if self.message.is_empty() => write!(f, "{code}"),
            Some(code) => write!(f, "{code} ({})", self.message),
            None if self.excerpt.is_empty() => write!(f, "(empty body)"),
            None => write!(f, "body `{}`", self.excerpt),
        }
    }
}

/// The first `errors[].code` of an OCI distribution error body and the messages of its errors
/// (`; `-joined), each escaped and bounded; `None` when `body` is not one.
pub fn parse_error_body(body: &[u8]) -> Option<(String, String)> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let errors = json.get("errors")?.as_array()?;
    let bounded = |text: &str, max: usize| -> String {
        let mut shown: String = text.chars().take(max).collect();
        if shown.len() < text.len() {
            shown.push('…');
        }
        shown.escape_debug().to_string()
    };
    let code = errors
        .iter()
        .find_map(|e| e.get("code")?.as_str())
        .map(|c| bounded(c, 64))?;
    let messages: Vec<String> = errors
        .iter()
        .filter_map(|e| e.get("message")?.as_str())
        .filter(|m| !m.is_empty())
        .take(3)
        .map(|m| bounded(m, 120))
        .collect();
    Some((code, messages.join("; ")))
}

impl RegistryError {
    /// What to do about this error, for the common OCI distribution error codes and statuses.
    pub fn hint(&self) -> Option<String> {
        let RegistryError::Status { body, status, .. } = self else {
            return None;
        };
        let code = body.code.as_deref().unwrap_or(match status {
            401 => "UNAUTHORIZED",
            403 => "DENIED",
            404 => "NOT_FOUND",
            429 => "TOOMANYREQUESTS",
            _ => "",
        });
        Some(match code {
            "MANIFEST_UNKNOWN" | "NAME_UNKNOWN" | "NOT_FOUND" => "check the reference: the repository name and the tag (or digest) must exist on that registry; `himg inspect HOST/REPO:TAG` shows what one holds".to_owned(),
            "UNAUTHORIZED" | "DENIED" => format!("the registry refused these credentials, or none were found: {}", credentials::SOURCES_HINT),
            "BLOB_UNKNOWN" | "BLOB_UPLOAD_UNKNOWN" => "the registry does not hold a blob the manifest names: push the image again (all of its blobs), or pull it from where it was pushed".to_owned(),
            "TOOMANYREQUESTS" => "the registry's rate limit was reached: retry later, or log in (authenticated pulls usually have a higher limit)".to_owned(),
            "MANIFEST_INVALID" | "MANIFEST_BLOB_UNKNOWN" | "DIGEST_INVALID" | "SIZE_INVALID" => "the registry refused what was sent: check that the layout is complete (`himg inspect DIR`) and push again".to_owned(),
            "UNSUPPORTED" => "the registry does not support this operation (or this media type)".to_owned(),
            _ => return None,
        })
    }
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}
