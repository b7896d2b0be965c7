//! Adding an image's locked Debian packages to the build graph: per architecture, one fetch and one
//! unpack derivation per package, package layers within the layer budget, and a system layer.
//!
//! Layering: each package gets its own layer, so an update of one package changes one layer and
//! images that share packages share layers. When the budget is smaller than the package count, the
//! largest packages keep their own layers and the rest share one `packages` layer. Packages already
//! installed by the base image (same name and version) are not added again.

use std::collections::BTreeMap;

use himg_lang::{ImageSpec, PackagesSpec};

use super::lockfile::{LockedImage, LockedPackage};
use crate::plan::{BuildGraph, LayerItem, LayerStep, NodeId, PlanError, Step};

/// Layer budget of an image with packages when `max_layers` is not set (runtimes fail near 125).
pub const DEFAULT_MAX_LAYERS: u32 = 64;

/// Version of the unpack and system-file rules (part of their derivation keys). 2: setuid and
/// setgid bits are stripped from package files unless named in `keep_setuid`. 3: the system files
/// hold base-files' directory skeleton (`/tmp`, `/var/tmp`, `/run`, `/var/log`…). 4: file sets
/// keep the install-time control files (the configure step runs them).
pub const RULES_VERSION: u32 = 4;

/// What the composer knows before compiling: the lock of each image with packages, and each
/// repository URL (`mirror://debian`) resolved to a base URL.
#[derive(Debug, Clone, Default)]
pub struct DebianInputs {
    pub locks: BTreeMap<(String, String), LockedImage>,
    pub base_urls: BTreeMap<String, String>,
}

