//! Graphviz views of a build graph for `himg graph`: only some kinds of step (the edges between
//! what is kept follow the paths through what is left out), one cluster per image for the steps
//! only that image uses, and each step coloured by whether its output is in the store.

use std::collections::BTreeSet;

use super::derivation::{BuildGraph, NodeId};

/// What a DOT rendering shows.
#[derive(Debug, Clone, Default)]
pub struct DotView {
    /// Only steps of these kinds (`layer`, `manifest`, …); empty: every step.
    pub kinds: BTreeSet<String>,
    /// Group the steps only one image uses in a cluster named after it.
    pub cluster: bool,
    /// Per node (by index): whether its output is in the store (green) or would be built
    /// (orange); `None`: no colour.
    pub in_store: Option<Vec<bool>>,
}

/// The graph as DOT, as `view` asks; nodes are labelled with kind, name and short key.
pub fn render(graph: &BuildGraph, view: &DotView) -> String {
    let kept: Vec<bool> = graph
        .graph
        .node_indices()
        .map(|id| view.kinds.is_empty() || view.kinds.contains(graph.node(id).step.kind()))
        .collect();
    let mut out = String::from(
        "digraph himg {\n  rankdir=BT;\n  node [shape=box, fontname=monospace, style=filled, fillcolor=white];\n",
    );
    let owners = if view.cluster {
        owners(graph)
    } else {
        Vec::new()
    };
    let mut clustered: Vec<Vec<NodeId>> = vec![Vec::new(); graph.images.len()];
    for id in graph.graph.node_indices().filter(|id| kept[id.index()]) {
        match owners.get(id.index()) {
            Some(o) if o.len() == 1 => {
                if let Some(&image) = o.iter().next() {
                    clustered[image].push(id);
                }
            }
            _ => out.push_str(&node_line(graph, view, id, "  ")),
        }
    }
    for (i, nodes) in clustered.iter().enumerate() {
        if nodes.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "  subgraph cluster_{i} {{\n    label=\"image {}\";\n",
            escape(&graph.images[i].name)
        ));
        for &id in nodes {
            out.push_str(&node_line(graph, view, id, "    "));
        }
        out.push_str("  }\n");
    }
    for (from, to) in kept_edges(graph, &kept) {
        out.push_str(&format!("  n{from} -> n{to};\n"));
    }
    out.push_str("}\n");
    out
}

fn node_line(graph: &BuildGraph, view: &DotView, id: NodeId, indent: &str) -> String {
    let d = graph.node(id);
    let key = d.key.to_string();
    let short = key.get(3..15).unwrap_or(&key);
    let colour = match view.in_store.as_ref().and_then(|s| s.get(id.index())) {
        Some(true) => ", fillcolor=\"#c8e6c9\"",
        Some(false) => ", fillcolor=\"#ffe0b2\"",
        None => "",
    };
    format!(
        "{indent}n{} [label=\"{}\\n{}\\n{}\"{colour}];\n",
        id.index(),
        d.step.kind(),
        escape(&d.name),
        short
    )
}

/// For each node, the images (by index) whose top depends on it.
fn owners(graph: &BuildGraph) -> Vec<BTreeSet<usize>> {
    let mut owners = vec![BTreeSet::new(); graph.graph.node_count()];
    for (i, image) in graph.images.iter().enumerate() {
        let mut stack = vec![image.top];
        while let Some(id) = stack.pop() {
            if owners[id.index()].insert(i) {
                stack.extend(graph.node(id).inputs.iter().copied());
            }
        }
    }
    owners
}

/// Edges between kept nodes: `a -> b` when `b` uses `a` directly or through left-out steps only.
fn kept_edges(graph: &BuildGraph, kept: &[bool]) -> BTreeSet<(usize, usize)> {
    let mut edges = BTreeSet::new();
    for to in graph.graph.node_indices().filter(|id| kept[id.index()]) {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<NodeId> = graph.node(to).inputs.clone();
        while let Some(id) = stack.pop() {
            if !seen.insert(id.index()) {
                continue;
            }
            if kept[id.index()] {
                edges.insert((id.index(), to.index()));
            } else {
                stack.extend(graph.node(id).inputs.iter().copied());
            }
        }
    }
    edges
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
