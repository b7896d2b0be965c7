//! Signed `InRelease` files and the package indexes they authenticate.
//!
//! The chain of trust, each link checked and any failure refused:
//!
//! 1. `dists/SUITE/InRelease` is a clearsigned OpenPGP message. [`verify_inrelease`] accepts it
//!    when at least one signature verifies against the user's [`Keyring`] (signatures by keys
//!    outside the keyring are ignored: Debian signs with several keys). Only the **signed** text
//!    is parsed afterwards; anything outside the signature is never looked at.
//! 2. Time: `Date` may be at most [`MAX_FUTURE_SKEW_SECS`] (10 minutes) ahead of `now`, a
//!    tolerance for clock skew between the archive and this host, and `Valid-Until` must not
//!    have passed. `now` is the caller's: a pinned snapshot is judged at its own time.
//! 3. The `SHA256` list gives size and digest of `COMPONENT/binary-ARCH/Packages.{xz,gz,…}`;
//!    [`fetch_verified_index`] downloads it (by hash when `Acquire-By-Hash: yes`, so a mirror
//!    update cannot race us), verifies both, and decompresses.
//!
//! The fourth link — each Packages stanza's `SHA256`/`Size` authenticating its `.deb` — belongs
//! to the package resolver, which uses [`super::fetch::Fetcher::download`] with [`Expected`].

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::fetch::{Expected, FetchError, Fetcher};
use super::keyring::{Keyring, SigCheck};

/// How far `Date` may be ahead of `now` (clock skew tolerance), in seconds.
pub const MAX_FUTURE_SKEW_SECS: i64 = 600;
/// The largest InRelease accepted (Debian's is about 150 KB).
pub const MAX_INRELEASE_BYTES: u64 = 32 << 20;
/// The largest decompressed index accepted (Debian main/amd64 is about 50 MB).
pub const MAX_INDEX_BYTES: u64 = 1 << 30;

