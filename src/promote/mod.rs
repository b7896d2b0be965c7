//! Promotion: one image digest moved through stages (dev → staging → prod) by copying its manifest
//! byte for byte between registry repositories, after gates pass, leaving a signed record.
//!
//! A promotion never rebuilds. `himg promote` (in `cli/promote_cmd.rs`) resolves the source to a
//! digest, pulls that digest, evaluates the gates, pushes the same manifest to the destination and
//! then this module's [`push_record`] writes the [`record::SignedRecord`] beside it as an OCI
//! artifact:
//!
//! ```text
//! DEST-REPO:sha256-<hex>.<stage>.himg-promotion      (the referrers "tag schema")
//!   image manifest, artifactType application/vnd.himg.promotion.v1+json
//!   ├─ config  application/vnd.oci.empty.v1+json   `{}`
//!   ├─ layer   application/vnd.himg.promotion.v1+json   the signed record (canonical JSON)
//!   └─ subject the promoted image's manifest descriptor
//! ```
//!
//! A later promotion that requires the stage finds the record by that tag in its source repository
//! ([`fetch_record`]) and accepts it only if a trusted key signed it and it names the same digest,
//! the stage and that repository ([`accept`]).

pub mod record;

use crate::cache::TrustedKeys;
use crate::registry::artifact;
pub use crate::registry::artifact::Subject;
use crate::registry::{Client, Reference, RegistryError};
pub use record::{Gate, Record, SignedRecord, check_stage, record_tag};

/// The artifact type (and layer media type) of a promotion record.
pub const ARTIFACT_TYPE: &str = "application/vnd.himg.promotion.v1+json";
/// The largest record accepted from a registry.
const RECORD_LIMIT: u64 = 1 << 20;

/// What can go wrong promoting an image or reading its records.
#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    #[error(
        "invalid stage name `{0}`: use 1-32 characters of a-z 0-9 - _, starting with a letter or digit"
    )]
    Stage(String),
    #[error("malformed promotion record: {0}")]
    Malformed(String),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Oci(#[from] crate::oci::OciError),
    /// No record of the required stage exists for the digest.
    #[error("no `{stage}` promotion record for {digest} in {repository}")]
    MissingStage {
        stage: String,
        digest: String,
        repository: String,
    },
    /// A record exists but is not accepted (signature, digest, stage or repository).
    #[error("the `{stage}` promotion record of {digest} in {repository} is refused: {reason}")]
    Refused {
        stage: String,
        digest: String,
        repository: String,
        reason: String,
    },
    /// A gate could not be evaluated: it fails, never passes silently.
    #[error("the `{gate}` gate cannot be evaluated: {reason}")]
    Unevaluable { gate: String, reason: String },
    /// The vulnerability gate found findings at or above its threshold.
    #[error("{count} finding(s) at severity {threshold} or higher (--fail-on {threshold})")]
    Vulnerable { count: usize, threshold: String },
    /// The destination does not serve the promoted manifest byte for byte.
    #[error("{destination} does not serve the promoted manifest {digest} byte for byte")]
    CopyMismatch { destination: String, digest: String },
}

/// Pushes `signed` as the record artifact of `subject` into `repository`'s repository, tagged
/// [`record_tag`]; returns the tag and the artifact manifest's digest.
pub fn push_record(
    client: &Client,
    repository: &Reference,
    subject: &Subject,
    signed: &SignedRecord,
) -> Result<(String, String), PromoteError> {
    let record = signed.to_bytes()?;
    let manifest = artifact::manifest(subject, ARTIFACT_TYPE, &record, &signed.record.promoted_at)?;
    let tag = record_tag(&subject.digest, &signed.record.stage)?;
    let digest = artifact::push(client, repository, &tag, &manifest, &record)?;
    Ok((tag, digest))
}

/// The record of `digest` for `stage` in `repository`'s repository, if its tag exists.
pub fn fetch_record(
    client: &Client,
    repository: &Reference,
    digest: &str,
    stage: &str,
) -> Result<Option<SignedRecord>, PromoteError> {
    let tag = record_tag(digest, stage)?;
    let payload = artifact::fetch(
        client,
        repository,
        &tag,
        ARTIFACT_TYPE,
        digest,
        RECORD_LIMIT,
    )
    .map_err(|e| match e {
        artifact::ArtifactError::Registry(e) => PromoteError::Registry(e),
        malformed => PromoteError::Malformed(malformed.to_string()),
    })?;
    payload.map(|bytes| SignedRecord::parse(&bytes)).transpose()
}

