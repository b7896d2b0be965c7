//! Promotion: one image digest copied to the next stage's repository after its gates pass, with a
//! signed record beside it; and the records a digest has (`show`).
//!
//! Order: resolve SRC to a digest, pull that digest (every blob verified) into a temporary layout,
//! evaluate the gates (required stage, policy, vulnerabilities) on it, and only then push the same
//! manifest bytes to DEST, check DEST serves them, and push the record (see [`crate::promote`]).
//! A failed gate writes nothing to DEST.

mod gates;
mod show;

use std::path::PathBuf;

use serde_json::json;

pub use show::{Shown, ShownRecord, show};

use super::{Error, Session};
use crate::cache::{PublicKey, SecretKey, TrustedKeys};
use crate::printer::Printer;
use crate::promote::{self, PromoteError, Record, SignedRecord, Subject, record::RECORD_VERSION};
use crate::registry::{Client, ClientOptions, Credentials, PushReport, Reference};

/// What to promote where, and the gates it must pass first.
#[derive(Debug, Clone, Default)]
pub struct PromoteOptions {
    /// SRC and DEST references, as given.
    pub source: String,
    pub destination: String,
    /// The stage DEST is.
    pub stage: String,
    /// The policy baseline the image must pass (`baseline`, `strict`, `none`).
    pub policy: Option<String>,
    /// No vulnerability at or above this severity.
    pub fail_on: Option<crate::vuln::Severity>,
    /// The stage whose trusted record the digest must already have in SRC's repository.
    pub require_stage: Option<String>,
    /// `NAME:KEY` public keys whose records are accepted (besides the configured ones).
    pub trusted_keys: Vec<String>,
    /// The key signing the record (`None`: the configured one).
    pub sign_key: Option<String>,
    /// Plain http for registries that are not on loopback (loopback registries always may).
    pub insecure: bool,
}

/// A digest promoted: where, and its signed record.
#[derive(Debug, Clone)]
pub struct Promoted {
    pub digest: String,
    pub source: Reference,
    pub destination: Reference,
    pub record: SignedRecord,
    /// The record's tag and manifest digest in DEST's repository.
    pub tag: String,
    pub record_digest: String,
    pub signer: String,
}

impl Promoted {
    pub fn json(&self) -> serde_json::Value {
        json!({
            "digest": self.digest,
            "source": self.source.to_string(),
            "destination": self.destination.to_string(),
            "stage": self.record.record.stage,
            "gates": self.record.record.gates,
            "promoted_at": self.record.record.promoted_at,
            "record": {"tag": self.tag, "digest": self.record_digest},
            "signer": self.signer,
        })
    }
}

/// Resolves, pulls, gates, copies and records `opts.source` → `opts.destination`.
pub fn promote(session: &Session<'_>, opts: &PromoteOptions) -> Result<Promoted, Error> {
    let printer = session.printer();
    let checked = check(session, opts)?;
    let resolved = resolve(&checked, printer)?;
    let refusal = gates::Refusal {
        printer,
        digest: &resolved.digest,
        destination: &checked.dest,
    };
    let mut passed = Vec::new();
    if let Some(prev) = &opts.require_stage {
        passed.push(gates::required_stage(
            &resolved.client,
            &checked.src,
            &resolved.digest,
            prev,
            &checked.trusted,
            &refusal,
        )?);
    }
    let scratch = pull(&checked.src, &resolved, printer)?;
    if let Some(baseline) = &opts.policy {
        passed.push(gates::policy(session, &scratch.layout, baseline, &refusal)?);
    }
    if let Some(threshold) = opts.fail_on {
        passed.push(gates::vulnerabilities(
            session,
            &scratch.layout,
            threshold,
            &refusal,
        )?);
    }
    // Every gate passed. The signing key is resolved only now, so a gate's refusal (exit 12, 5,
    // 11) is what a run without a usable key reports; it is still resolved before DEST is written.
    let key = super::config::signing_key_named(opts.sign_key.as_deref())?;
    let dest_client = copy(&checked, &resolved, &scratch, printer)?;
    record(
        &dest_client,
        &checked,
        &key,
        resolved,
        &opts.stage,
        passed,
        printer,
    )
}