/// A failed link in the chain of trust, or a failure to fetch it.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    /// Not a clearsigned message at all.
    #[error(
        "{what} is not a clearsigned OpenPGP message: {reason}\nhint: the mirror may serve an error page, or the repository may only offer Release + Release.gpg"
    )]
    NotClearsigned {
        /// "InRelease of SUITE".
        what: String,
        /// Parser message.
        reason: String,
    },
    /// The signature block of a well-framed message cannot be decoded.
    #[error(
        "{what} has a damaged signature block: {reason}\nhint: the file was modified or damaged after signing; do not use this mirror until it is fixed"
    )]
    DamagedSignature {
        /// "InRelease of SUITE".
        what: String,
        /// What could not be decoded.
        reason: String,
    },
    /// Every signature is by a key outside the keyring.
    #[error(
        "{what} is not signed by any key in keyring {keyring} (signed by {signers}; the keyring has {have})\nhint: check `keyring` in your repository block"
    )]
    UntrustedSigner {
        /// "InRelease of SUITE".
        what: String,
        /// Keyring name.
        keyring: String,
        /// Issuers of the signatures.
        signers: String,
        /// Fingerprints in the keyring.
        have: String,
    },
    /// A keyring key matched but no signature is acceptable.
    #[error(
        "{what} has no valid signature from keyring {keyring}: {details}\nhint: the file was modified after signing, or the key is expired/revoked; do not use this mirror until it is fixed"
    )]
    InvalidSignature {
        /// "InRelease of SUITE".
        what: String,
        /// Keyring name.
        keyring: String,
        /// One line per rejected signature.
        details: String,
    },
    /// `Valid-Until` has passed.
    #[error(
        "{what} expired on {valid_until} (Valid-Until; judged at {now})\nhint: the mirror is stale; use an up-to-date mirror, or pin a snapshot and judge it at its own time"
    )]
    Expired {
        /// "InRelease of SUITE".
        what: String,
        /// Formatted Valid-Until.
        valid_until: String,
        /// Formatted `now`.
        now: String,
    },
    /// `Date` is in the future.
    #[error(
        "{what} is dated {date}, after {now} (more than {MAX_FUTURE_SKEW_SECS} s in the future)\nhint: check this machine's clock"
    )]
    NotYetValid {
        /// "InRelease of SUITE".
        what: String,
        /// Formatted Date.
        date: String,
        /// Formatted `now`.
        now: String,
    },
    /// A required field is missing.
    #[error("{what} has no `{field}` field")]
    MissingField {
        /// "InRelease of SUITE".
        what: String,
        /// Field name.
        field: &'static str,
    },
    /// A field cannot be parsed.
    #[error("{what}: bad `{field}` value `{value}`: {reason}")]
    BadField {
        /// "InRelease of SUITE".
        what: String,
        /// Field name.
        field: &'static str,
        /// The value (truncated).
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The signed Release is for another suite (replay of another suite's file).
    #[error(
        "InRelease fetched for suite `{requested}` describes Suite `{suite}` / Codename `{codename}`\nhint: the mirror serves the wrong file; check the suite name"
    )]
    SuiteMismatch {
        /// What was asked for.
        requested: String,
        /// Its Suite.
        suite: String,
        /// Its Codename.
        codename: String,
    },
    /// The Release has no index for this component/arch.
    #[error(
        "the Release of {suite} lists no Packages index for {component}/binary-{arch} (components: {components}; architectures: {architectures})"
    )]
    NoIndex {
        /// Suite or codename.
        suite: String,
        /// Component asked for.
        component: String,
        /// Architecture asked for.
        arch: String,
        /// Components it has.
        components: String,
        /// Architectures it has.
        architectures: String,
    },
    /// A component, architecture or suite that cannot be part of a path.
    #[error("invalid {what} `{value}`")]
    BadName {
        /// "component", "architecture", "suite".
        what: &'static str,
        /// The value.
        value: String,
    },
    /// Fetching failed (includes size and sha256 mismatches against the signed Release).
    #[error("fetching {what} failed")]
    Fetch {
        /// What was fetched.
        what: String,
        /// The fetch error.
        #[source]
        source: FetchError,
    },
    /// Decompression failed or exceeded [`MAX_INDEX_BYTES`].
    #[error("cannot decompress {path}: {reason}")]
    Decompress {
        /// The index path.
        path: String,
        /// Why.
        reason: String,
    },
    /// A local file operation failed.
    #[error("{}: {what}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
}

/// The signed fields of a Release file that himg uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `Origin` (e.g. `Debian`).
    pub origin: Option<String>,
    /// `Label`.
    pub label: Option<String>,
    /// `Suite` (e.g. `stable`).
    pub suite: Option<String>,
    /// `Codename` (e.g. `trixie`).
    pub codename: Option<String>,
    /// `Date`, unix seconds.
    pub date: i64,
    /// `Valid-Until`, unix seconds.
    pub valid_until: Option<i64>,
    /// `Architectures`.
    pub architectures: Vec<String>,
    /// `Components`.
    pub components: Vec<String>,
    /// `Acquire-By-Hash: yes`.
    pub acquire_by_hash: bool,
    /// The `SHA256` list: path → (size, digest).
    pub files: BTreeMap<String, (u64, [u8; 32])>,
    /// Fingerprints (primary keys) of the signatures that verified.
    pub signed_by: Vec<String>,
}

impl Release {
    /// The suite name for messages: Codename, else Suite.
    pub fn name(&self) -> &str {
        self.codename
            .as_deref()
            .or(self.suite.as_deref())
            .unwrap_or("?")
    }

    /// Checks that this Release describes `requested` (its Suite or Codename), so a mirror
    /// cannot pass off another suite's correctly signed file.
    pub fn check_suite(&self, requested: &str) -> Result<(), ReleaseError> {
        if self.suite.as_deref() == Some(requested) || self.codename.as_deref() == Some(requested) {
            return Ok(());
        }
        Err(ReleaseError::SuiteMismatch {
            requested: requested.to_string(),
            suite: self.suite.clone().unwrap_or_default(),
            codename: self.codename.clone().unwrap_or_default(),
        })
    }
}

