//! `himg lock` and `himg update`: resolve Debian packages into the lock file next to the `.himg`,
//! or show (and write) what re-resolving against the newest indexes changes.

use std::process::ExitCode;

use super::args::{GlobalArgs, LockArgs, UpdateArgs};
use super::{Error, Printer, session};
use crate::ops::lock::{self, UpdateOptions, UpdateStatus};

/// `himg lock FILE`: resolve every image's packages and write the lock, even if it is current.
pub fn lock(global: &GlobalArgs, args: &LockArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let session = session(global, printer);
    if crate::ops::workspace::is_workspace(&args.file) {
        let ws = crate::ops::workspace::discover(&session, &args.file)?;
        for (member, locked) in crate::ops::workspace::lock(&session, &ws)? {
            print_locked(&member.file, &locked, printer);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let locked = lock::lock(&session, &args.file)?;
    print_locked(&args.file, &locked, printer);
    Ok(ExitCode::SUCCESS)
}

/// What `lock` wrote for one file.
fn print_locked(file: &std::path::Path, locked: &lock::Locked, printer: &Printer) {
    if locked.lock.is_none() {
        printer.status("Unlocked", &lock::no_packages(file));
        return;
    }
    printer.status(
        "Locked",
        &format!(
            "{} packages in {}",
            locked.package_count(),
            locked.path.display()
        ),
    );
    for (image, dropped) in locked.dropped() {
        printer.status(
            "Dropped",
            &format!("excluded {dropped} from image `{image}`"),
        );
    }
}

/// `himg update [PKG…] [--check]`: re-resolve against the newest indexes and show what changes;
/// with `--check`, exit 10 when there are updates.
pub fn update(
    global: &GlobalArgs,
    args: &UpdateArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    let opts = UpdateOptions {
        file: args.file.clone(),
        packages: args.packages.clone(),
        check: args.check,
        published: Vec::new(),
    };
    let session = session(global, printer);
    let workspace = crate::ops::workspace::is_workspace(&args.file);
    let all = if workspace {
        let ws = crate::ops::workspace::discover(&session, &args.file)?;
        crate::ops::workspace::update(&session, &ws, &opts)?
            .into_iter()
            .map(|(_, u)| u)
            .collect()
    } else {
        vec![lock::update(&session, &opts)?]
    };
    if args.json {
        match all.as_slice() {
            [one] if !workspace => printer.json(&one.json()),
            many => printer.json(&serde_json::json!({
                "files": many.iter().map(lock::Updated::json).collect::<Vec<_>>()
            })),
        }
    }
    for updated in &all {
        if !args.json {
            updated.print(printer);
        }
        if updated.written {
            printer.status("Updated", &updated.lock_path.display().to_string());
        }
    }
    let pending = all
        .iter()
        .any(|u| u.status == UpdateStatus::UpdatesAvailable);
    Ok(if pending {
        ExitCode::from(10)
    } else {
        ExitCode::SUCCESS
    })
}
