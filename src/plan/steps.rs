//! Building one derivation: each step kind turns its inputs' outputs into new store objects.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use himg_store::{B3Digest, Node, ObjectRef, Sha256Digest, Store, Tree, TreeEntry};
use serde_json::json;

use super::PlanError;
use super::config::platform;
use super::derivation::{LayerItem, LayerStep, Step};
use super::inputs::{ScannedEntry, ScannedKind};
use super::realise::Realised;
use crate::oci::{self, Compression, ContentSource, EntryKind, LayerEntry};

/// What a step produced, before it is registered in the store.
#[derive(Debug)]
pub struct Built {
    pub content: ObjectRef,
    pub size: u64,
    pub meta: serde_json::Value,
    pub refs_objects: Vec<ObjectRef>,
}

/// What building needs besides the inputs: the store, and a fetcher when packages are downloaded.
pub struct StepContext<'a> {
    pub store: &'a Store,
    pub fetcher: Option<&'a crate::debian::fetch::Fetcher>,
}

pub fn build_step(
    cx: &StepContext<'_>,
    key: &B3Digest,
    step: &Step,
    inputs: &[&Realised],
) -> Result<Built, PlanError> {
    let store = cx.store;
    match step {
        Step::Build(build) => build_derivation(store, key, build, inputs),
        Step::Select { path } => select(store, path, inputs),
        Step::FetchDeb { sha256, size, url } => {
            let fetcher = cx.fetcher.ok_or_else(|| PlanError::BadStoreEntry {
                what: format!("{url} (no network access configured)"),
            })?;
            let (blob, got) = crate::debian::build::fetch_deb(store, fetcher, url, *size, sha256)?;
            Ok(Built {
                content: ObjectRef::Blob(blob),
                size: got,
                meta: json!({"sha256": sha256}),
                refs_objects: vec![ObjectRef::Blob(blob)],
            })
        }
        Step::UnpackDeb {
            package,
            keep_docs,
            locales,
            path_exclude,
            path_include,
            keep_setuid,
            ..
        } => {
            let deb = input_blob(inputs, 0)?;
            let policy = crate::debian::minimize::MinimizePolicy {
                keep_docs: *keep_docs,
                keep_locales: locales.clone(),
                paths: crate::debian::minimize::PathFilter::new(path_exclude, path_include)
                    .map_err(crate::debian::DebianError::from)?,
                // Entries are named after the merged-/usr mapping: `/bin/su` is `/usr/bin/su`.
                keep_setuid: keep_setuid
                    .iter()
                    .map(|p| crate::debian::unpack::map_merged_usr(p).unwrap_or_else(|| p.clone()))
                    .collect(),
            };
            let set = crate::debian::build::unpack_to_fileset(store, &deb, package, &policy)?;
            put_fileset(store, &set)
        }
        Step::DebianSystem {
            packages,
            architecture,
            base,
            ..
        } => {
            let (base_set, inputs) = match (base, inputs.split_first()) {
                (Some(_), Some((first, rest))) => (Some(read_fileset(store, first)?), rest),
                _ => (None, inputs),
            };
            let mut sets = Vec::new();
            for (name, input) in packages.iter().zip(inputs) {
                sets.push((name.clone(), read_fileset(store, input)?));
            }
            let set =
                crate::debian::build::system_files(store, architecture, &sets, base_set.as_ref())?;
            put_fileset(store, &set)
        }
        Step::BaseFiles { manifest, .. } => {
            let set = crate::registry::base::base_files(store, manifest).map_err(|problem| {
                PlanError::BadStoreEntry {
                    what: format!("base image {manifest} ({problem})"),
                }
            })?;
            put_fileset(store, &set)
        }
        Step::DebianConfigure {
            architecture,
            packages,
            tools,
            epoch,
            accounts,
            keep_docs,
            alternatives,
            base,
            ..
        } => {
            let (system, rest) = inputs
                .split_first()
                .ok_or_else(|| PlanError::BadStoreEntry {
                    what: "configure step without system files".into(),
                })?;
            let system = read_fileset(store, system)?;
            let (base_set, rest) = match (base, rest.split_first()) {
                (Some(_), Some((first, rest))) => (Some(read_fileset(store, first)?), rest),
                _ => (None, rest),
            };
            let mut package_sets = Vec::new();
            for (name, input) in packages.iter().zip(rest) {
                package_sets.push((name.clone(), read_fileset(store, input)?));
            }
            let mut tool_sets = Vec::new();
            for (name, input) in tools.iter().zip(rest.iter().skip(packages.len())) {
                tool_sets.push((name.clone(), read_fileset(store, input)?));
            }
            let set = crate::debian::configure::configure(
                store,
                &crate::debian::configure::ConfigureInput {
                    architecture,
                    epoch: *epoch,
                    system: &system,
                    packages: &package_sets,
                    tools: &tool_sets,
                    accounts: accounts.as_ref(),
                    keep_docs: *keep_docs,
                    alternatives,
                    base: base_set.as_ref(),
                },
            )
            .map_err(crate::debian::DebianError::from)?;
            put_fileset(store, &set)
        }
        Step::MergeAccounts { accounts } => {
            let below = inputs.first().ok_or_else(|| PlanError::BadStoreEntry {
                what: "accounts step without a configure step".into(),
            })?;
            let below = read_fileset(store, below)?;
            let set = crate::debian::configure::accounts_over(store, &below, accounts)
                .map_err(crate::debian::DebianError::from)?;
            put_fileset(store, &set)
        }
        Step::Copy {
            entries,
            single_file,
            ..
        } => build_copy(store, entries, *single_file),
        Step::Text { text } => {
            let blob = store.put_blob(text.as_bytes())?;
            Ok(Built {
                content: ObjectRef::Blob(blob),
                size: text.len() as u64,
                meta: json!({}),
                refs_objects: vec![ObjectRef::Blob(blob)],
            })
        }
        Step::BaseLayer {
            digest,
            media_type,
            diff_id,
            size,
        } => {
            let d = digest
                .strip_prefix("sha256:")
                .and_then(|h| himg_store::Sha256Digest::from_hex(h).ok())
                .ok_or_else(|| PlanError::BadStoreEntry {
                    what: format!("base layer {digest} (bad digest)"),
                })?;
            if !store.has_oci_blob(&d) {
                return Err(PlanError::BadStoreEntry {
                    what: format!("base layer {digest} (not in the store; build again to pull it)"),
                });
            }
            Ok(Built {
                content: ObjectRef::Oci(d),
                size: *size,
                meta: json!({"diff_id": diff_id, "media_type": media_type}),
                refs_objects: vec![ObjectRef::Oci(d)],
            })
        }
        Step::Layer(layer) => build_layer(store, layer, inputs),
        Step::Config(cfg) => {
            let mut config = oci::ImageConfig::new(&platform(&cfg.architecture), cfg.created);
            config.config = cfg.config.clone();
            for (input, created_by) in inputs.iter().zip(&cfg.history) {
                let diff_id = meta_str(input, "diff_id")?;
                let diff_id: oci::Sha256Digest =
                    diff_id.parse().map_err(|_| PlanError::BadStoreEntry {
                        what: format!("{} (bad diff_id)", input.path),
                    })?;
                config.rootfs.diff_ids.push(diff_id);
                config.history.push(oci::History {
                    created: config.created.clone(),
                    created_by: Some(created_by.clone()),
                    ..Default::default()
                });
            }
            put_json(
                store,
                &config.to_canonical_json()?,
                oci::media_types::CONFIG,
                inputs,
            )
        }
        Step::Manifest(m) => {
            let (config, layers) =
                inputs
                    .split_first()
                    .ok_or_else(|| PlanError::BadStoreEntry {
                        what: "manifest without config".into(),
                    })?;
            let mut layer_descs = Vec::new();
            for l in layers {
                layer_descs.push(descriptor(l, &meta_str(l, "media_type")?)?);
            }
            let mut manifest =
                oci::Manifest::new(descriptor(config, oci::media_types::CONFIG)?, layer_descs);
            manifest.annotations = m.annotations.clone();
            put_json(
                store,
                &manifest.to_canonical_json()?,
                oci::media_types::MANIFEST,
                inputs,
            )
        }
        Step::LayerScan { .. } => {
            let layer = inputs.first().ok_or_else(|| PlanError::BadStoreEntry {
                what: "layer scan without a layer".into(),
            })?;
            let bytes = crate::analysis::scan_layer(
                store,
                &layer.content,
                &meta_str(layer, "media_type")?,
                layer.size,
                &meta_str(layer, "diff_id")?,
            )?;
            let blob = store.put_blob(&bytes)?;
            Ok(Built {
                content: ObjectRef::Blob(blob),
                size: bytes.len() as u64,
                meta: json!({}),
                refs_objects: vec![ObjectRef::Blob(blob)],
            })
        }
        Step::Analysis(a) => {
            let (manifest, scans) =
                inputs
                    .split_first()
                    .ok_or_else(|| PlanError::BadStoreEntry {
                        what: "analysis without a manifest".into(),
                    })?;
            let scans: Vec<ObjectRef> = scans.iter().map(|s| s.content).collect();
            let out = crate::analysis::analyse(store, a, &manifest.content, &scans)?;
            Ok(Built {
                content: ObjectRef::Blob(out.record),
                size: out.size,
                meta: json!({}),
                refs_objects: out.objects,
            })
        }
        Step::Index(ix) => {
            let mut manifests = Vec::new();
            for (m, (arch, _os)) in inputs.iter().zip(&ix.platforms) {
                manifests
                    .push(descriptor(m, oci::media_types::MANIFEST)?.with_platform(platform(arch)));
            }
            let mut index = oci::Index::new(manifests);
            index.annotations = ix.annotations.clone();
            put_json(
                store,
                &index.to_canonical_json()?,
                oci::media_types::INDEX,
                inputs,
            )
        }
    }
}