/// Which index file to fetch for a component/architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexChoice {
    /// Path relative to `dists/SUITE/`, e.g. `main/binary-amd64/Packages.xz`.
    pub path: String,
    /// Size from the signed Release.
    pub size: u64,
    /// SHA-256 from the signed Release.
    pub sha256: [u8; 32],
    /// `main/binary-amd64/by-hash/SHA256/<hex>` when the Release offers by-hash.
    pub by_hash_path: Option<String>,
}

/// Verifies a clearsigned InRelease against `keyring` at time `now` (unix seconds) and parses
/// its signed text. Messages name the suite from the (signed) text.
pub fn verify_inrelease(
    bytes: &[u8],
    keyring: &Keyring,
    now: i64,
) -> Result<Release, ReleaseError> {
    verify_inrelease_named(bytes, keyring, now, None)
}

/// Like [`verify_inrelease`], naming the file `InRelease of SUITE` in messages.
pub fn verify_inrelease_named(
    bytes: &[u8],
    keyring: &Keyring,
    now: i64,
    suite: Option<&str>,
) -> Result<Release, ReleaseError> {
    let mut what = match suite {
        Some(s) => format!("InRelease of {s}"),
        None => "InRelease".to_string(),
    };
    let text = std::str::from_utf8(bytes).map_err(|_| ReleaseError::NotClearsigned {
        what: what.clone(),
        reason: "it is not UTF-8 text".into(),
    })?;
    let not_clearsigned = |what: &str, reason: String| ReleaseError::NotClearsigned {
        what: what.to_string(),
        reason,
    };
    let framed =
        super::clearsigned::split(text).map_err(|reason| not_clearsigned(&what, reason))?;
    let signed = &framed.signed_text;
    if suite.is_none() {
        // Only for naming the file in messages; nothing is trusted before verification.
        let fields = parse_fields(signed);
        if let Some(name) = field(&fields, "Codename").or_else(|| field(&fields, "Suite")) {
            what = format!("InRelease of {}", truncate(name));
        }
    }
    // The OpenPGP library sees only the signature block, and any panic inside it is caught
    // here: a hostile file gets an error naming the rule, never a crash.
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_signatures(&framed, keyring, now)
    }))
    .unwrap_or_else(|_| Err("the OpenPGP parser failed on it".into()));
    let (good, unknown, bad) = checked.map_err(|reason| ReleaseError::DamagedSignature {
        what: what.clone(),
        reason,
    })?;
    if good.is_empty() {
        if bad.is_empty() {
            return Err(ReleaseError::UntrustedSigner {
                what,
                keyring: keyring.name().to_string(),
                signers: if unknown.is_empty() {
                    "no signature at all".into()
                } else {
                    unknown.join(", ")
                },
                have: keyring
                    .fingerprints()
                    .iter()
                    .map(|f| format!("0x{f}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        return Err(ReleaseError::InvalidSignature {
            what,
            keyring: keyring.name().to_string(),
            details: bad.join("; "),
        });
    }
    let mut good = good;
    good.dedup();
    let mut release = parse_release(signed, &what)?;
    release.signed_by = good;
    if release.date > now.saturating_add(MAX_FUTURE_SKEW_SECS) {
        return Err(ReleaseError::NotYetValid {
            what,
            date: format_time(release.date),
            now: format_time(now),
        });
    }
    if let Some(until) = release.valid_until
        && now > until
    {
        return Err(ReleaseError::Expired {
            what,
            valid_until: format_time(until),
            now: format_time(now),
        });
    }
    Ok(release)
}

/// Signatures of a clearsigned message, sorted by verdict: fingerprints of the primary keys
/// of good ones, issuers of signatures by keys outside the keyring, and one line per bad one.
type Verdicts = (Vec<String>, Vec<String>, Vec<String>);

/// Decodes the signature block and checks each signature against `keyring`; `Err` is a
/// signature block that cannot be decoded.
fn check_signatures(
    framed: &super::clearsigned::Clearsigned<'_>,
    keyring: &Keyring,
    now: i64,
) -> Result<Verdicts, String> {
    use pgp::composed::{Deserializable, DetachedSignature};
    let undecodable = |e: pgp::errors::Error| {
        format!("it cannot be decoded ({})", super::keyring::pgp_reason(&e))
    };
    let (signatures, _headers) =
        DetachedSignature::from_armor_many(framed.signature_block.as_bytes())
            .map_err(undecodable)?;
    let (mut good, mut unknown, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    for sig in signatures {
        let sig = sig.map_err(undecodable)?.signature;
        // The `Hash` header, when present, must name the signature's algorithm (as GnuPG
        // requires): a header rewritten after signing is a tampered file.
        if !framed.hashes.is_empty()
            && let Some(alg) = sig.hash_alg()
            && !framed
                .hashes
                .iter()
                .any(|h| h.parse::<pgp::crypto::hash::HashAlgorithm>() == Ok(alg))
        {
            bad.push(format!(
                "signature by {} uses {alg}, which its `Hash` header ({}) does not name",
                super::keyring::issuer_string(&sig),
                framed.hashes.join(", ")
            ));
            continue;
        }
        match keyring.check_signature(&sig, framed.signed_text.as_bytes(), now) {
            SigCheck::Good { primary, .. } => good.push(primary),
            SigCheck::UnknownKey { issuer } => unknown.push(issuer),
            SigCheck::Bad { issuer, reason } => bad.push(format!("signature by {issuer} {reason}")),
        }
    }
    Ok((good, unknown, bad))
}

/// At most 80 printable ASCII characters (values from files end up in terminal messages).
fn truncate(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(80)
        .collect()
}

/// deb822 fields of the first stanza; continuation lines joined with `\n` (`.` lines kept).
fn parse_fields(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if out.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = out.last_mut() {
                v.push('\n');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((k, v)) = line.split_once(':') {
            out.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Parses Release text (already authenticated).
pub fn parse_release(text: &str, what: &str) -> Result<Release, ReleaseError> {
    let fields = parse_fields(text);
    let opt = |name: &str| {
        field(&fields, name)
            .map(str::to_string)
            .filter(|v| !v.is_empty())
    };
    let words = |name: &str| -> Vec<String> {
        field(&fields, name)
            .map(|v| v.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default()
    };
    let bad = |f: &'static str, value: &str, reason: &'static str| ReleaseError::BadField {
        what: what.to_string(),
        field: f,
        value: truncate(value),
        reason,
    };
    let date_s = field(&fields, "Date").ok_or_else(|| ReleaseError::MissingField {
        what: what.to_string(),
        field: "Date",
    })?;
    let date = parse_date(date_s).ok_or_else(|| bad("Date", date_s, "not an RFC 2822 date"))?;
    let valid_until = match field(&fields, "Valid-Until") {
        Some(v) => {
            Some(parse_date(v).ok_or_else(|| bad("Valid-Until", v, "not an RFC 2822 date"))?)
        }
        None => None,
    };
    let suite = opt("Suite");
    let codename = opt("Codename");
    if suite.is_none() && codename.is_none() {
        return Err(ReleaseError::MissingField {
            what: what.to_string(),
            field: "Suite",
        });
    }
    let sha = field(&fields, "SHA256").ok_or_else(|| ReleaseError::MissingField {
        what: what.to_string(),
        field: "SHA256",
    })?;
    let mut files = BTreeMap::new();
    for line in sha.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut parts = line.split_whitespace();
        let (Some(h), Some(size), Some(path), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("SHA256", line, "expected `<sha256> <size> <path>`"));
        };
        let mut digest = [0u8; 32];
        hex::decode_to_slice(h, &mut digest)
            .map_err(|_| bad("SHA256", line, "not a 64-digit hex digest"))?;
        let size: u64 = size
            .parse()
            .map_err(|_| bad("SHA256", line, "the size is not a number"))?;
        if path.starts_with('/') || path.split('/').any(|s| s == ".." || s.is_empty()) {
            return Err(bad(
                "SHA256",
                line,
                "the path must be relative without `..`",
            ));
        }
        files.insert(path.to_string(), (size, digest));
    }
    if files.is_empty() {
        return Err(ReleaseError::MissingField {
            what: what.to_string(),
            field: "SHA256",
        });
    }
    Ok(Release {
        origin: opt("Origin"),
        label: opt("Label"),
        suite,
        codename,
        date,
        valid_until,
        architectures: words("Architectures"),
        components: words("Components"),
        acquire_by_hash: field(&fields, "Acquire-By-Hash")
            .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
        files,
        signed_by: Vec::new(),
    })
}

fn check_name(what: &'static str, value: &str) -> Result<(), ReleaseError> {
    let ok = !value.is_empty()
        && !value.starts_with('/')
        && value
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+' | '~' | '/'));
    if ok {
        Ok(())
    } else {
        Err(ReleaseError::BadName {
            what,
            value: value.to_string(),
        })
    }
}

/// Picks `COMPONENT/binary-ARCH/Packages.xz`, else `.zst`, else `.gz`, else plain, as listed in
/// the signed Release, with its by-hash path when the Release offers by-hash.
pub fn index_path(
    release: &Release,
    component: &str,
    arch: &str,
) -> Result<IndexChoice, ReleaseError> {
    check_name("component", component)?;
    check_name("architecture", arch)?;
    let dir = format!("{component}/binary-{arch}");
    for ext in [".xz", ".zst", ".gz", ""] {
        let path = format!("{dir}/Packages{ext}");
        if let Some(&(size, sha256)) = release.files.get(&path) {
            return Ok(IndexChoice {
                by_hash_path: release
                    .acquire_by_hash
                    .then(|| format!("{dir}/by-hash/SHA256/{}", hex::encode(sha256))),
                path,
                size,
                sha256,
            });
        }
    }
    Err(ReleaseError::NoIndex {
        suite: release.name().to_string(),
        component: component.to_string(),
        arch: arch.to_string(),
        components: release.components.join(" "),
        architectures: release.architectures.join(" "),
    })
}

/// Decompresses an index by its path's extension (`.xz`, `.zst`, `.gz`, else plain), refusing
/// more than [`MAX_INDEX_BYTES`].
pub fn decompress_index(path: &str, bytes: &[u8]) -> Result<Vec<u8>, ReleaseError> {
    let err = |reason: String| ReleaseError::Decompress {
        path: path.to_string(),
        reason,
    };
    let reader: Box<dyn Read + '_> = if path.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new(bytes))
    } else if path.ends_with(".gz") {
        Box::new(flate2::read::GzDecoder::new(bytes))
    } else if path.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(bytes).map_err(|e| err(e.to_string()))?)
    } else {
        if bytes.len() as u64 > MAX_INDEX_BYTES {
            return Err(err(format!("larger than {MAX_INDEX_BYTES} bytes")));
        }
        return Ok(bytes.to_vec());
    };
    let mut out = Vec::new();
    reader
        .take(MAX_INDEX_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| err(e.to_string()))?;
    if out.len() as u64 > MAX_INDEX_BYTES {
        return Err(err(format!(
            "more than {MAX_INDEX_BYTES} bytes decompressed"
        )));
    }
    Ok(out)
}

/// Fetches `BASE/dists/SUITE/InRelease`, verifies it and checks it describes `suite`.
pub fn fetch_inrelease(
    fetcher: &Fetcher,
    base: &str,
    suite: &str,
    keyring: &Keyring,
    now: i64,
) -> Result<Release, ReleaseError> {
    check_name("suite", suite)?;
    let url = format!("{}/dists/{suite}/InRelease", base.trim_end_matches('/'));
    let bytes = fetcher
        .get_bytes(&url, MAX_INRELEASE_BYTES)
        .map_err(|source| ReleaseError::Fetch {
            what: format!("InRelease of {suite}"),
            source,
        })?;
    let release = verify_inrelease_named(&bytes, keyring, now, Some(suite))?;
    release.check_suite(suite)?;
    Ok(release)
}

/// Downloads the Packages index of `component`/`arch` into `dest_dir` (as `<sha256>.<ext>`;
/// an existing file with the right size and digest is reused without network), verified
/// against the signed `release`, and returns it decompressed. Uses by-hash when offered and
/// falls back to the plain path if the mirror has no by-hash copy (404).
pub fn fetch_verified_index(
    fetcher: &Fetcher,
    base: &str,
    suite: &str,
    release: &Release,
    component: &str,
    arch: &str,
    dest_dir: &Path,
) -> Result<Vec<u8>, ReleaseError> {
    check_name("suite", suite)?;
    let choice = index_path(release, component, arch)?;
    let ext = choice.path.rsplit_once("Packages").map_or("", |x| x.1);
    let hexd = hex::encode(choice.sha256);
    let final_path = dest_dir.join(format!("{hexd}{ext}"));
    let expect = Expected {
        size: choice.size,
        sha256: choice.sha256,
    };
    let what = format!("{} of {suite}", choice.path);
    let io = |what: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| ReleaseError::Io { path, what, source }
    };
    std::fs::create_dir_all(dest_dir).map_err(io("creating directory", dest_dir))?;
    // The uncompressed index as the Release lists it: kept decompressed beside the download, and
    // read back only when it still hashes to the signed value (the disk is not trusted).
    let plain = release
        .files
        .get(&format!("{component}/binary-{arch}/Packages"))
        .copied()
        .filter(|_| !ext.is_empty());
    let plain_path = plain.map(|(_, sha)| dest_dir.join(format!("{}.plain", hex::encode(sha))));
    if let (Some((size, sha)), Some(path)) = (plain, &plain_path)
        && let Ok(bytes) = std::fs::read(path)
        && bytes.len() as u64 == size
        && super::fetch::sha256(&bytes) == sha
    {
        super::index_cache::touch(path);
        return Ok(bytes);
    }
    let keep_plain = |text: Vec<u8>| -> Result<Vec<u8>, ReleaseError> {
        if let (Some((size, sha)), Some(path)) = (plain, &plain_path)
            && text.len() as u64 == size
            && super::fetch::sha256(&text) == sha
        {
            // Best effort: a cache that cannot be written is only slower next time.
            let tmp = path.with_extension("plain.part");
            if std::fs::write(&tmp, &text).is_ok() && std::fs::rename(&tmp, path).is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
        }
        Ok(text)
    };
    if let Ok(bytes) = std::fs::read(&final_path)
        && bytes.len() as u64 == choice.size
        && super::fetch::sha256(&bytes) == choice.sha256
    {
        super::index_cache::touch(&final_path);
        return decompress_index(&choice.path, &bytes).and_then(keep_plain);
    }
    let part = dest_dir.join(format!("{hexd}{ext}.part"));
    let dists = format!("{}/dists/{suite}", base.trim_end_matches('/'));
    let plain_url = format!("{dists}/{}", choice.path);
    let result = match &choice.by_hash_path {
        Some(by_hash) => match fetcher.download(&format!("{dists}/{by_hash}"), &part, Some(expect))
        {
            Err(e) if e.is_not_found() => fetcher.download(&plain_url, &part, Some(expect)),
            other => other,
        },
        None => fetcher.download(&plain_url, &part, Some(expect)),
    };
    result.map_err(|source| ReleaseError::Fetch { what, source })?;
    std::fs::rename(&part, &final_path).map_err(io("renaming", &part))?;
    let bytes = std::fs::read(&final_path).map_err(io("reading", &final_path))?;
    decompress_index(&choice.path, &bytes).and_then(keep_plain)
}

// ---- time -----------------------------------------------------------------------------------

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2026-01-02 03:04:05 UTC`.
pub fn format_time(t: i64) -> String {
    let (y, m, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// Parses the RFC 2822 dates of Release files: `Sat, 17 May 2025 09:27:19 UTC` (weekday
/// optional; zone `UTC`, `GMT`, `Z` or `±HHMM`).
pub fn parse_date(s: &str) -> Option<i64> {
    let s = s.trim();
    let s = match s.split_once(',') {
        Some((_, rest)) => rest.trim(),
        None => s,
    };
    let mut it = s.split_whitespace();
    let day: u32 = it.next()?.parse().ok()?;
    let mon = it.next()?;
    let month = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ]
    .iter()
    .position(|m| {
        // Bytes, not a string slice: a month of non-ASCII text must not split a character.
        mon.as_bytes()
            .get(..3)
            .is_some_and(|b| b.eq_ignore_ascii_case(m.as_bytes()))
    })? as u32
        + 1;
    let year: i64 = it.next()?.parse().ok()?;
    let mut hms = it.next()?.split(':');
    let h: i64 = hms.next()?.parse().ok()?;
    let mi: i64 = hms.next()?.parse().ok()?;
    let sec: i64 = hms.next().map_or(Some(0), |x| x.parse().ok())?;
    let offset = match it.next() {
        None | Some("UTC" | "GMT" | "Z" | "UT") => 0,
        Some(z) if z.len() == 5 && (z.starts_with('+') || z.starts_with('-')) => {
            let n: i64 = z[1..].parse().ok()?;
            let o = (n / 100) * 3600 + (n % 100) * 60;
            if z.starts_with('-') { -o } else { o }
        }
        Some(_) => return None,
    };
    if it.next().is_some() || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Release listing `main/binary-amd64/Packages.gz` and the plain `Packages` it holds.
    fn release_of(gz: &[u8], plain: &[u8]) -> Release {
        let entry = |b: &[u8]| (b.len() as u64, super::super::fetch::sha256(b));
        Release {
            origin: None,
            label: None,
            suite: Some("stable".into()),
            codename: Some("fixture".into()),
            date: 0,
            valid_until: None,
            architectures: vec!["amd64".into()],
            components: vec!["main".into()],
            acquire_by_hash: false,
            files: BTreeMap::from([
                ("main/binary-amd64/Packages.gz".to_owned(), entry(gz)),
                ("main/binary-amd64/Packages".to_owned(), entry(plain)),
            ]),
            signed_by: Vec::new(),
        }
    }

    #[test]
    fn a_decompressed_index_is_kept_and_read_back_only_when_it_matches_the_release() {
        use std::io::Write;
        let plain = b"Package: a\nVersion: 1\n".to_vec();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&plain).expect("gzip");
        let gz = enc.finish().expect("gzip");
        let release = release_of(&gz, &plain);
        let dir = tempfile::tempdir().expect("tempdir");
        // The download is already cached: nothing is fetched (the base URL leads nowhere).
        let sha = |b: &[u8]| hex::encode(super::super::fetch::sha256(b));
        std::fs::write(dir.path().join(format!("{}.gz", sha(&gz))), &gz).expect("cache");
        let fetcher = Fetcher::new(super::super::fetch::FetchOptions::default());
        let read = || {
            fetch_verified_index(
                &fetcher,
                "http://127.0.0.1:9",
                "stable",
                &release,
                "main",
                "amd64",
                dir.path(),
            )
            .expect("index")
        };
        assert_eq!(read(), plain);
        let kept = dir.path().join(format!("{}.plain", sha(&plain)));
        assert_eq!(std::fs::read(&kept).expect("kept decompressed"), plain);
        // A changed copy on disk is not believed: the index is decompressed again and rewritten.
        std::fs::write(&kept, b"Package: b\nVersion: 1\n").expect("tamper, same size");
        assert_eq!(read(), plain);
        assert_eq!(std::fs::read(&kept).expect("rewritten"), plain);
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(parse_date("Thu, 01 Jan 1970 00:00:00 UTC"), Some(0));
        assert_eq!(
            parse_date("Sat, 17 May 2025 09:27:19 UTC"),
            Some(1_747_474_039)
        );
        assert_eq!(
            parse_date("17 May 2025 11:27:19 +0200"),
            Some(1_747_474_039)
        );
        assert_eq!(parse_date("Sat, 17 May 2025 09:27:19 PST"), None);
        assert_eq!(parse_date("yesterday"), None);
        // Found by the `debian_index` fuzz target: a month whose third byte is inside a
        // character panicked on a string slice.
        assert_eq!(parse_date("Wed, 02 Ja\u{7f2}\u{f}\u{29d}0 00:00"), None);
        assert_eq!(parse_date("02 Mä 2025 00:00:00 UTC"), None);
        assert_eq!(format_time(1_747_474_039), "2025-05-17 09:27:19 UTC");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 UTC");
        for t in [0i64, 951_782_400, 4_102_444_800, 1_234_567_890] {
            let (y, m, d) = civil_from_days(t / 86_400);
            assert_eq!(days_from_civil(y, m, d), t / 86_400);
        }
    }

    #[test]
    fn release_parsing() {
        let text = "Origin: Debian\nSuite: stable\nCodename: trixie\nDate: Sat, 17 May 2025 09:27:19 UTC\n\
            Acquire-By-Hash: yes\nArchitectures: amd64 arm64\nComponents: main contrib\nSHA256:\n \
            0000000000000000000000000000000000000000000000000000000000000001 12 main/binary-amd64/Packages\n \
            0000000000000000000000000000000000000000000000000000000000000002 10 main/binary-amd64/Packages.gz\n";
        let r = parse_release(text, "t").expect("parses");
        assert_eq!(r.codename.as_deref(), Some("trixie"));
        assert!(r.acquire_by_hash);
        assert_eq!(r.files.len(), 2);
        let c = index_path(&r, "main", "amd64").expect("index");
        assert_eq!(c.path, "main/binary-amd64/Packages.gz");
        assert_eq!(
            c.by_hash_path.as_deref(),
            Some(
                "main/binary-amd64/by-hash/SHA256/0000000000000000000000000000000000000000000000000000000000000002"
            )
        );
        assert!(matches!(
            index_path(&r, "main", "riscv64"),
            Err(ReleaseError::NoIndex { .. })
        ));
        assert!(matches!(
            index_path(&r, "../x", "amd64"),
            Err(ReleaseError::BadName { .. })
        ));
        r.check_suite("stable").expect("suite");
        r.check_suite("trixie").expect("codename");
        assert!(r.check_suite("bookworm").is_err());

        let evil = text.replace("main/binary-amd64/Packages.gz", "../../etc/x");
        assert!(matches!(
            parse_release(&evil, "t"),
            Err(ReleaseError::BadField { .. })
        ));
        let no_date = text.replace("Date: Sat, 17 May 2025 09:27:19 UTC\n", "");
        assert!(matches!(
            parse_release(&no_date, "t"),
            Err(ReleaseError::MissingField { field: "Date", .. })
        ));
    }

    #[test]
    fn decompress_by_extension() {
        use std::io::Write;
        let plain = b"Package: a\n".to_vec();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).expect("gz");
        let gz = gz.finish().expect("gz");
        let xz = {
            let mut e = liblzma::write::XzEncoder::new(Vec::new(), 6);
            e.write_all(&plain).expect("xz");
            e.finish().expect("xz")
        };
        let zst = zstd::encode_all(&plain[..], 3).expect("zstd");
        assert_eq!(decompress_index("P.gz", &gz).expect("gz"), plain);
        assert_eq!(decompress_index("P.xz", &xz).expect("xz"), plain);
        assert_eq!(decompress_index("P.zst", &zst).expect("zst"), plain);
        assert_eq!(decompress_index("P", &plain).expect("plain"), plain);
        assert!(decompress_index("P.xz", &plain).is_err());
    }
}
