//! Compiling evaluated image specs into a [`BuildGraph`].
//!
//! Each image is flattened along its `from` chain: the base's layer nodes are reused as they are, the
//! runtime config and accounts are merged, and the image's own layers are added on top (a generated
//! accounts layer first when the image declares users or groups, then its `layer` blocks, then the
//! implicit `contents` layer). Then, per architecture, a config and a manifest node; with several
//! architectures, an index node above them.

use std::collections::{BTreeMap, HashMap};

use himg_lang::{BuildSource, BuildSpec, ContentItem, ImageSpec, LayerSpec, Owner};
use himg_store::Store;

use super::PlanError;
use super::accounts::Accounts;
use super::derivation::{
    ArchOutputs, BuildGraph, BuildPlacement, BuildStep, ConfigStep, ImageOutputs, IndexStep,
    LayerItem, LayerStep, ManifestStep, NodeId, Step,
};
use super::inputs::{ScannedEntry, scan_copy};
use crate::load::FsLoader;

/// Build-wide settings that enter derivation keys.
#[derive(Debug, Clone)]
pub struct CompileOptions {
    /// The time written into tar entries and the config (`SOURCE_DATE_EPOCH`, else 1).
    pub epoch: u64,
    /// Locked Debian packages per image (`(declared_in, image name)`), and resolved repository URLs.
    pub debian: crate::debian::plan::DebianInputs,
    /// Registry base images, by the reference written in `from`, already in the store.
    pub registry_bases: BTreeMap<String, crate::registry::base::ResolvedBase>,
}

impl CompileOptions {
    /// Reads `SOURCE_DATE_EPOCH` (the only environment input of a build), defaulting to 1
    /// (1970-01-01T00:00:01Z, as Nix does).
    pub fn from_env() -> Result<CompileOptions, PlanError> {
        let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) if !v.trim().is_empty() => v
                .trim()
                .parse::<u64>()
                .map_err(|_| PlanError::BadEpoch(v.clone()))?,
            _ => 1,
        };
        Ok(CompileOptions {
            epoch,
            debian: Default::default(),
            registry_bases: BTreeMap::new(),
        })
    }
}

/// An image flattened along its `from` chain.
#[derive(Debug, Clone, Default)]
struct Flat {
    /// Per architecture: the layer nodes, bottom first, with their history lines.
    layers: BTreeMap<String, Vec<(NodeId, String)>>,
    config: crate::oci::RuntimeConfig,
    accounts: Accounts,
    /// Per architecture: installed Debian packages (name → (version, unpack node)).
    installed: BTreeMap<String, BTreeMap<String, (String, NodeId)>>,
    /// The registry image at the bottom of the chain, if any.
    registry_base: Option<String>,
    /// Per architecture: that registry image's manifest digest and layer nodes (what its file
    /// set is made from, for the dpkg database and maintainer scripts of packages on top).
    registry_files: BTreeMap<String, (String, Vec<NodeId>)>,
    /// Per architecture: the newest configure node along the chain (its account files are what a
    /// derived image's declared accounts merge over).
    configured: BTreeMap<String, NodeId>,
}

/// Whether `spec` or an image of its `from` chain declares users or groups: the configure step
/// then merges them over what the packages' scripts made (a local base's `nonroot` stays).
fn chain_declares_accounts(spec: &ImageSpec) -> bool {
    let mut next = Some(spec);
    while let Some(s) = next {
        if !s.users.is_empty() || !s.groups.is_empty() {
            return true;
        }
        next = s.base.as_deref();
    }
    false
}

/// Whether the user (and group) of a `run_as` value exist in `accounts` (numeric ids always do);
/// `Err` says which is missing.
fn check_run_as(accounts: &Accounts, run_as: &str) -> Result<(), String> {
    let (user, group) = match run_as.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (run_as, None),
    };
    let numeric = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !numeric(user) && !accounts.has_user(user) {
        return Err(format!("no user `{user}` in its /etc/passwd"));
    }
    if let Some(g) = group
        && !numeric(g)
        && !accounts.has_group(g)
    {
        return Err(format!("no group `{g}` in its /etc/group"));
    }
    Ok(())
}

