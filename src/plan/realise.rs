//! Realising a build graph: find what the store has (top-down, stopping at the first hit), then build the
//! rest bottom-up in parallel waves, with early cutoff through resolved keys.
//!
//! Cross-process safety: each missing derivation is built under the store's per-derivation lock and
//! looked up again once the lock is held, so two builds on one store never build the same derivation at
//! the same time; the whole build holds the store's shared build guard so `gc` cannot delete what it is
//! about to reference.

use himg_store::{B3Digest, ObjectRef, OutputPath, OutputRecord, Store};
use rayon::prelude::*;

use super::PlanError;
use super::derivation::{BuildGraph, NodeId, resolved_key};
use super::steps::{StepContext, build_step};

/// What a realised derivation produced.
#[derive(Debug, Clone)]
pub struct Realised {
    pub path: OutputPath,
    pub content: ObjectRef,
    pub size: u64,
    pub meta: serde_json::Value,
}

impl From<OutputRecord> for Realised {
    fn from(r: OutputRecord) -> Self {
        Realised {
            path: r.path,
            content: r.content,
            size: r.size,
            meta: r.meta,
        }
    }
}

/// How a node's output was obtained in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeOutcome {
    /// Found in the store under its key.
    Reused,
    /// Inputs were rebuilt but produced the same content, so this node was found under its resolved key.
    CutOff,
    /// Built by this run.
    Built,
    /// Not needed: a node above it was found in the store.
    Skipped,
    /// Fetched from a binary cache.
    Substituted,
}

/// The outcome of realising a graph.
#[derive(Debug)]
pub struct BuildReport {
    pub outcomes: Vec<NodeOutcome>,
    pub realised: Vec<Option<Realised>>,
}

impl BuildReport {
    pub fn built(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| **o == NodeOutcome::Built)
            .count()
    }

    pub fn reused(&self) -> usize {
        self.outcomes.len() - self.built() - self.substituted()
    }

    pub fn substituted(&self) -> usize {
        self.outcomes
            .iter()
            .filter(|o| **o == NodeOutcome::Substituted)
            .count()
    }

    pub fn output(&self, id: NodeId) -> Option<&Realised> {
        self.realised.get(id.index()).and_then(|r| r.as_ref())
    }
}

/// Events reported while realising, for the progress display.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    Planned { to_build: usize },
    Started { name: &'a str, kind: &'a str },
    Finished { name: &'a str, kind: &'a str },
}

/// A source of prebuilt outputs (binary caches), asked before building a derivation.
pub trait Substituter: Sync {
    /// Whether some cache has a usable (checked) entry for `key`.
    fn query(&self, key: &B3Digest) -> bool;
    /// Fetches the entry `query` found into the store and registers it under `key`; `None` (after a
    /// warning) when that fails, and the derivation is built instead.
    fn fetch(&self, store: &Store, key: &B3Digest) -> Option<OutputRecord>;
}

