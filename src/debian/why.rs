//! `himg why`: why a package is in an image — the dependency paths from the packages the image
//! requests to it, shortest first (what `aptitude why` answers), or, for an excluded package, what
//! needed it.
//!
//! Everything comes from the lock and the locked `.deb`s: their control files give the relations
//! (read from the store, where a build left them; a `.deb` the store lacks is fetched as a build
//! would fetch it, by its locked sha256), and [`deps::dependency_edges`] turns them into edges with
//! the resolver's rules. No package index is read.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use himg_store::{ObjectRef, Store};

use super::DebianError;
use super::control::{ControlError, Relation, parse_stanzas};
use super::deps::{DepEdge, dependency_edges};
use super::index::BinaryPackage;
use super::lockfile::{DroppedPackage, LockedPackage};
use crate::plan::{self, BuildGraph, PlanError};

/// Paths shown without `--all`.
pub const DEFAULT_PATHS: usize = 5;
/// Paths enumerated at most (with `--all` too): a wide closure has exponentially many.
pub const MAX_PATHS: usize = 1000;

#[derive(Debug, thiserror::Error)]
pub enum WhyError {
    #[error("image `{image}` installs no Debian packages")]
    NoPackages { image: String },
    #[error("image `{image}` is not built for `{architecture}` (it is built for {})", .available.join(", "))]
    NoArchitecture {
        image: String,
        architecture: String,
        available: Vec<String>,
    },
    #[error(
        "`{package}` is not in image `{image}` ({architecture}), and no package of it needed it"
    )]
    NotInImage {
        package: String,
        image: String,
        architecture: String,
    },
    #[error("the control file of `{package}` does not describe the locked package")]
    Control {
        package: String,
        #[source]
        source: ControlError,
    },
    #[error("the `.deb` of `{package}` is `{found}`, but the lock pins `{locked}`")]
    Mismatch {
        package: String,
        found: String,
        locked: String,
    },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Debian(#[from] DebianError),
}

/// One requested package of the image (a root of the paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// The request as written (`python3 (>= 3.11)`).
    pub request: String,
    /// The installed package that meets it.
    pub package: String,
}

/// One step of a path: `from` depends on `edge.target` through `edge`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PathStep {
    pub from: String,
    #[serde(flatten)]
    pub edge: DepEdge,
}

/// A path from a requested package to the package asked about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WhyPath {
    /// The request as written in the `.himg`.
    pub request: String,
    /// The requested package (the start of the path).
    pub package: String,
    pub steps: Vec<PathStep>,
}

/// The answer for one package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Why {
    pub package: String,
    pub image: String,
    pub architecture: String,
    /// `"installed"`, `"excluded"`, or `"virtual"` (a name only installed packages provide).
    pub status: &'static str,
    /// The installed version, when installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// For an excluded package: the installed packages whose dependency it would have met.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub required_by: Vec<String>,
    /// For a virtual name: the installed packages that provide it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub provided_by: Vec<String>,
    /// Shortest first; for an excluded package, the paths to what needed it; for a virtual name,
    /// the paths to its providers.
    pub paths: Vec<WhyPath>,
    /// How many shortest paths there are (at most [`MAX_PATHS`]); more than `paths.len()` when
    /// the list was cut.
    pub total_paths: usize,
}

/// What an image installs on one architecture, from the locks of its `from` chain.
#[derive(Debug, Clone, Default)]
pub struct ImagePackages {
    /// Each locked package (a later image of the chain replaces a base's) with its repository's
    /// resolved base URL, sorted by name.
    pub packages: Vec<(LockedPackage, String)>,
    /// Every request of the chain, base first: as written, and parsed.
    pub requests: Vec<(String, Relation)>,
    /// The excluded packages something needed, merged by name.
    pub dropped: Vec<DroppedPackage>,
}

