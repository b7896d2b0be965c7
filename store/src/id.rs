//! Validated identifiers: digests, object references and output paths.
//!
//! Every identifier is a newtype that can only be built through a validating constructor
//! (`TryFrom<&str>`, `FromStr`, or a typed constructor), prints with a prefix (`b3:…`,
//! `sha256:…`, `blob:b3:…`) and serialises with serde as that same prefixed string. The printed
//! form is the form stored in the SQLite metadata, so parsing it back is lossless.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// An identifier that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} `{value}`: {reason}")]
pub struct InvalidId {
    /// What was being parsed, e.g. `"blake3 digest"`.
    pub kind: &'static str,
    /// The rejected input (truncated to 200 characters).
    pub value: String,
    /// Why it was rejected.
    pub reason: &'static str,
}

impl InvalidId {
    pub(crate) fn new(kind: &'static str, value: &str, reason: &'static str) -> Self {
        let value = if value.len() > 200 {
            let mut end = 200;
            while !value.is_char_boundary(end) {
                end -= 1;
            }
            format!("{}…", &value[..end])
        } else {
            value.to_owned()
        };
        InvalidId {
            kind,
            value,
            reason,
        }
    }
}

/// Parsing with the precise error, for code that stores the cause in a report or row error.
pub(crate) trait ParseId: Sized {
    fn parse_id(s: &str) -> Result<Self, InvalidId>;
}

/// `TryFrom<&str>`, `TryFrom<String>` and `FromStr`, all failing with
/// [`StoreError::InvalidName`] so that `?` carries parse errors into callers' error types
/// that wrap `StoreError`.
macro_rules! parse_impls {
    ($name:ident) => {
        impl TryFrom<&str> for $name {
            type Error = StoreError;
            fn try_from(s: &str) -> Result<Self, StoreError> {
                Ok(<$name as ParseId>::parse_id(s)?)
            }
        }

        impl TryFrom<String> for $name {
            type Error = StoreError;
            fn try_from(s: String) -> Result<Self, StoreError> {
                Self::try_from(s.as_str())
            }
        }

        impl FromStr for $name {
            type Err = StoreError;
            fn from_str(s: &str) -> Result<Self, StoreError> {
                Self::try_from(s)
            }
        }
    };
}

fn parse_hex32(kind: &'static str, whole: &str, hex_part: &str) -> Result<[u8; 32], InvalidId> {
    if hex_part.len() != 64 {
        return Err(InvalidId::new(kind, whole, "expected 64 hex digits"));
    }
    if !hex_part
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(InvalidId::new(
            kind,
            whole,
            "expected lowercase hex digits (0-9, a-f)",
        ));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_part, &mut out)
        .map_err(|_| InvalidId::new(kind, whole, "expected 64 hex digits"))?;
    Ok(out)
}

macro_rules! digest_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name([u8; 32]);

        impl $name {
            /// The printed prefix, including the colon.
            pub const PREFIX: &'static str = $prefix;

            /// Wraps raw digest bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }

            /// The raw digest bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The 64 lowercase hex digits, without prefix.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses 64 lowercase hex digits without prefix.
            pub fn from_hex(s: &str) -> Result<Self, StoreError> {
                Ok(parse_hex32($kind, s, s).map($name)?)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(Self::PREFIX)?;
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl ParseId for $name {
            fn parse_id(s: &str) -> Result<Self, InvalidId> {
                let Some(hex_part) = s.strip_prefix(Self::PREFIX) else {
                    return Err(InvalidId::new(
                        $kind,
                        s,
                        concat!("expected the prefix `", $prefix, "`"),
                    ));
                };
                parse_hex32($kind, s, hex_part).map($name)
            }
        }

        parse_impls!($name);

        impl From<$name> for String {
            fn from(d: $name) -> String {
                d.to_string()
            }
        }
    };
}