/// Stores a JSON document as an OCI blob; it references its inputs' objects (config → layers, ...).
fn put_json(
    store: &Store,
    bytes: &[u8],
    media_type: &str,
    inputs: &[&Realised],
) -> Result<Built, PlanError> {
    let digest = store.put_oci_blob(bytes)?;
    let mut refs_objects = vec![ObjectRef::Oci(digest)];
    refs_objects.extend(inputs.iter().map(|i| i.content));
    Ok(Built {
        content: ObjectRef::Oci(digest),
        size: bytes.len() as u64,
        meta: json!({"media_type": media_type}),
        refs_objects,
    })
}

/// The blob an input produced.
fn input_blob(inputs: &[&Realised], i: usize) -> Result<B3Digest, PlanError> {
    match inputs.get(i).map(|r| &r.content) {
        Some(ObjectRef::Blob(b)) => Ok(*b),
        _ => Err(PlanError::BadStoreEntry {
            what: format!("input {i} is not a blob"),
        }),
    }
}

/// Stores a file set's manifest; it references every content blob it names.
fn put_fileset(store: &Store, set: &crate::debian::fileset::FileSet) -> Result<Built, PlanError> {
    use crate::debian::unpack::DebEntryKind;
    let bytes = oci::canonical_json(set)?;
    let manifest = store.put_blob(&bytes)?;
    let mut refs_objects = vec![ObjectRef::Blob(manifest)];
    for e in &set.entries {
        if let DebEntryKind::File { content, .. } = &e.kind {
            refs_objects.push(ObjectRef::Blob(B3Digest::try_from(content.as_str())?));
        }
    }
    for (_, blob) in &set.install_files {
        refs_objects.push(ObjectRef::Blob(B3Digest::try_from(blob.as_str())?));
    }
    if let Some(log) = set.configure.as_ref().and_then(|r| r.log.as_deref()) {
        refs_objects.push(ObjectRef::Blob(B3Digest::try_from(log)?));
    }
    refs_objects.sort_by_key(|r| r.to_string());
    refs_objects.dedup();
    Ok(Built {
        content: ObjectRef::Blob(manifest),
        size: bytes.len() as u64,
        meta: fileset_meta(set),
        refs_objects,
    })
}

