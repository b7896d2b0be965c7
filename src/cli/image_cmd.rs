//! `himg inspect` and `himg diff`: open any image target — a `.himg` file (built first), an OCI
//! layout, an oci-archive or docker-archive, or a registry reference (pulled into a temporary
//! layout) — read it back through [`crate::image`], and print the report.

use std::path::Path;
use std::process::ExitCode;

use super::args::{DiffArgs, GlobalArgs, InspectArgs};
use super::{Error, Printer};
use crate::image::{self, ImageSource, ImageView};
use crate::ops::build::{Materialized, materialize};
use crate::ops::compile::is_himg_file;

/// Keeps temporary layouts alive while their image is read; `pulled` also says where a registry
/// target came from (for its referrers).
#[derive(Default)]
struct Holder {
    _built: Option<Materialized>,
    pulled: Option<crate::ops::registry::PulledTemp>,
}

/// Which image of a target to read.
struct Selection<'a> {
    image: Option<&'a str>,
    arch: Option<&'a str>,
    insecure: bool,
}

/// Opens `target` and picks one image (by `--image` and `--arch`).
fn open_target(
    global: &GlobalArgs,
    target: &str,
    sel: &Selection<'_>,
    printer: &Printer,
) -> Result<(ImageSource, ImageView, Holder), Error> {
    let path = Path::new(target);
    let mut by_name = sel.image;
    let (dir, holder) = if is_himg_file(path) {
        let images: Vec<String> = sel.image.map(str::to_owned).into_iter().collect();
        let built = materialize(&super::session(global, printer), path, &images, false)?;
        let dir = built.layout();
        (
            dir,
            Holder {
                _built: Some(built),
                pulled: None,
            },
        )
    } else if path.exists() {
        (path.to_path_buf(), Holder::default())
    } else if let Some(pulled) =
        crate::ops::registry::pull_if_reference(target, sel.insecure, printer)?
    {
        by_name = None;
        (
            pulled.layout.clone(),
            Holder {
                _built: None,
                pulled: Some(pulled),
            },
        )
    } else {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file or directory, and not a registry reference (HOST/REPOSITORY[:TAG])",
            ),
        });
    };
    let source = ImageSource::open(&dir)?;
    let views = source.images()?;
    let available: Vec<String> = views
        .iter()
        .map(|v| {
            format!(
                "{} ({})",
                v.name.as_deref().unwrap_or("-"),
                v.config.architecture
            )
        })
        .collect();
    let mut chosen: Vec<ImageView> = views
        .into_iter()
        .filter(|v| {
            by_name.is_none_or(|n| {
                v.name.as_deref() == Some(n) || v.name.as_deref() == Some(&format!("{n}:latest"))
            })
        })
        .filter(|v| sel.arch.is_none_or(|a| v.config.architecture == a))
        .collect();
    if chosen.len() != 1 {
        let mut wanted = Vec::new();
        if let Some(n) = sel.image {
            wanted.push(format!("image `{n}`"));
        }
        if let Some(a) = sel.arch {
            wanted.push(format!("architecture `{a}`"));
        }
        return Err(Error::ImageSelect {
            target: target.to_owned(),
            wanted: if wanted.is_empty() {
                "a single image".to_owned()
            } else {
                wanted.join(" and ")
            },
            found: chosen.len(),
            available,
        });
    }
    let view = chosen.remove(0);
    Ok((source, view, holder))
}

/// `himg inspect TARGET`.
pub fn inspect(
    global: &GlobalArgs,
    args: &InspectArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    let sel = Selection {
        image: args.image.as_deref(),
        arch: args.arch.as_deref(),
        insecure: args.insecure,
    };
    let (source, view, holder) = open_target(global, &args.target, &sel, printer)?;
    if args.scripts {
        return inspect_scripts(&source, &view, args.json, printer);
    }
    let report = image::inspect(&view);
    // From a registry: the artifacts that refer to the image (SBOMs, provenance, promotions).
    let referrers = match &holder.pulled {
        Some(pulled) => Some(pulled.referrers(&view.digest)?),
        None => None,
    };
    if args.json {
        let mut value = serde_json::to_value(&report).unwrap_or_default();
        if let Some(referrers) = &referrers {
            value["referrers"] = referrers
                .iter()
                .map(|(subject, r)| {
                    serde_json::json!({
                        "subject": subject,
                        "digest": r.digest,
                        "size": r.size,
                        "artifact_type": r.artifact_type,
                        "annotations": r.annotations,
                    })
                })
                .collect();
        }
        printer.json(&value);
    } else {
        let mut text = report.render();
        if let Some(referrers) = &referrers {
            text.push_str(&format!("\nReferrers ({}):\n", referrers.len()));
            for (subject, r) in referrers {
                text.push_str(&format!(
                    "  {:<40} {}  of {subject}\n",
                    r.artifact_type, r.digest
                ));
            }
        }
        printer.data(&text);
    }
    Ok(ExitCode::SUCCESS)
}

/// `himg inspect --scripts`: the record the configure step wrote into the image.
fn inspect_scripts(
    source: &image::ImageSource,
    view: &image::ImageView,
    json: bool,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    use crate::debian::configure::{ConfigureRecord, RECORD_PATH};
    let key = RECORD_PATH.trim_start_matches('/');
    let record: Option<ConfigureRecord> = source
        .read_file(view, key)
        .ok()
        .flatten()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match (record, json) {
        (Some(r), true) => printer.json(&serde_json::to_value(&r).unwrap_or_default()),
        (Some(r), false) => printer.data(&r.render()),
        (None, true) => printer.json(&serde_json::json!(null)),
        (None, false) => printer.data(&format!(
            "No maintainer scripts were run for this image ({RECORD_PATH} is absent): it has no Debian packages with install scripts, or was not built by himg.\n"
        )),
    }
    Ok(ExitCode::SUCCESS)
}

/// `himg diff A B`.
pub fn diff(global: &GlobalArgs, args: &DiffArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let sel = Selection {
        image: args.image.as_deref(),
        arch: args.arch.as_deref(),
        insecure: args.insecure,
    };
    let (_sa, a, _ha) = open_target(global, &args.a, &sel, printer)?;
    let (_sb, b, _hb) = open_target(global, &args.b, &sel, printer)?;
    let report = image::diff(&a, &b);
    if args.json {
        printer.json(&serde_json::to_value(&report).unwrap_or_default());
    } else {
        printer.data(&report.render());
    }
    Ok(ExitCode::SUCCESS)
}