/// Gathers [`ImagePackages`] for `spec` on `arch` from the prepared locks (`inputs`, which hold
/// the lock of every image of the chain that declares packages).
pub fn image_packages(
    spec: &himg_lang::ImageSpec,
    arch: &str,
    inputs: &super::plan::DebianInputs,
) -> Result<ImagePackages, WhyError> {
    if !spec.architectures.iter().any(|a| a == arch) {
        return Err(WhyError::NoArchitecture {
            image: spec.name.clone(),
            architecture: arch.to_string(),
            available: spec.architectures.clone(),
        });
    }
    let mut chain = Vec::new();
    let mut next = Some(spec);
    while let Some(s) = next {
        chain.push(s);
        next = s.base.as_deref();
    }
    chain.reverse();
    let mut installed: BTreeMap<String, (LockedPackage, String)> = BTreeMap::new();
    let mut requests = Vec::new();
    let mut dropped: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in chain {
        let Some(packages) = &s.packages else {
            continue;
        };
        let locked = inputs
            .locks
            .get(&(s.declared_in.0.clone(), s.name.clone()))
            .ok_or_else(|| PlanError::NotLocked {
                image: s.name.clone(),
            })?;
        for p in locked.architectures.get(arch).into_iter().flatten() {
            let url = packages
                .repositories
                .iter()
                .find(|r| r.name == p.repository)
                .map(|r| {
                    inputs
                        .base_urls
                        .get(&r.url)
                        .cloned()
                        .unwrap_or(r.url.clone())
                })
                .ok_or_else(|| PlanError::NotLocked {
                    image: s.name.clone(),
                })?;
            installed.insert(p.name.clone(), (p.clone(), url));
        }
        for text in &packages.install {
            requests.push((text.clone(), super::locking::parse_request(text)?));
        }
        for d in &locked.dropped {
            dropped
                .entry(d.name.clone())
                .or_default()
                .extend(d.required_by.iter().cloned());
        }
    }
    if installed.is_empty() && requests.is_empty() {
        return Err(WhyError::NoPackages {
            image: spec.name.clone(),
        });
    }
    Ok(ImagePackages {
        packages: installed.into_values().collect(),
        requests,
        dropped: DroppedPackage::list(dropped),
    })
}