/// What the local checks gave: what can be refused is refused before the network, except the
/// signing key, which is resolved after the gates (the book's order: resolve, pull, gates, copy,
/// record).
struct Checked {
    src: Reference,
    dest: Reference,
    trusted: TrustedKeys,
    insecure: bool,
}

fn check(session: &Session<'_>, opts: &PromoteOptions) -> Result<Checked, Error> {
    promote::check_stage(&opts.stage)?;
    if let Some(prev) = &opts.require_stage {
        promote::check_stage(prev)?;
    }
    let src: Reference = opts.source.parse()?;
    let dest: Reference = opts.destination.parse()?;
    let trusted = trusted(&opts.trusted_keys)?;
    if opts.require_stage.is_some() && trusted.is_empty() {
        return Err(Error::CacheConfig(
            "--require-stage needs the keys whose records it accepts: give --trusted-key NAME:KEY, \
             or list them under [promote] trusted-keys in the config file"
                .into(),
        ));
    }
    if let Some(threshold) = opts.fail_on {
        super::vuln::imported_db(session).map_err(|e| gates::unevaluable(e, threshold))?;
    }
    if let Some(b) = &opts.policy
        && crate::policy::baseline::rules_of(b).is_none()
    {
        return Err(Error::Layout(format!(
            "unknown policy `{b}`: use baseline, strict or none"
        )));
    }
    Ok(Checked {
        src,
        dest,
        trusted,
        insecure: opts.insecure,
    })
}

/// SRC's manifest as served, and SRC pinned to its digest.
struct Resolved {
    client: Client,
    media_type: String,
    manifest: Vec<u8>,
    digest: String,
    pinned: Reference,
}

fn resolve(checked: &Checked, printer: &Printer) -> Result<Resolved, Error> {
    let (src, dest) = (&checked.src, &checked.dest);
    let client = client_for(&src.registry, checked.insecure, None)?
        .with_progress(printer.transfer("Pulling", &src.to_string()));
    let (media_type, manifest, digest) = client.manifest(src)?;
    printer.status("Resolved", &format!("{src} → {digest}"));
    if let Some(pinned) = &dest.digest
        && *pinned != digest
    {
        return Err(crate::registry::RegistryError::DigestMismatch {
            what: format!("destination {dest}"),
            expected: pinned.clone(),
            actual: digest,
        }
        .into());
    }
    let pinned = Reference {
        digest: Some(digest.clone()),
        ..src.clone()
    };
    Ok(Resolved {
        client,
        media_type,
        manifest,
        digest,
        pinned,
    })
}

/// The pinned image pulled into a temporary layout (removed on drop, and on SIGINT/SIGTERM).
struct Scratch {
    _interrupt: crate::interrupt::TempGuard,
    _dir: tempfile::TempDir,
    layout: PathBuf,
    /// The image's name in the layout and reports: the last component of its repository.
    name: String,
}

/// Pulls the pinned digest: the copy is pushed from this verified pull, so the gates judge
/// exactly what is copied.
fn pull(src: &Reference, resolved: &Resolved, printer: &Printer) -> Result<Scratch, Error> {
    let dir = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let interrupt = crate::interrupt::guard(dir.path());
    let layout = dir.path().join("layout");
    let name = src
        .repository
        .rsplit('/')
        .next()
        .unwrap_or("image")
        .to_owned();
    super::registry::pull_layout(&resolved.client, &resolved.pinned, &layout, &name)?;
    printer.status("Pulled", &resolved.pinned.to_string());
    Ok(Scratch {
        _interrupt: interrupt,
        _dir: dir,
        layout,
        name,
    })
}

