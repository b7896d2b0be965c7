//! Building images: load → lock → compile → realise (substituting) → write, and registering the
//! images as GC roots. Analyses (SBOMs, policy facts) are realised when asked; pushing to a cache
//! and judging policies are separate operations a caller composes with the [`Built`] result.

use std::path::{Path, PathBuf};
use std::time::Instant;

use himg_lang::ImageSpec;
use himg_store::{B3Digest, OutputRecord, Store};
use serde_json::json;

use super::build_report::BuildSummary;
use super::compile::{Compiled, compile_file, stored_outputs};
use super::config::{CacheOptions, substituters};
use super::packages::{LockMode, fetcher_with_progress};
use super::{Error, Session};
use crate::analysis::Analysis;
use crate::debian::lockfile::{LockFile, lock_path};
use crate::load::Loaded;
use crate::output::{self, BuiltImage, OutputFormat};
use crate::plan::{self, NodeOutcome};

/// What to build and how.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The `.himg` file.
    pub file: PathBuf,
    /// Only these images (empty: every image the file declares).
    pub images: Vec<String>,
    /// Where to write the output.
    pub out: PathBuf,
    pub format: OutputFormat,
    /// For a docker-archive of a multi-arch image, which architecture (also limits analyses).
    pub arch: Option<String>,
    /// Fail when the lock is missing or stale instead of resolving packages.
    pub locked: bool,
    /// The binary caches to substitute from.
    pub cache: CacheOptions,
    /// Realise the images' analyses (SBOMs, policy facts): found, substituted or made.
    pub analyse: bool,
    /// Name the one image built `REPO[:TAG]` in the output, under each of these Docker references
    /// (empty: under its declared name).
    pub tags: Vec<String>,
}

impl BuildOptions {
    /// Every image of `file` into an OCI layout at `out`, with the defaults of `himg build`.
    pub fn new(file: impl Into<PathBuf>, out: impl Into<PathBuf>) -> BuildOptions {
        BuildOptions {
            file: file.into(),
            images: Vec::new(),
            out: out.into(),
            format: OutputFormat::Oci,
            arch: None,
            locked: false,
            cache: CacheOptions::default(),
            analyse: true,
            tags: Vec::new(),
        }
    }
}

/// One analysed image of a build: its name, architecture and analysis record.
pub struct Analysed {
    pub image: String,
    pub architecture: String,
    pub analysis: Analysis,
}

/// A finished build: what was declared, the graph and what realising it did, the images written.
pub struct Built {
    pub store: std::sync::Arc<Store>,
    pub loaded: Loaded,
    /// The images built (the selected ones).
    pub specs: Vec<ImageSpec>,
    pub graph: plan::BuildGraph,
    pub report: plan::BuildReport,
    pub images: Vec<BuiltImage>,
    /// The images' analyses (empty unless [`BuildOptions::analyse`]).
    pub analysed: Vec<Analysed>,
    /// `FILE.himg.lock`, when the file declares packages.
    pub lock: Option<LockFile>,
    pub summary: BuildSummary,
    pub out: PathBuf,
    started: Instant,
}

/// Refuses `--tag`s that are not Docker references (nor, normalised to `REPO:TAG`, OCI ref names).
pub fn check_tag_grammar(tags: &[String]) -> Result<(), Error> {
    for t in tags {
        crate::oci::layout::validate_ref_name(&crate::oci::docker_tag(t)?)?;
    }
    Ok(())
}

/// Refuses `--tag`s that would name several images.
fn check_tags(tags: &[String], graph: &plan::BuildGraph) -> Result<(), Error> {
    if !tags.is_empty() && graph.images.len() != 1 {
        return Err(Error::TagNeedsOneImage {
            count: graph.images.len(),
            available: graph.images.iter().map(|i| i.name.clone()).collect(),
        });
    }
    Ok(())
}