/// What a build reports about a file set: what minimisation left out, and the setuid/setgid
/// files it stripped or kept (listed only when there are any).
fn fileset_meta(set: &crate::debian::fileset::FileSet) -> serde_json::Value {
    let mut meta = json!({"removed_bytes": set.removed_bytes, "removed_files": set.removed_files});
    for (key, files) in [
        ("setuid_stripped", &set.setuid_stripped),
        ("setuid_kept", &set.setuid_kept),
    ] {
        if !files.is_empty() {
            meta[key] = json!(files);
        }
    }
    if !set.scripts_not_run.is_empty() {
        meta["scripts_not_run"] = json!(set.scripts_not_run);
    }
    if let Some(report) = &set.configure {
        meta["configure"] = json!(report);
    }
    meta
}

/// Reads the file set an input produced.
fn read_fileset(store: &Store, r: &Realised) -> Result<crate::debian::fileset::FileSet, PlanError> {
    let ObjectRef::Blob(b) = &r.content else {
        return Err(PlanError::BadStoreEntry {
            what: format!("{} (not a file set)", r.path),
        });
    };
    let bytes = store.read_blob(b)?;
    serde_json::from_slice(&bytes).map_err(|e| PlanError::BadStoreEntry {
        what: format!("{} ({e})", r.path),
    })
}

