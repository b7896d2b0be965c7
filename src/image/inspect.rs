//! `himg inspect`'s report: what an image is (name, digest, platform, runtime config,
//! annotations), its layers with their sizes and the packages each holds, and totals. Pure: built
//! from an [`ImageView`], rendered as JSON or as a human table.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;

use super::model::{FileKind, ImageView};

/// The report of one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectReport {
    pub name: Option<String>,
    pub digest: String,
    pub architecture: String,
    pub os: String,
    pub variant: Option<String>,
    pub created: Option<String>,
    pub config: ConfigSummary,
    pub annotations: BTreeMap<String, String>,
    pub layers: Vec<LayerSummary>,
    pub totals: Totals,
}

/// The runtime config fields users look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigSummary {
    pub user: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub workdir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub ports: BTreeSet<String>,
    pub volumes: BTreeSet<String>,
    pub stop_signal: Option<String>,
}

/// One layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerSummary {
    pub index: usize,
    pub digest: String,
    pub media_type: String,
    /// Compressed size.
    pub size: u64,
    /// Sum of the regular files it writes.
    pub content_size: u64,
    pub created_by: Option<String>,
    /// Paths it writes and deletes.
    pub paths: usize,
    pub deletions: usize,
    /// `name=version` of the packages whose files are mostly in this layer, sorted.
    pub packages: Vec<String>,
}

/// Sums over the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub layers: usize,
    /// Compressed bytes of every layer.
    pub size: u64,
    /// Bytes of the regular files of the merged root filesystem.
    pub content_size: u64,
    /// Regular files (hardlinks included) of the merged root filesystem.
    pub files: usize,
    pub packages: usize,
}

/// The report of `view`.
pub fn inspect(view: &ImageView) -> InspectReport {
    let rc = &view.config.config;
    let mut per_layer: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for p in &view.packages {
        if let Some(l) = p.layer {
            per_layer
                .entry(l)
                .or_default()
                .push(format!("{}={}", p.name, p.version));
        }
    }
    let layers = view
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let mut packages = per_layer.remove(&i).unwrap_or_default();
            packages.sort();
            LayerSummary {
                index: i,
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                size: l.size,
                content_size: l.content_size,
                created_by: l.created_by.clone(),
                paths: l.paths.len(),
                deletions: l.deletions.len(),
                packages,
            }
        })
        .collect();
    let regular = view
        .files
        .values()
        .filter(|f| matches!(f.kind, FileKind::File | FileKind::Hardlink { .. }));
    let (files, content_size) = regular
        .filter(|f| f.kind == FileKind::File)
        .fold((0usize, 0u64), |(n, s), f| (n + 1, s + f.size));
    let hardlinks = view
        .files
        .values()
        .filter(|f| matches!(f.kind, FileKind::Hardlink { .. }))
        .count();
    InspectReport {
        name: view.name.clone(),
        digest: view.digest.clone(),
        architecture: view.config.architecture.clone(),
        os: view.config.os.clone(),
        variant: view.config.variant.clone(),
        created: view.config.created.clone(),
        config: ConfigSummary {
            user: rc.user.clone(),
            entrypoint: rc.entrypoint.clone(),
            cmd: rc.cmd.clone(),
            env: rc.env.clone(),
            workdir: rc.working_dir.clone(),
            labels: rc.labels.clone(),
            ports: rc.exposed_ports.clone(),
            volumes: rc.volumes.clone(),
            stop_signal: rc.stop_signal.clone(),
        },
        annotations: view.annotations.clone(),
        layers,
        totals: Totals {
            layers: view.layers.len(),
            size: view.layers.iter().map(|l| l.size).sum(),
            content_size,
            files: files + hardlinks,
            packages: view.packages.len(),
        },
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "-".to_owned()
    } else {
        serde_json::to_string(v).unwrap_or_default()
    }
}

impl InspectReport {
    /// The human form: a header, the config, annotations, a layer table and totals.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let c = &self.config;
        let platform = match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        };
        let _ = writeln!(o, "Image:        {}", self.name.as_deref().unwrap_or("-"));
        let _ = writeln!(o, "Digest:       {}", self.digest);
        let _ = writeln!(o, "Platform:     {platform}");
        let _ = writeln!(
            o,
            "Created:      {}",
            self.created.as_deref().unwrap_or("-")
        );
        let _ = writeln!(o, "User:         {}", c.user.as_deref().unwrap_or("-"));
        let _ = writeln!(o, "Entrypoint:   {}", list(&c.entrypoint));
        let _ = writeln!(o, "Cmd:          {}", list(&c.cmd));
        let _ = writeln!(o, "Workdir:      {}", c.workdir.as_deref().unwrap_or("-"));
        let ports: Vec<String> = c.ports.iter().cloned().collect();
        let _ = writeln!(
            o,
            "Ports:        {}",
            if ports.is_empty() {
                "-".into()
            } else {
                ports.join(", ")
            }
        );
        if !c.volumes.is_empty() {
            let v: Vec<String> = c.volumes.iter().cloned().collect();
            let _ = writeln!(o, "Volumes:      {}", v.join(", "));
        }
        if let Some(s) = &c.stop_signal {
            let _ = writeln!(o, "Stop signal:  {s}");
        }
        if !c.env.is_empty() {
            let _ = writeln!(o, "Env:");
            for e in &c.env {
                let _ = writeln!(o, "  {e}");
            }
        }
        if !c.labels.is_empty() {
            let _ = writeln!(o, "Labels:");
            for (k, v) in &c.labels {
                let _ = writeln!(o, "  {k}={v}");
            }
        }
        if !self.annotations.is_empty() {
            let _ = writeln!(o, "Annotations:");
            for (k, v) in &self.annotations {
                let _ = writeln!(o, "  {k}={v}");
            }
        }
        let _ = writeln!(o, "Layers:");
        let _ = writeln!(
            o,
            "  {:>3}  {:<19}  {:>10}  {:>10}  {:>6}  CREATED BY",
            "#", "DIGEST", "SIZE", "CONTENT", "PATHS"
        );
        for l in &self.layers {
            let short: String = l.digest.chars().take(19).collect();
            let _ = writeln!(
                o,
                "  {:>3}  {:<19}  {:>10}  {:>10}  {:>6}  {}",
                l.index,
                short,
                crate::printer::size(l.size),
                crate::printer::size(l.content_size),
                l.paths,
                l.created_by.as_deref().unwrap_or("-")
            );
            if !l.packages.is_empty() {
                let _ = writeln!(o, "       packages: {}", l.packages.join(" "));
            }
        }
        let t = &self.totals;
        let _ = writeln!(
            o,
            "Total:        {} layers, {} compressed, {} in {} files, {} packages",
            t.layers,
            crate::printer::size(t.size),
            crate::printer::size(t.content_size),
            t.files,
            t.packages
        );
        o
    }
}

#[cfg(test)]
mod tests;
