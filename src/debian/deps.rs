//! Dependencies among installed packages: for each package's `Pre-Depends` and `Depends` groups, the
//! installed packages that meet it, in the order the resolver would choose them — alternatives in
//! order, within one alternative apt's `CompareProviders` (the real package first, then `Essential`,
//! `Important`, native architecture, `Priority`; the package name breaks the remaining ties), each
//! package met by its name or by a `Provides` with the resolver's own rules ([`resolve::meets`]:
//! versions, Multi-Arch qualifiers). `himg why` walks these edges and the SBOM records the first
//! target of each group as the package's resolved `Depends`.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use super::control::{Alternatives, display_alternatives};
use super::index::BinaryPackage;
use super::resolve::{self, Met};

/// The relation field an edge comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum Field {
    #[serde(rename = "Pre-Depends")]
    PreDepends,
    #[serde(rename = "Depends")]
    Depends,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::PreDepends => "Pre-Depends",
            Field::Depends => "Depends",
        })
    }
}

/// One installed package meeting one dependency group of another.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DepEdge {
    pub field: Field,
    /// The group's position among the package's `Pre-Depends`, then `Depends` groups.
    #[serde(skip)]
    pub index: usize,
    /// The whole group as written (`debconf (>= 0.5) | debconf-2.0`).
    pub group: String,
    /// The alternative the target meets (`debconf-2.0`).
    pub relation: String,
    /// The installed package meeting it.
    pub target: String,
    /// When it is met through `Provides`: the provided relation (`debconf-2.0`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provides: Option<String>,
}

/// Every installed package's dependency edges (keyed by package name; architectures other than
/// `native` as `name:arch`), each package's edges in field and group order, then in the order the
/// resolver would choose between the group's installed solutions. Groups that do not apply on the
/// package's architecture, and a package meeting its own dependency, give no edge.
pub fn dependency_edges(
    packages: &[BinaryPackage],
    native: &str,
) -> BTreeMap<String, Vec<DepEdge>> {
    let mut by_name: HashMap<&str, Vec<&BinaryPackage>> = HashMap::new();
    for p in packages {
        by_name.entry(p.name.as_str()).or_default().push(p);
        for pr in &p.provides {
            by_name.entry(pr.name.as_str()).or_default().push(p);
        }
    }
    let arch_rank =
        |p: &BinaryPackage| usize::from(!(p.architecture == "all" || p.architecture == native));
    let mut out = BTreeMap::new();
    for p in packages {
        let ctx = if p.architecture == "all" {
            native
        } else {
            p.architecture.as_str()
        };
        let groups = p
            .pre_depends
            .iter()
            .map(|g| (Field::PreDepends, g))
            .chain(p.depends.iter().map(|g| (Field::Depends, g)));
        let mut edges = Vec::new();
        for (index, (field, group)) in groups.enumerate() {
            if !group.iter().any(|r| r.applies_to_arch(ctx)) {
                continue;
            }
            let at = (field, index);
            edges.extend(group_edges(p, at, group, ctx, native, &by_name, &arch_rank));
        }
        out.insert(display_name(p, native), edges);
    }
    out
}

fn group_edges(
    p: &BinaryPackage,
    (field, index): (Field, usize),
    group: &Alternatives,
    ctx: &str,
    native: &str,
    by_name: &HashMap<&str, Vec<&BinaryPackage>>,
    arch_rank: &dyn Fn(&BinaryPackage) -> usize,
) -> Vec<DepEdge> {
    let text = display_alternatives(group);
    let mut edges: Vec<DepEdge> = Vec::new();
    for rel in group.iter().filter(|r| r.applies_to_arch(ctx)) {
        let mut met: Vec<(&BinaryPackage, Met)> = by_name
            .get(rel.name.as_str())
            .into_iter()
            .flatten()
            .filter_map(|q| resolve::meets(rel, ctx, native, q).map(|m| (*q, m)))
            .collect();
        met.sort_by(|(a, _), (b, _)| {
            resolve::compare_providers(rel, a, b, arch_rank)
                .then_with(|| a.name.cmp(&b.name))
                .then_with(|| a.architecture.cmp(&b.architecture))
        });
        for (q, how) in met {
            let target = display_name(q, native);
            if (q.name == p.name && q.architecture == p.architecture)
                || edges.iter().any(|e| e.target == target)
            {
                continue;
            }
            edges.push(DepEdge {
                field,
                index,
                group: text.clone(),
                relation: rel.to_string(),
                target,
                provides: match how {
                    Met::Name => None,
                    Met::Provides(pr) => Some(pr.to_string()),
                },
            });
        }
    }
    edges
}