/// The OCI descriptor of a realised OCI blob.
fn descriptor(r: &Realised, media_type: &str) -> Result<oci::Descriptor, PlanError> {
    let ObjectRef::Oci(d) = &r.content else {
        return Err(PlanError::BadStoreEntry {
            what: format!("{} (not an OCI blob)", r.path),
        });
    };
    let digest: oci::Sha256Digest =
        d.to_string()
            .parse()
            .map_err(|_| PlanError::BadStoreEntry {
                what: format!("{} (bad digest)", r.path),
            })?;
    Ok(oci::Descriptor::new(media_type, digest, r.size))
}

fn meta_str(r: &Realised, field: &str) -> Result<String, PlanError> {
    r.meta
        .get(field)
        .and_then(|v| v.as_str())
        .map(str::to_string)
        .ok_or_else(|| PlanError::BadStoreEntry {
            what: format!("{} (no `{field}`)", r.path),
        })
}

/// Imports scanned project files into the store as a tree (a single file becomes a one-entry tree).
fn build_copy(
    store: &Store,
    entries: &[ScannedEntry],
    single_file: bool,
) -> Result<Built, PlanError> {
    // Children of each directory path ("" = the root), built deepest first.
    let mut dirs: BTreeMap<String, Vec<TreeEntry>> = BTreeMap::new();
    dirs.insert(String::new(), Vec::new());
    for e in entries {
        if matches!(e.kind, ScannedKind::Dir) {
            dirs.entry(e.path.clone()).or_default();
        }
    }
    let mut blobs = Vec::new();
    for e in entries {
        let (parent, name) = split_parent(&e.path);
        let node = match &e.kind {
            ScannedKind::Dir => continue,
            ScannedKind::Symlink { target } => Node::Symlink {
                target: target.clone(),
            },
            ScannedKind::File {
                blob,
                size,
                executable,
            } => {
                if !store.has_blob(blob) {
                    let (got, got_size) = store.put_blob_from_path(&e.abs)?;
                    if &got != blob || got_size != *size {
                        return Err(PlanError::SourceChanged {
                            path: e.abs.clone(),
                        });
                    }
                }
                blobs.push(ObjectRef::Blob(*blob));
                Node::File {
                    blob: *blob,
                    size: *size,
                    executable: *executable,
                }
            }
        };
        dirs.entry(parent.to_string()).or_default().push(TreeEntry {
            name: name.to_string(),
            node,
        });
    }
    // Deepest directories first, so each subtree exists before its parent refers to it.
    let mut paths: Vec<String> = dirs.keys().cloned().collect();
    paths.sort_by_key(|p| {
        std::cmp::Reverse(if p.is_empty() {
            0
        } else {
            p.matches('/').count() + 1
        })
    });
    let mut digests: HashMap<String, B3Digest> = HashMap::new();
    for path in paths {
        let mut children = dirs.remove(&path).unwrap_or_default();
        for (sub, digest) in digests.iter() {
            if !sub.is_empty() && split_parent(sub).0 == path {
                children.push(TreeEntry {
                    name: split_parent(sub).1.to_string(),
                    node: Node::Dir { tree: *digest },
                });
            }
        }
        children.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let digest = store.put_tree(&Tree { entries: children })?;
        digests.insert(path, digest);
    }
    let root = digests.remove("").ok_or_else(|| PlanError::BadStoreEntry {
        what: "copy without root".into(),
    })?;
    let size = entries
        .iter()
        .map(|e| match e.kind {
            ScannedKind::File { size, .. } => size,
            _ => 0,
        })
        .sum();
    Ok(Built {
        content: ObjectRef::Tree(root),
        size,
        meta: json!({"single_file": single_file}),
        refs_objects: vec![ObjectRef::Tree(root)],
    })
}