digest_type!(
    /// A BLAKE3 digest (32 bytes), printed `b3:<64 hex>`. Names blobs, trees and derivations.
    B3Digest,
    "b3:",
    "blake3 digest"
);

digest_type!(
    /// A SHA-256 digest (32 bytes), printed `sha256:<64 hex>` as in OCI descriptors.
    Sha256Digest,
    "sha256:",
    "sha256 digest"
);

impl B3Digest {
    /// The BLAKE3 digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        B3Digest(*blake3::hash(data).as_bytes())
    }
}

impl From<blake3::Hash> for B3Digest {
    fn from(h: blake3::Hash) -> Self {
        B3Digest(*h.as_bytes())
    }
}

impl Sha256Digest {
    /// The SHA-256 digest of `data`.
    pub fn of(data: &[u8]) -> Self {
        use sha2::Digest as _;
        Sha256Digest(sha2::Sha256::digest(data).into())
    }
}

/// A reference to one object in the store, printed `blob:b3:…`, `tree:b3:…` or `oci:sha256:…`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ObjectRef {
    /// File contents, keyed by BLAKE3.
    Blob(B3Digest),
    /// A directory listing ([`crate::Tree`]), keyed by the BLAKE3 of its canonical encoding.
    Tree(B3Digest),
    /// An OCI blob (layer, config, manifest, index), keyed by SHA-256.
    Oci(Sha256Digest),
}

impl ObjectRef {
    /// `"blob"`, `"tree"` or `"oci"`.
    pub fn kind(&self) -> &'static str {
        match self {
            ObjectRef::Blob(_) => "blob",
            ObjectRef::Tree(_) => "tree",
            ObjectRef::Oci(_) => "oci",
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectRef::Blob(d) => write!(f, "blob:{d}"),
            ObjectRef::Tree(d) => write!(f, "tree:{d}"),
            ObjectRef::Oci(d) => write!(f, "oci:{d}"),
        }
    }
}

impl fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl ParseId for ObjectRef {
    fn parse_id(s: &str) -> Result<Self, InvalidId> {
        const KIND: &str = "object reference";
        let bad = |reason| InvalidId::new(KIND, s, reason);
        let (kind, digest) = s
            .split_once(':')
            .ok_or_else(|| bad("expected `blob:`, `tree:` or `oci:` followed by a digest"))?;
        let wrap = |e: InvalidId| InvalidId::new(KIND, s, e.reason);
        match kind {
            "blob" => B3Digest::parse_id(digest)
                .map(ObjectRef::Blob)
                .map_err(wrap),
            "tree" => B3Digest::parse_id(digest)
                .map(ObjectRef::Tree)
                .map_err(wrap),
            "oci" => Sha256Digest::parse_id(digest)
                .map(ObjectRef::Oci)
                .map_err(wrap),
            _ => Err(bad(
                "expected `blob:`, `tree:` or `oci:` followed by a digest",
            )),
        }
    }
}

parse_impls!(ObjectRef);

impl From<ObjectRef> for String {
    fn from(r: ObjectRef) -> String {
        r.to_string()
    }
}

/// Nix's base-32 alphabet: digits and lowercase letters without `e`, `o`, `u` and `t`.
pub const NIX_BASE32_ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Encodes bytes in Nix's base 32 (least significant 5-bit group last, as `nix-hash --to-base32`).
pub fn nix_base32(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    let len = (bytes.len() * 8 - 1) / 5 + 1;
    let mut out = String::with_capacity(len);
    for n in (0..len).rev() {
        let b = n * 5;
        let i = b / 8;
        let j = b % 8;
        let lo = bytes[i] >> j;
        let hi = if i + 1 < bytes.len() && j > 3 {
            bytes[i + 1] << (8 - j)
        } else {
            0
        };
        let c = (lo | hi) & 0x1f;
        out.push(char::from(NIX_BASE32_ALPHABET[usize::from(c)]));
    }
    out
}