/// `name`, or `name:arch` for a package of another architecture than `native`.
pub fn display_name(p: &BinaryPackage, native: &str) -> String {
    qualified_name(&p.name, &p.architecture, native)
}

/// `name`, or `name:arch` when `arch` is neither `all` nor `native`.
pub fn qualified_name(name: &str, arch: &str, native: &str) -> String {
    if arch == "all" || arch == native {
        name.to_string()
    } else {
        format!("{name}:{arch}")
    }
}

/// For each package, the first installed solution of each of its dependency groups (the one the
/// resolver would have chosen), sorted and without repeats: a package's resolved `Depends`.
pub fn first_solutions(edges: &BTreeMap<String, Vec<DepEdge>>) -> BTreeMap<String, Vec<String>> {
    edges
        .iter()
        .map(|(name, list)| {
            let mut seen = std::collections::BTreeSet::new();
            let mut targets = std::collections::BTreeSet::new();
            for e in list {
                if seen.insert(e.index) {
                    targets.insert(e.target.clone());
                }
            }
            (name.clone(), targets.into_iter().collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian::index::parse_packages;

    pub(crate) fn packages(text: &str) -> Vec<BinaryPackage> {
        parse_packages(text).expect("packages")
    }

    /// A Packages stanza with the fields the index requires.
    pub(crate) fn stanza(name: &str, arch: &str, extra: &str) -> String {
        format!(
            "Package: {name}\nVersion: 1.0\nArchitecture: {arch}\nFilename: pool/{name}.deb\nSize: 1\nSHA256: {}\n{extra}\n",
            "0".repeat(64)
        )
    }

    #[test]
    fn edges_follow_the_resolvers_rules() {
        let text = [
            stanza(
                "app",
                "amd64",
                "Pre-Depends: libc6 (>= 1.0)\nDepends: missing | mta, python3:any, libold (>= 2.0) | libnew, app",
            ),
            stanza("libc6", "amd64", "Multi-Arch: same"),
            stanza("postfix", "amd64", "Provides: mta"),
            stanza("exim", "amd64", "Provides: mta"),
            stanza("python3", "amd64", "Multi-Arch: allowed"),
            stanza("libold", "amd64", ""),
            stanza("libnew", "all", ""),
        ]
        .join("\n");
        let edges = dependency_edges(&packages(&text), "amd64");
        let app: Vec<(Field, &str, &str, Option<&str>)> = edges["app"]
            .iter()
            .map(|e| {
                (
                    e.field,
                    e.relation.as_str(),
                    e.target.as_str(),
                    e.provides.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            app,
            [
                (Field::PreDepends, "libc6 (>= 1.0)", "libc6", None),
                // Two providers: the name breaks the tie.
                (Field::Depends, "mta", "exim", Some("mta")),
                (Field::Depends, "mta", "postfix", Some("mta")),
                (Field::Depends, "python3:any", "python3", None),
                // libold is too old for `>= 2.0`; the next alternative meets it.
                (Field::Depends, "libnew", "libnew", None),
            ]
        );
        assert_eq!(edges["app"][1].group, "missing | mta");
        assert!(edges["libc6"].is_empty());
    }
}