/// An item's numeric owner: as evaluated, with the names the evaluator left to the composer (on
/// a registry base) resolved against the image's accounts, the base's own included.
fn resolve_owner(owner: &Owner, flat: &Flat, image: &str) -> Result<(u32, u32), PlanError> {
    let Some(names) = &owner.deferred else {
        return Ok((owner.uid, owner.gid));
    };
    let missing = |what: String| PlanError::BaseImage {
        reference: flat.registry_base.clone().unwrap_or_default(),
        problem: format!("has {what}, which an `owner` or `group` in image `{image}` names"),
    };
    let (mut uid, mut gid) = (owner.uid, owner.gid);
    if let Some(name) = &names.user {
        let (u, primary) = flat
            .accounts
            .user_ids(name)
            .ok_or_else(|| missing(format!("no user `{name}` in its /etc/passwd")))?;
        uid = u;
        if names.primary_group {
            gid = primary;
        }
    }
    if let Some(name) = &names.group {
        gid = flat
            .accounts
            .group_id(name)
            .ok_or_else(|| missing(format!("no group `{name}` in its /etc/group")))?;
    }
    Ok((uid, gid))
}

impl Flat {
    fn layer_count(&self) -> usize {
        self.layers.values().map(Vec::len).max().unwrap_or(0)
    }
}

/// A copy source as scanned: the absolute source with its include and exclude globs.
type ScanKey = (std::path::PathBuf, Vec<String>, Vec<String>);

struct Compiler<'a> {
    graph: BuildGraph,
    loader: &'a FsLoader,
    opts: &'a CompileOptions,
    memo: HashMap<(String, String), Flat>,
    /// Every copy source of the build, scanned up front in parallel.
    scans: HashMap<ScanKey, Vec<ScannedEntry>>,
    /// Build nodes by (declaring file, build name).
    builds: HashMap<(String, String), NodeId>,
}

/// Compiles every given image (and the bases they extend) into one graph.
pub fn compile(
    images: &[ImageSpec],
    loader: &FsLoader,
    store: &Store,
    opts: &CompileOptions,
) -> Result<BuildGraph, PlanError> {
    let scans = scan_all(images, loader, store)?;
    let mut c = Compiler {
        graph: BuildGraph::default(),
        loader,
        opts,
        memo: HashMap::new(),
        scans,
        builds: HashMap::new(),
    };
    for spec in images {
        let flat = c.flatten(spec)?;
        let outputs = c.image_nodes(spec, &flat);
        c.graph.images.push(outputs);
    }
    Ok(c.graph)
}