/// Where the log of the failed build with derivation key `key` is kept (`himg log` reads it).
pub fn failed_build_log(store: &Store, key: &B3Digest) -> std::path::PathBuf {
    store
        .root()
        .join("build-logs")
        .join(format!("{}.log", key.to_hex()))
}

fn build_derivation(
    store: &Store,
    key: &B3Digest,
    build: &super::derivation::BuildStep,
    inputs: &[&Realised],
) -> Result<Built, PlanError> {
    let (environment, sources) = inputs
        .split_first()
        .ok_or_else(|| PlanError::BadStoreEntry {
            what: "build step without an environment".into(),
        })?;
    let ObjectRef::Oci(manifest) = environment.content else {
        return Err(PlanError::BadStoreEntry {
            what: format!(
                "{} (the environment is not an image manifest)",
                environment.path
            ),
        });
    };
    let placements = build
        .sources
        .iter()
        .zip(sources)
        .map(|(placement, input)| crate::builder::Placement {
            content: input.content,
            single_file: input.meta.get("single_file").and_then(|v| v.as_bool()) == Some(true),
            path: placement.path.clone(),
            to: placement.to.clone(),
        })
        .collect();
    let request = crate::builder::BuildRequest {
        name: "",
        environment: manifest,
        sources: placements,
        argv: &build.argv,
        env: &build.env,
        outputs: &build.outputs,
        timeout: build.timeout,
        epoch: build.epoch,
        hash: build.hash.as_deref(),
        failed_log: failed_build_log(store, key),
    };
    let produced = crate::builder::run_build(store, &request)?;
    Ok(Built {
        content: ObjectRef::Tree(produced.tree),
        size: produced.size,
        meta: json!({
            "single_file": false,
            "log": produced.log.to_string(),
            "command_ms": produced.command_time.as_millis() as u64,
        }),
        refs_objects: vec![
            ObjectRef::Tree(produced.tree),
            ObjectRef::Blob(produced.log),
        ],
    })
}

