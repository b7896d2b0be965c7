//! `himg inventory TARGET… --package NAME [--below V] | --advisory ID`: one table over a fleet.

use std::process::ExitCode;

use super::args::{GlobalArgs, InventoryArgs};
use super::{Error, Printer, session};
use crate::ops::inventory::{InventoryOptions, inventory as find, render};

pub fn inventory(
    global: &GlobalArgs,
    args: &InventoryArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    let opts = InventoryOptions {
        targets: args.targets.clone(),
        package: args.package.clone(),
        below: args.below.clone(),
        advisory: args.advisory.clone(),
        insecure: args.insecure,
        db: args.db.clone(),
    };
    let rows = find(&session(global, printer), &opts)?;
    if args.json {
        printer.json(&serde_json::json!({ "images": rows }));
    } else {
        printer.data(&render(&rows));
    }
    Ok(ExitCode::SUCCESS)
}