#[allow(clippy::too_many_arguments)]
pub fn add_package_layers(
    graph: &mut BuildGraph,
    spec: &ImageSpec,
    packages: &PackagesSpec,
    declared: Option<&crate::plan::accounts::Accounts>,
    inputs: &DebianInputs,
    epoch: u64,
    budget: usize,
    layers: &mut BTreeMap<String, Vec<(NodeId, String)>>,
    installed: &mut BTreeMap<String, BTreeMap<String, (String, NodeId)>>,
    registry_base: &BTreeMap<String, (String, Vec<NodeId>)>,
    configured: &mut BTreeMap<String, NodeId>,
) -> Result<(), PlanError> {
    let locked = inputs
        .locks
        .get(&(spec.declared_in.0.clone(), spec.name.clone()))
        .ok_or_else(|| PlanError::NotLocked {
            image: spec.name.clone(),
        })?;
    let repo_url = |name: &str| -> Result<String, PlanError> {
        let url = packages
            .repositories
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.url.clone())
            .ok_or_else(|| PlanError::NotLocked {
                image: spec.name.clone(),
            })?;
        Ok(inputs.base_urls.get(&url).cloned().unwrap_or(url))
    };
    for arch in &spec.architectures {
        let pkgs = locked
            .architectures
            .get(arch)
            .ok_or_else(|| PlanError::NotLocked {
                image: spec.name.clone(),
            })?;
        let arch_installed = installed.entry(arch.clone()).or_default();
        // A registry base's packages (the lock lists them apart): installed by its layers.
        let in_base: BTreeMap<&str, &str> = locked
            .base_installed
            .get(arch)
            .into_iter()
            .flatten()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        let base_files = registry_base.get(arch).map(|(manifest, layers)| {
            let node = graph.add(
                format!("base {manifest} files"),
                Step::BaseFiles {
                    manifest: manifest.clone(),
                    rules: RULES_VERSION,
                },
                layers.clone(),
            );
            (manifest.clone(), node)
        });
        let mut new: Vec<(String, u64, NodeId)> = Vec::new();
        for p in pkgs {
            if arch_installed
                .get(&p.name)
                .is_some_and(|(v, _)| v == &p.version)
                || in_base.get(p.name.as_str()) == Some(&p.version.as_str())
            {
                continue;
            }
            let (name, step) = fetch_step(p, &repo_url(&p.repository)?);
            let fetch = graph.add(name, step, Vec::new());
            let unpack = graph.add(
                format!("{} {}", p.name, p.version),
                Step::UnpackDeb {
                    package: p.name.clone(),
                    keep_docs: packages.keep_docs,
                    locales: packages.locales.clone(),
                    path_exclude: packages.path_exclude.clone(),
                    path_include: packages.path_include.clone(),
                    keep_setuid: packages.keep_setuid.clone(),
                    rules: RULES_VERSION,
                },
                vec![fetch],
            );
            arch_installed.insert(p.name.clone(), (p.version.clone(), unpack));
            new.push((p.name.clone(), p.size, unpack));
        }
        // The largest packages keep their own layers; the rest share one.
        let own_slots = budget.saturating_sub(1).max(1);
        let mut by_size = new.clone();
        by_size.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let shared: Vec<String> = if new.len() > own_slots {
            by_size[own_slots - 1..]
                .iter()
                .map(|p| p.0.clone())
                .collect()
        } else {
            Vec::new()
        };
        let arch_layers = layers.entry(arch.clone()).or_default();
        if !shared.is_empty() {
            let members: Vec<&(String, u64, NodeId)> =
                new.iter().filter(|p| shared.contains(&p.0)).collect();
            let node = graph.add(
                format!("{} packages ({})", spec.name, members.len()),
                package_layer_step(spec, epoch, members.len()),
                members.iter().map(|p| p.2).collect(),
            );
            arch_layers.push((node, format!("himg: {} packages", members.len())));
        }
        for (name, _, unpack) in new.iter().filter(|p| !shared.contains(&p.0)) {
            let node = graph.add(
                format!("package {name}"),
                package_layer_step(spec, epoch, 1),
                vec![*unpack],
            );
            arch_layers.push((node, format!("himg: package {name}")));
        }
        // System files for every installed package (the base's and this image's).
        let all: Vec<(String, NodeId)> = arch_installed
            .iter()
            .map(|(n, (_, id))| (n.clone(), *id))
            .collect();
        let mut system_inputs: Vec<NodeId> = base_files.iter().map(|(_, id)| *id).collect();
        system_inputs.extend(all.iter().map(|(_, id)| *id));
        let system = graph.add(
            format!("{} debian system {arch}", spec.name),
            Step::DebianSystem {
                architecture: arch.clone(),
                packages: all.iter().map(|(n, _)| n.clone()).collect(),
                base: base_files.as_ref().map(|(m, _)| m.clone()),
                rules: RULES_VERSION,
            },
            system_inputs,
        );
        // The maintainer scripts, when the lock has the tools to run them with.
        // Only where this host executes the architecture's programs (no emulation).
        let top = match locked
            .tools
            .get(arch)
            .filter(|t| !t.is_empty() && crate::debian::configure::runs_here(arch))
        {
            Some(tools) => {
                let mut tool_nodes = Vec::new();
                for p in tools {
                    let (name, step) = fetch_step(p, &repo_url(&p.repository)?);
                    let fetch = graph.add(name, step, Vec::new());
                    let unpack = graph.add(
                        format!("{} {}", p.name, p.version),
                        Step::UnpackDeb {
                            package: p.name.clone(),
                            keep_docs: false,
                            locales: Vec::new(),
                            path_exclude: Vec::new(),
                            path_include: Vec::new(),
                            keep_setuid: Vec::new(),
                            rules: RULES_VERSION,
                        },
                        vec![fetch],
                    );
                    tool_nodes.push((p.name.clone(), unpack));
                }
                let mut node_inputs = vec![system];
                node_inputs.extend(base_files.iter().map(|(_, id)| *id));
                node_inputs.extend(all.iter().map(|(_, id)| *id));
                node_inputs.extend(tool_nodes.iter().map(|(_, id)| *id));
                let node = graph.add(
                    format!("{} configure {arch}", spec.name),
                    Step::DebianConfigure {
                        architecture: arch.clone(),
                        packages: all.iter().map(|(n, _)| n.clone()).collect(),
                        tools: tool_nodes.iter().map(|(n, _)| n.clone()).collect(),
                        epoch,
                        accounts: declared.map(crate::debian::configure::DeclaredAccounts::of),
                        keep_docs: packages.keep_docs,
                        alternatives: packages.alternatives.clone(),
                        base: base_files.as_ref().map(|(m, _)| m.clone()),
                        rules: crate::debian::configure::CONFIGURE_VERSION,
                    },
                    node_inputs,
                );
                configured.insert(arch.clone(), node);
                node
            }
            None => system,
        };
        let layer = graph.add(
            format!("{} system layer {arch}", spec.name),
            package_layer_step(spec, epoch, 1),
            vec![top],
        );
        arch_layers.push((layer, "himg: dpkg database and generated files".into()));
    }
    Ok(())
}

/// The fixed-output download of one locked `.deb` (its key is the sha256: any mirror serves it),
/// with its node name; `base` is the repository's resolved base URL.
pub fn fetch_step(p: &LockedPackage, base: &str) -> (String, Step) {
    (
        format!("{}_{}_{}.deb", p.name, p.version, p.architecture),
        Step::FetchDeb {
            sha256: p.sha256.clone(),
            size: p.size,
            url: format!("{}/{}", base.trim_end_matches('/'), p.filename),
        },
    )
}

fn package_layer_step(spec: &ImageSpec, epoch: u64, inputs: usize) -> Step {
    Step::Layer(LayerStep {
        compression: spec.compression,
        mtime: epoch,
        items: (0..inputs)
            .map(|input| LayerItem::FileSet { input })
            .collect(),
    })
}