/// One path of a build's outputs as a copy source.
fn select(store: &Store, path: &str, inputs: &[&Realised]) -> Result<Built, PlanError> {
    let input = inputs.first().ok_or_else(|| PlanError::BadStoreEntry {
        what: format!("select `{path}` without an input"),
    })?;
    let ObjectRef::Tree(root) = input.content else {
        return Err(PlanError::BadStoreEntry {
            what: format!("{} (build outputs are not a tree)", input.path),
        });
    };
    let tree = store.get_tree(&root)?;
    let missing = || PlanError::BadStoreEntry {
        what: format!("{} (no output `{path}`)", input.path),
    };
    let node = crate::builder::lookup(store, &tree, path)?.ok_or_else(missing)?;
    let last = path.rsplit('/').next().unwrap_or(path);
    let (tree, single_file, size) = match &node {
        Node::Dir { tree } => (*tree, false, 0),
        Node::File { size, .. } => {
            let single = Tree {
                entries: vec![TreeEntry {
                    name: last.to_owned(),
                    node: node.clone(),
                }],
            };
            (store.put_tree(&single)?, true, *size)
        }
        Node::Symlink { .. } => {
            let single = Tree {
                entries: vec![TreeEntry {
                    name: last.to_owned(),
                    node: node.clone(),
                }],
            };
            (store.put_tree(&single)?, true, 0)
        }
    };
    Ok(Built {
        content: ObjectRef::Tree(tree),
        size,
        meta: json!({"single_file": single_file}),
        refs_objects: vec![ObjectRef::Tree(tree)],
    })
}

fn split_parent(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some((p, n)) => (p, n),
        None => ("", path),
    }
}

/// One entry of a layer being assembled, with where its content comes from.
struct Placed {
    entry: LayerEntry,
    blob: Option<B3Digest>,
}

/// Puts an entry at `path`, replacing what an earlier item put there.
fn place(
    placed: &mut BTreeMap<String, Placed>,
    path: String,
    kind: EntryKind,
    mode: u32,
    (uid, gid): (u32, u32),
    blob: Option<B3Digest>,
) {
    let entry = LayerEntry {
        path: path.clone(),
        kind,
        mode,
        uid,
        gid,
    };
    placed.insert(path, Placed { entry, blob });
}

