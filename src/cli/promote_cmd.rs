//! `himg promote SRC DEST --stage NAME`: one image digest copied to the next stage's repository
//! after its gates pass, with a signed record beside it; `himg promote --show REF` lists records.

use std::process::ExitCode;

use super::args::{GlobalArgs, PromoteArgs};
use super::{Error, Printer, Session};
use crate::ops::promote::PromoteOptions;
use crate::registry::Reference;

pub fn promote(
    global: &GlobalArgs,
    args: &PromoteArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    let session = super::session(global, printer);
    if let Some(reference) = &args.show {
        return show(&session, reference, args);
    }
    let (Some(source), Some(destination), Some(stage)) =
        (&args.source, &args.destination, &args.stage)
    else {
        return Err(Error::Layout(
            "promote needs SRC, DEST and --stage (or --show REF)".into(),
        ));
    };
    let workspace = crate::ops::workspace::is_workspace(std::path::Path::new(source));
    let opts = PromoteOptions {
        source: source.clone(),
        destination: destination.clone(),
        stage: stage.clone(),
        policy: args.policy.clone(),
        fail_on: args.fail_on,
        require_stage: args.require_stage.clone(),
        trusted_keys: args.trusted_keys.clone(),
        sign_key: args.sign_key.clone(),
        insecure: args.insecure,
    };
    if workspace {
        return promote_workspace(&session, args, &opts);
    }
    let promoted = crate::ops::promote::promote(&session, &opts)?;
    if args.json {
        printer.json(&promoted.json());
    }
    Ok(ExitCode::SUCCESS)
}

/// `himg promote DIR DEST_PREFIX --from PREFIX --stage NAME`: every image of a workspace.
fn promote_workspace(
    session: &Session<'_>,
    args: &PromoteArgs,
    template: &PromoteOptions,
) -> Result<ExitCode, Error> {
    let Some(from) = &args.from else {
        return Err(Error::Layout(
            "promoting a workspace needs --from HOST/PREFIX (where `himg push DIR PREFIX` put its images)".into(),
        ));
    };
    let dir = std::path::Path::new(&template.source);
    let ws = crate::ops::workspace::discover(session, dir)?;
    let promoted = crate::ops::workspace::promote(
        session,
        &ws,
        from,
        &template.destination,
        &args.tag,
        template,
    )?;
    if args.json {
        session.printer().json(&serde_json::json!({
            "workspace": dir.display().to_string(),
            "promoted": promoted
                .iter()
                .map(|(m, p)| {
                    let mut row = p.json();
                    row["file"] = serde_json::Value::from(m.name.clone());
                    row
                })
                .collect::<Vec<_>>(),
        }));
    }
    Ok(ExitCode::SUCCESS)
}

/// `himg promote --show REF`: the records of REF's digest in REF's repository.
fn show(session: &Session<'_>, reference: &str, args: &PromoteArgs) -> Result<ExitCode, Error> {
    let reference: Reference = reference.parse()?;
    let shown = crate::ops::promote::show(session, &reference, &args.trusted_keys, args.insecure)?;
    if args.json {
        session.printer().json(&shown.json());
    } else {
        session.printer().data(&shown.text());
    }
    Ok(ExitCode::SUCCESS)
}
