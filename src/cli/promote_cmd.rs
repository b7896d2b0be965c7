//! `himg promote SRC DEST --stage NAME`: one image digest copied to the next stage's repository
//! after its gates pass, with a signed record beside it; `himg promote --show REF` lists records.
//!
//! Order: resolve SRC to a digest, pull that digest (every blob verified) into a temporary layout,
//! evaluate the gates (`--require-stage`, `--policy`, `--fail-on`) on it, and only then push the
//! same manifest bytes to DEST, check DEST serves them, and push the record (see [`crate::promote`]).
//! A failed gate writes nothing to DEST.

use std::process::ExitCode;

use serde_json::json;

use super::args::{GlobalArgs, PromoteArgs};
use super::{Error, Printer};
use crate::cache::{PublicKey, TrustedKeys};
use crate::promote::{
    self, Gate, PromoteError, Record, SignedRecord, Subject, record::RECORD_VERSION,
};
use crate::registry::base::is_loopback_registry;
use crate::registry::{Client, ClientOptions, Credentials, Reference};

/// A client for `registry` (plain http on the loopback interface), mounting blobs from `mount_from`.
fn client_for(registry: &str, mount_from: Option<String>) -> Result<Client, Error> {
    Ok(Client::new(ClientOptions {
        insecure: is_loopback_registry(registry),
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

/// `--trusted-key`s and the config file's `[promote] trusted-keys`.
fn trusted(keys: &[String]) -> Result<TrustedKeys, Error> {
    let configured = crate::ops::config::promote_trusted_keys()?;
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

/// A `--fail-on` gate that cannot be evaluated (no database, unknown release) is a refusal.
fn unevaluable(err: Error, threshold: crate::vuln::Severity) -> Error {
    let reason = match err {
        Error::EmptyVulnDb { path } => format!(
            "no vulnerability database is imported (`{}` holds no advisories)",
            path.display()
        ),
        Error::UnknownRelease { image } => {
            format!("cannot tell the Debian release of image {image}")
        }
        other => return other,
    };
    PromoteError::Unevaluable {
        gate: format!("--fail-on {threshold}"),
        reason,
    }
    .into()
}

pub fn promote(
    global: &GlobalArgs,
    args: &PromoteArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    if let Some(reference) = &args.show {
        return show(reference, args, printer);
    }
    let (Some(source), Some(destination), Some(stage)) =
        (&args.source, &args.destination, &args.stage)
    else {
        return Err(Error::Layout(
            "promote needs SRC, DEST and --stage (or --show REF)".into(),
        ));
    };
    promote::check_stage(stage)?;
    if let Some(prev) = &args.require_stage {
        promote::check_stage(prev)?;
    }
    let src: Reference = source.parse()?;
    let dest: Reference = destination.parse()?;
    // Everything that can be refused locally is refused before the network is touched.
    let key = crate::ops::config::signing_key_named(args.sign_key.as_deref())?;
    let trusted = trusted(&args.trusted_keys)?;
    if args.require_stage.is_some() && trusted.is_empty() {
        return Err(Error::CacheConfig(
            "--require-stage needs the keys whose records it accepts: give --trusted-key NAME:KEY, \
             or list them under [promote] trusted-keys in the config file"
                .into(),
        ));
    }
    if let Some(threshold) = args.fail_on {
        crate::ops::vuln::imported_db(&super::session(global, printer))
            .map_err(|e| unevaluable(e, threshold))?;
    }
    if let Some(b) = &args.policy
        && crate::policy::baseline::rules_of(b).is_none()
    {
        return Err(Error::Layout(format!(
            "unknown policy `{b}`: use baseline, strict or none"
        )));
    }

    let src_client = client_for(&src.registry, None)?;
    let (media_type, manifest, digest) = src_client.manifest(&src)?;
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
    let refused = |why: &str| {
        printer.fail(
            "Refused",
            &format!("{digest}: {why}; nothing was pushed to {dest}"),
        );
    };

    let mut gates = Vec::new();
    if let Some(prev) = &args.require_stage {
        let gate = format!("require-stage:{prev}");
        let repository = repo_of(&src);
        let found = promote::fetch_record(&src_client, &src, &digest, prev)?;
        let Some(record) = found else {
            refused(&format!("no `{prev}` record"));
            return Err(PromoteError::MissingStage {
                stage: prev.clone(),
                digest,
                repository,
            }
            .into());
        };
        let signer = match promote::accept(&record, &trusted, &digest, prev, &src) {
            Ok(signer) => signer,
            Err(reason) => {
                refused(&format!("the `{prev}` record is refused"));
                return Err(PromoteError::Refused {
                    stage: prev.clone(),
                    digest,
                    repository,
                    reason,
                }
                .into());
            }
        };
        let detail = format!(
            "`{prev}` record of {} in {repository}, signed by `{signer}`",
            record.record.promoted_at
        );
        printer.status("Gate", &format!("{gate}: {detail}"));
        gates.push(Gate {
            gate,
            passed: true,
            detail,
        });
    }

    let scratch = tempfile::tempdir().map_err(|source| Error::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let _interrupt = crate::interrupt::guard(scratch.path());
    let layout = scratch.path().join("layout");
    // The image's name in reports: the last component of its repository.
    let name = src
        .repository
        .rsplit('/')
        .next()
        .unwrap_or("image")
        .to_owned();
    // The copy is pushed from this verified pull, so the gates judge exactly what is copied.
    crate::ops::registry::pull_layout(&src_client, &pinned, &layout, &name)?;
    printer.status("Pulled", &pinned.to_string());

    if let Some(baseline) = &args.policy {
        let gate = format!("policy:{baseline}");
        let (reports, failed) = crate::ops::audit::policy_gate(
            &super::session(global, printer),
            &layout,
            baseline,
            printer,
        )?;
        if !failed.is_empty() {
            refused(&format!("policy `{baseline}` is violated"));
            return Err(Error::PolicyViolation { images: failed });
        }
        let detail = format!(
            "{} image(s) pass `{baseline}` ({} rules)",
            reports.len(),
            reports.first().map_or(0, |r| r.policy.rules.len())
        );
        printer.status("Gate", &format!("{gate}: {detail}"));
        gates.push(Gate {
            gate,
            passed: true,
            detail,
        });
    }

    if let Some(threshold) = args.fail_on {
        let gate = format!("vulnerabilities:{threshold}");
        let (lines, failing) = crate::ops::vuln::vulnerability_gate(
            &super::session(global, printer),
            &layout,
            threshold,
            printer,
        )
        .map_err(|e| {
            let e = unevaluable(e, threshold);
            if matches!(e, Error::Promote(PromoteError::Unevaluable { .. })) {
                refused(&format!("`{gate}` cannot be evaluated"));
            }
            e
        })?;
        for l in &lines {
            printer.status("Scanned", l);
        }
        if failing > 0 {
            refused(&format!("{failing} finding(s) at {threshold} or higher"));
            return Err(PromoteError::Vulnerable {
                count: failing,
                threshold: threshold.to_string(),
            }
            .into());
        }
        let detail = format!("no finding at {threshold} or higher: {}", lines.join("; "));
        printer.status("Gate", &format!("{gate}: passed"));
        gates.push(Gate {
            gate,
            passed: true,
            detail,
        });
    }

    // Every gate passed: copy, check, record.
    let mount_from = (dest.registry == src.registry).then(|| src.repository.clone());
    let dest_client = client_for(&dest.registry, mount_from)?;
    let report = crate::ops::registry::push_layout(
        &dest_client,
        &layout,
        "the pulled image",
        Some(&name),
        &dest,
    )?;
    // Read back by digest: DEST must serve the very bytes SRC served.
    let (_, at_dest, _) = dest_client.manifest(&Reference {
        tag: None,
        digest: Some(digest.clone()),
        ..dest.clone()
    })?;
    if report.manifest_digest != digest || at_dest != manifest {
        return Err(PromoteError::CopyMismatch {
            destination: dest.to_string(),
            digest,
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

    let record = Record {
        version: RECORD_VERSION,
        digest: digest.clone(),
        source: src.to_string(),
        destination: dest.to_string(),
        stage: stage.clone(),
        gates,
        promoted_at: now(),
        himg_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let signed = record.sign(&key)?;
    let subject = Subject {
        media_type,
        digest: digest.clone(),
        size: manifest.len() as u64,
    };
    let (tag, record_digest) = promote::push_record(&dest_client, &dest, &subject, &signed)?;
    printer.status(
        "Promoted",
        &format!(
            "{digest} to `{stage}`: record {}:{tag} signed by `{}`",
            repo_of(&dest),
            key.name
        ),
    );
    if args.json {
        printer.json(&json!({
            "digest": digest,
            "source": src.to_string(),
            "destination": dest.to_string(),
            "stage": stage,
            "gates": signed.record.gates,
            "promoted_at": signed.record.promoted_at,
            "record": {"tag": tag, "digest": record_digest},
            "signer": key.name,
        }));
    }
    Ok(ExitCode::SUCCESS)
}

/// What `--show` says about one record's signature.
fn signature_status(signed: &SignedRecord, trusted: &TrustedKeys) -> String {
    if trusted.is_empty() {
        return "not checked (no --trusted-key)".into();
    }
    match signed.verify(trusted) {
        Ok(name) => format!("valid (`{name}`)"),
        Err(crate::cache::sign::SignatureProblem::Invalid(name)) => {
            format!("INVALID (`{name}`: the record was changed after signing)")
        }
        Err(crate::cache::sign::SignatureProblem::Untrusted(_)) => "untrusted".into(),
        Err(crate::cache::sign::SignatureProblem::Unsigned) => "unsigned".into(),
    }
}

/// `himg promote --show REF`: the records of REF's digest in REF's repository.
fn show(reference: &str, args: &PromoteArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let reference: Reference = reference.parse()?;
    let trusted = trusted(&args.trusted_keys)?;
    let client = client_for(&reference.registry, None)?;
    let (_, _, digest) = client.manifest(&reference)?;
    let records = promote::list_records(&client, &reference, &digest)?;
    let mut text = format!("{reference} {digest}\n");
    let mut list = Vec::new();
    for (tag, found) in records {
        match found {
            Ok(signed) => {
                let status = signature_status(&signed, &trusted);
                let r = &signed.record;
                text.push_str(&format!(
                    "  stage {}  promoted {}  from {}  signed by {}: {status}\n",
                    r.stage,
                    r.promoted_at,
                    r.source,
                    signed.signers().join(", ")
                ));
                for g in &r.gates {
                    text.push_str(&format!(
                        "    gate {} {}: {}\n",
                        g.gate,
                        if g.passed { "passed" } else { "FAILED" },
                        g.detail
                    ));
                }
                list.push(json!({
                    "tag": tag,
                    "record": r,
                    "signers": signed.signers(),
                    "signature": status,
                }));
            }
            Err(e) => {
                printer.warn(&format!("{tag}: {e}"));
                list.push(json!({"tag": tag, "error": e.to_string()}));
            }
        }
    }
    if list.is_empty() {
        text.push_str("  no promotion records\n");
    }
    if args.json {
        printer.json(&json!({
            "reference": reference.to_string(),
            "digest": digest,
            "records": list,
        }));
    } else {
        printer.data(&text);
    }
    Ok(ExitCode::SUCCESS)
}
