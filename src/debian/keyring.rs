//! OpenPGP keyrings for apt repositories, and the check of one signature against them.
//!
//! A [`Keyring`] is what the user names in a repository block: a binary keyring (`.gpg`, the
//! concatenated packets apt uses in `/usr/share/keyrings`) or an ASCII-armored one (`.asc`), with
//! any number of keys. The whole file is trusted, as apt trusts a `Signed-By` file; third-party
//! certifications on the keys are never required (they fail to verify on Debian's own keys).
//!
//! [`Keyring::check_signature`] matches a signature's issuer (fingerprint or key ID) to a primary
//! key **or a subkey** and verifies against that component directly. A subkey must be bound to
//! its primary by a valid, signing-capable binding signature. Refused: weak hashes (MD5, SHA-1,
//! RIPEMD-160), signature types other than binary/text documents, revoked keys, keys not yet
//! valid or expired at the signature's creation or at the caller's `now`, expired signatures.

use std::fmt;
use std::path::Path;

use pgp::composed::{PublicOrSecret, SignedPublicKey, SignedPublicSubKey};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Signature, SignatureType};
use pgp::types::{KeyDetails, Timestamp};

/// Why a keyring could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// The file cannot be read.
    #[error("cannot read keyring {}", path.display())]
    Io {
        /// The keyring path.
        path: std::path::PathBuf,
        /// The IO error.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not an OpenPGP keyring.
    #[error("keyring {name} is not a valid OpenPGP keyring: {message}")]
    Parse {
        /// The keyring's name.
        name: String,
        /// The parser's message.
        message: String,
    },
    /// A GnuPG keybox (`pubring.kbx`) instead of a keyring.
    #[error(
        "keyring {name} is a GnuPG keybox (.kbx), not an OpenPGP keyring\nhint: export it with `gpg --export KEYID > {name}.gpg`"
    )]
    Keybox {
        /// The keyring's name.
        name: String,
    },
    /// No public key in the file.
    #[error("keyring {name} contains no public keys")]
    Empty {
        /// The keyring's name.
        name: String,
    },
}

/// A set of trusted OpenPGP public keys.
#[derive(Clone)]
pub struct Keyring {
    name: String,
    keys: Vec<SignedPublicKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("name", &self.name)
            .field("fingerprints", &self.fingerprints())
            .finish()
    }
}

/// The verdict on one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigCheck {
    /// Verified by a key of the keyring.
    Good {
        /// Fingerprint of the primary key (upper-case hex).
        primary: String,
        /// Fingerprint of the component that signed (primary or subkey).
        signer: String,
    },
    /// No key in the keyring has this issuer.
    UnknownKey {
        /// The issuer as `0x` + fingerprint or key ID.
        issuer: String,
    },
    /// A key of the keyring matched, but the signature is not acceptable.
    Bad {
        /// The issuer.
        issuer: String,
        /// Why (e.g. "does not verify", "uses SHA1", "key expired on …").
        reason: String,
    },
}

/// One key component a signature can be checked against.
enum Component<'a> {
    Primary(&'a SignedPublicKey),
    Sub(&'a SignedPublicKey, &'a SignedPublicSubKey),
}

fn upper_hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