/// The name of an output in the store: `<hash>-<name>`.
///
/// The hash part is either 32 characters of Nix base 32 (what [`OutputPath::new`] makes: the
/// first 160 bits of the derivation key) or 16 to 64 lowercase hex digits. The name is 1 to 211
/// characters from `[A-Za-z0-9+._?=-]` (Nix's rule), so an output path is always a safe single
/// file name.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OutputPath(String);

impl OutputPath {
    /// Longest allowed name part, as in Nix.
    pub const MAX_NAME_LEN: usize = 211;

    /// The output path for derivation `key` called `name`: Nix base 32 of the key's first 20
    /// bytes, a dash, and the name.
    pub fn new(key: &B3Digest, name: &str) -> Result<OutputPath, StoreError> {
        let s = format!("{}-{}", nix_base32(&key.as_bytes()[..20]), name);
        OutputPath::try_from(s)
    }

    /// The hash part, before the first dash.
    pub fn hash_part(&self) -> &str {
        self.0.split_once('-').map_or("", |(h, _)| h)
    }

    /// The name part, after the first dash.
    pub fn name(&self) -> &str {
        self.0.split_once('-').map_or("", |(_, n)| n)
    }

    /// The whole path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OutputPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OutputPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OutputPath({})", self.0)
    }
}