/// Builds `opts.file` into `opts.out`.
pub fn build(session: &Session<'_>, opts: &BuildOptions) -> Result<Built, Error> {
    let started = Instant::now();
    check_tag_grammar(&opts.tags)?;
    let printer = session.printer();
    let store = session.open_store()?;
    let _guard = store.build_guard()?;
    let mode = if opts.locked {
        LockMode::Locked
    } else {
        LockMode::Auto
    };
    let Compiled {
        loaded,
        specs,
        opts: compile_opts,
        graph,
    } = compile_file(session, &opts.file, &opts.images, &store, mode)?;
    check_tags(&opts.tags, &graph)?;
    let fetcher = if compile_opts.debian.locks.is_empty() {
        None
    } else {
        Some(fetcher_with_progress(
            printer.transfer("Fetching", "Debian packages"),
        )?)
    };
    // The images, and their analyses (SBOMs, policy facts) when they are wanted: found in the
    // store, substituted, or made from the manifest and per-layer scans.
    let wanted: Vec<(usize, &plan::ArchOutputs)> = if opts.analyse {
        graph
            .images
            .iter()
            .enumerate()
            .flat_map(|(i, img)| img.per_arch.iter().map(move |a| (i, a)))
            .filter(|(_, a)| opts.arch.as_ref().is_none_or(|x| *x == a.architecture))
            .collect()
    } else {
        Vec::new()
    };
    let mut targets: Vec<_> = graph.images.iter().map(|i| i.top).collect();
    targets.extend(wanted.iter().map(|(_, a)| a.analysis));

    let bar = std::sync::Mutex::new(None::<indicatif::ProgressBar>);
    let on_event = |ev: plan::Event<'_>| {
        let Ok(mut slot) = bar.lock() else { return };
        match ev {
            plan::Event::Planned { to_build } => {
                *slot = Some(printer.progress(to_build as u64, "building"));
            }
            plan::Event::Started { name, kind } => {
                if let Some(b) = slot.as_ref() {
                    b.set_message(format!("{kind} {name}"));
                }
            }
            plan::Event::Finished { .. } => {
                if let Some(b) = slot.as_ref() {
                    b.inc(1);
                }
            }
        }
    };
    let warn = |m: &str| printer.warn(m);
    let substituters = substituters(&opts.cache, &warn)?;
    let report = plan::realise_with(
        &graph,
        &store,
        fetcher.as_ref(),
        substituters.as_ref().map(|s| s as &dyn plan::Substituter),
        &targets,
        &on_event,
    )?;
    if let Ok(mut slot) = bar.lock()
        && let Some(b) = slot.take()
    {
        b.finish_and_clear();
    }

    let images: Vec<BuiltImage> = graph
        .images
        .iter()
        .map(|img| output::collect(&graph, &report, img))
        .collect::<Result<_, _>>()?;
    output::write(
        &store,
        &images,
        opts.format,
        &opts.out,
        opts.arch.as_deref(),
        &opts.tags,
    )?;

    let mut analysed = Vec::new();
    for (i, arch) in &wanted {
        let out = report.output(arch.analysis).ok_or_else(|| {
            Error::from(plan::PlanError::BadStoreEntry {
                what: graph.node(arch.analysis).name.clone(),
            })
        })?;
        analysed.push(Analysed {
            image: graph.images[*i].name.clone(),
            architecture: arch.architecture.clone(),
            analysis: Analysis::load(&store, &out.content)?,
        });
    }
    register_roots(&store, &opts.file, &graph, &report)?;

    let downloaded = substituters.as_ref().map_or(0, |s| {
        s.downloaded.load(std::sync::atomic::Ordering::Relaxed)
    });
    let summary = BuildSummary::of(
        &store,
        &graph,
        &report,
        &specs,
        &compile_opts.debian,
        &wanted,
        downloaded,
    );
    let lock = LockFile::read(&lock_path(&opts.file))?;
    drop(wanted);
    Ok(Built {
        store,
        loaded,
        specs,
        graph,
        report,
        images,
        analysed,
        lock,
        summary,
        out: opts.out.clone(),
        started,
    })
}

/// Registers each image (and its analyses) as a GC root named after the file and image.
fn register_roots(
    store: &Store,
    file: &Path,
    graph: &plan::BuildGraph,
    report: &plan::BuildReport,
) -> Result<(), Error> {
    let file_abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
    for img in &graph.images {
        if let Some(out) = report.output(img.top) {
            let mut outputs = vec![out.path.clone()];
            outputs.extend(
                img.per_arch
                    .iter()
                    .filter_map(|a| report.output(a.analysis))
                    .map(|r| r.path.clone()),
            );
            store.set_root(
                &format!("build:{}#{}", file_abs.display(), img.name),
                &outputs,
            )?;
        }
    }
    Ok(())
}