impl Compiler<'_> {
    fn flatten(&mut self, spec: &ImageSpec) -> Result<Flat, PlanError> {
        let memo_key = (spec.declared_in.0.clone(), spec.name.clone());
        if let Some(flat) = self.memo.get(&memo_key) {
            return Ok(flat.clone());
        }
        let base = match (&spec.base, &spec.base_reference) {
            (Some(b), _) => self.flatten(b)?,
            (None, Some(reference)) => self.registry_base(spec, reference)?,
            (None, None) => Flat::default(),
        };
        let accounts = base.accounts.extend(&spec.users, &spec.groups);
        // When this image's maintainer scripts run, the configure step writes the account files
        // (the packages' accounts with the declared ones merged over them); the accounts layer
        // then only makes the home directories.
        let configured = spec.packages.is_some()
            && self
                .opts
                .debian
                .locks
                .get(&(spec.declared_in.0.clone(), spec.name.clone()))
                .is_some_and(|l| {
                    spec.architectures.iter().all(|a| {
                        l.tools.get(a).is_some_and(|t| !t.is_empty())
                            && crate::debian::configure::runs_here(a)
                    })
                });
        // A derived image without packages of its own over a base whose scripts ran: its
        // declared accounts are merged over the base's account files at build time.
        let declares_accounts = !spec.users.is_empty() || !spec.groups.is_empty();
        let over_configured_base = !configured
            && spec.packages.is_none()
            && declares_accounts
            && spec
                .architectures
                .iter()
                .all(|a| base.configured.contains_key(a));
        let mut own: Vec<LayerSpec> = Vec::new();
        if declares_accounts {
            own.push(accounts_layer(
                &accounts,
                !configured && !over_configured_base,
            ));
        }
        own.extend(spec.layers.iter().filter(|l| !l.items.is_empty()).cloned());
        let mut flat = Flat {
            layers: BTreeMap::new(),
            config: super::config::extend(&base.config, &spec.config),
            accounts,
            installed: BTreeMap::new(),
            registry_base: base.registry_base.clone(),
            registry_files: base.registry_files.clone(),
            configured: base.configured.clone(),
        };
        // On a registry base the evaluator could not see the base's accounts: a `run_as` name is
        // checked here, against the base's `/etc/passwd` and `/etc/group` and the declared ones.
        if let (Some(reference), Some(user)) = (&flat.registry_base, &spec.config.user) {
            check_run_as(&flat.accounts, user).map_err(|problem| PlanError::BaseImage {
                reference: reference.clone(),
                problem: format!(
                    "has {problem}, which `run_as = \"{user}\"` of image `{}` names",
                    spec.name
                ),
            })?;
        }
        for arch in &spec.architectures {
            flat.layers.insert(
                arch.clone(),
                base.layers.get(arch).cloned().unwrap_or_default(),
            );
            flat.installed.insert(
                arch.clone(),
                base.installed.get(arch).cloned().unwrap_or_default(),
            );
        }
        // Debian packages first (per architecture), then the image's own files on top.
        if let Some(packages) = &spec.packages {
            let budget =
                spec.max_layers
                    .unwrap_or(crate::debian::plan::DEFAULT_MAX_LAYERS) as usize;
            let reserved = own.len() + 1;
            crate::debian::plan::add_package_layers(
                &mut self.graph,
                spec,
                packages,
                chain_declares_accounts(spec).then_some(&flat.accounts),
                &self.opts.debian,
                self.opts.epoch,
                budget.saturating_sub(reserved),
                &mut flat.layers,
                &mut flat.installed,
                &flat.registry_files,
                &mut flat.configured,
            )?;
            if !flat.config.env.iter().any(|e| e.starts_with("PATH=")) {
                flat.config.env.insert(
                    0,
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                );
            }
        }
        if over_configured_base {
            let declared = crate::debian::configure::DeclaredAccounts::of(&flat.accounts);
            for (arch, layers) in flat.layers.iter_mut() {
                let Some(&configure) = flat.configured.get(arch) else {
                    continue;
                };
                let merged = self.graph.add(
                    format!("{} accounts {arch}", spec.name),
                    Step::MergeAccounts {
                        accounts: declared.clone(),
                    },
                    vec![configure],
                );
                let layer = self.graph.add(
                    format!("{} accounts layer {arch}", spec.name),
                    Step::Layer(super::derivation::LayerStep {
                        compression: spec.compression,
                        mtime: self.opts.epoch,
                        items: vec![super::derivation::LayerItem::FileSet { input: 0 }],
                    }),
                    vec![merged],
                );
                layers.push((
                    layer,
                    format!(
                        "himg: accounts of image {} over its base's packages",
                        spec.name
                    ),
                ));
            }
        }
        let below = flat.layer_count();
        if let Some(budget) = spec.max_layers {
            let budget_usize = budget as usize;
            while below + own.len() > budget_usize && own.len() >= 2 {
                if let (Some(last), Some(prev)) = (own.pop(), own.last_mut()) {
                    prev.name = format!("{}+{}", prev.name, last.name);
                    prev.items.extend(last.items);
                }
            }
            if below + own.len() > budget_usize {
                return Err(PlanError::LayerBudget {
                    image: spec.name.clone(),
                    count: below + own.len(),
                    budget,
                    base: base.layer_count(),
                });
            }
        }
        for layer in &own {
            let node = self.layer_node(spec, layer, &flat)?;
            let history = format!("himg: layer {} of image {}", layer.name, spec.name);
            for layers in flat.layers.values_mut() {
                layers.push((node, history.clone()));
            }
        }
        self.memo.insert(memo_key, flat.clone());
        Ok(flat)
    }

    /// A registry base as a flattened image: its layers as fixed-output nodes, its runtime config.
    fn registry_base(&mut self, spec: &ImageSpec, reference: &str) -> Result<Flat, PlanError> {
        let resolved =
            self.opts
                .registry_bases
                .get(reference)
                .ok_or_else(|| PlanError::BaseImage {
                    reference: reference.to_owned(),
                    problem: "was not pulled before compiling".into(),
                })?;
        let mut flat = Flat {
            registry_base: Some(reference.to_owned()),
            ..Flat::default()
        };
        for arch in &spec.architectures {
            let base = resolved.get(arch).ok_or_else(|| PlanError::BaseImage {
                reference: reference.to_owned(),
                problem: format!(
                    "has no `{arch}` image (it has: {})",
                    resolved.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })?;
            let mut layers = Vec::new();
            for (i, (desc, diff_id)) in base.layers.iter().enumerate() {
                let node = self.graph.add(
                    format!("base {reference} layer {i}"),
                    Step::BaseLayer {
                        digest: desc.digest.to_string(),
                        media_type: desc.media_type.clone(),
                        diff_id: diff_id.clone(),
                        size: desc.size,
                    },
                    Vec::new(),
                );
                let history = base
                    .config
                    .history
                    .iter()
                    .filter(|h| !h.empty_layer)
                    .nth(i)
                    .and_then(|h| h.created_by.clone())
                    .unwrap_or_else(|| format!("base {reference}"));
                layers.push((node, history));
            }
            flat.registry_files.insert(
                arch.clone(),
                (
                    base.manifest.clone(),
                    layers.iter().map(|(id, _)| *id).collect(),
                ),
            );
            flat.layers.insert(arch.clone(), layers);
            // One runtime config for all architectures: the first's (multi-arch bases agree).
            if flat.installed.is_empty() {
                flat.config = base.config.config.clone();
                flat.accounts = super::accounts::Accounts::from_files(
                    base.accounts.passwd.as_deref(),
                    base.accounts.group.as_deref(),
                );
            }
            flat.installed.insert(arch.clone(), BTreeMap::new());
        }
        Ok(flat)
    }

    /// The layer node of `layer`; `flat` gives the accounts that owner names the evaluator left
    /// unresolved (on a registry base) are resolved against.
    fn layer_node(
        &mut self,
        spec: &ImageSpec,
        layer: &LayerSpec,
        flat: &Flat,
    ) -> Result<NodeId, PlanError> {
        let mut inputs: Vec<NodeId> = Vec::new();
        let mut items: Vec<LayerItem> = Vec::new();
        for item in &layer.items {
            let owner = match item {
                ContentItem::Copy { owner, .. }
                | ContentItem::File { owner, .. }
                | ContentItem::Symlink { owner, .. }
                | ContentItem::Dir { owner, .. }
                | ContentItem::BuildOutput { owner, .. } => resolve_owner(owner, flat, &spec.name)?,
            };
            match item {
                ContentItem::Copy {
                    source,
                    source_is_dir,
                    to,
                    include,
                    exclude,
                    mode,
                    dir_mode,
                    ..
                } => {
                    let abs = absolute_source(self.loader, source);
                    let entries = self
                        .scans
                        .get(&(abs.clone(), include.clone(), exclude.clone()))
                        .cloned()
                        .unwrap_or_default();
                    let node = self.graph.add(
                        format!("copy {source}"),
                        Step::Copy {
                            entries,
                            single_file: !source_is_dir,
                        },
                        Vec::new(),
                    );
                    items.push(copy_item(&mut inputs, node, to, *mode, *dir_mode, owner));
                }
                ContentItem::File {
                    path, text, mode, ..
                } => {
                    let node = self.graph.add(
                        format!("text {path}"),
                        Step::Text { text: text.clone() },
                        Vec::new(),
                    );
                    inputs.push(node);
                    items.push(LayerItem::File {
                        input: inputs.len() - 1,
                        path: path.clone(),
                        mode: *mode,
                        uid: owner.0,
                        gid: owner.1,
                    });
                }
                ContentItem::Symlink { path, target, .. } => items.push(LayerItem::Symlink {
                    path: path.clone(),
                    target: target.clone(),
                    uid: owner.0,
                    gid: owner.1,
                }),
                ContentItem::Dir { path, mode, .. } => items.push(LayerItem::Dir {
                    path: path.clone(),
                    mode: *mode,
                    uid: owner.0,
                    gid: owner.1,
                }),
                ContentItem::BuildOutput {
                    build,
                    path,
                    to,
                    mode,
                    dir_mode,
                    ..
                } => {
                    let node = self.build_node(build)?;
                    let node = match path {
                        Some(path) => self.graph.add(
                            format!("build {} output {path}", build.name),
                            Step::Select { path: path.clone() },
                            vec![node],
                        ),
                        None => node,
                    };
                    items.push(copy_item(&mut inputs, node, to, *mode, *dir_mode, owner));
                }
            }
        }
        let step = Step::Layer(LayerStep {
            compression: spec.compression,
            mtime: self.opts.epoch,
            items,
        });
        Ok(self
            .graph
            .add(format!("{}/{}", spec.name, layer.name), step, inputs))
    }

    /// The node of a `build` block (and, first, of its environment image and the builds it
    /// consumes). Builds run natively: the environment must have the host's architecture.
    fn build_node(&mut self, build: &BuildSpec) -> Result<NodeId, PlanError> {
        let memo_key = (build.declared_in.0.clone(), build.name.clone());
        if let Some(&id) = self.builds.get(&memo_key) {
            return Ok(id);
        }
        let env = &build.environment;
        let host = crate::builder::native_architecture();
        if !env.architectures.iter().any(|a| a == host) {
            return Err(PlanError::BuildEnvironment {
                build: build.name.clone(),
                image: env.name.clone(),
                problem: format!(
                    "has no `{host}` variant (it has: {}); builds run natively on this `{host}` host",
                    env.architectures.join(", ")
                ),
            });
        }
        let flat = self.flatten(env)?;
        let outputs = self.image_nodes(env, &flat);
        let Some(manifest) = outputs
            .per_arch
            .iter()
            .find(|a| a.architecture == host)
            .map(|a| a.manifest)
        else {
            return Err(PlanError::BuildEnvironment {
                build: build.name.clone(),
                image: env.name.clone(),
                problem: format!("has no `{host}` manifest"),
            });
        };
        let mut inputs = vec![manifest];
        let mut sources = Vec::new();
        for source in &build.sources {
            match source {
                BuildSource::Files {
                    source,
                    source_is_dir,
                    to,
                    include,
                    exclude,
                } => {
                    let abs = absolute_source(self.loader, source);
                    let entries = self
                        .scans
                        .get(&(abs, include.clone(), exclude.clone()))
                        .cloned()
                        .unwrap_or_default();
                    inputs.push(self.graph.add(
                        format!("copy {source}"),
                        Step::Copy {
                            entries,
                            single_file: !source_is_dir,
                        },
                        Vec::new(),
                    ));
                    sources.push(BuildPlacement {
                        path: None,
                        to: to.clone(),
                    });
                }
                BuildSource::Output { build, path, to } => {
                    inputs.push(self.build_node(build)?);
                    sources.push(BuildPlacement {
                        path: path.clone(),
                        to: to.clone(),
                    });
                }
            }
        }
        let node = self.graph.add(
            format!("build {}", build.name),
            Step::Build(BuildStep {
                argv: build.run.clone(),
                env: build.env.clone(),
                outputs: build.outputs.clone(),
                epoch: self.opts.epoch,
                hash: build.hash.clone(),
                sources,
                timeout: build.timeout,
                rules: crate::builder::RULES,
            }),
            inputs,
        );
        self.builds.insert(memo_key, node);
        Ok(node)
    }

    /// What an image's analysis takes from the lock: the packages of the nearest image along the
    /// `from` chain that has locked packages, and its suites' codenames.
    fn analysis_step(&self, spec: &ImageSpec, arch: &str) -> crate::analysis::AnalysisStep {
        let mut at = Some(spec);
        let mut locked = None;
        while let Some(s) = at {
            if let Some(l) = self
                .opts
                .debian
                .locks
                .get(&(s.declared_in.0.clone(), s.name.clone()))
            {
                locked = Some(l);
                break;
            }
            at = s.base.as_deref();
        }
        crate::analysis::AnalysisStep {
            image: spec.name.clone(),
            architecture: arch.to_string(),
            locked: locked
                .and_then(|l| l.architectures.get(arch))
                .cloned()
                .unwrap_or_default(),
            codenames: locked
                .map(|l| {
                    l.repositories
                        .iter()
                        .flat_map(|r| r.suites.iter().filter_map(|s| s.codename.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            rules: crate::analysis::RULES,
        }
    }

    fn image_nodes(&mut self, spec: &ImageSpec, flat: &Flat) -> ImageOutputs {
        let mut annotations: BTreeMap<String, String> = spec.annotations.clone();
        annotations.insert(
            "org.opencontainers.image.created".into(),
            crate::oci::epoch_to_rfc3339(self.opts.epoch),
        );
        let mut per_arch = Vec::new();
        for arch in &spec.architectures {
            let arch_layers = flat.layers.get(arch).cloned().unwrap_or_default();
            let layers: Vec<NodeId> = arch_layers.iter().map(|(n, _)| *n).collect();
            let history: Vec<String> = arch_layers.iter().map(|(_, h)| h.clone()).collect();
            let config = self.graph.add(
                format!("{} config {arch}", spec.name),
                Step::Config(ConfigStep {
                    architecture: arch.clone(),
                    os: "linux".into(),
                    created: self.opts.epoch,
                    config: flat.config.clone(),
                    history,
                }),
                layers.clone(),
            );
            let mut inputs = vec![config];
            inputs.extend(layers.iter().copied());
            let manifest = self.graph.add(
                format!("{} manifest {arch}", spec.name),
                Step::Manifest(ManifestStep {
                    annotations: annotations.clone(),
                }),
                inputs,
            );
            let mut analysis_inputs = vec![manifest];
            for (layer, _) in &arch_layers {
                let name = format!("{} scan", self.graph.node(*layer).name);
                analysis_inputs.push(self.graph.add(
                    name,
                    Step::LayerScan {
                        rules: crate::image::scan::SCAN_RULES,
                    },
                    vec![*layer],
                ));
            }
            let analysis = self.graph.add(
                format!("{} analysis {arch}", spec.name),
                Step::Analysis(self.analysis_step(spec, arch)),
                analysis_inputs,
            );
            per_arch.push(ArchOutputs {
                architecture: arch.clone(),
                manifest,
                analysis,
                config,
                layers,
            });
        }
        let top = if per_arch.len() == 1 {
            per_arch[0].manifest
        } else {
            self.graph.add(
                format!("{} index", spec.name),
                Step::Index(IndexStep {
                    annotations,
                    platforms: per_arch
                        .iter()
                        .map(|a| (a.architecture.clone(), "linux".to_string()))
                        .collect(),
                }),
                per_arch.iter().map(|a| a.manifest).collect(),
            )
        };
        ImageOutputs {
            name: spec.name.clone(),
            top,
            per_arch,
        }
    }
}

/// The on-disk path of a copy source.
fn absolute_source(loader: &FsLoader, source: &himg_lang::SourcePath) -> std::path::PathBuf {
    let abs = loader.resolve(source);
    std::path::absolute(&abs).unwrap_or(abs)
}

/// Scans (lists and hashes) every distinct copy source of the images and their bases, in parallel.
fn scan_all(
    images: &[ImageSpec],
    loader: &FsLoader,
    store: &Store,
) -> Result<HashMap<ScanKey, Vec<ScannedEntry>>, PlanError> {
    use rayon::prelude::*;
    let mut keys: std::collections::BTreeSet<ScanKey> = std::collections::BTreeSet::new();
    for spec in himg_lang::images_reached(images) {
        for item in spec.layers.iter().flat_map(|l| &l.items) {
            if let ContentItem::Copy {
                source,
                include,
                exclude,
                ..
            } = item
            {
                keys.insert((
                    absolute_source(loader, source),
                    include.clone(),
                    exclude.clone(),
                ));
            }
        }
    }
    for build in himg_lang::builds_reached(images) {
        for source in &build.sources {
            if let BuildSource::Files {
                source,
                include,
                exclude,
                ..
            } = source
            {
                keys.insert((
                    absolute_source(loader, source),
                    include.clone(),
                    exclude.clone(),
                ));
            }
        }
    }
    keys.into_par_iter()
        .map(|key| {
            let entries = scan_copy(store, &key.0, &key.1, &key.2)?;
            Ok((key, entries))
        })
        .collect()
}

/// The generated accounts layer: passwd, group, shadow and home directories.
fn accounts_layer(accounts: &Accounts, files: bool) -> LayerSpec {
    let root = Owner::default();
    let mut items = vec![ContentItem::Dir {
        path: "/etc".into(),
        mode: 0o755,
        owner: root.clone(),
    }];
    let files = files.then(|| {
        vec![
            ContentItem::File {
                path: "/etc/passwd".into(),
                text: accounts.passwd(),
                mode: 0o644,
                owner: root.clone(),
            },
            ContentItem::File {
                path: "/etc/group".into(),
                text: accounts.group(),
                mode: 0o644,
                owner: root.clone(),
            },
            ContentItem::File {
                path: "/etc/shadow".into(),
                text: accounts.shadow(),
                mode: 0o640,
                owner: root,
            },
        ]
    });
    items.extend(files.into_iter().flatten());
    for (home, uid, gid) in accounts.homes() {
        items.push(ContentItem::Dir {
            path: home,
            mode: 0o700,
            owner: Owner {
                uid,
                gid,
                deferred: None,
            },
        });
    }
    LayerSpec {
        name: "accounts".into(),
        items,
    }
}

/// A layer item copying the tree of `node` (made the layer step's next input) to `to`.
fn copy_item(
    inputs: &mut Vec<NodeId>,
    node: NodeId,
    to: &str,
    mode: Option<u32>,
    dir_mode: Option<u32>,
    owner: (u32, u32),
) -> LayerItem {
    inputs.push(node);
    LayerItem::Copy {
        input: inputs.len() - 1,
        to: to.to_owned(),
        mode,
        dir_mode,
        uid: owner.0,
        gid: owner.1,
    }
}