fn validate_output_path(s: &str) -> Result<(), InvalidId> {
    const KIND: &str = "output path";
    let (hash, name) = s
        .split_once('-')
        .ok_or_else(|| InvalidId::new(KIND, s, "expected `<hash>-<name>`"))?;
    let nix32 = hash.len() == 32 && hash.bytes().all(|b| NIX_BASE32_ALPHABET.contains(&b));
    let hex = (16..=64).contains(&hash.len())
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !nix32 && !hex {
        return Err(InvalidId::new(
            KIND,
            s,
            "the hash part must be 32 Nix base-32 characters or 16-64 lowercase hex digits",
        ));
    }
    if name.is_empty() {
        return Err(InvalidId::new(KIND, s, "the name part is empty"));
    }
    if name.len() > OutputPath::MAX_NAME_LEN {
        return Err(InvalidId::new(
            KIND,
            s,
            "the name part is longer than 211 characters",
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"+._?=-".contains(&b))
    {
        return Err(InvalidId::new(
            KIND,
            s,
            "the name part may only contain A-Z a-z 0-9 + . _ ? = -",
        ));
    }
    Ok(())
}

impl ParseId for OutputPath {
    fn parse_id(s: &str) -> Result<Self, InvalidId> {
        validate_output_path(s)?;
        Ok(OutputPath(s.to_owned()))
    }
}

parse_impls!(OutputPath);

impl From<OutputPath> for String {
    fn from(p: OutputPath) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b3_round_trip() {
        let d = B3Digest::of(b"hello");
        let s = d.to_string();
        assert!(s.starts_with("b3:"));
        assert_eq!(s.len(), 3 + 64);
        assert_eq!(B3Digest::try_from(s.as_str()).ok(), Some(d));
        assert_eq!(B3Digest::from_hex(&d.to_hex()).ok(), Some(d));
        // Known BLAKE3 test vector for "hello".
        assert_eq!(
            d.to_hex(),
            "ea8f163db38682925e4491c5e58d4bb3506ef8c14eb78a86e908c5624a67200f"
        );
    }

    #[test]
    fn sha256_round_trip() {
        let d = Sha256Digest::of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Sha256Digest::try_from(d.to_string().as_str()).ok(), Some(d));
    }

    #[test]
    fn digest_rejects() {
        let good = "b3:".to_owned() + &"a".repeat(64);
        assert!(B3Digest::try_from(good.as_str()).is_ok());
        for bad in [
            "a".repeat(64),
            "b3:".to_owned() + &"a".repeat(63),
            "b3:".to_owned() + &"a".repeat(65),
            "b3:".to_owned() + &"A".repeat(64),
            "b3:".to_owned() + &"g".repeat(64),
            "sha256:".to_owned() + &"a".repeat(64),
            String::new(),
        ] {
            assert!(B3Digest::try_from(bad.as_str()).is_err(), "{bad}");
        }
        assert!(Sha256Digest::try_from(good.as_str()).is_err());
    }

    #[test]
    fn object_ref_round_trip() {
        let b = B3Digest::of(b"x");
        let s = Sha256Digest::of(b"x");
        for r in [ObjectRef::Blob(b), ObjectRef::Tree(b), ObjectRef::Oci(s)] {
            let text = r.to_string();
            assert_eq!(ObjectRef::try_from(text.as_str()).ok(), Some(r));
            let json = serde_json::to_string(&r).expect("serialise");
            assert_eq!(json, format!("\"{text}\""));
            let back: ObjectRef = serde_json::from_str(&json).expect("deserialise");
            assert_eq!(back, r);
        }
        assert!(ObjectRef::Blob(b).to_string().starts_with("blob:b3:"));
        assert!(ObjectRef::Tree(b).to_string().starts_with("tree:b3:"));
        assert!(ObjectRef::Oci(s).to_string().starts_with("oci:sha256:"));
        assert!(ObjectRef::try_from(format!("oci:{b}").as_str()).is_err());
        assert!(ObjectRef::try_from(format!("file:{b}").as_str()).is_err());
        assert!(ObjectRef::try_from(b.to_string().as_str()).is_err());
    }

    #[test]
    fn nix_base32_matches_nix() {
        // `nix-hash --type sha256 --to-base32` of sha256("") is
        // 0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73.
        let d = Sha256Digest::of(b"");
        assert_eq!(
            nix_base32(d.as_bytes()),
            "0mdqa9w1p6cmli6976v4wi0sw9r4p5prkj7lzfd1877wk11c9c73"
        );
        assert_eq!(nix_base32(&[0u8; 20]), "0".repeat(32));
    }

    #[test]
    fn output_paths() {
        let key = B3Digest::of(b"key");
        let p = OutputPath::new(&key, "busybox-1.36").expect("valid");
        assert_eq!(p.hash_part().len(), 32);
        assert_eq!(p.name(), "busybox-1.36");
        assert_eq!(OutputPath::try_from(p.as_str()).ok(), Some(p.clone()));
        let json = serde_json::to_string(&p).expect("serialise");
        assert_eq!(serde_json::from_str::<OutputPath>(&json).expect("de"), p);

        assert!(OutputPath::try_from("0123456789abcdef-name").is_ok()); // hex prefix
        assert!(OutputPath::try_from("0123456789abcdef-a+b._?=-c").is_ok());
        for bad in [
            "",
            "nodash",
            "0123456789abcdef-",
            "0123456789abcde-short",  // 15 hex
            "0123456789ABCDEF-upper", // uppercase hash
            "0123456789abcdef-sl/ash",
            "0123456789abcdef-sp ace",
            "0123456789abcdef-nul\0",
            "0123456789abcdef-ümlaut",
        ] {
            assert!(OutputPath::try_from(bad).is_err(), "{bad:?}");
        }
        let long = format!("{}-{}", "0".repeat(32), "a".repeat(212));
        assert!(OutputPath::try_from(long.as_str()).is_err());
        // 'e' is not in the Nix alphabet, but 32 hex digits are a valid hex prefix anyway.
        assert!(OutputPath::try_from(format!("{}-x", "e".repeat(32)).as_str()).is_ok());
        // 'z' is Nix base 32 but not hex: only accepted at length 32.
        assert!(OutputPath::try_from(format!("{}-x", "z".repeat(32)).as_str()).is_ok());
        assert!(OutputPath::try_from(format!("{}-x", "z".repeat(31)).as_str()).is_err());
    }
}