/// The locked packages of one architecture as [`BinaryPackage`]s, their relations read from each
/// `.deb`'s control file. `packages` pairs each locked package with its repository's base URL; a
/// `.deb` the store lacks is fetched (a `fetch` derivation, as a build fetches it).
pub fn locked_packages(
    store: &Store,
    fetcher: Option<&super::fetch::Fetcher>,
    packages: &[(LockedPackage, String)],
    on_event: &(dyn Fn(plan::Event<'_>) + Sync),
) -> Result<Vec<BinaryPackage>, WhyError> {
    let mut graph = BuildGraph::default();
    let nodes: Vec<_> = packages
        .iter()
        .map(|(p, base)| {
            let (name, step) = super::plan::fetch_step(p, base);
            graph.add(name, step, Vec::new())
        })
        .collect();
    let report = plan::realise(&graph, store, fetcher, &nodes, on_event)?;
    let mut out = Vec::with_capacity(packages.len());
    for ((locked, _), node) in packages.iter().zip(nodes) {
        let blob = match report.output(node).map(|r| &r.content) {
            Some(ObjectRef::Blob(b)) => *b,
            _ => {
                return Err(PlanError::BadStoreEntry {
                    what: graph.node(node).name.clone(),
                }
                .into());
            }
        };
        let file = store.open_blob(&blob).map_err(DebianError::from)?;
        let control = super::unpack::control_of_deb(std::io::BufReader::new(file), &locked.name)
            .map_err(|source| DebianError::Unpack {
                package: locked.name.clone(),
                source: Box::new(source),
            })?;
        out.push(binary_package(locked, &control)?);
    }
    Ok(out)
}

/// A locked package from its `.deb`'s control file, which must name the locked package.
fn binary_package(locked: &LockedPackage, control: &str) -> Result<BinaryPackage, WhyError> {
    let bad = |source| WhyError::Control {
        package: locked.name.clone(),
        source,
    };
    let mut stanza = parse_stanzas(control)
        .map_err(bad)?
        .into_iter()
        .next()
        .ok_or_else(|| {
            bad(ControlError::MissingField {
                stanza: locked.name.clone(),
                field: "Package",
            })
        })?;
    // What a Packages index adds to the control file; the lock has it.
    stanza.set("Filename", &locked.filename);
    stanza.set("Size", locked.size.to_string());
    stanza.set("SHA256", &locked.sha256);
    let p = BinaryPackage::from_stanza(&stanza).map_err(bad)?;
    let found = format!("{} {} {}", p.name, p.version, p.architecture);
    let pinned = format!("{} {} {}", locked.name, locked.version, locked.architecture);
    if found != pinned {
        return Err(WhyError::Mismatch {
            package: locked.name.clone(),
            found,
            locked: pinned,
        });
    }
    Ok(p)
}

/// The installed package meeting each request (requests no installed package meets are left out).
pub fn roots(
    requests: &[(String, Relation)],
    packages: &[BinaryPackage],
    native: &str,
) -> Vec<Root> {
    let mut out = Vec::new();
    for (text, rel) in requests {
        let mut met: Vec<&BinaryPackage> = packages
            .iter()
            .filter(|p| super::resolve::meets(rel, native, native, p).is_some())
            .collect();
        met.sort_by_key(|p| (p.name != rel.name, p.name.clone()));
        if let Some(p) = met.first() {
            out.push(Root {
                request: text.clone(),
                package: super::deps::display_name(p, native),
            });
        }
    }
    out
}

/// Explains `package` in an image whose installed packages are `packages`, requested as `roots`.
pub fn explain(
    image: &str,
    native: &str,
    packages: &[BinaryPackage],
    roots: &[Root],
    dropped: &[DroppedPackage],
    package: &str,
    limit: Option<usize>,
) -> Result<Why, WhyError> {
    let edges = dependency_edges(packages, native);
    let installed = packages
        .iter()
        .find(|p| super::deps::display_name(p, native) == package);
    let (status, version, required_by, targets) = if let Some(p) = installed {
        let targets: BTreeSet<String> = [package.to_string()].into();
        (
            "installed",
            Some(p.version.to_string()),
            Vec::new(),
            targets,
        )
    } else if let Some(d) = dropped.iter().find(|d| d.name == package) {
        let targets: BTreeSet<String> = d.required_by.iter().cloned().collect();
        ("excluded", None, d.required_by.clone(), targets)
    } else if let providers = packages
        .iter()
        .filter(|p| p.provides.iter().any(|pr| pr.name == package))
        .map(|p| super::deps::display_name(p, native))
        .collect::<BTreeSet<String>>()
        && !providers.is_empty()
    {
        ("virtual", None, Vec::new(), providers)
    } else {
        return Err(WhyError::NotInImage {
            package: package.to_string(),
            image: image.to_string(),
            architecture: native.to_string(),
        });
    };
    let mut paths = shortest_paths(&edges, roots, &targets, MAX_PATHS);
    if status == "excluded" {
        for path in &mut paths {
            let last = path
                .steps
                .last()
                .map_or(path.package.clone(), |s| s.edge.target.clone());
            if let Some(step) = dropped_step(packages, native, &last, package) {
                path.steps.push(step);
            }
        }
    }
    let total_paths = paths.len();
    if let Some(limit) = limit {
        paths.truncate(limit);
    }
    Ok(Why {
        package: package.to_string(),
        image: image.to_string(),
        architecture: native.to_string(),
        status,
        version,
        required_by,
        provided_by: if status == "virtual" {
            targets.into_iter().collect()
        } else {
            Vec::new()
        },
        paths,
        total_paths,
    })
}

/// The dependency of `from` that named the excluded `package` (by its name, or a name it provides
/// — which the lock does not record, so only the name is looked for).
fn dropped_step(
    packages: &[BinaryPackage],
    native: &str,
    from: &str,
    package: &str,
) -> Option<PathStep> {
    let p = packages
        .iter()
        .find(|p| super::deps::display_name(p, native) == from)?;
    let groups = p
        .pre_depends
        .iter()
        .map(|g| (super::deps::Field::PreDepends, g))
        .chain(p.depends.iter().map(|g| (super::deps::Field::Depends, g)));
    for (index, (field, group)) in groups.enumerate() {
        if let Some(rel) = group.iter().find(|r| r.name == package) {
            return Some(PathStep {
                from: from.to_string(),
                edge: DepEdge {
                    field,
                    index,
                    group: super::control::display_alternatives(group),
                    relation: rel.to_string(),
                    target: package.to_string(),
                    provides: None,
                },
            });
        }
    }
    None
}

/// For every root, its shortest paths to any of `targets` along `edges`; all of them sorted by
/// length, then root order, then the packages along the way; at most `cap`.
pub fn shortest_paths(
    edges: &BTreeMap<String, Vec<DepEdge>>,
    roots: &[Root],
    targets: &BTreeSet<String>,
    cap: usize,
) -> Vec<WhyPath> {
    // Distance of every package to the nearest target, over reversed edges.
    let mut reverse: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (from, list) in edges {
        for e in list {
            reverse
                .entry(e.target.as_str())
                .or_default()
                .push(from.as_str());
        }
    }
    let mut dist: BTreeMap<&str, usize> = BTreeMap::new();
    let mut queue: VecDeque<&str> = VecDeque::new();
    for t in targets {
        dist.insert(t.as_str(), 0);
        queue.push_back(t.as_str());
    }
    while let Some(n) = queue.pop_front() {
        let d = dist[n];
        for &m in reverse.get(n).into_iter().flatten() {
            if !dist.contains_key(m) {
                dist.insert(m, d + 1);
                queue.push_back(m);
            }
        }
    }
    let mut found: Vec<(usize, usize, WhyPath)> = Vec::new();
    for (order, root) in roots.iter().enumerate() {
        if !dist.contains_key(root.package.as_str()) {
            continue;
        }
        let mut steps = Vec::new();
        walk(
            edges,
            &dist,
            &root.package,
            &mut steps,
            &mut |steps: &[PathStep]| {
                found.push((
                    steps.len(),
                    order,
                    WhyPath {
                        request: root.request.clone(),
                        package: root.package.clone(),
                        steps: steps.to_vec(),
                    },
                ));
                found.len() < cap
            },
        );
        if found.len() >= cap {
            break;
        }
    }
    found.sort_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| names(&a.2).cmp(&names(&b.2)))
    });
    found.into_iter().map(|(_, _, p)| p).collect()
}

fn names(p: &WhyPath) -> Vec<&str> {
    p.steps.iter().map(|s| s.edge.target.as_str()).collect()
}

/// Follows only edges that bring the path one step closer to a target; `emit` returns false to stop.
fn walk(
    edges: &BTreeMap<String, Vec<DepEdge>>,
    dist: &BTreeMap<&str, usize>,
    at: &str,
    steps: &mut Vec<PathStep>,
    emit: &mut dyn FnMut(&[PathStep]) -> bool,
) -> bool {
    let Some(&d) = dist.get(at) else { return true };
    if d == 0 {
        return emit(steps);
    }
    let mut followed: BTreeSet<&str> = BTreeSet::new();
    for e in edges.get(at).into_iter().flatten() {
        if dist.get(e.target.as_str()) == Some(&(d - 1)) && followed.insert(e.target.as_str()) {
            steps.push(PathStep {
                from: at.to_string(),
                edge: e.clone(),
            });
            let more = walk(edges, dist, &e.target, steps, emit);
            steps.pop();
            if !more {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests;