fn build_layer(store: &Store, step: &LayerStep, inputs: &[&Realised]) -> Result<Built, PlanError> {
    let mut placed: BTreeMap<String, Placed> = BTreeMap::new();
    let input = |i: usize| -> Result<&Realised, PlanError> {
        inputs
            .get(i)
            .copied()
            .ok_or_else(|| PlanError::BadStoreEntry {
                what: format!("layer input {i}"),
            })
    };
    for item in &step.items {
        match item {
            LayerItem::Copy {
                input: i,
                to,
                mode,
                dir_mode,
                uid,
                gid,
            } => {
                let src = input(*i)?;
                let ObjectRef::Tree(tree) = &src.content else {
                    return Err(PlanError::BadStoreEntry {
                        what: format!("{} (copy output is not a tree)", src.path),
                    });
                };
                let single = src.meta.get("single_file").and_then(|v| v.as_bool()) == Some(true);
                let tree = store.get_tree(tree)?;
                let owner = (*uid, *gid);
                if single {
                    if let Some(e) = tree.entries.first() {
                        place_node(&mut placed, to, &e.node, *mode, owner);
                    }
                } else {
                    placed.entry(to.clone()).or_insert_with(|| Placed {
                        entry: LayerEntry {
                            path: to.clone(),
                            kind: EntryKind::Dir,
                            mode: dir_mode.unwrap_or(0o755),
                            uid: *uid,
                            gid: *gid,
                        },
                        blob: None,
                    });
                    place_tree(store, &mut placed, to, &tree, *mode, *dir_mode, owner)?;
                }
            }
            LayerItem::FileSet { input: i } => {
                let set = read_fileset(store, input(*i)?)?;
                for e in set.entries {
                    use crate::debian::unpack::DebEntryKind;
                    let (kind, blob) = match e.kind {
                        DebEntryKind::File { content, size } => (
                            EntryKind::File { size },
                            Some(B3Digest::try_from(content.as_str())?),
                        ),
                        DebEntryKind::Dir => (EntryKind::Dir, None),
                        DebEntryKind::Symlink { target } => (EntryKind::Symlink { target }, None),
                        DebEntryKind::Hardlink { target } => (EntryKind::Hardlink { target }, None),
                        DebEntryKind::CharDevice { .. }
                        | DebEntryKind::BlockDevice { .. }
                        | DebEntryKind::Fifo => {
                            return Err(PlanError::BadStoreEntry {
                                what: format!(
                                    "{} (device nodes are not supported in layers)",
                                    e.path
                                ),
                            });
                        }
                    };
                    place(&mut placed, e.path, kind, e.mode, (e.uid, e.gid), blob);
                }
            }
            LayerItem::File {
                input: i,
                path,
                mode,
                uid,
                gid,
            } => {
                let src = input(*i)?;
                let ObjectRef::Blob(blob) = &src.content else {
                    return Err(PlanError::BadStoreEntry {
                        what: format!("{} (text output is not a blob)", src.path),
                    });
                };
                place(
                    &mut placed,
                    path.clone(),
                    EntryKind::File { size: src.size },
                    *mode,
                    (*uid, *gid),
                    Some(*blob),
                );
            }
            LayerItem::Symlink {
                path,
                target,
                uid,
                gid,
            } => {
                let kind = EntryKind::Symlink {
                    target: target.clone(),
                };
                place(&mut placed, path.clone(), kind, 0o777, (*uid, *gid), None);
            }
            LayerItem::Dir {
                path,
                mode,
                uid,
                gid,
            } => {
                place(
                    &mut placed,
                    path.clone(),
                    EntryKind::Dir,
                    *mode,
                    (*uid, *gid),
                    None,
                );
            }
        }
    }
    let compression = match step.compression {
        himg_lang::Compression::Gzip => Compression::Gzip,
        himg_lang::Compression::Zstd => Compression::Zstd,
    };
    let media_type = match step.compression {
        himg_lang::Compression::Gzip => oci::media_types::LAYER_TAR_GZIP,
        himg_lang::Compression::Zstd => oci::media_types::LAYER_TAR_ZSTD,
    };
    let compression_name = format!("{media_type};mtime={}", step.mtime);

    // The layer's identity as content: every entry with its metadata and blob, canonical.
    let listing: Vec<serde_json::Value> = placed
        .values()
        .map(|p| {
            json!([
                p.entry.path,
                entry_kind_json(&p.entry.kind),
                p.entry.mode,
                p.entry.uid,
                p.entry.gid,
                p.blob.as_ref().map(|b| b.to_string())
            ])
        })
        .collect();
    let layer_id = B3Digest::from(blake3::hash(&oci::canonical_json(&listing)?));
    let mut refs_objects: Vec<ObjectRef> = placed
        .values()
        .filter_map(|p| p.blob.map(ObjectRef::Blob))
        .collect();
    refs_objects.sort_by_key(|r| r.to_string());
    refs_objects.dedup();

    if let Some(rec) = store.lookup_layer(&layer_id, &compression_name)? {
        refs_objects.push(ObjectRef::Oci(rec.digest));
        return Ok(Built {
            content: ObjectRef::Oci(rec.digest),
            size: rec.size,
            meta: json!({"diff_id": rec.diff_id.to_string(), "media_type": media_type}),
            refs_objects,
        });
    }

    let entries: Vec<LayerEntry> = placed.values().map(|p| p.entry.clone()).collect();
    let blobs: HashMap<String, B3Digest> = placed
        .values()
        .filter_map(|p| p.blob.map(|b| (p.entry.path.clone(), b)))
        .collect();
    let source = StoreContent { store, blobs };
    let mut writer = store.oci_blob_writer()?;
    let digests = oci::write_layer(&entries, &source, compression, step.mtime, &mut writer)?;
    let (digest, size) = writer.finish()?;
    let diff_id = Sha256Digest::try_from(digests.diff_id.to_string().as_str())?;
    if digest.to_string() != digests.digest.to_string() || size != digests.size {
        return Err(PlanError::BadStoreEntry {
            what: format!("layer {digest} (hash mismatch while writing)"),
        });
    }
    store.register_layer(&himg_store::LayerRecord {
        tree: layer_id,
        compression: compression_name,
        diff_id,
        digest,
        size,
    })?;
    refs_objects.push(ObjectRef::Oci(digest));
    Ok(Built {
        content: ObjectRef::Oci(digest),
        size,
        meta: json!({
            "diff_id": diff_id.to_string(),
            "media_type": media_type,
            "uncompressed_size": digests.uncompressed_size,
        }),
        refs_objects,
    })
}

