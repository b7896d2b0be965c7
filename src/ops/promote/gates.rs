//! The gates of a promotion: a trusted record of the required stage, a policy baseline, and no
//! vulnerability at or above a threshold. A failed gate says `Refused` and pushes nothing.

use std::path::Path;

use super::{Error, Session, repo_of};
use crate::cache::TrustedKeys;
use crate::printer::Printer;
use crate::promote::{self, Gate, PromoteError};
use crate::registry::{Client, Reference};

/// Says why a digest is refused, before the refusal's error is returned.
pub(super) struct Refusal<'a> {
    pub printer: &'a Printer,
    pub digest: &'a str,
    pub destination: &'a Reference,
}

impl Refusal<'_> {
    fn say(&self, why: &str) {
        self.printer.fail(
            "Refused",
            &format!(
                "{}: {why}; nothing was pushed to {}",
                self.digest, self.destination
            ),
        );
    }
}

/// A gate passed: says so (with `shown`, else its detail) and returns it for the record.
fn passed(printer: &Printer, gate: String, detail: String, shown: Option<&str>) -> Gate {
    printer.status("Gate", &format!("{gate}: {}", shown.unwrap_or(&detail)));
    Gate {
        gate,
        passed: true,
        detail,
    }
}

/// `digest` has a record of stage `prev` in `src`'s repository, signed by a `trusted` key.
pub(super) fn required_stage(
    client: &Client,
    src: &Reference,
    digest: &str,
    prev: &str,
    trusted: &TrustedKeys,
    refusal: &Refusal<'_>,
) -> Result<Gate, Error> {
    let gate = format!("require-stage:{prev}");
    let repository = repo_of(src);
    let found = promote::fetch_record(client, src, digest, prev)?;
    let Some(record) = found else {
        refusal.say(&format!("no `{prev}` record"));
        return Err(PromoteError::MissingStage {
            stage: prev.to_owned(),
            digest: digest.to_owned(),
            repository,
        }
        .into());
    };
    let signer = match promote::accept(&record, trusted, digest, prev, src) {
        Ok(signer) => signer,
        Err(reason) => {
            refusal.say(&format!("the `{prev}` record is refused"));
            return Err(PromoteError::Refused {
                stage: prev.to_owned(),
                digest: digest.to_owned(),
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
    Ok(passed(refusal.printer, gate, detail, None))
}

/// Every image of the pulled `layout` passes the policy `baseline`.
pub(super) fn policy(
    session: &Session<'_>,
    layout: &Path,
    baseline: &str,
    refusal: &Refusal<'_>,
) -> Result<Gate, Error> {
    let gate = format!("policy:{baseline}");
    let (reports, failed) =
        crate::ops::audit::policy_gate(session, layout, baseline, session.printer())?;
    if !failed.is_empty() {
        refusal.say(&format!("policy `{baseline}` is violated"));
        return Err(Error::PolicyViolation { images: failed });
    }
    let detail = format!(
        "{} image(s) pass `{baseline}` ({} rules)",
        reports.len(),
        reports.first().map_or(0, |r| r.policy.rules.len())
    );
    Ok(passed(refusal.printer, gate, detail, None))
}

/// No vulnerability of the pulled `layout` is at `threshold` or higher.
pub(super) fn vulnerabilities(
    session: &Session<'_>,
    layout: &Path,
    threshold: crate::vuln::Severity,
    refusal: &Refusal<'_>,
) -> Result<Gate, Error> {
    let printer = session.printer();
    let gate = format!("vulnerabilities:{threshold}");
    let (lines, failing) =
        crate::ops::vuln::vulnerability_gate(session, layout, threshold, printer).map_err(|e| {
            let e = unevaluable(e, threshold);
            if matches!(e, Error::Promote(PromoteError::Unevaluable { .. })) {
                refusal.say(&format!("`{gate}` cannot be evaluated"));
            }
            e
        })?;
    for l in &lines {
        printer.status("Scanned", l);
    }
    if failing > 0 {
        refusal.say(&format!("{failing} finding(s) at {threshold} or higher"));
        return Err(PromoteError::Vulnerable {
            count: failing,
            threshold: threshold.to_string(),
        }
        .into());
    }
    let detail = format!("no finding at {threshold} or higher: {}", lines.join("; "));
    Ok(passed(printer, gate, detail, Some("passed")))
}

/// A vulnerability gate that cannot be evaluated (no database, unknown release) is a refusal.
pub(super) fn unevaluable(err: Error, threshold: crate::vuln::Severity) -> Error {
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
