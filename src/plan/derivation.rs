//! The derivation graph: what each node builds, and how its key is computed.
//!
//! A derivation's key is blake3 over a canonical encoding of its kind, its parameters (canonical JSON),
//! and the keys of its inputs. Steps that read project files carry the content hash of every file they
//! read in their parameters, so an edited file changes the key of exactly the nodes that read it.
//!
//! After its inputs are realised, a node also has a *resolved key*: the same encoding with each input's
//! output content in place of the input's key. Two input derivations with different keys but equal
//! output content give equal resolved keys, which is how early cutoff works.

use std::collections::HashMap;

use himg_store::{B3Digest, ObjectRef};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::Serialize;

use super::inputs::ScannedEntry;

/// Identifies a node of a [`BuildGraph`].
pub type NodeId = NodeIndex<u32>;

/// Version of the key encoding; bump it whenever a step's output for the same parameters changes.
const KEY_VERSION: &str = "himg-derivation-v1";

/// What a node produces.
#[derive(Debug, Clone, Serialize)]
#[allow(clippy::large_enum_variant)] // built once per node; boxing would only add indirection
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Step {
    /// Import a project file (→ blob) or directory (→ tree) into the store.
    Copy {
        /// Sorted listing with the content hash of every file read.
        entries: Vec<ScannedEntry>,
        single_file: bool,
    },
    /// Inline text (a `file` item, or a generated file such as `/etc/passwd`) → blob.
    Text { text: String },
    /// Download a pinned `.deb` (a fixed-output derivation: the key is its sha256) → blob.
    FetchDeb {
        sha256: String,
        size: u64,
        /// Where to download it from (not part of the key: any mirror gives the same bytes).
        #[serde(skip)]
        url: String,
    },
    /// Unpack and minimise a `.deb` → a file set (manifest blob).
    UnpackDeb {
        package: String,
        keep_docs: bool,
        locales: Vec<String>,
        /// `path_exclude` globs (left out of the key when empty, so older keys stay valid).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        path_exclude: Vec<String>,
        /// `path_include` globs (idem).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        path_include: Vec<String>,
        /// Paths that keep their setuid/setgid bits (idem).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        keep_setuid: Vec<String>,
        /// Version of the unpacking rules; bump when they change.
        rules: u32,
    },
    /// The dpkg database, CA bundle, ld.so.cache and merged-/usr links for a set of unpacked
    /// packages (the inputs, sorted by name) → a file set.
    DebianSystem {
        architecture: String,
        packages: Vec<String>,
        /// The manifest of a registry base whose files and dpkg database are the first input
        /// (a [`Step::BaseFiles`]); left out of the key when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
        rules: u32,
    },
    /// The maintainer scripts of an image's packages run in a sandbox (inputs: the system files,
    /// then the packages' file sets in `packages` order, then the configure tools' in `tools`
    /// order) → the system files with the scripts' effects merged over them (a file set).
    DebianConfigure {
        architecture: String,
        packages: Vec<String>,
        tools: Vec<String>,
        /// `SOURCE_DATE_EPOCH` of the scripts.
        epoch: u64,
        /// The image's declared accounts (a base's included), merged over the packages'.
        #[serde(skip_serializing_if = "Option::is_none")]
        accounts: Option<crate::debian::configure::DeclaredAccounts>,
        /// The image keeps documentation.
        keep_docs: bool,
        /// Alternatives pinned to a choice (name → path).
        #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        alternatives: std::collections::BTreeMap<String, String>,
        /// The manifest of a registry base whose files are the second input (after the system
        /// files): the image state the scripts run over; left out of the key when `None`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        base: Option<String>,
        rules: u32,
    },
    /// The merged root filesystem of a registry base image (inputs: its layers, already in the
    /// store's OCI blobs) → a file set.
    BaseFiles { manifest: String, rules: u32 },
    /// An image's declared accounts merged over the account files of a configure step below it
    /// (the input) → a file set of `/etc/passwd`, `/etc/group`, `/etc/shadow`.
    MergeAccounts {
        accounts: crate::debian::configure::DeclaredAccounts,
    },
    /// A layer of a registry base image, already pulled into the store's OCI blobs (a fixed-output
    /// derivation: the key is its digest) → that blob.
    BaseLayer {
        digest: String,
        media_type: String,
        diff_id: String,
        size: u64,
    },
    /// Place the inputs' contents at their destinations with modes and owners → a compressed OCI layer.
    Layer(LayerStep),
    /// The OCI image config for one architecture; inputs are the image's layers, bottom first.
    Config(ConfigStep),
    /// The OCI manifest for one architecture; inputs are the config, then the layers.
    Manifest(ManifestStep),
    /// An OCI index over per-architecture manifests (multi-arch images only).
    Index(IndexStep),
    /// A `build` block's command run in a sandbox (inputs: the environment image's manifest, then
    /// one per source) → the tree of its declared outputs, its log kept as a blob.
    Build(BuildStep),
    /// One path of a tree (the only input: a build's outputs) → a tree like a `copy` source's
    /// (a file path gives a one-entry tree marked `single_file`).
    Select { path: String },
    /// One layer blob (the only input) read into a [`crate::image::scan::LayerScan`] → a blob.
    LayerScan { rules: u32 },
    /// SBOMs and policy facts of one image: inputs are its manifest, then its layers' scans,
    /// bottom first → a record blob.
    Analysis(crate::analysis::AnalysisStep),
}

