//! `himg provenance`: the SLSA provenance of one built image manifest (an in-toto statement, or
//! its DSSE envelope signed with a himg key), and `--verify`: the envelopes a registry holds.

use std::process::ExitCode;

use super::args::{GlobalArgs, ProvenanceArgs};
use super::{Error, Printer};
use crate::ops::provenance::{ProvenanceOptions, VerifyOptions};

/// `himg provenance FILE.himg`: builds (reusing the store) and prints or writes the statement.
pub fn provenance(
    global: &GlobalArgs,
    args: &ProvenanceArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    let session = super::session(global, printer);
    let (Some(file), None) = (&args.file, &args.verify) else {
        return verify(&session, args);
    };
    let opts = ProvenanceOptions {
        file: file.clone(),
        image: args.image.clone(),
        arch: args.arch.clone(),
        sign: args.sign,
        sign_key: args.sign_key.clone(),
    };
    let provenance = crate::ops::provenance::provenance(&session, &opts)?;
    match &args.out {
        Some(out) => provenance.write(out, printer)?,
        None => printer.data(&format!("{}\n", String::from_utf8_lossy(&provenance.bytes))),
    }
    Ok(ExitCode::SUCCESS)
}

/// `himg provenance --verify REF`: every image manifest REF names (each architecture of an index)
/// has an attached envelope, signed by a `--trusted-key`, whose statement is about that manifest.
fn verify(session: &super::Session<'_>, args: &ProvenanceArgs) -> Result<ExitCode, Error> {
    let opts = VerifyOptions {
        reference: args.verify.clone().unwrap_or_default(),
        trusted_keys: args.trusted_keys.clone(),
        insecure: args.insecure,
        arch: args.arch.clone(),
    };
    let verified = crate::ops::provenance::verify(session, &opts)?;
    if args.json {
        session.printer().json(&verified.json());
    }
    Ok(ExitCode::SUCCESS)
}
