//! Ed25519 keys and signatures, written `NAME:base64` like Nix's binary-cache keys.
//!
//! A secret key file holds one line `NAME:base64(32-byte seed)`; a public key is
//! `NAME:base64(32-byte key)`; a signature is `NAME:base64(64-byte signature)`. The name says
//! which trusted key checks a signature, so keys can be rotated by trusting two names at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};

use super::CacheError;

/// A signing key and its name.
pub struct SecretKey {
    pub name: String,
    key: SigningKey,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretKey")
            .field("name", &self.name)
            .finish()
    }
}

/// A public key and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub name: String,
    key: VerifyingKey,
}

fn check_name(name: &str) -> Result<(), CacheError> {
    if name.is_empty()
        || name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(CacheError::Key(format!(
            "key name `{name}` must be 1-128 characters of A-Z a-z 0-9 - _ ."
        )));
    }
    Ok(())
}

fn split(text: &str) -> Result<(&str, Vec<u8>), CacheError> {
    let text = text.trim();
    let (name, b64) = text
        .split_once(':')
        .ok_or_else(|| CacheError::Key(format!("`{text}` is not NAME:base64")))?;
    check_name(name)?;
    let bytes = B64
        .decode(b64)
        .map_err(|e| CacheError::Key(format!("key `{name}`: bad base64: {e}")))?;
    Ok((name, bytes))
}

impl SecretKey {
    /// A new random key.
    pub fn generate(name: &str) -> Result<SecretKey, CacheError> {
        check_name(name)?;
        let mut seed = [0u8; 32];
        rand_core::RngCore::try_fill_bytes(&mut rand_core::OsRng, &mut seed)
            .map_err(|e| CacheError::Key(format!("no randomness: {e}")))?;
        Ok(SecretKey {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Parses `NAME:base64(seed)`.
    pub fn parse(text: &str) -> Result<SecretKey, CacheError> {
        let (name, bytes) = split(text)?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CacheError::Key(format!("secret key `{name}` is not 32 bytes")))?;
        Ok(SecretKey {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Reads a secret key file.
    pub fn read(path: &Path) -> Result<SecretKey, CacheError> {
        let text = std::fs::read_to_string(path).map_err(|e| CacheError::io(path.display(), e))?;
        Self::parse(&text)
    }

    /// The file form, `NAME:base64(seed)`.
    pub fn to_text(&self) -> String {
        format!("{}:{}", self.name, B64.encode(self.key.to_bytes()))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs `msg`; returns `NAME:base64(signature)`.
    pub fn sign(&self, msg: &[u8]) -> String {
        format!(
            "{}:{}",
            self.name,
            B64.encode(self.key.sign(msg).to_bytes())
        )
    }

    /// Writes the key to `path` (mode 0600, created new; never overwrites).
    pub fn save(&self, path: &Path) -> Result<(), CacheError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| CacheError::io(dir.display(), e))?;
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| CacheError::io(path.display(), e))?;
        writeln!(f, "{}", self.to_text()).map_err(|e| CacheError::io(path.display(), e))?;
        Ok(())
    }
}

impl PublicKey {
    /// Parses `NAME:base64(key)`.
    pub fn parse(text: &str) -> Result<PublicKey, CacheError> {
        let (name, bytes) = split(text)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| CacheError::Key(format!("public key `{name}` is not 32 bytes")))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|e| CacheError::Key(format!("public key `{name}`: {e}")))?;
        Ok(PublicKey {
            name: name.to_owned(),
            key,
        })
    }
}

impl std::fmt::Display for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, B64.encode(self.key.to_bytes()))
    }
}

/// The public keys a client trusts, by name.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: BTreeMap<String, PublicKey>,
}

/// Why no signature of an entry was accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureProblem {
    Unsigned,
    Untrusted(Vec<String>),
    Invalid(String),
}

impl std::fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureProblem::Unsigned => write!(f, "the entry is not signed"),
            SignatureProblem::Untrusted(names) => write!(
                f,
                "signed only by untrusted key(s) {} (trust one with --trusted-key NAME:base64)",
                names.join(", ")
            ),
            SignatureProblem::Invalid(name) => write!(
                f,
                "the signature by trusted key `{name}` does not match the entry (tampered metadata?)"
            ),
        }
    }
}

impl TrustedKeys {
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> TrustedKeys {
        TrustedKeys {
            keys: keys.into_iter().map(|k| (k.name.clone(), k)).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Accepts `msg` if one of `signatures` is a valid signature by a trusted key.
    pub fn check(&self, msg: &[u8], signatures: &[String]) -> Result<String, SignatureProblem> {
        if signatures.is_empty() {
            return Err(SignatureProblem::Unsigned);
        }
        let mut untrusted = Vec::new();
        let mut invalid = None;
        for sig in signatures {
            let Some((name, b64)) = sig.split_once(':') else {
                continue;
            };
            let Some(key) = self.keys.get(name) else {
                untrusted.push(name.to_owned());
                continue;
            };
            let ok = B64
                .decode(b64)
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
                .map(|b| Signature::from_bytes(&b))
                .is_some_and(|s| key.key.verify(msg, &s).is_ok());
            if ok {
                return Ok(name.to_owned());
            }
            invalid = Some(name.to_owned());
        }
        match invalid {
            Some(name) => Err(SignatureProblem::Invalid(name)),
            None => Err(SignatureProblem::Untrusted(untrusted)),
        }
    }
}

/// Where `himg key generate NAME` keeps the secret key.
pub fn secret_key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("keys").join(format!("{name}.secret"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let sk = SecretKey::generate("team-a-1").unwrap();
        let pk = PublicKey::parse(&sk.public().to_string()).unwrap();
        let sk2 = SecretKey::parse(&sk.to_text()).unwrap();
        let sig = sk2.sign(b"hello");
        let trusted = TrustedKeys::new([pk]);
        assert_eq!(
            trusted.check(b"hello", std::slice::from_ref(&sig)).unwrap(),
            "team-a-1"
        );
        assert!(matches!(
            trusted.check(b"hellO", &[sig]),
            Err(SignatureProblem::Invalid(_))
        ));
        let other = SecretKey::generate("other").unwrap();
        assert!(matches!(
            trusted.check(b"hello", &[other.sign(b"hello")]),
            Err(SignatureProblem::Untrusted(_))
        ));
        assert_eq!(
            trusted.check(b"hello", &[]),
            Err(SignatureProblem::Unsigned)
        );
    }
}