/// Realises `targets` (and whatever they need) in the store.
pub fn realise(
    graph: &BuildGraph,
    store: &Store,
    fetcher: Option<&crate::debian::fetch::Fetcher>,
    targets: &[NodeId],
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<BuildReport, PlanError> {
    realise_with(graph, store, fetcher, None, targets, on_event)
}

/// [`realise`], asking `substituter` for every derivation the store lacks (top-down, like the store
/// lookups: below a substituted node nothing is fetched).
pub fn realise_with(
    graph: &BuildGraph,
    store: &Store,
    fetcher: Option<&crate::debian::fetch::Fetcher>,
    substituter: Option<&dyn Substituter>,
    targets: &[NodeId],
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<BuildReport, PlanError> {
    let cx = StepContext { store, fetcher };
    let n = graph.graph.node_count();
    let mut outcomes = vec![NodeOutcome::Skipped; n];
    let mut realised: Vec<Option<Realised>> = vec![None; n];
    let mut needed = vec![false; n];

    // Phase 1: top-down lookups, in the store then in the substituters. Nodes below a hit are not
    // needed (but the image's own layers and config are still looked up so that the report and the
    // layout writer know their outputs).
    let mut stack: Vec<NodeId> = targets.to_vec();
    let mut visited = vec![false; n];
    let mut first_round = true;
    let mut pending: Vec<NodeId> = Vec::new();
    loop {
        while let Some(id) = stack.pop() {
            if visited[id.index()] {
                continue;
            }
            visited[id.index()] = true;
            let node = graph.node(id);
            if let Some(rec) = store.lookup_derivation(&node.key)? {
                realised[id.index()] = Some(rec.into());
                outcomes[id.index()] = NodeOutcome::Reused;
            } else if substituter.is_some_and(|s| s.query(&node.key)) {
                pending.push(id);
            } else {
                needed[id.index()] = true;
                stack.extend(node.inputs.iter().copied());
            }
        }
        if first_round {
            // The images' layers and configs, even when their manifest was found.
            first_round = false;
            for img in graph.images.iter().rev() {
                for arch in img.per_arch.iter().rev() {
                    stack.push(arch.config);
                    stack.extend(arch.layers.iter().rev().copied());
                }
            }
            continue;
        }
        let Some(subst) = substituter else { break };
        if pending.is_empty() {
            break;
        }
        let fetched: Vec<(NodeId, Option<OutputRecord>)> = std::mem::take(&mut pending)
            .par_iter()
            .map(|&id| (id, subst.fetch(store, &graph.node(id).key)))
            .collect();
        for (id, rec) in fetched {
            match rec {
                Some(rec) => {
                    realised[id.index()] = Some(rec.into());
                    outcomes[id.index()] = NodeOutcome::Substituted;
                }
                None => {
                    // Build it instead: its inputs are looked up (and maybe substituted) next round.
                    needed[id.index()] = true;
                    stack.extend(graph.node(id).inputs.iter().copied());
                }
            }
        }
    }
    // Nodes that are neither needed nor found were cut off by a hit above them.
    for i in 0..n {
        if !needed[i] && realised[i].is_some() && outcomes[i] != NodeOutcome::Substituted {
            outcomes[i] = NodeOutcome::Reused;
        }
    }

    // Phase 2: bottom-up waves over needed nodes.
    let waves = waves(graph, &needed);
    on_event(Event::Planned {
        to_build: needed.iter().filter(|b| **b).count(),
    });
    let pool = worker_pool();
    for wave in waves {
        let run = || -> Vec<Result<(NodeId, Realised, NodeOutcome), PlanError>> {
            wave.par_iter()
                .map(|&id| {
                    realise_one(graph, &cx, id, &realised, on_event).map_err(|e| {
                        PlanError::Derivation {
                            name: graph.node(id).name.clone(),
                            source: Box::new(e),
                        }
                    })
                })
                .collect()
        };
        let results = match pool {
            // One step: no hand-over to the pool.
            Some(pool) if wave.len() > 1 => pool.install(run),
            _ => run(),
        };
        for r in results {
            let (id, out, outcome) = r?;
            realised[id.index()] = Some(out);
            outcomes[id.index()] = outcome;
        }
    }
    Ok(BuildReport { outcomes, realised })
}

/// The pool waves run on, made once per process (a workspace realises one graph per file, so
/// a pool per graph would start its threads again for every file). Downloads wait on the network,
/// not the CPU: at least 8 workers, so package fetches overlap; CPU-bound steps (compression) then
/// share the cores.
fn worker_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: std::sync::OnceLock<Option<rayon::ThreadPool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(8);
        rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .build()
            .ok()
    })
    .as_ref()
}

/// Groups needed nodes by depth (longest chain of needed inputs below them).
fn waves(graph: &BuildGraph, needed: &[bool]) -> Vec<Vec<NodeId>> {
    let order = match petgraph::algo::toposort(&graph.graph, None) {
        Ok(o) => o,
        // The graph is built bottom-up from specs, so it cannot have a cycle.
        Err(_) => graph.graph.node_indices().collect(),
    };
    let mut depth = vec![0usize; graph.graph.node_count()];
    let mut waves: Vec<Vec<NodeId>> = Vec::new();
    for id in order {
        if !needed[id.index()] {
            continue;
        }
        let d = graph
            .node(id)
            .inputs
            .iter()
            .filter(|i| needed[i.index()])
            .map(|i| depth[i.index()] + 1)
            .max()
            .unwrap_or(0);
        depth[id.index()] = d;
        if waves.len() <= d {
            waves.resize_with(d + 1, Vec::new);
        }
        waves[d].push(id);
    }
    waves
}

