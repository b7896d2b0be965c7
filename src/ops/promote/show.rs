//! The promotion records of a registry image's digest, with what each signature check says.

use serde_json::json;

use super::{Error, Session, client_for, trusted};
use crate::cache::TrustedKeys;
use crate::cache::sign::SignatureProblem;
use crate::promote::{self, SignedRecord};
use crate::registry::Reference;

/// One record tag of the digest and what reading it gave.
#[derive(Debug, Clone)]
pub enum ShownRecord {
    Read {
        tag: String,
        record: SignedRecord,
        /// What the signature check says (`valid (`NAME`)`, `untrusted`…).
        signature: String,
    },
    Unreadable {
        tag: String,
        error: String,
    },
}

/// The records of a reference's digest in its repository.
#[derive(Debug, Clone)]
pub struct Shown {
    pub reference: Reference,
    pub digest: String,
    pub records: Vec<ShownRecord>,
}

impl Shown {
    pub fn json(&self) -> serde_json::Value {
        let list: Vec<serde_json::Value> = self
            .records
            .iter()
            .map(|shown| match shown {
                ShownRecord::Read {
                    tag,
                    record,
                    signature,
                } => json!({
                    "tag": tag,
                    "record": record.record,
                    "signers": record.signers(),
                    "signature": signature,
                }),
                ShownRecord::Unreadable { tag, error } => json!({"tag": tag, "error": error}),
            })
            .collect();
        json!({
            "reference": self.reference.to_string(),
            "digest": self.digest,
            "records": list,
        })
    }

    /// The listing `himg promote --show` prints.
    pub fn text(&self) -> String {
        let mut text = format!("{} {}\n", self.reference, self.digest);
        for shown in &self.records {
            let ShownRecord::Read {
                record, signature, ..
            } = shown
            else {
                continue;
            };
            let r = &record.record;
            text.push_str(&format!(
                "  stage {}  promoted {}  from {}  signed by {}: {signature}\n",
                r.stage,
                r.promoted_at,
                r.source,
                record.signers().join(", ")
            ));
            for g in &r.gates {
                text.push_str(&format!(
                    "    gate {} {}: {}\n",
                    g.gate,
                    if g.passed { "passed" } else { "FAILED" },
                    g.detail
                ));
            }
        }
        if self.records.is_empty() {
            text.push_str("  no promotion records\n");
        }
        text
    }
}

/// The records of `reference`'s digest, each signature checked against `trusted_keys` and the
/// configured keys; a record that cannot be read is warned about.
pub fn show(
    session: &Session<'_>,
    reference: &Reference,
    trusted_keys: &[String],
    insecure: bool,
) -> Result<Shown, Error> {
    let trusted = trusted(trusted_keys)?;
    let client = client_for(&reference.registry, insecure, None)?;
    let (_, _, digest) = client.manifest(reference)?;
    let mut records = Vec::new();
    for (tag, found) in promote::list_records(&client, reference, &digest)? {
        records.push(match found {
            Ok(record) => ShownRecord::Read {
                signature: signature_status(&record, &trusted),
                tag,
                record,
            },
            Err(e) => {
                session.printer().warn(&format!("{tag}: {e}"));
                ShownRecord::Unreadable {
                    tag,
                    error: e.to_string(),
                }
            }
        });
    }
    Ok(Shown {
        reference: reference.clone(),
        digest,
        records,
    })
}

/// What the listing says about one record's signature.
fn signature_status(signed: &SignedRecord, trusted: &TrustedKeys) -> String {
    if trusted.is_empty() {
        return "not checked (no --trusted-key)".into();
    }
    match signed.verify(trusted) {
        Ok(name) => format!("valid (`{name}`)"),
        Err(SignatureProblem::Invalid(name)) => {
            format!("INVALID (`{name}`: the record was changed after signing)")
        }
        Err(SignatureProblem::Untrusted(_)) => "untrusted".into(),
        Err(SignatureProblem::Unsigned) => "unsigned".into(),
    }
}
