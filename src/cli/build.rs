//! `himg build` and `himg graph`: evaluate, compile, realise, write the images.

use std::process::ExitCode;
use std::time::Instant;

use himg_lang::ImageSpec;
use serde_json::json;

use super::args::{BuildArgs, GlobalArgs, GraphArgs};
use super::{CliError, Printer, open_store};
use crate::load::{Loaded, load_file};
use crate::output::{self, BuiltImage};
use crate::plan::{self, CompileOptions, NodeOutcome};

/// Picks the requested images (all when none are named).
pub(super) fn select(
    loaded: &Loaded,
    names: &[String],
    file: &std::path::Path,
) -> Result<Vec<ImageSpec>, CliError> {
    let all = &loaded.evaluated.images;
    if all.is_empty() {
        return Err(CliError::NoImages {
            file: file.display().to_string(),
        });
    }
    if names.is_empty() {
        return Ok(all.clone());
    }
    names
        .iter()
        .map(|n| {
            all.iter()
                .find(|i| &i.name == n)
                .cloned()
                .ok_or_else(|| CliError::NoSuchImage {
                    name: n.clone(),
                    file: file.display().to_string(),
                    available: all.iter().map(|i| i.name.clone()).collect(),
                })
        })
        .collect()
}

pub fn build(
    global: &GlobalArgs,
    args: &BuildArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    build_analysed(global, args, SbomFiles::BesideOutput, printer).map(|_| ExitCode::SUCCESS)
}

/// Whether a build that analyses its images writes their SBOMs beside its output (`OUT.sbom/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SbomFiles {
    BesideOutput,
    /// Only in the store (a build into a temporary layout for another command).
    StoreOnly,
}