impl Keyring {
    /// Parses a binary or ASCII-armored keyring (several keys, or several armor blocks).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyringError> {
        Self::from_bytes_named("keyring", bytes)
    }

    /// Like [`Keyring::from_bytes`], with the name used in messages (e.g. `debian.gpg`).
    pub fn from_bytes_named(name: &str, bytes: &[u8]) -> Result<Self, KeyringError> {
        let name = name.to_string();
        if bytes.len() >= 12 && &bytes[8..12] == b"KBXf" {
            return Err(KeyringError::Keybox { name });
        }
        let parse_err = |e: pgp::errors::Error| KeyringError::Parse {
            name: name.clone(),
            message: pgp_reason(&e),
        };
        let mut keys = Vec::new();
        let mut push = |k: PublicOrSecret| match k {
            PublicOrSecret::Public(k) => keys.push(k),
            PublicOrSecret::Secret(k) => keys.push(SignedPublicKey::from(k)),
        };
        let trimmed = bytes.trim_ascii_start();
        if trimmed.starts_with(b"-----BEGIN PGP") {
            let text = std::str::from_utf8(trimmed).map_err(|_| KeyringError::Parse {
                name: name.clone(),
                message: "armored keyring is not UTF-8".into(),
            })?;
            for block in armor_blocks(text) {
                let (iter, _headers) =
                    PublicOrSecret::from_armor_many(block.as_bytes()).map_err(parse_err)?;
                for k in iter {
                    push(k.map_err(parse_err)?);
                }
            }
        } else {
            for k in PublicOrSecret::from_bytes_many(bytes).map_err(parse_err)? {
                push(k.map_err(parse_err)?);
            }
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty { name });
        }
        Ok(Keyring { name, keys })
    }

    /// Reads a keyring file; its file name becomes the name used in messages.
    pub fn from_file(path: &Path) -> Result<Self, KeyringError> {
        let bytes = std::fs::read(path).map_err(|source| KeyringError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Self::from_bytes_named(&name, &bytes)
    }

    /// The name used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the keyring (for messages).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Number of primary keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the keyring holds no keys (never true for a parsed keyring).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Primary key fingerprints, upper-case hex, in file order.
    pub fn fingerprints(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| upper_hex(k.primary_key.fingerprint().as_bytes()))
            .collect()
    }

    /// The primary keys and subkeys whose fingerprint or key ID matches the signature's issuer.
    fn candidates<'a>(&'a self, sig: &Signature) -> Vec<Component<'a>> {
        let fps: Vec<Vec<u8>> = sig
            .issuer_fingerprint()
            .iter()
            .map(|f| f.as_bytes().to_vec())
            .collect();
        let ids: Vec<Vec<u8>> = sig
            .issuer_key_id()
            .iter()
            .map(|k| k.as_ref().to_vec())
            .collect();
        let no_issuer = fps.is_empty() && ids.is_empty();
        let matches = |k: &dyn KeyDetails| {
            no_issuer
                || fps.iter().any(|f| f == k.fingerprint().as_bytes())
                || ids.iter().any(|i| i == k.legacy_key_id().as_ref())
        };
        let mut out = Vec::new();
        for key in &self.keys {
            if matches(&key.primary_key) {
                out.push(Component::Primary(key));
            }
            for sub in &key.public_subkeys {
                if matches(&sub.key) {
                    out.push(Component::Sub(key, sub));
                }
            }
        }
        out
    }

    /// Checks one signature over `data` (the exact signed bytes; text signatures are
    /// normalised by the library) against this keyring, judged at time `now` (unix seconds).
    pub fn check_signature(&self, sig: &Signature, data: &[u8], now: i64) -> SigCheck {
        let issuer = issuer_string(sig);
        let candidates = self.candidates(sig);
        if candidates.is_empty() {
            return SigCheck::UnknownKey { issuer };
        }
        let bad = |reason: String| SigCheck::Bad {
            issuer: issuer.clone(),
            reason,
        };
        match sig.hash_alg() {
            Some(HashAlgorithm::Md5 | HashAlgorithm::Sha1 | HashAlgorithm::Ripemd160) | None => {
                let h = sig
                    .hash_alg()
                    .map_or("an unknown hash".to_string(), |h| h.to_string());
                return bad(format!("uses {h}, which is too weak to be accepted"));
            }
            Some(_) => {}
        }
        if !matches!(sig.typ(), Some(SignatureType::Binary | SignatureType::Text)) {
            return bad(format!(
                "is not a document signature (its type is {})",
                sig.typ()
                    .map_or("missing".to_string(), |t| format!("{t:?}"))
            ));
        }
        let Some(created) = sig.created().map(ts) else {
            return bad("has no creation time".into());
        };
        if let Some(exp) = sig.signature_expiration_time()
            && exp.as_secs() != 0
        {
            let until = created.saturating_add(i64::from(exp.as_secs()));
            if now > until {
                return bad(format!("expired on {}", super::release::format_time(until)));
            }
        }
        let mut last_reason = String::new();
        for cand in candidates {
            let (primary, verdict) = match cand {
                Component::Primary(key) => (
                    key,
                    check_primary(key, created, now).and_then(|()| {
                        sig.verify(&key.primary_key, data)
                            .map_err(|e| does_not_verify(&e))
                            .map(|()| upper_hex(key.primary_key.fingerprint().as_bytes()))
                    }),
                ),
                Component::Sub(key, sub) => (
                    key,
                    check_primary(key, created, now)
                        .and_then(|()| check_subkey(key, sub, created, now))
                        .and_then(|()| {
                            sig.verify(sub, data)
                                .map_err(|e| does_not_verify(&e))
                                .map(|()| upper_hex(sub.key.fingerprint().as_bytes()))
                        }),
                ),
            };
            match verdict {
                Ok(signer) => {
                    return SigCheck::Good {
                        primary: upper_hex(primary.primary_key.fingerprint().as_bytes()),
                        signer,
                    };
                }
                Err(reason) => last_reason = reason,
            }
        }
        bad(last_reason)
    }
}