fn entry_kind_json(kind: &EntryKind) -> serde_json::Value {
    match kind {
        EntryKind::File { size } => json!(["file", size]),
        EntryKind::Dir => json!(["dir"]),
        EntryKind::Symlink { target } => json!(["symlink", target]),
        EntryKind::Hardlink { target } => json!(["hardlink", target]),
    }
}

fn join(base: &str, name: &str) -> String {
    if base == "/" {
        format!("/{name}")
    } else {
        format!("{base}/{name}")
    }
}

fn place_node(
    placed: &mut BTreeMap<String, Placed>,
    path: &str,
    node: &Node,
    mode: Option<u32>,
    (uid, gid): (u32, u32),
) {
    let (kind, mode, blob) = match node {
        Node::File {
            blob,
            size,
            executable,
        } => (
            EntryKind::File { size: *size },
            mode.unwrap_or(if *executable { 0o755 } else { 0o644 }),
            Some(*blob),
        ),
        Node::Symlink { target } => (
            EntryKind::Symlink {
                target: target.clone(),
            },
            0o777,
            None,
        ),
        Node::Dir { .. } => (EntryKind::Dir, 0o755, None),
    };
    place(placed, path.to_string(), kind, mode, (uid, gid), blob);
}

fn place_tree(
    store: &Store,
    placed: &mut BTreeMap<String, Placed>,
    base: &str,
    tree: &Tree,
    mode: Option<u32>,
    dir_mode: Option<u32>,
    owner: (u32, u32),
) -> Result<(), PlanError> {
    for e in &tree.entries {
        let path = join(base, &e.name);
        match &e.node {
            Node::Dir { tree: sub } => {
                place(
                    placed,
                    path.clone(),
                    EntryKind::Dir,
                    dir_mode.unwrap_or(0o755),
                    owner,
                    None,
                );
                let subtree = store.get_tree(sub)?;
                place_tree(store, placed, &path, &subtree, mode, dir_mode, owner)?;
            }
            node => place_node(placed, &path, node, mode, owner),
        }
    }
    Ok(())
}

/// Serves layer file contents from store blobs, each checked against its digest as it is read
/// (a corrupt blob fails the layer instead of being packed into it).
struct StoreContent<'a> {
    store: &'a Store,
    blobs: HashMap<String, B3Digest>,
}

impl ContentSource for StoreContent<'_> {
    fn open(&self, entry: &LayerEntry) -> std::io::Result<Box<dyn Read + '_>> {
        let blob = self.blobs.get(&entry.path).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no content for `{}`", entry.path),
            )
        })?;
        let file = self
            .store
            .open_blob_checked(blob)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        Ok(Box::new(std::io::BufReader::with_capacity(
            256 * 1024,
            file,
        )))
    }
}