/// `himg build`; returns the images' analyses (empty with `--no-sbom --no-policy`).
fn build_analysed(
    global: &GlobalArgs,
    args: &BuildArgs,
    sbom_files: SbomFiles,
    printer: &Printer,
) -> Result<Vec<super::audit_cmd::Analysed>, CliError> {
    let started = Instant::now();
    let store = open_store(global)?;
    let _guard = store.build_guard()?;
    let mode = if args.locked {
        super::debian_cmd::LockMode::Locked
    } else {
        super::debian_cmd::LockMode::Auto
    };
    let Compiled {
        loaded,
        specs,
        opts,
        graph,
    } = compile_file(global, &args.file, &args.images, &store, mode, printer)?;
    let fetcher = if opts.debian.locks.is_empty() {
        None
    } else {
        Some(super::debian_cmd::fetcher()?)
    };
    // The images, and their analyses (SBOMs, policy facts) when they are wanted: found in the
    // store, substituted, or made from the manifest and per-layer scans.
    let wanted: Vec<(usize, &plan::ArchOutputs)> = if args.no_sbom && args.no_policy {
        Vec::new()
    } else {
        graph
            .images
            .iter()
            .enumerate()
            .flat_map(|(i, img)| img.per_arch.iter().map(move |a| (i, a)))
            .filter(|(_, a)| args.arch.as_ref().is_none_or(|x| *x == a.architecture))
            .collect()
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
    let substituters = super::cache_cmd::substituters(&args.cache, &warn)?;
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
        args.format,
        &args.out,
        args.arch.as_deref(),
    )?;

    let mut analysed = Vec::new();
    for (i, arch) in &wanted {
        let out = report.output(arch.analysis).ok_or_else(|| {
            CliError::from(plan::PlanError::BadStoreEntry {
                what: graph.node(arch.analysis).name.clone(),
            })
        })?;
        analysed.push(super::audit_cmd::Analysed {
            image: graph.images[*i].name.clone(),
            architecture: arch.architecture.clone(),
            analysis: crate::analysis::Analysis::load(&store, &out.content)?,
        });
    }

    // Each build registers its images (and their analyses) as GC roots, named after the file and
    // image.
    let file_abs = std::path::absolute(&args.file).unwrap_or_else(|_| args.file.clone());
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

    if let Some(url) = &args.push_to {
        let outputs = stored_outputs(&graph, &store, &|id| report.output(id).is_some())?;
        super::cache_cmd::push_outputs(&store, url, &args.cache, &outputs, printer)?;
    }
    let lock =
        crate::debian::lockfile::LockFile::read(&crate::debian::lockfile::lock_path(&args.file))?;
    let vex = super::audit_cmd::declared_vex(&loaded);
    super::audit_cmd::after_build(
        global,
        &store,
        &analysed,
        &specs,
        &super::vuln_cmd::VulnContext {
            lock: lock.as_ref(),
            vex: &vex,
        },
        super::audit_cmd::AfterBuild {
            sboms: (!args.no_sbom && sbom_files == SbomFiles::BesideOutput)
                .then(|| super::audit_cmd::sbom_dir(&args.out))
                .as_deref(),
            check_policy: !args.no_policy,
        },
        printer,
    )?;
    let counts = Counts::of(&graph, &report, &wanted);
    let (built, reused, substituted) = (counts.built, counts.reused, counts.substituted);
    let downloaded = substituters.as_ref().map_or(0, |s| {
        s.downloaded.load(std::sync::atomic::Ordering::Relaxed)
    });
    // What minimisation left out, and what the excludes dropped.
    let (mut removed_files, mut removed_bytes) = (0u64, 0u64);
    let tools = tool_only_unpacks(&graph);
    for id in graph.graph.node_indices() {
        if tools.contains(&id) {
            continue;
        }
        if let (plan::Step::UnpackDeb { .. }, Some(out)) = (&graph.node(id).step, report.output(id))
        {
            removed_files += out
                .meta
                .get("removed_files")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            removed_bytes += out
                .meta
                .get("removed_bytes")
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
        }
    }
    let setuid = SetuidReport::of(&store, &graph, &report, &specs);
    let dropped = dropped_packages(opts.debian.locks.values());
    if args.json {
        let images_json: Vec<serde_json::Value> = images
            .iter()
            .zip(&graph.images)
            .map(|(b, g)| {
                let layers: Vec<serde_json::Value> = g
                    .per_arch
                    .first()
                    .map(|a| {
                        a.layers
                            .iter()
                            .filter_map(|l| {
                                let out = report.output(*l)?;
                                Some(json!({
                                    "digest": out.content.to_string().trim_start_matches("oci:"),
                                    "diff_id": out.meta.get("diff_id"),
                                    "size": out.size,
                                    "built": report.outcomes[l.index()] == NodeOutcome::Built,
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
        printer.json(&json!({
            "images": images_json,
            "built": built,
            "reused": reused,
            "substituted": substituted,
            "downloaded_bytes": downloaded,
            "out": args.out.display().to_string(),
            "minimized": {"files": removed_files, "bytes": removed_bytes},
            "setuid_stripped": setuid.stripped.iter().map(|(path, package, mode)| json!({
                "path": path, "package": package, "mode": format!("{mode:04o}"),
            })).collect::<Vec<_>>(),
            "dropped": dropped,
            "scripts_not_run": setuid.scripts_json(),
            "configure": setuid.configure_json(),
            "analysis": {
                "built": counts.analyses_built,
                "substituted": counts.analyses_substituted,
                "reused": wanted.len() - counts.analyses_built - counts.analyses_substituted,
                "layers_scanned": counts.layers_scanned,
            },
        }));
    }
    for d in &dropped {
        printer.status("Dropped", &format!("excluded {d}"));
    }
    if removed_files > 0 {
        printer.status(
            "Minimised",
            &format!(
                "left out {removed_files} files, {:.1} MiB (docs, man pages, locales, path_exclude)",
                removed_bytes as f64 / (1024.0 * 1024.0)
            ),
        );
    }
    setuid.print(printer);
    for img in &images {
        printer.status("Image", &format!("{} {}", img.name, img.top.digest));
    }
    // What the SBOM/policy analysis cost, when it was not simply found in the store.
    let analysis_note = if counts.analyses_built > 0 {
        format!(
            " (analysed {} image{}, {} layer{} scanned)",
            counts.analyses_built,
            if counts.analyses_built == 1 { "" } else { "s" },
            counts.layers_scanned,
            if counts.layers_scanned == 1 { "" } else { "s" }
        )
    } else if counts.analyses_substituted > 0 {
        " (analyses substituted)".to_owned()
    } else {
        String::new()
    };
    printer.status(
        "Finished",
        &format!(
            "{} derivation{} built, {reused} reused, {substituted} substituted{analysis_note}, in {:.2}s → {}",
            built,
            if built == 1 { "" } else { "s" },
            started.elapsed().as_secs_f64(),
            args.out.display()
        ),
    );
    Ok(analysed)
}

/// A node's output meta: this build's, else the stored one — a no-op build realises only the
/// images' top nodes, so every build reports the same (a missing record reports nothing).
fn node_meta(
    store: &himg_store::Store,
    report: &plan::BuildReport,
    graph: &plan::BuildGraph,
    id: plan::NodeId,
) -> Option<serde_json::Value> {
    match report.output(id) {
        Some(out) => Some(out.meta.clone()),
        None => store
            .lookup_derivation(&graph.node(id).key)
            .ok()
            .flatten()
            .map(|rec| rec.meta),
    }
}

/// Unpack nodes of configure tools that no image installs: their minimisation and setuid bits are
/// not the images' business (the tools are never shipped).
fn tool_only_unpacks(graph: &plan::BuildGraph) -> std::collections::BTreeSet<plan::NodeId> {
    let mut tools = std::collections::BTreeSet::new();
    let mut images = std::collections::BTreeSet::new();
    for id in graph.graph.node_indices() {
        let node = graph.node(id);
        if let plan::Step::DebianConfigure { packages, .. } = &node.step {
            let inputs = node.inputs.iter().skip(1);
            images.extend(inputs.clone().take(packages.len()).copied());
            tools.extend(inputs.skip(packages.len()).copied());
        }
    }
    tools.retain(|id| !images.contains(id));
    tools
}

/// The excluded packages of these locks that something needed, merged by name (what needed each,
/// over every image, sorted).
fn dropped_packages<'a>(
    locks: impl Iterator<Item = &'a crate::debian::lockfile::LockedImage>,
) -> Vec<crate::debian::lockfile::DroppedPackage> {
    let mut by_name: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        std::collections::BTreeMap::new();
    for d in locks.flat_map(|l| l.dropped.iter()) {
        by_name
            .entry(d.name.clone())
            .or_default()
            .extend(d.required_by.iter().cloned());
    }
    crate::debian::lockfile::DroppedPackage::list(by_name)
}

/// What unpacking the build's packages changed or left undone, read from their unpack outputs: the
/// setuid/setgid bits minimisation removed, `keep_setuid` paths that kept nothing (a misspelt path
/// would otherwise silently fail to keep the privilege asked for), and the install-time maintainer
/// scripts that were not run.
struct SetuidReport {
    /// (path, package, shipped mode), sorted.
    stripped: std::collections::BTreeSet<(String, String, u32)>,
    /// (image, path) of `keep_setuid` entries no package of the build shipped setuid/setgid.
    unused: Vec<(String, String)>,
    /// Package → its install-time scripts (`preinst`, `config`, `postinst`, `triggers`) not run.
    scripts_not_run: std::collections::BTreeMap<String, Vec<String>>,
    /// What each configure step did: (node name, its report), by node name.
    configured: Vec<(String, crate::debian::configure::ConfigureReport)>,
}

impl SetuidReport {
    fn of(
        store: &himg_store::Store,
        graph: &plan::BuildGraph,
        report: &plan::BuildReport,
        specs: &[himg_lang::ImageSpec],
    ) -> SetuidReport {
        let files = |meta: &serde_json::Value, key: &str| -> Vec<(String, u32)> {
            meta.get(key)
                .and_then(|v| v.as_array())
                .map(|list| {
                    list.iter()
                        .filter_map(|f| {
                            let path = f.get("path")?.as_str()?.to_string();
                            let mode = u32::try_from(f.get("mode")?.as_u64()?).ok()?;
                            Some((path, mode))
                        })
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut stripped = std::collections::BTreeSet::new();
        let mut kept = std::collections::BTreeSet::new();
        let mut scripts_not_run = std::collections::BTreeMap::new();
        let mut configured = Vec::new();
        let tools = tool_only_unpacks(graph);
        for id in graph.graph.node_indices() {
            if tools.contains(&id) {
                continue;
            }
            let node = graph.node(id);
            if let plan::Step::DebianConfigure { .. } = &node.step {
                let Some(meta) = node_meta(store, report, graph, id) else {
                    continue;
                };
                if let Some(r) = meta
                    .get("configure")
                    .and_then(|v| serde_json::from_value(v.clone()).ok())
                {
                    configured.push((node.name.clone(), r));
                }
                continue;
            }
            let plan::Step::UnpackDeb { package, .. } = &node.step else {
                continue;
            };
            let Some(meta) = node_meta(store, report, graph, id) else {
                continue;
            };
            let meta = &meta;
            for (path, mode) in files(meta, "setuid_stripped") {
                stripped.insert((path, package.clone(), mode));
            }
            kept.extend(files(meta, "setuid_kept").into_iter().map(|(p, _)| p));
            let scripts: Vec<String> = meta
                .get("scripts_not_run")
                .and_then(|v| v.as_array())
                .map(|list| {
                    list.iter()
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if !scripts.is_empty() {
                scripts_not_run.insert(package.clone(), scripts);
            }
        }
        let mut unused = Vec::new();
        for spec in specs {
            for path in spec.packages.iter().flat_map(|p| &p.keep_setuid) {
                let merged = crate::debian::unpack::map_merged_usr(path);
                if !kept.contains(merged.as_ref().unwrap_or(path)) {
                    unused.push((spec.name.clone(), path.clone()));
                }
            }
        }
        // Scripts a configure step ran are not "not run".
        configured
            .sort_by(|a: &(String, crate::debian::configure::ConfigureReport), b| a.0.cmp(&b.0));
        let ran: std::collections::BTreeSet<&str> = configured
            .iter()
            .flat_map(|(_, r)| r.ran.iter().map(|p| p.package.as_str()))
            .collect();
        scripts_not_run.retain(|package: &String, _| !ran.contains(package.as_str()));
        SetuidReport {
            stripped,
            unused,
            scripts_not_run,
            configured,
        }
    }

    /// `[{package, scripts}]`, sorted by package, for the JSON report.
    fn scripts_json(&self) -> serde_json::Value {
        self.scripts_not_run
            .iter()
            .map(|(package, scripts)| json!({"package": package, "scripts": scripts}))
            .collect()
    }

    /// `[{step, ran, failed, dropped, removed, effects}]` for the JSON report.
    fn configure_json(&self) -> serde_json::Value {
        self.configured
            .iter()
            .map(|(step, r)| {
                let mut v = json!(r);
                v["step"] = json!(step);
                v
            })
            .collect()
    }

    fn print_configured(&self, printer: &Printer) {
        for (step, r) in &self.configured {
            let mut reasons: std::collections::BTreeMap<&str, usize> = Default::default();
            for d in &r.dropped {
                *reasons.entry(d.reason.as_str()).or_default() += 1;
            }
            let dropped: Vec<String> = reasons
                .iter()
                .map(|(reason, n)| format!("{n} {reason}"))
                .collect();
            printer.status(
                "Configured",
                &format!(
                    "{step}: ran the install scripts of {} package{}, kept {} change{}{}",
                    r.ran.len(),
                    if r.ran.len() == 1 { "" } else { "s" },
                    r.effects,
                    if r.effects == 1 { "" } else { "s" },
                    if dropped.is_empty() {
                        String::new()
                    } else {
                        format!("; dropped {}", dropped.join(", "))
                    }
                ),
            );
            for f in &r.failed {
                printer.warn(&format!(
                    "{step}: `{}` of {} failed ({}); its effects up to the failure are kept:\n{}",
                    f.script, f.package, f.status, f.output
                ));
            }
            if !r.removed.is_empty() {
                printer.warn(&format!(
                    "{step}: scripts removed {} packaged path{} the image keeps: {}",
                    r.removed.len(),
                    if r.removed.len() == 1 { "" } else { "s" },
                    r.removed.join(", ")
                ));
            }
        }
    }

    fn print(&self, printer: &Printer) {
        self.print_configured(printer);
        for (path, package, mode) in &self.stripped {
            printer.status(
                "Hardened",
                &format!(
                    "`{path}` of {package}: {} removed (mode {mode:04o} → {:04o}); to keep it, add `keep_setuid = [\"{path}\"]`",
                    match (mode & 0o4000 != 0, mode & 0o2000 != 0) {
                        (true, true) => "setuid and setgid bits",
                        (true, false) => "setuid bit",
                        _ => "setgid bit",
                    },
                    mode & !0o6000
                ),
            );
        }
        if !self.scripts_not_run.is_empty() {
            let n = self.scripts_not_run.len();
            let list: Vec<String> = self
                .scripts_not_run
                .iter()
                .map(|(package, scripts)| format!("{package} ({})", scripts.join(", ")))
                .collect();
            printer.status(
                "Not run",
                &format!(
                    "install scripts of {n} package{}: {}; the lock has no configure tools for them (the repositories lack a shell, dpkg or fakeroot) or this host cannot execute their architecture, so only the dpkg database, CA bundle, ld.so.cache and base directories are generated (see `scripts_not_run` in --json)",
                    if n == 1 { "" } else { "s" },
                    list.join(", ")
                ),
            );
        }
        for (image, path) in &self.unused {
            printer.warn(&format!(
                "image `{image}`: `keep_setuid` names `{path}`, but no package of the image ships it setuid or setgid"
            ));
        }
    }
}

/// The registry bases along the images' `from` chains, pulled into the store when missing.
fn registry_bases(
    store: &himg_store::Store,
    specs: &[himg_lang::ImageSpec],
) -> Result<std::collections::BTreeMap<String, crate::registry::base::ResolvedBase>, CliError> {
    let mut refs = Vec::new();
    for spec in specs {
        let mut next = Some(spec);
        while let Some(s) = next {
            if let Some(r) = &s.base_reference {
                refs.push(r.clone());
            }
            next = s.base.as_deref();
        }
    }
    refs.sort();
    refs.dedup();
    Ok(crate::registry::base::resolve_bases(store, &refs)?)
}

/// Every output of `file`'s images that the store has, by derivation key (what `cache push` sends).
/// What a build did, image derivations and analysis derivations (layer scans, analyses) apart.
struct Counts {
    built: usize,
    reused: usize,
    substituted: usize,
    analyses_built: usize,
    analyses_substituted: usize,
    layers_scanned: usize,
}

impl Counts {
    fn of(
        graph: &plan::BuildGraph,
        report: &plan::BuildReport,
        wanted: &[(usize, &plan::ArchOutputs)],
    ) -> Counts {
        let is_analysis = |id: plan::NodeId| {
            matches!(
                graph.node(id).step,
                plan::Step::LayerScan { .. } | plan::Step::Analysis(_)
            )
        };
        let count = |outcome: NodeOutcome, analysis: bool| {
            graph
                .graph
                .node_indices()
                .filter(|id| is_analysis(*id) == analysis && report.outcomes[id.index()] == outcome)
                .count()
        };
        let analyses = |outcome: NodeOutcome| {
            wanted
                .iter()
                .filter(|(_, a)| report.outcomes[a.analysis.index()] == outcome)
                .count()
        };
        let image_nodes = graph
            .graph
            .node_indices()
            .filter(|id| !is_analysis(*id))
            .count();
        let built = count(NodeOutcome::Built, false);
        let substituted = count(NodeOutcome::Substituted, false);
        Counts {
            built,
            reused: image_nodes - built - substituted,
            substituted,
            analyses_built: analyses(NodeOutcome::Built),
            analyses_substituted: analyses(NodeOutcome::Substituted),
            layers_scanned: count(NodeOutcome::Built, true) - analyses(NodeOutcome::Built),
        }
    }
}

pub fn closure_of(
    global: &GlobalArgs,
    file: &std::path::Path,
    store: &himg_store::Store,
    printer: &Printer,
) -> Result<std::collections::BTreeMap<himg_store::B3Digest, himg_store::OutputRecord>, CliError> {
    let compiled = compile_file(
        global,
        file,
        &[],
        store,
        super::debian_cmd::LockMode::Locked,
        printer,
    )?;
    stored_outputs(&compiled.graph, store, &|_| true)
}

/// A `.himg` file compiled: what it declares, the images chosen, the options and the graph.
struct Compiled {
    loaded: Loaded,
    specs: Vec<ImageSpec>,
    opts: CompileOptions,
    graph: plan::BuildGraph,
}

/// Loads `file`, picks `images` (all when empty), prepares their Debian inputs (`mode`) and
/// registry bases, and compiles the derivation graph.
fn compile_file(
    global: &GlobalArgs,
    file: &std::path::Path,
    images: &[String],
    store: &himg_store::Store,
    mode: super::debian_cmd::LockMode,
    printer: &Printer,
) -> Result<Compiled, CliError> {
    let loaded = load_file(file, global.project_root.as_deref())?;
    let specs = select(&loaded, images, file)?;
    let mut opts = CompileOptions::from_env()?;
    opts.debian = super::debian_cmd::prepare(global, &loaded, &specs, mode, printer)?;
    opts.registry_bases = registry_bases(store, &specs)?;
    let graph = plan::compile(&specs, &loaded.loader, store, &opts)?;
    Ok(Compiled {
        loaded,
        specs,
        opts,
        graph,
    })
}

/// The store's records of the graph's derivations that `keep` selects, by key.
fn stored_outputs(
    graph: &plan::BuildGraph,
    store: &himg_store::Store,
    keep: &dyn Fn(plan::NodeId) -> bool,
) -> Result<std::collections::BTreeMap<himg_store::B3Digest, himg_store::OutputRecord>, CliError> {
    let mut out = std::collections::BTreeMap::new();
    for id in graph.graph.node_indices().filter(|id| keep(*id)) {
        let key = graph.node(id).key;
        if let Some(rec) = store.lookup_derivation(&key)? {
            out.insert(key, rec);
        }
    }
    Ok(out)
}

pub fn graph(
    global: &GlobalArgs,
    args: &GraphArgs,
    printer: &Printer,
) -> Result<ExitCode, CliError> {
    let store = open_store(global)?;
    let graph = compile_file(
        global,
        &args.file,
        &args.images,
        &store,
        super::debian_cmd::LockMode::Locked,
        printer,
    )?
    .graph;
    if args.json {
        printer.json(&graph.to_json());
    } else {
        printer.data(&graph.to_dot());
    }
    Ok(ExitCode::SUCCESS)
}

/// An image built for a command that reads it back (test, sbom, scan, inspect, push FILE …): an OCI
/// layout in a temporary directory, plus the file's lock when it has one.
pub struct Materialized {
    /// The OCI layout holding every selected image (removed on drop).
    pub dir: tempfile::TempDir,
    /// `FILE.himg.lock`, when the file declares packages.
    pub lock: Option<crate::debian::lockfile::LockFile>,
    /// The images' analyses (SBOMs, policy facts), when they were asked for.
    pub analysed: Vec<super::audit_cmd::Analysed>,
}

impl Materialized {
    /// The layout directory (`layout/` inside the temporary directory, where `materialize` builds).
    pub fn layout(&self) -> std::path::PathBuf {
        self.dir.path().join("layout")
    }
}

/// True when `target` names a `.himg` file (as opposed to a layout, an archive or a reference).
pub fn is_himg_file(target: &std::path::Path) -> bool {
    target.extension().is_some_and(|e| e == "himg")
}

/// Builds `file` (only `images` when not empty; reusing everything the store has) into a temporary OCI
/// layout, with the usual status lines on stderr.
pub fn materialize(
    global: &GlobalArgs,
    file: &std::path::Path,
    images: &[String],
    printer: &Printer,
) -> Result<Materialized, CliError> {
    materialize_with(global, file, images, false, printer)
}

/// [`materialize`], with the images' analyses (found in the store, substituted or made).
pub fn materialize_analysed(
    global: &GlobalArgs,
    file: &std::path::Path,
    images: &[String],
    printer: &Printer,
) -> Result<Materialized, CliError> {
    materialize_with(global, file, images, true, printer)
}

fn materialize_with(
    global: &GlobalArgs,
    file: &std::path::Path,
    images: &[String],
    analyses: bool,
    printer: &Printer,
) -> Result<Materialized, CliError> {
    let dir = tempfile::Builder::new()
        .prefix("himg-image-")
        .tempdir()
        .map_err(|e| CliError::Io {
            path: std::env::temp_dir(),
            source: e,
        })?;
    let out = dir.path().join("layout");
    let args = BuildArgs {
        file: file.to_path_buf(),
        images: images.to_vec(),
        out: out.clone(),
        format: crate::cli::args::OutputFormat::Oci,
        arch: None,
        json: false,
        locked: false,
        cache: Default::default(),
        push_to: None,
        no_policy: true,
        no_sbom: !analyses,
    };
    let analysed = build_analysed(global, &args, SbomFiles::StoreOnly, printer)?;
    let lock = crate::debian::lockfile::LockFile::read(&crate::debian::lockfile::lock_path(file))?;
    Ok(Materialized {
        dir,
        lock,
        analysed,
    })
}
