//! Reading one image back: `himg inspect` (its report, a registry image's referrers, or the record
//! of its maintainer scripts) and `himg diff` (two images compared), over any image target.

use std::path::Path;

use super::target::{OpenOptions, Target};
use super::{Error, Session};
use crate::debian::configure::{ConfigureRecord, RECORD_PATH};
use crate::image::{self, DiffReport, ImageView, InspectReport};
use crate::registry::artifact::Referrer;

/// Which image of a target to read.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// By name (ignored for a registry reference, which names one image).
    pub image: Option<String>,
    /// By architecture.
    pub arch: Option<String>,
    /// Allow plain HTTP for a registry reference beyond loopback registries.
    pub insecure: bool,
}

/// A target opened and one image of it chosen.
pub struct OpenedImage {
    /// Keeps the image's layout alive; a pulled one also says where it came from.
    pub target: Target,
    pub view: ImageView,
}

/// Opens `target` (a `.himg` file, a layout, an archive or a registry reference) and picks the
/// one image `sel` matches; `ImageSelect` when it matches none or several.
pub fn open_image(
    session: &Session<'_>,
    target: &str,
    sel: &Selection,
) -> Result<OpenedImage, Error> {
    let open = OpenOptions {
        images: sel.image.iter().cloned().collect(),
        analyse: false,
        insecure: sel.insecure,
        explain_missing: true,
    };
    let opened = Target::open(session, Path::new(target), &open)?;
    let by_name = match opened.pulled() {
        Some(_) => None,
        None => sel.image.as_deref(),
    };
    let view = select(opened.source.images()?, by_name, sel, target)?;
    Ok(OpenedImage {
        target: opened,
        view,
    })
}

/// The one image of `views` named `by_name` (or `NAME:latest`) for `sel`'s architecture.
fn select(
    views: Vec<ImageView>,
    by_name: Option<&str>,
    sel: &Selection,
    target: &str,
) -> Result<ImageView, Error> {
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
        .filter(|v| {
            sel.arch
                .as_deref()
                .is_none_or(|a| v.config.architecture == a)
        })
        .collect();
    if chosen.len() == 1 {
        return Ok(chosen.remove(0));
    }
    let mut wanted = Vec::new();
    if let Some(n) = &sel.image {
        wanted.push(format!("image `{n}`"));
    }
    if let Some(a) = &sel.arch {
        wanted.push(format!("architecture `{a}`"));
    }
    Err(Error::ImageSelect {
        target: target.to_owned(),
        wanted: if wanted.is_empty() {
            "a single image".to_owned()
        } else {
            wanted.join(" and ")
        },
        found: chosen.len(),
        available,
    })
}

/// What `himg inspect` reads.
#[derive(Debug, Clone, Default)]
pub struct InspectOptions {
    pub target: String,
    pub selection: Selection,
    /// The record of the maintainer scripts run at build time instead of the report.
    pub scripts: bool,
}

/// What an inspection found.
pub enum Inspected {
    /// The image's report; for a registry image also the artifacts that refer to it (SBOMs,
    /// provenance, promotions) as `(subject, referrer)`.
    Image {
        report: Box<InspectReport>,
        referrers: Option<Vec<(String, Referrer)>>,
    },
    /// The configure step's record (`None`: the image has none).
    Scripts(Option<ConfigureRecord>),
}

impl Inspected {
    pub fn json(&self) -> serde_json::Value {
        match self {
            Inspected::Image { report, referrers } => {
                let mut value = serde_json::to_value(report).unwrap_or_default();
                if let Some(referrers) = referrers {
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
                value
            }
            Inspected::Scripts(Some(r)) => serde_json::to_value(r).unwrap_or_default(),
            Inspected::Scripts(None) => serde_json::Value::Null,
        }
    }

    /// The human report.
    pub fn text(&self) -> String {
        match self {
            Inspected::Image { report, referrers } => {
                let mut text = report.render();
                if let Some(referrers) = referrers {
                    text.push_str(&format!("\nReferrers ({}):\n", referrers.len()));
                    for (subject, r) in referrers {
                        text.push_str(&format!(
                            "  {:<40} {}  of {subject}\n",
                            r.artifact_type, r.digest
                        ));
                    }
                }
                text
            }
            Inspected::Scripts(Some(r)) => r.render(),
            Inspected::Scripts(None) => format!(
                "No maintainer scripts were run for this image ({RECORD_PATH} is absent): it has no Debian packages with install scripts, or was not built by himg.\n"
            ),
        }
    }
}

/// Inspects one image of a target.
pub fn inspect(session: &Session<'_>, opts: &InspectOptions) -> Result<Inspected, Error> {
    let OpenedImage { target, view } = open_image(session, &opts.target, &opts.selection)?;
    if opts.scripts {
        let key = RECORD_PATH.trim_start_matches('/');
        let record: Option<ConfigureRecord> = target
            .source
            .read_file(&view, key)
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        return Ok(Inspected::Scripts(record));
    }
    let report = Box::new(image::inspect(&view));
    let referrers = match target.pulled() {
        Some(pulled) => Some(pulled.referrers(&view.digest)?),
        None => None,
    };
    Ok(Inspected::Image { report, referrers })
}

/// What `himg diff` compares: the same selection on both sides.
#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    /// The old image.
    pub a: String,
    /// The new image.
    pub b: String,
    pub selection: Selection,
}

/// Compares two images (any targets `inspect` reads).
pub fn diff(session: &Session<'_>, opts: &DiffOptions) -> Result<DiffReport, Error> {
    let a = open_image(session, &opts.a, &opts.selection)?;
    let b = open_image(session, &opts.b, &opts.selection)?;
    Ok(image::diff(&a.view, &b.view))
}
