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
    if crate::ops::workspace::is_workspace(&args.layout) {
        return push_workspace(&session, args, printer);
    }
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

/// `himg push DIR HOST/PREFIX [--tag TAG]`: every image of a workspace to `HOST/PREFIX/IMAGE:TAG`.
fn push_workspace(
    session: &Session<'_>,
    args: &PushArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    let ws = crate::ops::workspace::discover(session, &args.layout)?;
    // A placeholder reference: each image's own replaces it.
    let template = PushOptions {
        insecure: args.insecure,
        sbom: args.sbom,
        provenance: args.provenance,
        sign_key: args.sign_key.clone(),
        mount_from: args.mount_from.clone(),
        ..PushOptions::new(
            &args.layout,
            format!("{}/x", args.reference.trim_end_matches('/')).parse()?,
        )
    };
    let pushed = crate::ops::workspace::push(session, &ws, &args.reference, &args.tag, &template)?;
    if args.json {
        let rows: Vec<serde_json::Value> = pushed
            .iter()
            .map(|(member, p)| {
                let mut row = p.json();
                row["file"] = serde_json::json!(member.name);
                row
            })
            .collect();
        printer.json(&serde_json::json!({ "pushed": rows }));
    }
    for (_, p) in &pushed {
        p.print(printer);
    }
    Ok(ExitCode::SUCCESS)
}