/// A record tag and what reading it gave.
pub type Listed = (String, Result<SignedRecord, PromoteError>);

/// Every record of `digest` in `repository`'s repository (found by listing its tags), by tag.
pub fn list_records(
    client: &Client,
    repository: &Reference,
    digest: &str,
) -> Result<Vec<Listed>, PromoteError> {
    let prefix = format!("{}.", record::tag_prefix(digest)?);
    let mut out = Vec::new();
    for tag in client.tags(repository)? {
        let Some(stage) = tag
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(record::TAG_SUFFIX))
        else {
            continue;
        };
        let found = fetch_record(client, repository, digest, stage)
            .and_then(|r| r.ok_or_else(|| PromoteError::Malformed(format!("tag {tag} vanished"))));
        out.push((tag, found));
    }
    Ok(out)
}

/// Accepts `signed` as proof that `digest` entered `stage` in `repository`'s repository: a trusted
/// key signed it, and it names that digest, stage and repository. Returns the signing key's name.
pub fn accept(
    signed: &SignedRecord,
    trusted: &TrustedKeys,
    digest: &str,
    stage: &str,
    repository: &Reference,
) -> Result<String, String> {
    let signer = signed.verify(trusted).map_err(|p| p.to_string())?;
    let r = &signed.record;
    if r.digest != digest {
        return Err(format!("it is signed for another digest, {}", r.digest));
    }
    if r.stage != stage {
        return Err(format!("it is signed for stage `{}`", r.stage));
    }
    let dest: Reference = r
        .destination
        .parse()
        .map_err(|_| format!("its destination `{}` is not a reference", r.destination))?;
    if dest.registry != repository.registry || dest.repository != repository.repository {
        return Err(format!(
            "it records a promotion to {}/{}, not to {}/{}",
            dest.registry, dest.repository, repository.registry, repository.repository
        ));
    }
    if let Some(g) = r.gates.iter().find(|g| !g.passed) {
        return Err(format!("its gate `{}` did not pass", g.gate));
    }
    Ok(signer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{PublicKey, SecretKey};

    #[test]
    fn accept_checks_signature_digest_stage_and_repository() {
        let key = SecretKey::generate("rel").unwrap();
        let trusted = TrustedKeys::new([PublicKey::parse(&key.public().to_string()).unwrap()]);
        let digest = format!("sha256:{}", "b".repeat(64));
        let record = Record {
            version: record::RECORD_VERSION,
            digest: digest.clone(),
            source: "127.0.0.1:5000/dev/app:1".into(),
            destination: "127.0.0.1:5000/staging/app:1".into(),
            stage: "staging".into(),
            gates: Vec::new(),
            promoted_at: "2026-01-01T00:00:00Z".into(),
            himg_version: "0".into(),
        };
        let signed = record.sign(&key).unwrap();
        let staging: Reference = "127.0.0.1:5000/staging/app:2".parse().unwrap();
        let dev: Reference = "127.0.0.1:5000/dev/app".parse().unwrap();
        assert_eq!(
            accept(&signed, &trusted, &digest, "staging", &staging).unwrap(),
            "rel"
        );
        assert!(accept(&signed, &trusted, &digest, "prod", &staging).is_err());
        assert!(accept(&signed, &trusted, &digest, "staging", &dev).is_err());
        let other = format!("sha256:{}", "c".repeat(64));
        assert!(accept(&signed, &trusted, &other, "staging", &staging).is_err());
        assert!(
            accept(
                &signed,
                &TrustedKeys::default(),
                &digest,
                "staging",
                &staging
            )
            .is_err()
        );
    }

    #[test]
    fn artifact_manifest_points_at_its_subject() {
        let subject = Subject {
            media_type: crate::registry::OCI_MANIFEST.into(),
            digest: format!("sha256:{}", "d".repeat(64)),
            size: 42,
        };
        let bytes = artifact::manifest(
            &subject,
            ARTIFACT_TYPE,
            b"{\"r\":1}",
            "2026-01-01T00:00:00Z",
        )
        .unwrap();
        let m: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(m["artifactType"], ARTIFACT_TYPE);
        assert_eq!(m["config"]["mediaType"], artifact::EMPTY_MEDIA_TYPE);
        assert_eq!(
            m["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(m["subject"]["size"], 42);
        assert_eq!(m["layers"][0]["size"], 7);
    }
}
