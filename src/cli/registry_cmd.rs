//! `himg push` and `himg pull`: ship an image to any OCI distribution registry and bring one back,
//! byte-identical (the pushed manifest has the local digest).

use std::process::ExitCode;

use super::args::{GlobalArgs, PullArgs, PushArgs};
use super::{Error, Printer, Session};
use crate::ops::push::PushOptions;
use crate::ops::registry::PullOptions;

/// `himg push LAYOUT REF`: the image named `--image` (or the only one) of an OCI layout.
pub fn push(global: &GlobalArgs, args: &PushArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let session = super::session(global, printer);
    let opts = PushOptions {
        image: args.image.clone(),
        insecure: args.insecure,
        sbom: args.sbom,
        provenance: args.provenance,
        sign_key: args.sign_key.clone(),
        mount_from: args.mount_from.clone(),
        ..PushOptions::new(&args.layout, args.reference.parse()?)
    };
    let pushed = crate::ops::push::push(&session, &opts)?;
    if args.json {
        printer.json(&pushed.json());
    }
    pushed.print(printer);
    Ok(ExitCode::SUCCESS)
}

/// `himg pull REF --out DIR`: into an OCI layout, named by the reference's tag (or `latest`).
pub fn pull(args: &PullArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let opts = PullOptions {
        reference: args.reference.parse()?,
        out: args.out.clone(),
        name: args.name.clone(),
        insecure: args.insecure,
    };
    let pulled = crate::ops::registry::pull(&Session::new(printer), &opts)?;
    if args.json {
        printer.json(&pulled.json());
    }
    Ok(ExitCode::SUCCESS)
}
