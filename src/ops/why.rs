//! Why a package is in an image: the dependency paths from the image's requested packages to it
//! (or what needed an excluded one), from the lock and the locked `.deb`s' control files, and the
//! human answer.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::packages::{LockMode, fetcher, prepare};
use super::{Error, Session};
use crate::debian::why::{self, Why};

/// The question `why` answers.
#[derive(Debug, Clone, Default)]
pub struct WhyOptions {
    pub file: PathBuf,
    /// The image (as named in the file).
    pub image: String,
    /// The package to explain.
    pub package: String,
    /// The architecture (default: the image's first).
    pub arch: Option<String>,
    /// Every shortest path (up to `why::MAX_PATHS`), not only the first `why::DEFAULT_PATHS`.
    pub all: bool,
}

/// Explains why `opts.package` is in (or was excluded from) `opts.image`, fetching the locked
/// `.deb`s the store lacks; the image's lock must be current.
pub fn why(session: &Session<'_>, opts: &WhyOptions) -> Result<Why, Error> {
    let printer = session.printer();
    let loaded = session.load(&opts.file)?;
    let specs = super::compile::select(&loaded, std::slice::from_ref(&opts.image), &opts.file)?;
    let Some(spec) = specs.first() else {
        return Err(Error::NoImages {
            file: opts.file.display().to_string(),
        });
    };
    let arch = opts
        .arch
        .clone()
        .or_else(|| spec.architectures.first().cloned())
        .unwrap_or_default();
    let inputs = prepare(session, &loaded, &specs, LockMode::Locked)?;
    let image = why::image_packages(spec, &arch, &inputs)?;
    let store = session.open_store()?;
    let _guard = store.build_guard()?;
    let fetcher = fetcher()?;
    let bar = std::sync::Mutex::new(None::<indicatif::ProgressBar>);
    let on_event = |ev: crate::plan::Event<'_>| {
        let Ok(mut slot) = bar.lock() else { return };
        match ev {
            crate::plan::Event::Planned { to_build } if to_build > 0 => {
                *slot = Some(printer.progress(to_build as u64, "fetching"));
            }
            crate::plan::Event::Finished { .. } => {
                if let Some(b) = slot.as_ref() {
                    b.inc(1);
                }
            }
            _ => {}
        }
    };
    let packages = why::locked_packages(&store, Some(&fetcher), &image.packages, &on_event)?;
    if let Ok(mut slot) = bar.lock()
        && let Some(b) = slot.take()
    {
        b.finish_and_clear();
    }
    let roots = why::roots(&image.requests, &packages, &arch);
    Ok(why::explain(
        &spec.name,
        &arch,
        &packages,
        &roots,
        &image.dropped,
        &opts.package,
        (!opts.all).then_some(why::DEFAULT_PATHS),
    )?)
}

/// The human answer: a headline, then each path as a chain and one line per step with the
/// relation that was used.
pub fn render(w: &Why) -> String {
    let mut o = String::new();
    let subject = match &w.version {
        Some(v) => format!("{} {v}", w.package),
        None => w.package.clone(),
    };
    if w.status == "excluded" && w.required_by.is_empty() {
        // A lock written before `dropped` recorded what needed each package.
        let _ = writeln!(
            o,
            "{} is excluded from image `{}` ({}); the lock does not record what needed it (`himg lock` records it)",
            w.package, w.image, w.architecture
        );
    } else if w.status == "virtual" {
        let _ = writeln!(
            o,
            "{} is a virtual package; in image `{}` ({}) it is provided by {}:",
            w.package,
            w.image,
            w.architecture,
            w.provided_by.join(", ")
        );
    } else if w.status == "excluded" {
        let _ = writeln!(
            o,
            "{} is excluded from image `{}` ({}); it was needed by {}",
            w.package,
            w.image,
            w.architecture,
            w.required_by.join(", ")
        );
    } else {
        let _ = writeln!(
            o,
            "{subject} is in image `{}` ({}):",
            w.image, w.architecture
        );
    }
    for p in &w.paths {
        let mut chain = vec![p.package.as_str()];
        chain.extend(p.steps.iter().map(|s| s.edge.target.as_str()));
        let _ = writeln!(o, "\n  {}", chain.join(" → "));
        let width = p
            .steps
            .iter()
            .map(|s| s.from.len())
            .chain([p.package.len()])
            .max()
            .unwrap_or(0);
        let _ = writeln!(o, "    {:width$}  requested as `{}`", p.package, p.request);
        for s in &p.steps {
            let mut line = format!("{}: {}", s.edge.field, s.edge.group);
            if let Some(pr) = &s.edge.provides {
                let _ = write!(line, " ({} provides {pr})", s.edge.target);
            } else if s.edge.group != s.edge.relation {
                let _ = write!(line, " ({} chosen)", s.edge.relation);
            }
            let _ = writeln!(o, "    {:width$}  {line}", s.from);
        }
    }
    if w.paths.is_empty() && !(w.status == "excluded" && w.required_by.is_empty()) {
        let _ = writeln!(o, "\n  no requested package leads to it");
    }
    if w.total_paths > w.paths.len() {
        let more = w.total_paths - w.paths.len();
        let _ = writeln!(
            o,
            "\n  … and {more}{} more shortest path{} (--all shows them)",
            if w.total_paths >= why::MAX_PATHS {
                " or"
            } else {
                ""
            },
            if more == 1 { "" } else { "s" }
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian::deps::{DepEdge, Field};
    use crate::debian::why::{PathStep, WhyPath};

    fn step(
        from: &str,
        group: &str,
        relation: &str,
        target: &str,
        provides: Option<&str>,
    ) -> PathStep {
        PathStep {
            from: from.into(),
            edge: DepEdge {
                field: Field::Depends,
                index: 0,
                group: group.into(),
                relation: relation.into(),
                target: target.into(),
                provides: provides.map(str::to_string),
            },
        }
    }

    #[test]
    fn paths_show_the_relation_used_and_what_was_left_out() {
        let w = Why {
            package: "postfix".into(),
            image: "app".into(),
            architecture: "amd64".into(),
            status: "installed",
            version: Some("3.9".into()),
            required_by: Vec::new(),
            provided_by: Vec::new(),
            paths: vec![WhyPath {
                request: "curl (>= 8)".into(),
                package: "curl".into(),
                steps: vec![
                    step("curl", "libcurl4 | libcurl3", "libcurl4", "libcurl4", None),
                    step("libcurl4", "mta", "mta", "postfix", Some("mta")),
                ],
            }],
            total_paths: 7,
        };
        assert_eq!(
            render(&w),
            "postfix 3.9 is in image `app` (amd64):\n\
             \n  curl → libcurl4 → postfix\n\
             \x20   curl      requested as `curl (>= 8)`\n\
             \x20   curl      Depends: libcurl4 | libcurl3 (libcurl4 chosen)\n\
             \x20   libcurl4  Depends: mta (postfix provides mta)\n\
             \n  … and 6 more shortest paths (--all shows them)\n"
        );
        let old = Why {
            status: "excluded",
            version: None,
            paths: Vec::new(),
            total_paths: 0,
            ..w
        };
        assert!(render(&old).contains("the lock does not record what needed it"));
        assert!(!render(&old).contains("no requested package"));
    }
}