impl Step {
    /// A short kind name for display and for the key encoding.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Copy { .. } => "copy",
            Step::FetchDeb { .. } => "fetch",
            Step::UnpackDeb { .. } => "unpack",
            Step::DebianSystem { .. } => "system",
            Step::DebianConfigure { .. } => "configure",
            Step::MergeAccounts { .. } => "accounts",
            Step::Text { .. } => "text",
            Step::BaseLayer { .. } => "base-layer",
            Step::BaseFiles { .. } => "base-files",
            Step::Layer(_) => "layer",
            Step::Config(_) => "config",
            Step::Manifest(_) => "manifest",
            Step::Index(_) => "index",
            Step::Build(_) => "build",
            Step::Select { .. } => "select",
            Step::LayerScan { .. } => "layer-scan",
            Step::Analysis(_) => "analysis",
        }
    }
}

/// Every [`Step::kind`], for `himg graph --kind`.
pub const STEP_KINDS: &[&str] = &[
    "copy",
    "fetch",
    "unpack",
    "system",
    "configure",
    "accounts",
    "text",
    "base-layer",
    "base-files",
    "layer",
    "config",
    "manifest",
    "index",
    "build",
    "select",
    "layer-scan",
    "analysis",
];

/// What a build runs. Its inputs are the environment's manifest, then its sources in order.
#[derive(Debug, Clone, Serialize)]
pub struct BuildStep {
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub outputs: Vec<String>,
    /// `SOURCE_DATE_EPOCH` in the sandbox.
    pub epoch: u64,
    /// A fixed-output build's declared output hash.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Where each source (input `1 + i`) lands in the work directory.
    pub sources: Vec<BuildPlacement>,
    /// Seconds before the command is killed (not part of the key: it does not change outputs).
    #[serde(skip)]
    pub timeout: u32,
    /// Version of the build rules (the sandbox's fixed environment, the capture); bump when they
    /// change what a build produces.
    pub rules: u32,
}

