//! From a `.himg` file to a derivation graph: load, pick images, prepare their Debian locks and
//! registry bases, compile.

use himg_lang::ImageSpec;

use super::packages::{LockMode, prepare};
use super::{Error, Session};
use crate::load::Loaded;
use crate::plan::{self, CompileOptions};

/// Picks the requested images (all when none are named).
pub fn select(
    loaded: &Loaded,
    names: &[String],
    file: &std::path::Path,
) -> Result<Vec<ImageSpec>, Error> {
    let all = &loaded.evaluated.images;
    if all.is_empty() {
        return Err(Error::NoImages {
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
                .ok_or_else(|| Error::NoSuchImage {
                    name: n.clone(),
                    file: file.display().to_string(),
                    available: all.iter().map(|i| i.name.clone()).collect(),
                })
        })
        .collect()
}

/// The registry bases of every image `specs` need (`from` chains, builds' environments), pulled into the store when missing.
pub fn registry_bases(
    store: &himg_store::Store,
    specs: &[himg_lang::ImageSpec],
    printer: &crate::printer::Printer,
) -> Result<std::collections::BTreeMap<String, crate::registry::base::ResolvedBase>, Error> {
    let mut refs: Vec<String> = himg_lang::images_reached(specs)
        .into_iter()
        .filter_map(|s| s.base_reference.clone())
        .collect();
    refs.sort();
    refs.dedup();
    Ok(crate::registry::base::resolve_bases(store, &refs, printer)?)
}

/// Every output of `file`'s images that the store has, by derivation key (what `cache push` sends).
pub fn closure_of(
    session: &Session<'_>,
    file: &std::path::Path,
    store: &himg_store::Store,
) -> Result<std::collections::BTreeMap<himg_store::B3Digest, himg_store::OutputRecord>, Error> {
    let compiled = compile_file(session, file, &[], store, LockMode::Locked)?;
    stored_outputs(&compiled.graph, store, &|_| true)
}

/// A `.himg` file compiled: what it declares, the images chosen, the options and the graph.
pub struct Compiled {
    pub loaded: Loaded,
    pub specs: Vec<ImageSpec>,
    pub opts: CompileOptions,
    pub graph: plan::BuildGraph,
}

/// Loads `file`, picks `images` (all when empty), prepares their Debian inputs (`mode`) and
/// registry bases, and compiles the derivation graph.
pub fn compile_file(
    session: &Session<'_>,
    file: &std::path::Path,
    images: &[String],
    store: &himg_store::Store,
    mode: LockMode,
) -> Result<Compiled, Error> {
    let loaded = session.load(file)?;
    let specs = select(&loaded, images, file)?;
    let mut opts = CompileOptions::from_env()?;
    opts.debian = prepare(session, &loaded, &specs, mode)?;
    opts.registry_bases = registry_bases(store, &specs, session.printer())?;
    let graph = plan::compile(&specs, &loaded.loader, store, &opts)?;
    Ok(Compiled {
        loaded,
        specs,
        opts,
        graph,
    })
}

/// The store's records of the graph's derivations that `keep` selects, by key.
pub fn stored_outputs(
    graph: &plan::BuildGraph,
    store: &himg_store::Store,
    keep: &dyn Fn(plan::NodeId) -> bool,
) -> Result<std::collections::BTreeMap<himg_store::B3Digest, himg_store::OutputRecord>, Error> {
    let mut out = std::collections::BTreeMap::new();
    for id in graph.graph.node_indices().filter(|id| keep(*id)) {
        let key = graph.node(id).key;
        if let Some(rec) = store.lookup_derivation(&key)? {
            out.insert(key, rec);
        }
    }
    Ok(out)
}

/// True when `target` names a `.himg` file (as opposed to a layout, an archive or a reference).
pub fn is_himg_file(target: &std::path::Path) -> bool {
    target.extension().is_some_and(|e| e == "himg")
}

/// What `himg graph` shows of `graph`: the step kinds asked for (each one checked), image
/// clusters, and, for `color`, which steps have their output in `store`.
pub fn dot_view(
    graph: &crate::plan::BuildGraph,
    store: &himg_store::Store,
    kinds: &[String],
    cluster: bool,
    color: bool,
) -> Result<crate::plan::dot::DotView, Error> {
    let known: std::collections::BTreeSet<&str> =
        graph.graph.node_weights().map(|d| d.step.kind()).collect();
    for kind in kinds {
        if !crate::plan::STEP_KINDS.contains(&kind.as_str()) {
            return Err(Error::Graph(format!(
                "no step kind `{kind}`; the kinds are {}{}",
                crate::plan::STEP_KINDS.join(", "),
                if known.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (this graph has {})",
                        known.into_iter().collect::<Vec<_>>().join(", ")
                    )
                }
            )));
        }
    }
    let in_store = if color {
        let mut out = Vec::new();
        for d in graph.graph.node_weights() {
            out.push(store.lookup_derivation(&d.key)?.is_some());
        }
        Some(out)
    } else {
        None
    };
    Ok(crate::plan::dot::DotView {
        kinds: kinds.iter().cloned().collect(),
        cluster,
        in_store,
    })
}