impl Built {
    /// The store's records of every derivation this build realised (what `--push-to` sends).
    pub fn realised_outputs(
        &self,
    ) -> Result<std::collections::BTreeMap<B3Digest, OutputRecord>, Error> {
        stored_outputs(&self.graph, &self.store, &|id| {
            self.report.output(id).is_some()
        })
    }

    /// The `build --json` report: images with their manifests and layers, and the summary.
    pub fn json(&self) -> serde_json::Value {
        let images: Vec<serde_json::Value> = self
            .images
            .iter()
            .zip(&self.graph.images)
            .map(|(b, g)| {
                let layers: Vec<serde_json::Value> = g
                    .per_arch
                    .first()
                    .map(|a| {
                        a.layers
                            .iter()
                            .filter_map(|l| {
                                let out = self.report.output(*l)?;
                                Some(json!({
                                    "digest": out.content.to_string().trim_start_matches("oci:"),
                                    "diff_id": out.meta.get("diff_id"),
                                    "size": out.size,
                                    "built": self.report.outcomes[l.index()] == NodeOutcome::Built,
                                }))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                json!({
                    "name": b.name,
                    "digest": b.top.digest.to_string(),
                    "media_type": b.top.media_type,
                    "architectures": b.per_arch.iter().map(|a| json!({
                        "architecture": a.architecture,
                        "manifest": a.manifest.digest.to_string(),
                        "config": a.config.digest.to_string(),
                    })).collect::<Vec<_>>(),
                    "layers": layers,
                })
            })
            .collect();
        let mut doc = serde_json::Map::new();
        doc.insert("images".into(), json!(images));
        doc.extend(self.summary.json_fields());
        doc.insert("out".into(), json!(self.out.display().to_string()));
        serde_json::Value::Object(doc)
    }

    /// The status lines of a finished build: the summary, each image's digest, the counts.
    pub fn print(&self, printer: &crate::printer::Printer) {
        self.summary.print(printer);
        for img in &self.images {
            printer.status("Image", &format!("{} {}", img.name, img.top.digest));
        }
        let s = &self.summary;
        printer.status(
            "Finished",
            &format!(
                "{} derivation{} built, {} reused, {} substituted{}, in {:.2}s → {}",
                s.built(),
                if s.built() == 1 { "" } else { "s" },
                s.reused(),
                s.substituted(),
                s.analysis_note(),
                self.started.elapsed().as_secs_f64(),
                self.out.display()
            ),
        );
    }
}

/// An image built for an operation that reads it back (test, sbom, scan, inspect, push FILE …):
/// an OCI layout in a temporary directory, plus the file's lock when it has one.
pub struct Materialized {
    /// The OCI layout holding every selected image (removed on drop).
    pub dir: tempfile::TempDir,
    /// `FILE.himg.lock`, when the file declares packages.
    pub lock: Option<LockFile>,
    /// The images' analyses (SBOMs, policy facts), when they were asked for.
    pub analysed: Vec<Analysed>,
}

impl Materialized {
    /// The layout directory (`layout/` inside the temporary directory).
    pub fn layout(&self) -> PathBuf {
        self.dir.path().join("layout")
    }
}

/// Builds `file` (only `images` when not empty; reusing everything the store has) into a
/// temporary OCI layout, with the usual status lines; with `analyse`, also the images' analyses.
pub fn materialize(
    session: &Session<'_>,
    file: &Path,
    images: &[String],
    analyse: bool,
) -> Result<Materialized, Error> {
    let dir = tempfile::Builder::new()
        .prefix("himg-image-")
        .tempdir()
        .map_err(|e| Error::Io {
            path: std::env::temp_dir(),
            source: e,
        })?;
    let mut opts = BuildOptions::new(file, dir.path().join("layout"));
    opts.images = images.to_vec();
    opts.analyse = analyse;
    let built = build(session, &opts)?;
    built.print(session.printer());
    Ok(Materialized {
        dir,
        lock: built.lock,
        analysed: built.analysed,
    })
}