/// The OpenPGP library's reason for refusing something, fit for a user: one line of printable
/// text at most 100 characters long, without the library's internal assertion wording
/// (`assertion failed: (left == right)` becomes the assertion's own message, if it has one).
pub fn pgp_reason(e: &pgp::errors::Error) -> String {
    let full = e.to_string();
    // Wrapped errors quote their cause with `Debug` (`… { message: "…" }`): keep the cause.
    let inner = match full.split_once("message: \"") {
        Some((_, rest)) => rest.split(['"', '\\']).next().unwrap_or(""),
        None => full.as_str(),
    };
    let text = match full.find("assertion failed") {
        Some(i) => full[i..]
            .rsplit_once("`: ")
            .map(|(_, m)| m.split(['"', '\\', '\n']).next().unwrap_or("").trim())
            .filter(|m| !m.is_empty())
            .unwrap_or("malformed packet data"),
        None => inner,
    };
    // Debug renderings of nested errors and byte arrays say nothing to a user: cut them off.
    let line = text.lines().next().unwrap_or("");
    let cut = ["Error(", "{", "["]
        .iter()
        .filter_map(|m| line.find(m))
        .min()
        .unwrap_or(line.len());
    let line = line[..cut].trim_end_matches([':', ' ']).trim();
    let mut out: String = line
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(100)
        .collect();
    if out.is_empty() {
        out.push_str("malformed packet data");
    }
    out
}

/// A signature whose cryptographic check failed: the text or the signature was changed.
fn does_not_verify(e: &pgp::errors::Error) -> String {
    format!(
        "does not verify: the signed text or the signature was changed after signing ({})",
        pgp_reason(e)
    )
}

/// `0x` + the issuer fingerprint, else key ID, upper-case.
pub fn issuer_string(sig: &Signature) -> String {
    if let Some(fp) = sig.issuer_fingerprint().first() {
        return format!("0x{}", upper_hex(fp.as_bytes()));
    }
    if let Some(id) = sig.issuer_key_id().first() {
        return format!("0x{}", upper_hex(id.as_ref()));
    }
    "an unnamed key".into()
}

fn ts(t: Timestamp) -> i64 {
    i64::from(t.as_secs())
}

/// Creation + expiry of a component, from the newest self-signature carrying the given issuer.
fn expiry_of(created: i64, sigs: &[&Signature]) -> Option<i64> {
    let newest = sigs
        .iter()
        .max_by_key(|s| s.created().map(ts).unwrap_or(i64::MIN))?;
    let d = newest.key_expiration_time()?;
    if d.as_secs() == 0 {
        return None;
    }
    Some(created.saturating_add(i64::from(d.as_secs())))
}

fn validity(
    what: &str,
    fp: &str,
    created: i64,
    expires: Option<i64>,
    sig_time: i64,
    now: i64,
) -> Result<(), String> {
    if sig_time < created {
        return Err(format!(
            "was made on {} before {what} {fp} was created ({})",
            super::release::format_time(sig_time),
            super::release::format_time(created)
        ));
    }
    if let Some(exp) = expires {
        for (t, when) in [(sig_time, "when the signature was made"), (now, "now")] {
            if t > exp {
                return Err(format!(
                    "was made by {what} {fp}, which expired on {} (checked {when})",
                    super::release::format_time(exp)
                ));
            }
        }
    }
    Ok(())
}

