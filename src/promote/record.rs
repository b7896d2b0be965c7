//! The promotion record: which digest went from where to where, as which stage, after which gates,
//! signed with an Ed25519 key of `himg key generate`.
//!
//! Stored as canonical JSON `{"record": {...}, "signatures": ["NAME:base64", ...]}`. Each signature
//! is over `himg-promotion-v1\n` followed by the canonical JSON of `record` (keys sorted, no
//! whitespace), so changing any field — the digest, the stage, a gate, the time — breaks every
//! signature.

use serde::{Deserialize, Serialize};

use super::PromoteError;
use crate::cache::sign::SignatureProblem;
use crate::cache::{SecretKey, TrustedKeys};

/// The version of the record format.
pub const RECORD_VERSION: u32 = 1;
/// What each signature signs before the record's canonical JSON.
const DOMAIN: &[u8] = b"himg-promotion-v1\n";

/// One gate a promotion passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    /// `policy:BASELINE`, `vulnerabilities:SEVERITY` or `require-stage:STAGE`.
    pub gate: String,
    /// Whether it passed (a record is only written when every gate passed).
    pub passed: bool,
    /// What was checked, for people.
    pub detail: String,
}

/// What one promotion did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Record version ([`RECORD_VERSION`]).
    pub version: u32,
    /// The promoted manifest's `sha256:` digest (the same at source and destination).
    pub digest: String,
    /// The source reference as given.
    pub source: String,
    /// The destination reference as given.
    pub destination: String,
    /// The stage the image entered.
    pub stage: String,
    /// The gates evaluated before the copy, in order.
    pub gates: Vec<Gate>,
    /// When, RFC 3339 UTC.
    pub promoted_at: String,
    /// The himg version that promoted it.
    pub himg_version: String,
}

/// A record with its signatures, as stored in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRecord {
    pub record: Record,
    pub signatures: Vec<String>,
}

impl Record {
    /// The bytes that are signed.
    pub fn fingerprint(&self) -> Result<Vec<u8>, PromoteError> {
        let mut out = DOMAIN.to_vec();
        out.extend(crate::oci::canonical_json(self)?);
        Ok(out)
    }

    /// Signs the record with `key`.
    pub fn sign(self, key: &SecretKey) -> Result<SignedRecord, PromoteError> {
        let signature = key.sign(&self.fingerprint()?);
        Ok(SignedRecord {
            record: self,
            signatures: vec![signature],
        })
    }
}

impl SignedRecord {
    /// The stored form: canonical JSON.
    pub fn to_bytes(&self) -> Result<Vec<u8>, PromoteError> {
        Ok(crate::oci::canonical_json(self)?)
    }

    /// Parses the stored form.
    pub fn parse(bytes: &[u8]) -> Result<SignedRecord, PromoteError> {
        let signed: SignedRecord = serde_json::from_slice(bytes)
            .map_err(|e| PromoteError::Malformed(format!("not a promotion record: {e}")))?;
        if signed.record.version != RECORD_VERSION {
            return Err(PromoteError::Malformed(format!(
                "record version {} (this himg reads version {RECORD_VERSION})",
                signed.record.version
            )));
        }
        Ok(signed)
    }

    /// The names of the keys that signed (checked or not).
    pub fn signers(&self) -> Vec<String> {
        self.signatures
            .iter()
            .filter_map(|s| s.split_once(':').map(|(n, _)| n.to_owned()))
            .collect()
    }

    /// The name of the trusted key whose signature is valid, or why there is none.
    pub fn verify(&self, trusted: &TrustedKeys) -> Result<String, SignatureProblem> {
        let msg = self
            .record
            .fingerprint()
            .map_err(|e| SignatureProblem::Invalid(e.to_string()))?;
        trusted.check(&msg, &self.signatures)
    }
}

/// Checks a stage name: 1-32 characters of `a-z 0-9 - _`, starting with a letter or digit (it
/// becomes part of a registry tag).
pub fn check_stage(stage: &str) -> Result<(), PromoteError> {
    let ok = (1..=32).contains(&stage.len())
        && stage
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b))
        && stage.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(PromoteError::Stage(stage.to_owned()))
    }
}

/// The tag of the `stage` record of `digest`: `sha256-<hex>.<stage>.himg-promotion` (the referrers
/// tag schema, so registries without the referrers API hold records too).
pub fn record_tag(digest: &str, stage: &str) -> Result<String, PromoteError> {
    check_stage(stage)?;
    Ok(format!("{}.{stage}{TAG_SUFFIX}", tag_prefix(digest)?))
}

/// What every record tag ends with.
pub const TAG_SUFFIX: &str = ".himg-promotion";

/// `sha256-<hex>`: the start of every record tag of `digest`.
pub fn tag_prefix(digest: &str) -> Result<String, PromoteError> {
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| PromoteError::Malformed(format!("`{digest}` is not a sha256 digest")))?;
    Ok(format!("sha256-{hex}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cache::PublicKey;

    fn record() -> Record {
        Record {
            version: RECORD_VERSION,
            digest: format!("sha256:{}", "a".repeat(64)),
            source: "127.0.0.1:5000/dev/app:1".into(),
            destination: "127.0.0.1:5000/staging/app:1".into(),
            stage: "staging".into(),
            gates: vec![Gate {
                gate: "policy:baseline".into(),
                passed: true,
                detail: "1 image passes".into(),
            }],
            promoted_at: "2026-01-02T03:04:05Z".into(),
            himg_version: "0.1.0".into(),
        }
    }

    #[test]
    fn signed_records_round_trip_and_detect_tampering() {
        let key = SecretKey::generate("release-1").unwrap();
        let trusted = TrustedKeys::new([PublicKey::parse(&key.public().to_string()).unwrap()]);
        let signed = record().sign(&key).unwrap();
        let bytes = signed.to_bytes().unwrap();
        let back = SignedRecord::parse(&bytes).unwrap();
        assert_eq!(back, signed);
        assert_eq!(back.verify(&trusted).unwrap(), "release-1");
        assert_eq!(back.signers(), vec!["release-1".to_string()]);
        let mut tampered = back.clone();
        tampered.record.gates[0].passed = false;
        assert!(matches!(
            tampered.verify(&trusted),
            Err(SignatureProblem::Invalid(_))
        ));
        let other = SecretKey::generate("other").unwrap();
        let by_other = record().sign(&other).unwrap();
        assert!(matches!(
            by_other.verify(&trusted),
            Err(SignatureProblem::Untrusted(_))
        ));
        assert!(SignedRecord::parse(b"{\"record\":{}}").is_err());
    }

    #[test]
    fn tags_follow_the_referrers_tag_schema() {
        let d = format!("sha256:{}", "0f".repeat(32));
        assert_eq!(
            record_tag(&d, "prod").unwrap(),
            format!("sha256-{}.prod.himg-promotion", "0f".repeat(32))
        );
        assert!(record_tag(&d, "Prod").is_err());
        assert!(record_tag(&d, "").is_err());
        assert!(record_tag(&d, "-x").is_err());
        assert!(record_tag("sha256:xyz", "prod").is_err());
        assert!(check_stage("pre-prod_2").is_ok());
    }
}