fn realise_one(
    graph: &BuildGraph,
    cx: &StepContext<'_>,
    id: NodeId,
    realised: &[Option<Realised>],
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<(NodeId, Realised, NodeOutcome), PlanError> {
    let node = graph.node(id);
    let store = cx.store;
    let _lock = store.lock_derivation(&node.key)?;
    if let Some(rec) = store.lookup_derivation(&node.key)? {
        return Ok((id, rec.into(), NodeOutcome::Reused));
    }
    let mut inputs: Vec<&Realised> = Vec::with_capacity(node.inputs.len());
    for input in &node.inputs {
        let r = realised[input.index()]
            .as_ref()
            .ok_or_else(|| PlanError::BadStoreEntry {
                what: graph.node(*input).name.clone(),
            })?;
        inputs.push(r);
    }
    let contents: Vec<ObjectRef> = inputs.iter().map(|r| r.content).collect();
    let rkey = resolved_key(&node.step, &contents);
    if !node.inputs.is_empty()
        && let Some(rec) = store.lookup_derivation(&rkey)?
    {
        store.register_output(&[node.key], &rec)?;
        return Ok((id, rec.into(), NodeOutcome::CutOff));
    }
    on_event(Event::Started {
        name: &node.name,
        kind: node.step.kind(),
    });
    let built = build_step(cx, &node.key, &node.step, &inputs)?;
    let record = OutputRecord {
        path: output_path(&node.key, &node.name)?,
        content: built.content,
        size: built.size,
        meta: built.meta,
        refs_outputs: inputs.iter().map(|r| r.path.clone()).collect(),
        refs_objects: built.refs_objects,
    };
    let keys: Vec<B3Digest> = if rkey == node.key {
        vec![node.key]
    } else {
        vec![node.key, rkey]
    };
    store.register_output(&keys, &record)?;
    on_event(Event::Finished {
        name: &node.name,
        kind: node.step.kind(),
    });
    Ok((id, record.into(), NodeOutcome::Built))
}

/// `<nix-base32 of the key>-<name made safe>`.
fn output_path(key: &B3Digest, name: &str) -> Result<OutputPath, PlanError> {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+._?=-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let safe: String = safe
        .trim_matches(|c| c == '-' || c == '.')
        .chars()
        .take(64)
        .collect();
    let safe = if safe.is_empty() {
        "out".to_string()
    } else {
        safe
    };
    OutputPath::new(key, &safe).map_err(|e| PlanError::BadStoreEntry {
        what: format!("output name `{safe}`: {e}"),
    })
}

/// Builds node `id` once more from its inputs' recorded outputs (which must be in the store),
/// without registering the result: what `himg build --check` compares with the recorded output.
/// Returns the recorded output and the new content.
pub fn rebuild(
    graph: &BuildGraph,
    store: &Store,
    id: NodeId,
) -> Result<(Realised, ObjectRef), PlanError> {
    let node = graph.node(id);
    let missing = |name: &str| PlanError::BadStoreEntry {
        what: format!("{name} (not built in this store; build it first)"),
    };
    let recorded: Realised = store
        .lookup_derivation(&node.key)?
        .ok_or_else(|| missing(&node.name))?
        .into();
    let mut inputs: Vec<Realised> = Vec::with_capacity(node.inputs.len());
    for input in &node.inputs {
        let rec = store
            .lookup_derivation(&graph.node(*input).key)?
            .ok_or_else(|| missing(&graph.node(*input).name))?;
        inputs.push(rec.into());
    }
    let refs: Vec<&Realised> = inputs.iter().collect();
    let cx = StepContext {
        store,
        fetcher: None,
    };
    let built = build_step(&cx, &node.key, &node.step, &refs)?;
    Ok((recorded, built.content))
}