fn check_primary(key: &SignedPublicKey, sig_time: i64, now: i64) -> Result<(), String> {
    let pk = &key.primary_key;
    let fp = upper_hex(pk.fingerprint().as_bytes());
    for rev in &key.details.revocation_signatures {
        if rev.verify_key(pk).is_ok() {
            return Err(format!("was made by key {fp}, which is revoked"));
        }
    }
    let own_id = pk.legacy_key_id();
    let own_fp = pk.fingerprint();
    let is_self = |s: &&Signature| {
        s.issuer_fingerprint().iter().any(|f| **f == own_fp)
            || s.issuer_key_id().iter().any(|k| **k == own_id)
    };
    let self_sigs: Vec<&Signature> = key
        .details
        .users
        .iter()
        .flat_map(|u| u.signatures.iter())
        .chain(key.details.direct_signatures.iter())
        .filter(is_self)
        .collect();
    validity(
        "key",
        &fp,
        ts(pk.created_at()),
        expiry_of(ts(pk.created_at()), &self_sigs),
        sig_time,
        now,
    )
}

fn check_subkey(
    key: &SignedPublicKey,
    sub: &SignedPublicSubKey,
    sig_time: i64,
    now: i64,
) -> Result<(), String> {
    let fp = upper_hex(sub.key.fingerprint().as_bytes());
    let mut bindings = Vec::new();
    for s in &sub.signatures {
        if s.verify_subkey_binding(&key.primary_key, &sub.key).is_err() {
            continue;
        }
        match s.typ() {
            Some(SignatureType::SubkeyRevocation) => {
                return Err(format!("was made by subkey {fp}, which is revoked"));
            }
            Some(SignatureType::SubkeyBinding) => bindings.push(s),
            _ => {}
        }
    }
    let Some(newest) = bindings
        .iter()
        .max_by_key(|s| s.created().map(ts).unwrap_or(i64::MIN))
    else {
        return Err(format!(
            "was made by subkey {fp}, which has no valid binding to its primary key"
        ));
    };
    if !newest.key_flags().sign() {
        return Err(format!(
            "was made by subkey {fp}, which is not a signing subkey"
        ));
    }
    let created = ts(sub.key.created_at());
    validity(
        "subkey",
        &fp,
        created,
        expiry_of(created, &bindings),
        sig_time,
        now,
    )
}

/// Splits armored text into its `-----BEGIN PGP …-----` … `-----END PGP …-----` blocks.
fn armor_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN PGP") {
        let after = &rest[start..];
        let Some(end_marker) = after.find("-----END PGP") else {
            out.push(after);
            break;
        };
        // include the END line
        let tail = &after[end_marker..];
        let line_end = tail.find('\n').map_or(tail.len(), |i| i + 1);
        out.push(&after[..end_marker + line_end]);
        rest = &after[end_marker + line_end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_reasons_lose_their_internal_wording() {
        use pgp::composed::{Deserializable, DetachedSignature};
        // A signature packet whose MPI count is wrong: the library reports an assertion.
        let assertion = pgp::errors::Error::from(
            "assertion failed: `(left == right)`\n  left: `86`,\n right: `2`: invalid signature"
                .to_string(),
        );
        assert_eq!(pgp_reason(&assertion), "invalid signature");
        let bare = pgp::errors::Error::from(
            "assertion failed: `(left == right)`\n  left: `86`,\n right: `2`".to_string(),
        );
        assert_eq!(pgp_reason(&bare), "malformed packet data");
        let armor =
            "-----BEGIN PGP SIGNATURE-----\n\nwsBzBAEBCAAnBQJ\n-----END PGP SIGNATURE-----\n";
        assert_eq!(
            pgp_reason(&pgp::errors::Error::from(
                "IO error: failed reading: armor footer Error(Error { input: [101, 114] })"
                    .to_string()
            )),
            "IO error: failed reading: armor footer"
        );
        if let Err(e) = DetachedSignature::from_string(armor) {
            let r = pgp_reason(&e);
            assert!(
                !r.contains("assertion") && !r.contains('\n') && r.len() <= 100,
                "{r}"
            );
        }
    }
}
