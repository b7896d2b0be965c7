//! What a build reports beyond its images: derivations built, reused and substituted, what
//! minimisation and hardening removed, the packages the excludes dropped, the maintainer scripts that
//! ran or did not, read from the nodes' output metadata (this build's, else the store's).

use serde_json::json;

use crate::plan::{self, NodeOutcome};
use crate::printer::Printer;

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

/// What unpacking and configuring the build's packages changed or left undone, read from their unpack outputs: the
/// setuid/setgid bits minimisation removed, `keep_setuid` paths that kept nothing (a misspelt path
/// would otherwise silently fail to keep the privilege asked for), and the install-time maintainer
/// scripts that were not run.
struct PackagesReport {
    /// (path, package, shipped mode), sorted.
    stripped: std::collections::BTreeSet<(String, String, u32)>,
    /// (image, path) of `keep_setuid` entries no package of the build shipped setuid/setgid.
    unused: Vec<(String, String)>,
    /// Package → its install-time scripts (`preinst`, `config`, `postinst`, `triggers`) not run.
    scripts_not_run: std::collections::BTreeMap<String, Vec<String>>,
    /// What each configure step did: (node name, its report), by node name.
    configured: Vec<(String, crate::debian::configure::ConfigureReport)>,
}

impl PackagesReport {
    fn of(
        store: &himg_store::Store,
        graph: &plan::BuildGraph,
        report: &plan::BuildReport,
        specs: &[himg_lang::ImageSpec],
    ) -> PackagesReport {
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
        PackagesReport {
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

/// Everything a build reports besides its images' digests.
pub struct BuildSummary {
    counts: Counts,
    packages: PackagesReport,
    dropped: Vec<crate::debian::lockfile::DroppedPackage>,
    /// Files and bytes minimisation left out (docs, man pages, locales, `path_exclude`).
    removed: (u64, u64),
    /// Bytes substituters downloaded.
    downloaded: u64,
    /// How many analyses the build wanted.
    analyses: usize,
    /// Derivations built by this run, by step kind (`build`, `layer`, `manifest`, …).
    built_by_kind: std::collections::BTreeMap<&'static str, usize>,
    /// The build steps (`build` blocks) of the graph and what this run did with each.
    builds: Vec<BuildRun>,
}

/// One `build` block in a build's report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BuildRun {
    pub name: String,
    /// `built`, `reused`, `cut_off`, `substituted` or `skipped`.
    pub outcome: &'static str,
    /// How long its command ran, when it ran in this build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command_ms: Option<u64>,
}

fn outcome_name(outcome: plan::NodeOutcome) -> &'static str {
    match outcome {
        plan::NodeOutcome::Built => "built",
        plan::NodeOutcome::Reused => "reused",
        plan::NodeOutcome::CutOff => "cut_off",
        plan::NodeOutcome::Substituted => "substituted",
        plan::NodeOutcome::Skipped => "skipped",
    }
}

impl BuildSummary {
    pub(super) fn of(
        store: &himg_store::Store,
        graph: &plan::BuildGraph,
        report: &plan::BuildReport,
        specs: &[himg_lang::ImageSpec],
        debian: &crate::debian::plan::DebianInputs,
        wanted: &[(usize, &plan::ArchOutputs)],
        downloaded: u64,
    ) -> BuildSummary {
        let (mut removed_files, mut removed_bytes) = (0u64, 0u64);
        let tools = tool_only_unpacks(graph);
        for id in graph.graph.node_indices() {
            if tools.contains(&id) {
                continue;
            }
            if let (plan::Step::UnpackDeb { .. }, Some(out)) =
                (&graph.node(id).step, report.output(id))
            {
                let count = |key: &str| out.meta.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
                removed_files += count("removed_files");
                removed_bytes += count("removed_bytes");
            }
        }
        let mut built_by_kind = std::collections::BTreeMap::new();
        let mut builds = Vec::new();
        for id in graph.graph.node_indices() {
            let node = graph.node(id);
            let outcome = report.outcomes[id.index()];
            if outcome == plan::NodeOutcome::Built {
                *built_by_kind.entry(node.step.kind()).or_insert(0) += 1;
            }
            if let plan::Step::Build(_) = node.step {
                builds.push(BuildRun {
                    name: node.name.trim_start_matches("build ").to_owned(),
                    outcome: outcome_name(outcome),
                    command_ms: (outcome == plan::NodeOutcome::Built)
                        .then(|| report.output(id))
                        .flatten()
                        .and_then(|out| out.meta.get("command_ms"))
                        .and_then(|v| v.as_u64()),
                });
            }
        }
        builds.sort_by(|a, b| a.name.cmp(&b.name));
        BuildSummary {
            built_by_kind,
            builds,
            counts: Counts::of(graph, report, wanted),
            packages: PackagesReport::of(store, graph, report, specs),
            dropped: dropped_packages(debian.locks.values()),
            removed: (removed_files, removed_bytes),
            downloaded,
            analyses: wanted.len(),
        }
    }

    /// Derivations built, reused (found in the store) and substituted, analyses apart.
    pub fn built(&self) -> usize {
        self.counts.built
    }

    pub fn reused(&self) -> usize {
        self.counts.reused
    }

    pub fn substituted(&self) -> usize {
        self.counts.substituted
    }

    /// The report's fields for `build --json` (beside the images and the output path).
    pub(super) fn json_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let c = &self.counts;
        let fields = json!({
            "built": c.built,
            "reused": c.reused,
            "substituted": c.substituted,
            "built_by_kind": self.built_by_kind,
            "builds": self.builds,
            "downloaded_bytes": self.downloaded,
            "minimized": {"files": self.removed.0, "bytes": self.removed.1},
            "setuid_stripped": self.packages.stripped.iter().map(|(path, package, mode)| json!({
                "path": path, "package": package, "mode": format!("{mode:04o}"),
            })).collect::<Vec<_>>(),
            "dropped": self.dropped,
            "scripts_not_run": self.packages.scripts_json(),
            "configure": self.packages.configure_json(),
            "analysis": {
                "built": c.analyses_built,
                "substituted": c.analyses_substituted,
                "reused": self.analyses - c.analyses_built - c.analyses_substituted,
                "layers_scanned": c.layers_scanned,
            },
        });
        match fields {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        }
    }

    /// The status lines: dropped packages, minimisation, scripts, hardening.
    pub(super) fn print(&self, printer: &Printer) {
        for run in &self.builds {
            if let Some(ms) = run.command_ms {
                printer.status(
                    "Ran",
                    &format!(
                        "build {} (its command took {:.2}s; `himg log` shows its output)",
                        run.name,
                        ms as f64 / 1000.0
                    ),
                );
            }
        }
        for d in &self.dropped {
            printer.status("Dropped", &format!("excluded {d}"));
        }
        let (files, bytes) = self.removed;
        if files > 0 {
            printer.status(
                "Minimised",
                &format!(
                    "left out {files} files, {} (docs, man pages, locales, path_exclude)",
                    crate::printer::size(bytes)
                ),
            );
        }
        self.packages.print(printer);
    }

    /// What the SBOM/policy analysis cost, when it was not simply found in the store.
    pub(super) fn analysis_note(&self) -> String {
        let c = &self.counts;
        if c.analyses_built > 0 {
            format!(
                " (analysed {} image{}, {} layer{} scanned)",
                c.analyses_built,
                if c.analyses_built == 1 { "" } else { "s" },
                c.layers_scanned,
                if c.layers_scanned == 1 { "" } else { "s" }
            )
        } else if c.analyses_substituted > 0 {
            " (analyses substituted)".to_owned()
        } else {
            String::new()
        }
    }
}