/// Pushes the pulled image to DEST (mounting blobs from SRC on the same registry) and checks DEST
/// serves the very bytes SRC served; returns DEST's client.
fn copy(
    checked: &Checked,
    resolved: &Resolved,
    scratch: &Scratch,
    printer: &Printer,
) -> Result<Client, Error> {
    let (src, dest, digest) = (&checked.src, &checked.dest, &resolved.digest);
    let mount_from = (dest.registry == src.registry).then(|| src.repository.clone());
    let dest_client = client_for(&dest.registry, checked.insecure, mount_from)?
        .with_progress(printer.transfer("Pushing", &dest.to_string()));
    let report: PushReport = super::registry::push_layout(
        &dest_client,
        &scratch.layout,
        "the pulled image",
        Some(&scratch.name),
        dest,
    )?;
    // Read back by digest: DEST must serve the very bytes SRC served.
    let (_, at_dest, _) = dest_client.manifest(&Reference {
        tag: None,
        digest: Some(digest.clone()),
        ..dest.clone()
    })?;
    if report.manifest_digest != *digest || at_dest != resolved.manifest {
        return Err(PromoteError::CopyMismatch {
            destination: dest.to_string(),
            digest: digest.clone(),
        }
        .into());
    }
    printer.status(
        "Copied",
        &format!(
            "{digest} → {dest} ({} blobs mounted, {} uploaded, {} already there)",
            report.mounted.len(),
            report.uploaded.len(),
            report.skipped.len()
        ),
    );
    Ok(dest_client)
}

/// Signs the record of the promotion and pushes it beside the copy.
fn record(
    dest_client: &Client,
    checked: &Checked,
    key: &SecretKey,
    resolved: Resolved,
    stage: &str,
    gates: Vec<promote::Gate>,
    printer: &Printer,
) -> Result<Promoted, Error> {
    let (src, dest) = (&checked.src, &checked.dest);
    let digest = resolved.digest;
    let record = Record {
        version: RECORD_VERSION,
        digest: digest.clone(),
        source: src.to_string(),
        destination: dest.to_string(),
        stage: stage.to_owned(),
        gates,
        promoted_at: now(),
        himg_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let signed = record.sign(key)?;
    let subject = Subject {
        media_type: resolved.media_type,
        digest: digest.clone(),
        size: resolved.manifest.len() as u64,
    };
    let (tag, record_digest) = promote::push_record(dest_client, dest, &subject, &signed)?;
    printer.status(
        "Promoted",
        &format!(
            "{digest} to `{stage}`: record {}:{tag} signed by `{}`",
            repo_of(dest),
            key.name
        ),
    );
    Ok(Promoted {
        digest,
        source: src.clone(),
        destination: dest.clone(),
        record: signed,
        tag,
        record_digest,
        signer: key.name.clone(),
    })
}

/// A client for `registry` (plain http on the loopback interface, or anywhere when `insecure`),
/// mounting blobs from `mount_from`.
fn client_for(registry: &str, insecure: bool, mount_from: Option<String>) -> Result<Client, Error> {
    Ok(Client::new(ClientOptions {
        insecure: super::registry::plain_http(registry, insecure)?,
        credentials: Credentials::from_env()?,
        mount_from,
        ..ClientOptions::default()
    }))
}

/// `$HIMG_NOW` when set (tests), else now: RFC 3339 UTC.
fn now() -> String {
    if let Ok(t) = std::env::var("HIMG_NOW")
        && !t.is_empty()
    {
        return t;
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    crate::oci::epoch_to_rfc3339(secs)
}

/// The given keys and the config file's `[promote] trusted-keys`.
fn trusted(keys: &[String]) -> Result<TrustedKeys, Error> {
    let configured = super::config::promote_trusted_keys()?;
    let keys = keys
        .iter()
        .chain(&configured)
        .map(|k| PublicKey::parse(k))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TrustedKeys::new(keys))
}

/// `HOST/REPO` of a reference.
fn repo_of(reference: &Reference) -> String {
    format!("{}/{}", reference.registry, reference.repository)
}