/// Where one source of a build lands.
#[derive(Debug, Clone, Serialize)]
pub struct BuildPlacement {
    /// Only this path of another build's outputs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Relative to the work directory.
    pub to: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerStep {
    pub compression: himg_lang::Compression,
    /// File times in the tar (the build epoch).
    pub mtime: u64,
    pub items: Vec<LayerItem>,
}

/// One item of a layer. `input` indexes the node's input list.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LayerItem {
    Copy {
        input: usize,
        to: String,
        mode: Option<u32>,
        dir_mode: Option<u32>,
        uid: u32,
        gid: u32,
    },
    File {
        input: usize,
        path: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        path: String,
        target: String,
        uid: u32,
        gid: u32,
    },
    Dir {
        path: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    /// Every entry of a file set (an unpacked package or generated system files), as recorded.
    FileSet { input: usize },
}

#[derive(Debug, Clone, Serialize)]
pub struct ConfigStep {
    pub architecture: String,
    pub os: String,
    pub created: u64,
    pub config: crate::oci::RuntimeConfig,
    /// One `created_by` line per layer, same order as the inputs.
    pub history: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ManifestStep {
    pub annotations: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IndexStep {
    pub annotations: std::collections::BTreeMap<String, String>,
    /// `(architecture, os)` per input manifest.
    pub platforms: Vec<(String, String)>,
}

/// One node: a step, a human name, and its derivation key.
#[derive(Debug, Clone)]
pub struct Derivation {
    pub name: String,
    pub step: Step,
    pub key: B3Digest,
    /// Inputs in the order the step refers to them.
    pub inputs: Vec<NodeId>,
}

/// Everything one image needs: the node at the top (manifest, or index when multi-arch) and, per
/// architecture, the config, manifest and layer nodes.
#[derive(Debug, Clone)]
pub struct ImageOutputs {
    pub name: String,
    pub top: NodeId,
    pub per_arch: Vec<ArchOutputs>,
}

#[derive(Debug, Clone)]
pub struct ArchOutputs {
    pub architecture: String,
    pub manifest: NodeId,
    /// The image's analysis (SBOMs, policy facts); realised only when a build asks for it.
    pub analysis: NodeId,
    pub config: NodeId,
    pub layers: Vec<NodeId>,
}

/// The DAG of derivations for one build. Edges point from an input to the node that consumes it.
#[derive(Debug, Default)]
pub struct BuildGraph {
    pub graph: DiGraph<Derivation, (), u32>,
    pub images: Vec<ImageOutputs>,
    by_key: HashMap<B3Digest, NodeId>,
}

impl BuildGraph {
    /// Adds a node (or returns the existing node with the same key: equal work is done once).
    pub fn add(&mut self, name: String, step: Step, inputs: Vec<NodeId>) -> NodeId {
        let input_keys: Vec<String> = inputs
            .iter()
            .map(|&i| self.graph[i].key.to_string())
            .collect();
        let key = derivation_key(&step, &input_keys);
        if let Some(&id) = self.by_key.get(&key) {
            return id;
        }
        let id = self.graph.add_node(Derivation {
            name,
            step,
            key,
            inputs: inputs.clone(),
        });
        for input in inputs {
            self.graph.add_edge(input, id, ());
        }
        self.by_key.insert(key, id);
        id
    }

    pub fn node(&self, id: NodeId) -> &Derivation {
        &self.graph[id]
    }

    /// The graph as Graphviz DOT, every step, nodes labelled with kind, name and short key
    /// ([`super::dot::render`] for other views).
    pub fn to_dot(&self) -> String {
        super::dot::render(self, &super::dot::DotView::default())
    }

    /// The graph as JSON: nodes with kind, name, key and inputs; and the images.
    pub fn to_json(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .graph
            .node_indices()
            .map(|id| {
                let d = &self.graph[id];
                serde_json::json!({
                    "id": id.index(),
                    "kind": d.step.kind(),
                    "name": d.name,
                    "key": d.key.to_string(),
                    "inputs": d.inputs.iter().map(|i| i.index()).collect::<Vec<_>>(),
                })
            })
            .collect();
        let images: Vec<serde_json::Value> = self
            .images
            .iter()
            .map(|img| serde_json::json!({"name": img.name, "top": img.top.index()}))
            .collect();
        serde_json::json!({ "nodes": nodes, "images": images })
    }
}

/// The key of a step given its input keys (or, for the resolved key, its inputs' output contents).
pub fn derivation_key(step: &Step, inputs: &[String]) -> B3Digest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(KEY_VERSION.as_bytes());
    hasher.update(b"\0");
    hasher.update(step.kind().as_bytes());
    hasher.update(b"\0");
    // Serialising plain data cannot fail; an empty encoding would still be a distinct key.
    hasher.update(&crate::oci::canonical_json(step).unwrap_or_default());
    for input in inputs {
        hasher.update(b"\0");
        hasher.update(input.as_bytes());
    }
    B3Digest::from(hasher.finalize())
}

/// The resolved key: inputs identified by what they produced rather than how.
pub fn resolved_key(step: &Step, input_contents: &[ObjectRef]) -> B3Digest {
    let refs: Vec<String> = input_contents.iter().map(|r| format!("out:{r}")).collect();
    derivation_key(step, &refs)
}
