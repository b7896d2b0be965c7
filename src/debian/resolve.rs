//! Dependency resolution: which binary packages an image needs, computed the way
//! `apt-get install --no-install-recommends` computes it on a system with an empty dpkg
//! status, minus the packages the user excluded.
//!
//! # The rules, as found in apt (2.6, `apt-pkg/depcache.cc`) and checked against it
//!
//! * **Candidates.** Every repository has the same priority (apt's default pin 500), so the
//!   candidate of a package is its highest version across repositories; for equal versions
//!   the repository added first wins. `Architecture: all` counts as the native
//!   architecture. Architectures other than the native one and `Request::foreign_archs`
//!   are invisible. A request `name (= v)` (or any versioned request) replaces the
//!   candidate by the highest version that satisfies it, for the whole resolution, like
//!   `apt-get install name=v`.
//! * **Order.** All requested packages are marked first (without dependencies); then each
//!   requested package's dependencies are resolved, in the order of the request (apt uses
//!   the command-line order, so the order of `Request::install` matters when alternatives
//!   are involved; checked with `-o Debug::pkgDepCache::Marker=1`). A requested package
//!   whose dependencies are all met by then is not walked at all. Resolution is
//!   depth-first: a package is marked, then its `Pre-Depends` and `Depends` groups are handled in that order, each fully (recursively)
//!   before the next. A group that is already satisfied by a marked package (or by a
//!   package that provides it) is skipped — this is how "prefer one already selected" works,
//!   for every alternative of the group, not just the first.
//! * **Choosing.** For an unsatisfied group `a | b`, the possible solutions are collected per
//!   alternative in order: the alternative's own candidate (if its version and architecture
//!   fit) and the candidates of packages that provide it (a versioned dependency is only met
//!   by a `Provides: x (= v)` whose `v` fits; an unversioned provide never meets a versioned
//!   dependency). Within one alternative they are sorted like apt's `CompareProviders`:
//!   the package that really has the name first, then `Essential: yes`, then
//!   `Important: yes`/`Protected: yes`, then the native architecture, then the more
//!   important `Priority` (required < important < standard < optional < extra; a missing
//!   Priority sorts first), and finally the **higher apt package ID** first. The solutions
//!   are tried in that order; the first one that installs wins.
//! * **apt package IDs.** apt numbers packages in the order its cache generator first meets
//!   their names while reading the indexes in order: the stanza's own package, then the
//!   targets of `Pre-Depends`, `Depends`, `Conflicts`, `Breaks`, `Recommends`, `Suggests`,
//!   `Replaces`, `Enhances`, then `Provides`. [`Universe::add_repository`] reproduces that
//!   numbering (names with an architecture qualifier are separate packages in apt and are
//!   skipped). It only decides between providers that tie on everything else.
//! * **Installability.** A solution whose own `Depends`/`Pre-Depends` cannot be met by any
//!   candidate is skipped (apt's `IsInstallOkDependenciesSatisfiableByCandidates`). When a
//!   solution fails deeper down it is unmarked and the next one tried; packages it had
//!   already pulled in stay marked, exactly as in apt.
//! * **Multi-Arch.** An unqualified dependency is met by a package of the depending
//!   package's architecture (`all` = native) or by a `Multi-Arch: foreign` package of any
//!   visible architecture; `:any` by `Multi-Arch: allowed` or `foreign` packages of any
//!   visible architecture; `:native` only by native packages; `:arch` only by that one.
//! * **Essential.** apt with an empty status does **not** add the `Essential: yes` packages
//!   wholesale (checked: `apt-get -s -o Dir::State::status=<empty> install hello` installs
//!   four packages); neither does this resolver. Essential packages come in only when
//!   something depends on them. Images that want the essential set request it explicitly.
//! * **Conflicts and Breaks** (apt's `MarkInstall_RemoveConflictsIfNotUpgradeable`). When a
//!   package is installed, a marked package that its `Conflicts`/`Breaks` hit is unmarked
//!   again (what that one had pulled in stays), unless it is *protected* — then the new
//!   package cannot be installed and the next solution is tried. Protected are the
//!   requested packages and, recursively, the only possible solution of a protected
//!   package's dependency; a protected package also bans every candidate it conflicts
//!   with. Real case: `libreoffice-writer` → `libreoffice-base-core` takes
//!   `libreoffice-core-nogui` (first of `nogui | core`), then writer's own dependency on
//!   `libreoffice-core` unmarks it. One deliberate deviation: apt does not look at the
//!   `Conflicts` of packages already marked when it installs a new one (its problem
//!   resolver sorts that out later); here such a solution is skipped in favour of the next
//!   one. After resolution, a conflicting pair or a dependency left without its solution is
//!   an error naming both packages. No other backtracking.
//! * **Excludes.** An excluded package is never installed. It behaves like an empty stub
//!   that is installed: when apt would pick it for a dependency, that dependency counts as
//!   met (its own dependencies are not followed, its Provides count) and the dependency is
//!   recorded in [`Resolution::dropped`]. So `debconf | debconf-2.0` with `!debconf` does
//!   not silently pull `cdebconf` instead. Excluding a virtual name (`!mail-transport-agent`)
//!   drops dependencies that apt would meet through it, without taking a provider.
//!   Requesting an excluded package is an error.
//! * **Requested virtual names.** A name that only one candidate provides selects that
//!   package (apt: "Note, selecting X instead of Y"); several providers are an error.
//! * **Determinism.** Only ordered maps reach the output; hash maps are used for lookups.
//!
//! Evidence: `tests/oracle.rs` compares 19 package sets with `apt-get -s` on the host's
//! lists (bookworm: up to 208 packages per set); during development ~190 further sets
//! (random picks of 1–3 packages, desktop metapackages up to 805 packages, and packages
//! whose providers tie down to the package ID) matched exactly. Flipping the package-ID
//! tie-break made 7 of 10 such tie cases differ from apt, so that rule is load-bearing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

use super::control::{Alternatives, Relation, display_alternatives};
use super::index::{BinaryPackage, MultiArch};
use super::version::DebVersion;

/// A small multiply-rotate hasher (the one rustc uses) for the name lookups: package
/// indexes are authenticated input, so SipHash's flooding resistance buys nothing here and
/// costs a third of the universe build time. Never iterated into any output.
#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.write_u64(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }
    fn write_usize(&mut self, i: usize) {
        self.write_u64(i as u64);
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = (self.0.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<FxHasher>>;
type HashSet<K> = std::collections::HashSet<K, BuildHasherDefault<FxHasher>>;

/// Why a request cannot be resolved. The `Display` text is meant for users as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// A requested name is neither a package nor provided by one.
    #[error("{name} is not available in any repository{}", did_you_mean(.suggestion))]
    NotFound {
        name: String,
        suggestion: Option<String>,
    },
    /// A requested name exists, but not in a version (or architecture) that fits.
    #[error("no repository has {relation}: {detail}")]
    NoMatchingVersion { relation: String, detail: String },
    /// A requested name is virtual and several packages provide it.
    #[error("{name} is a virtual package provided by {}; request one of them", .providers.join(", "))]
    VirtualChoice {
        name: String,
        providers: Vec<String>,
    },
    /// A name is both requested and excluded.
    #[error("{name} is both requested and excluded")]
    ExcludedRequested { name: String },
    /// Some dependency chain below a requested package cannot be met.
    #[error("cannot install {package}: {explanation}")]
    Unsatisfiable {
        package: String,
        explanation: String,
    },
    /// Two selected packages conflict (`Conflicts` or `Breaks`).
    #[error("{package} {kind} {other} ({field}: {relation}); both are needed")]
    Conflict {
        package: String,
        other: String,
        kind: &'static str,
        field: &'static str,
        relation: String,
    },
}

fn did_you_mean(s: &Option<String>) -> String {
    match s {
        Some(s) => format!(" (did you mean {s}?)"),
        None => String::new(),
    }
}

/// An excluded package that something depended on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dropped {
    pub name: String,
    /// Sorted; `"requested"` never appears (requesting an excluded package is an error).
    pub required_by: Vec<String>,
}

/// The outcome of [`resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// `(repository id, package)`, sorted by name then architecture.
    pub packages: Vec<(String, BinaryPackage)>,
    /// Excluded packages that a dependency would have installed, sorted by name.
    pub dropped: Vec<Dropped>,
    /// Why each package is in: `"requested"` or `"<pkg> depends on <relation>"`.
    /// Keys are package names, `name:arch` for foreign-architecture packages.
    pub reasons: BTreeMap<String, String>,
}

/// What to resolve.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// Packages to install; a version constraint (`python3 (>= 3.11)`, `foo (= 1.2-3)`)
    /// pins the package to the highest version that satisfies it.
    pub install: Vec<Relation>,
    /// Names never to install (`!perl-base`).
    pub exclude: BTreeSet<String>,
    pub native_arch: String,
    pub foreign_archs: Vec<String>,
    /// The id of a universe repository whose packages are already installed (a base image's dpkg
    /// status, as apt reads `Dir::State::status`): each is marked before anything else, and a
    /// dependency its version meets is met. A dependency it does not meet takes the candidate
    /// instead, and a new package that conflicts with it unmarks it: the caller sees both in the
    /// resolution (the name from another repository, or missing).
    pub installed: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct PkgId {
    repo: u32,
    idx: u32,
}

#[derive(Debug, Clone)]
struct Repo {
    id: String,
    /// Shared with other universes built from the same indexes (`locking::IndexMemo`).
    packages: std::sync::Arc<Vec<BinaryPackage>>,
}

/// All packages of all repositories, in priority order.
#[derive(Debug, Clone, Default)]
pub struct Universe {
    repos: Vec<Repo>,
    /// Real packages by name, in repository then file order.
    by_name: HashMap<String, Vec<PkgId>>,
    /// `(provider, index into its provides)` by provided name.
    providers: HashMap<String, Vec<(PkgId, u32)>>,
    /// apt's package ID, approximated as the order in which names are first met.
    apt_id: HashMap<String, u32>,
}

impl Universe {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one repository's packages; repositories added earlier win ties.
    pub fn add_repository(
        &mut self,
        id: &str,
        packages: impl Into<std::sync::Arc<Vec<BinaryPackage>>>,
    ) {
        let packages = packages.into();
        let repo = u32::try_from(self.repos.len()).unwrap_or(u32::MAX);
        for (i, p) in packages.iter().enumerate() {
            let pid = PkgId {
                repo,
                idx: u32::try_from(i).unwrap_or(u32::MAX),
            };
            self.see(&p.name);
            for groups in [&p.pre_depends, &p.depends, &p.conflicts, &p.breaks] {
                for rel in groups.iter().flatten() {
                    if rel.arch_qualifier.is_none() {
                        self.see(&rel.name);
                    }
                }
            }
            for name in p.mentioned_names() {
                self.see(name);
            }
            for (k, rel) in p.provides.iter().enumerate() {
                if rel.arch_qualifier.is_none() {
                    self.see(&rel.name);
                }
                self.providers
                    .entry(rel.name.clone())
                    .or_default()
                    .push((pid, u32::try_from(k).unwrap_or(u32::MAX)));
            }
            self.by_name.entry(p.name.clone()).or_default().push(pid);
        }
        self.repos.push(Repo {
            id: id.to_string(),
            packages,
        });
    }

    fn see(&mut self, name: &str) {
        if !self.apt_id.contains_key(name) {
            let n = u32::try_from(self.apt_id.len()).unwrap_or(u32::MAX);
            self.apt_id.insert(name.to_string(), n);
        }
    }

    /// Number of packages over all repositories.
    pub fn len(&self) -> usize {
        self.repos.iter().map(|r| r.packages.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Repository ids in priority order.
    pub fn repository_ids(&self) -> Vec<&str> {
        self.repos.iter().map(|r| r.id.as_str()).collect()
    }

    fn pkg(&self, id: PkgId) -> &BinaryPackage {
        &self.repos[id.repo as usize].packages[id.idx as usize]
    }

    fn apt_id(&self, name: &str) -> u32 {
        self.apt_id.get(name).copied().unwrap_or(u32::MAX)
    }

    /// The closest known name (real or virtual) to `name`, for "did you mean".
    fn suggest(&self, name: &str) -> Option<String> {
        let limit = (name.len() / 3).max(2);
        let mut best: Option<(usize, &str)> = None;
        for cand in self.by_name.keys().chain(self.providers.keys()) {
            if cand.len().abs_diff(name.len()) > limit {
                continue;
            }
            let d = levenshtein(name, cand);
            if d == 0 || d > limit {
                continue;
            }
            let better = match best {
                None => true,
                Some((bd, bn)) => d < bd || (d == bd && cand.as_str() < bn),
            };
            if better {
                best = Some((d, cand));
            }
        }
        best.map(|(_, n)| n.to_string())
    }
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// A package's negative relation fields with the words used in messages.
fn neg(q: &BinaryPackage) -> [(&Vec<Alternatives>, &'static str, &'static str); 2] {
    [
        (&q.conflicts, "conflicts with", "Conflicts"),
        (&q.breaks, "breaks", "Breaks"),
    ]
}

/// apt's numeric priority (`pkgCache::State::VerPriority`); missing = 0, unknown = extra.
fn priority_rank(p: &BinaryPackage) -> u8 {
    match p
        .priority
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None => 0,
        Some("required") => 1,
        Some("important") => 2,
        Some("standard") => 3,
        Some("optional") => 4,
        Some(_) => 5,
    }
}

/// How a package meets a relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Met {
    /// By its own name (and version).
    Name,
    /// Through `Provides: NAME` (with the provided version, if any).
    Provides(Relation),
}

/// The resolver's Multi-Arch rule: may `p` meet a relation with qualifier `qual` (`:any`,
/// `:native`, `:arch`) from a package of architecture `ctx`? `Architecture: all` counts as
/// `native`.
pub fn arch_fits(qual: Option<&str>, ctx: &str, native: &str, p: &BinaryPackage) -> bool {
    let a = if p.architecture == "all" {
        native
    } else {
        p.architecture.as_str()
    };
    match qual {
        None => a == ctx || p.multi_arch == MultiArch::Foreign,
        Some("any") => matches!(p.multi_arch, MultiArch::Allowed | MultiArch::Foreign),
        Some("native") => a == native,
        Some(x) => a == x,
    }
}

/// Does `p` meet `rel` (asked by a package of architecture `ctx`), by its name or through a
/// `Provides`? A versioned relation is met only by a fitting version or `Provides: x (= v)`.
pub fn meets(rel: &Relation, ctx: &str, native: &str, p: &BinaryPackage) -> Option<Met> {
    if !arch_fits(rel.arch_qualifier.as_deref(), ctx, native, p) {
        return None;
    }
    if p.name == rel.name && rel.version_matches(Some(&p.version)) {
        return Some(Met::Name);
    }
    p.provides
        .iter()
        .find(|pr| pr.name == rel.name && rel.version_matches(pr.version.as_ref().map(|v| &v.1)))
        .map(|pr| Met::Provides(pr.clone()))
}

/// apt's `CompareProviders` for two packages meeting `rel`, up to the package ID (which only a
/// [`Universe`] knows): the package that really has the name first, then `Essential`, then
/// `Important`/`Protected`, then the architecture rank, then the more important `Priority`.
pub fn compare_providers(
    rel: &Relation,
    pa: &BinaryPackage,
    pb: &BinaryPackage,
    arch_rank: &dyn Fn(&BinaryPackage) -> usize,
) -> std::cmp::Ordering {
    // `false < true`, so compare "b" against "a" where true must sort first.
    (pb.name == rel.name)
        .cmp(&(pa.name == rel.name))
        .then_with(|| pb.essential.cmp(&pa.essential))
        .then_with(|| pb.important.cmp(&pa.important))
        .then_with(|| arch_rank(pa).cmp(&arch_rank(pb)))
        .then_with(|| priority_rank(pa).cmp(&priority_rank(pb)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DepKind {
    PreDepends,
    Depends,
}

impl DepKind {
    fn verb(self) -> &'static str {
        match self {
            DepKind::PreDepends => "pre-depends on",
            DepKind::Depends => "depends on",
        }
    }
}

/// Why one package could not be installed (internal; rendered into [`ResolveError`]).
#[derive(Debug, Clone)]
enum Failure {
    /// No possible solution at all for a group.
    Missing {
        pkg: String,
        kind: DepKind,
        group: String,
        why: String,
    },
    /// Every possible solution failed.
    Nested {
        pkg: String,
        kind: DepKind,
        group: String,
        causes: Vec<(String, Failure)>,
    },
    /// The package conflicts with something already selected.
    Conflict {
        pkg: String,
        other: String,
        kind: &'static str,
        field: &'static str,
        relation: String,
    },
}

impl Failure {
    fn render(&self) -> String {
        match self {
            Failure::Missing {
                pkg,
                kind,
                group,
                why,
            } => format!("{pkg} {} {group}{why}", kind.verb()),
            Failure::Nested {
                pkg,
                kind,
                group,
                causes,
            } => {
                if let [(_, only)] = causes.as_slice() {
                    format!("{pkg} {} {group}, {}", kind.verb(), only.render())
                } else {
                    let parts: Vec<String> = causes
                        .iter()
                        .map(|(name, f)| format!("{name}: {}", f.render()))
                        .collect();
                    format!(
                        "{pkg} {} {group}, but no choice can be installed: {}",
                        kind.verb(),
                        parts.join("; ")
                    )
                }
            }
            Failure::Conflict {
                pkg,
                other,
                kind,
                field,
                relation,
            } => format!("{pkg} {kind} {other} ({field}: {relation}), which is also needed"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sel {
    id: PkgId,
    phantom: bool,
}

type Key = (String, String);

struct Solver<'u> {
    u: &'u Universe,
    native: String,
    /// Native first, then the foreign ones in request order.
    archs: Vec<String>,
    exclude: &'u BTreeSet<String>,
    pins: HashMap<Key, PkgId>,
    selected: BTreeMap<Key, Sel>,
    /// Selected keys by provided name.
    provided: HashMap<String, Vec<Key>>,
    /// Excluded name -> packages whose dependency it would have met.
    dropped: BTreeMap<String, BTreeSet<String>>,
    reasons: BTreeMap<Key, String>,
    /// apt's "protected" packages: the requested ones, and single solutions of their
    /// dependencies, recursively. They are never unmarked by a conflict.
    protected: HashSet<Key>,
    /// Packages a protected package conflicts with: never to be installed. The value says why.
    banned: HashMap<Key, Failure>,
    /// Packages unmarked because a later package conflicts with them, and why.
    evicted: BTreeMap<Key, Failure>,
    /// The repository of the installed packages ([`Request::installed`]).
    installed_repo: Option<u32>,
}

impl<'u> Solver<'u> {
    fn archkey<'a>(&'a self, p: &'a BinaryPackage) -> &'a str {
        if p.architecture == "all" {
            &self.native
        } else {
            &p.architecture
        }
    }

    fn key(&self, id: PkgId) -> Key {
        let p = self.u.pkg(id);
        (p.name.clone(), self.archkey(p).to_string())
    }

    fn display(&self, id: PkgId) -> String {
        let p = self.u.pkg(id);
        let a = self.archkey(p);
        if a == self.native {
            p.name.clone()
        } else {
            format!("{}:{a}", p.name)
        }
    }

    fn visible(&self, p: &BinaryPackage) -> bool {
        p.architecture == "all" || self.archs.contains(&p.architecture)
    }

    /// The candidate of `name` on architecture `arch` (`all` folded into native).
    fn candidate(&self, name: &str, arch: &str) -> Option<PkgId> {
        if !self.pins.is_empty()
            && let Some(&id) = self.pins.get(&(name.to_string(), arch.to_string()))
        {
            return Some(id);
        }
        let mut best: Option<PkgId> = None;
        for &id in self.u.by_name.get(name)? {
            let p = self.u.pkg(id);
            if !self.visible(p) || self.archkey(p) != arch {
                continue;
            }
            match best {
                Some(b) if self.u.pkg(b).version >= p.version => {}
                _ => best = Some(id),
            }
        }
        best
    }

    fn is_candidate(&self, id: PkgId) -> bool {
        let p = self.u.pkg(id);
        self.visible(p) && self.candidate(&p.name, self.archkey(p)) == Some(id)
    }

    /// Multi-Arch rule: may `p` meet a relation with this qualifier from context `ctx`?
    fn arch_ok(&self, qual: Option<&str>, ctx: &str, p: &BinaryPackage) -> bool {
        arch_fits(qual, ctx, &self.native, p)
    }

    /// Does package `id` meet `rel` (by its name or through a Provides)?
    fn meets(&self, rel: &Relation, ctx: &str, id: PkgId) -> bool {
        meets(rel, ctx, &self.native, self.u.pkg(id)).is_some()
    }

    /// Selected packages (real or phantom) meeting `rel`.
    fn selected_meeting(&self, rel: &Relation, ctx: &str) -> Vec<Sel> {
        let mut out = Vec::new();
        for arch in &self.archs {
            if let Some(s) = self.selected.get(&(rel.name.clone(), arch.clone()))
                && self.meets(rel, ctx, s.id)
            {
                out.push(*s);
            }
        }
        if let Some(keys) = self.provided.get(&rel.name) {
            for k in keys {
                if let Some(s) = self.selected.get(k)
                    && self.meets(rel, ctx, s.id)
                {
                    out.push(*s);
                }
            }
        }
        out
    }

    /// apt's possible solutions for one relation, sorted like `CompareProviders`.
    fn solutions(&self, rel: &Relation, ctx: &str) -> Vec<PkgId> {
        if !rel.applies_to_arch(ctx) {
            return Vec::new();
        }
        let mut out: Vec<PkgId> = Vec::new();
        for arch in &self.archs {
            if let Some(id) = self.candidate(&rel.name, arch)
                && self.meets(rel, ctx, id)
                && !out.contains(&id)
            {
                out.push(id);
            }
        }
        if let Some(provs) = self.u.providers.get(&rel.name) {
            for &(id, k) in provs {
                let p = self.u.pkg(id);
                let pr = &p.provides[k as usize];
                if out.contains(&id)
                    || !self.is_candidate(id)
                    || !self.arch_ok(rel.arch_qualifier.as_deref(), ctx, p)
                    || !rel.version_matches(pr.version.as_ref().map(|v| &v.1))
                {
                    continue;
                }
                out.push(id);
            }
        }
        out.sort_by(|&a, &b| self.compare_providers(rel, a, b));
        out
    }

    fn compare_providers(&self, rel: &Relation, a: PkgId, b: PkgId) -> std::cmp::Ordering {
        let (pa, pb) = (self.u.pkg(a), self.u.pkg(b));
        let arch_rank = |p: &BinaryPackage| {
            let k = self.archkey(p);
            self.archs.iter().position(|x| x == k).unwrap_or(usize::MAX)
        };
        compare_providers(rel, pa, pb, &arch_rank)
            .then_with(|| self.u.apt_id(&pb.name).cmp(&self.u.apt_id(&pa.name)))
            .then_with(|| a.cmp(&b))
    }

    /// All possible solutions of an or-group in apt's order, banned ones left out.
    fn group_solutions(&self, group: &Alternatives, ctx: &str) -> Vec<PkgId> {
        self.tagged_solutions(group, ctx)
            .into_iter()
            .map(|(id, _)| id)
            .collect()
    }

    /// Like [`Self::group_solutions`], each with the index of the alternative it meets.
    fn tagged_solutions(&self, group: &Alternatives, ctx: &str) -> Vec<(PkgId, usize)> {
        let mut out: Vec<(PkgId, usize)> = Vec::new();
        for (alt, rel) in group.iter().enumerate() {
            for id in self.solutions(rel, ctx) {
                if !out.iter().any(|(x, _)| *x == id) && !self.banned.contains_key(&self.key(id)) {
                    out.push((id, alt));
                }
            }
        }
        out
    }

    /// Solutions of an or-group that a conflict with a protected package ruled out.
    fn banned_solutions(&self, group: &Alternatives, ctx: &str) -> Vec<(String, Failure)> {
        let mut out: Vec<(String, Failure)> = Vec::new();
        for rel in group {
            for id in self.solutions(rel, ctx) {
                if let Some(f) = self.banned.get(&self.key(id)) {
                    let name = self.display(id);
                    if !out.iter().any(|(n, _)| *n == name) {
                        out.push((name, f.clone()));
                    }
                }
            }
        }
        out
    }

    /// The failure for a group without any solution.
    fn no_solution(&self, pkg: String, kind: DepKind, group: &Alternatives, ctx: &str) -> Failure {
        let banned = self.banned_solutions(group, ctx);
        if banned.is_empty() {
            Failure::Missing {
                pkg,
                kind,
                group: display_alternatives(group),
                why: self.explain_group_missing(group, ctx),
            }
        } else {
            Failure::Nested {
                pkg,
                kind,
                group: display_alternatives(group),
                causes: banned,
            }
        }
    }

    /// A group whose relations all carry arch restrictions excluding `ctx` does not apply.
    fn group_applies(group: &Alternatives, ctx: &str) -> bool {
        group.iter().any(|r| r.applies_to_arch(ctx))
    }

    fn select(&mut self, id: PkgId, phantom: bool) {
        let key = self.key(id);
        for pr in &self.u.pkg(id).provides {
            self.provided
                .entry(pr.name.clone())
                .or_default()
                .push(key.clone());
        }
        self.selected.insert(key, Sel { id, phantom });
    }

    fn unselect(&mut self, id: PkgId) {
        let key = self.key(id);
        for pr in &self.u.pkg(id).provides {
            if let Some(v) = self.provided.get_mut(&pr.name) {
                v.retain(|k| *k != key);
            }
        }
        self.selected.remove(&key);
        self.reasons.remove(&key);
    }

    /// Explains why a relation has no solution at all (the text after the relation).
    fn explain_missing(&self, rel: &Relation, ctx: &str) -> String {
        let reals: Vec<PkgId> = self
            .u
            .by_name
            .get(&rel.name)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&id| self.visible(self.u.pkg(id)))
                    .collect()
            })
            .unwrap_or_default();
        let provs: Vec<(PkgId, u32)> = self
            .u
            .providers
            .get(&rel.name)
            .map(|v| {
                v.iter()
                    .copied()
                    .filter(|&(id, _)| self.is_candidate(id))
                    .collect()
            })
            .unwrap_or_default();
        if reals.is_empty() && provs.is_empty() {
            let any_arch = self.u.by_name.contains_key(&rel.name);
            if any_arch {
                return ", which is not available for the selected architectures".into();
            }
            return format!(
                ", which no repository provides{}",
                did_you_mean(&self.u.suggest(&rel.name))
            );
        }
        let mut cands: Vec<PkgId> = Vec::new();
        for arch in &self.archs {
            if let Some(c) = self.candidate(&rel.name, arch) {
                cands.push(c);
            }
        }
        if let Some(&c) = cands
            .iter()
            .find(|&&c| self.arch_ok(rel.arch_qualifier.as_deref(), ctx, self.u.pkg(c)))
        {
            // Right architecture, so the version must be wrong.
            let mut msg = format!(" but the repository has {}", self.u.pkg(c).version);
            let vprovs: Vec<String> = provs
                .iter()
                .filter_map(|&(id, k)| {
                    let p = self.u.pkg(id);
                    p.provides[k as usize]
                        .version
                        .as_ref()
                        .map(|(_, v)| format!("{} provides {} {v}", p.name, rel.name))
                })
                .collect();
            if !vprovs.is_empty() {
                msg.push_str(&format!(" (and {})", vprovs.join(", ")));
            }
            return msg;
        }
        if let Some(&c) = cands.first() {
            let p = self.u.pkg(c);
            return match rel.arch_qualifier.as_deref() {
                Some("any") => format!(
                    " but {} is Multi-Arch: {}, not allowed or foreign",
                    p.name, p.multi_arch
                ),
                _ => format!(
                    " but {} is only available for {} (Multi-Arch: {})",
                    p.name,
                    self.archkey(p),
                    p.multi_arch
                ),
            };
        }
        // Only virtual.
        let names: Vec<String> = provs
            .iter()
            .map(|&(id, k)| {
                let p = self.u.pkg(id);
                match &p.provides[k as usize].version {
                    Some((_, v)) => format!("{} (as {v})", p.name),
                    None => format!("{} (without a version)", p.name),
                }
            })
            .collect();
        format!(", which is only provided by {}", names.join(", "))
    }

    fn explain_group_missing(&self, group: &Alternatives, ctx: &str) -> String {
        if let [rel] = group.as_slice() {
            return self.explain_missing(rel, ctx);
        }
        let parts: Vec<String> = group
            .iter()
            .map(|r| format!("{r}{}", self.explain_missing(r, ctx)))
            .collect();
        format!(", but none is available: {}", parts.join("; "))
    }

    /// A Conflicts/Breaks clash between `id` and a selected real package, either way.
    fn clash(&self, id: PkgId) -> Option<Failure> {
        let p = self.u.pkg(id);
        let me = self.key(id);
        for (groups, kind, field) in neg(p) {
            for rel in groups.iter().flatten() {
                for s in self.selected_meeting_negative(rel) {
                    if self.key(s) != me {
                        return Some(Failure::Conflict {
                            pkg: self.display(id),
                            other: self.display(s),
                            kind,
                            field,
                            relation: rel.to_string(),
                        });
                    }
                }
            }
        }
        self.reverse_clash(id)
    }

    /// A selected real package whose Conflicts/Breaks hit `id`.
    fn reverse_clash(&self, id: PkgId) -> Option<Failure> {
        let me = self.key(id);
        for (k, s) in &self.selected {
            if s.phantom || *k == me {
                continue;
            }
            let q = self.u.pkg(s.id);
            for (groups, kind, field) in neg(q) {
                for rel in groups.iter().flatten() {
                    if self.negative_hits(rel, id) {
                        return Some(Failure::Conflict {
                            pkg: self.display(s.id),
                            other: self.display(id),
                            kind,
                            field,
                            relation: rel.to_string(),
                        });
                    }
                }
            }
        }
        None
    }

    /// Does a Conflicts/Breaks relation hit package `id`? Negative relations apply to
    /// every architecture unless qualified.
    fn negative_hits(&self, rel: &Relation, id: PkgId) -> bool {
        let p = self.u.pkg(id);
        if let Some(q) = rel.arch_qualifier.as_deref()
            && q != "any"
            && !self.arch_ok(Some(q), &self.native, p)
        {
            return false;
        }
        (p.name == rel.name && rel.version_matches(Some(&p.version)))
            || p.provides.iter().any(|pr| {
                pr.name == rel.name && rel.version_matches(pr.version.as_ref().map(|v| &v.1))
            })
    }

    /// Selected real packages hit by a Conflicts/Breaks relation.
    fn selected_meeting_negative(&self, rel: &Relation) -> Vec<PkgId> {
        let mut out = Vec::new();
        for arch in &self.archs {
            if let Some(s) = self.selected.get(&(rel.name.clone(), arch.clone()))
                && !s.phantom
                && self.negative_hits(rel, s.id)
            {
                out.push(s.id);
            }
        }
        if let Some(keys) = self.provided.get(&rel.name) {
            for k in keys {
                if let Some(s) = self.selected.get(k)
                    && !s.phantom
                    && self.negative_hits(rel, s.id)
                    && !out.contains(&s.id)
                {
                    out.push(s.id);
                }
            }
        }
        out
    }

    /// apt's `MarkInstall_RemoveConflictsIfNotUpgradeable` for `id` about to be installed:
    /// a marked package that `id` conflicts with is unmarked, unless it is protected (then
    /// `id` cannot be installed). A protected `id` also bans every candidate it conflicts with.
    fn remove_conflicts(&mut self, id: PkgId) -> Result<(), Failure> {
        let me = self.key(id);
        let prot = self.protected.contains(&me);
        let p = self.u.pkg(id);
        for (groups, kind, field) in neg(p) {
            for rel in groups.iter().flatten() {
                let mut hits: Vec<PkgId> = Vec::new();
                for arch in &self.archs {
                    if let Some(c) = self.candidate(&rel.name, arch)
                        && self.negative_hits(rel, c)
                    {
                        hits.push(c);
                    }
                }
                if let Some(provs) = self.u.providers.get(&rel.name) {
                    for &(c, _) in provs {
                        if self.is_candidate(c) && self.negative_hits(rel, c) && !hits.contains(&c)
                        {
                            hits.push(c);
                        }
                    }
                }
                for other in hits {
                    let okey = self.key(other);
                    if okey == me {
                        continue;
                    }
                    let why = Failure::Conflict {
                        pkg: self.display(id),
                        other: self.display(other),
                        kind,
                        field,
                        relation: rel.to_string(),
                    };
                    let marked = self.selected.get(&okey).is_some_and(|s| !s.phantom);
                    if marked {
                        if self.protected.contains(&okey) {
                            return Err(why);
                        }
                        self.unselect(other);
                        self.evicted.insert(okey.clone(), why.clone());
                    }
                    if prot {
                        self.protected.insert(okey.clone());
                        self.banned.entry(okey).or_insert(why);
                    }
                }
            }
        }
        Ok(())
    }

    fn critical_groups(p: &BinaryPackage) -> impl Iterator<Item = (DepKind, &Alternatives)> {
        p.pre_depends
            .iter()
            .map(|g| (DepKind::PreDepends, g))
            .chain(p.depends.iter().map(|g| (DepKind::Depends, g)))
    }

    /// IsInstallOkDependenciesSatisfiableByCandidates: every critical group must be met by a
    /// marked package or have some candidate.
    fn precheck(&self, id: PkgId) -> Result<(), Failure> {
        let p = self.u.pkg(id);
        let ctx = self.archkey(p);
        for (kind, group) in Self::critical_groups(p) {
            if !Self::group_applies(group, ctx) {
                continue;
            }
            let met = group
                .iter()
                .any(|r| !self.selected_meeting(r, ctx).is_empty());
            if !met && self.group_solutions(group, ctx).is_empty() {
                return Err(self.no_solution(self.display(id), kind, group, ctx));
            }
        }
        Ok(())
    }

    /// apt's `MarkInstall` for a dependency (not user-requested).
    fn install(&mut self, id: PkgId, reason: String) -> Result<(), Failure> {
        let key = self.key(id);
        if let Some(old) = self.selected.get(&key).map(|s| s.id) {
            if self.holds(&key, id) {
                return Ok(());
            }
            // An installed package whose version does not fit is replaced by the candidate.
            self.unselect(old);
        }
        if let Some(why) = self.banned.get(&key) {
            return Err(why.clone());
        }
        self.precheck(id)?;
        self.remove_conflicts(id)?;
        // Deviation from apt: a package that a marked one conflicts with is not taken.
        if let Some(f) = self.reverse_clash(id) {
            return Err(f);
        }
        self.select(id, false);
        self.evicted.remove(&key);
        self.reasons.insert(key.clone(), reason);
        if let Err(f) = self.install_dependencies(id) {
            // MarkInstall_DiscardInstall: only this package is unmarked (not if protected).
            if !self.protected.contains(&key) {
                self.unselect(id);
            }
            return Err(f);
        }
        Ok(())
    }

    /// Protects `id` (a single solution of a protected package's dependency) and installs
    /// it, or, when it is already marked, walks its dependencies again to pass protection on.
    /// Whether `key` is selected in a way that stands for `id`: as `id`, or as another version
    /// that is not an installed one (an installed one that does not fit gives way to `id`).
    fn holds(&self, key: &Key, id: PkgId) -> bool {
        self.selected
            .get(key)
            .is_some_and(|s| s.id == id || self.installed_repo != Some(s.id.repo))
    }

    fn protect_and_install(&mut self, id: PkgId, reason: String) -> Result<(), Failure> {
        let key = self.key(id);
        if self.protected.contains(&key) {
            return if self.holds(&key, id) {
                Ok(())
            } else {
                self.install(id, reason)
            };
        }
        self.protected.insert(key.clone());
        if self.holds(&key, id) {
            self.remove_conflicts(id)?;
            self.install_dependencies(id)
        } else {
            self.install(id, reason)
        }
    }

    /// apt's `MarkInstall_InstallDependencies` for a marked package.
    fn install_dependencies(&mut self, id: PkgId) -> Result<(), Failure> {
        let p = self.u.pkg(id);
        let ctx = self.archkey(p).to_string();
        let me = self.display(id);
        let prot = self.protected.contains(&self.key(id));
        for (kind, group) in Self::critical_groups(p) {
            if !Self::group_applies(group, &ctx) {
                continue;
            }
            let gtext = display_alternatives(group);
            let reason = format!("{me} {} {gtext}", kind.verb());
            // Already met? Real packages first, then excluded stubs.
            let mut phantom_hit = None;
            let mut real_hit = false;
            for rel in group {
                for s in self.selected_meeting(rel, &ctx) {
                    if s.phantom {
                        phantom_hit.get_or_insert(s.id);
                    } else {
                        real_hit = true;
                    }
                }
            }
            if real_hit {
                if prot {
                    // Pass protection on to a sole possible solution.
                    let sols = self.group_solutions(group, &ctx);
                    if let [only] = sols.as_slice()
                        && self
                            .selected
                            .get(&self.key(*only))
                            .is_some_and(|s| !s.phantom)
                        && self.holds(&self.key(*only), *only)
                    {
                        self.protect_and_install(*only, reason)?;
                    }
                }
                continue;
            }
            if let Some(ph) = phantom_hit {
                let name = self.u.pkg(ph).name.clone();
                self.dropped.entry(name).or_default().insert(me.clone());
                continue;
            }
            let sols = self.tagged_solutions(group, &ctx);
            if sols.is_empty() {
                return Err(self.no_solution(me, kind, group, &ctx));
            }
            let single = sols.len() == 1;
            let mut causes = Vec::new();
            let mut done = false;
            for (sol, alt) in sols {
                let sp = self.u.pkg(sol);
                // An excluded virtual name: the dependency on it is dropped, no provider taken.
                let via = &group[alt].name;
                if *via != sp.name && self.exclude.contains(via) {
                    self.dropped
                        .entry(via.clone())
                        .or_default()
                        .insert(me.clone());
                    done = true;
                    break;
                }
                if self.exclude.contains(&sp.name) {
                    let name = sp.name.clone();
                    self.select(sol, true);
                    self.dropped.entry(name).or_default().insert(me.clone());
                    done = true;
                    break;
                }
                let r = if prot && single {
                    self.protect_and_install(sol, reason.clone())
                } else {
                    self.install(sol, reason.clone())
                };
                match r {
                    Ok(()) => {
                        done = true;
                        break;
                    }
                    Err(f) => causes.push((self.display(sol), f)),
                }
            }
            if !done {
                return Err(Failure::Nested {
                    pkg: me,
                    kind,
                    group: gtext,
                    causes,
                });
            }
        }
        Ok(())
    }

    /// After resolution: a critical group of a selected package that nothing selected
    /// meets any more (its solution was unmarked by a conflict), explained.
    fn broken_dependency(&self) -> Option<(String, String)> {
        for s in self.selected.values().filter(|s| !s.phantom) {
            let p = self.u.pkg(s.id);
            let ctx = self.archkey(p);
            for (kind, group) in Self::critical_groups(p) {
                if !Self::group_applies(group, ctx)
                    || group.iter().any(|r| {
                        self.exclude.contains(&r.name) || !self.selected_meeting(r, ctx).is_empty()
                    })
                {
                    continue;
                }
                let mut why = String::new();
                for rel in group {
                    for (k, f) in &self.evicted {
                        if k.0 == rel.name {
                            why = format!(", but {} had to be removed: {}", k.0, f.render());
                        }
                    }
                }
                if why.is_empty() {
                    why = self.explain_group_missing(group, ctx);
                }
                let text = format!(
                    "{} {} {}{why}",
                    self.display(s.id),
                    kind.verb(),
                    display_alternatives(group)
                );
                return Some((self.display(s.id), text));
            }
        }
        None
    }

    /// Picks the package for one requested relation (and pins its version if asked).
    fn pick_requested(&mut self, rel: &Relation) -> Result<PkgId, ResolveError> {
        if self.exclude.contains(&rel.name) {
            return Err(ResolveError::ExcludedRequested {
                name: rel.name.clone(),
            });
        }
        let arch = match rel.arch_qualifier.as_deref() {
            None | Some("any") | Some("native") => self.native.clone(),
            Some(a) => a.to_string(),
        };
        if let Some(reals) = self.u.by_name.get(&rel.name) {
            let mut best: Option<PkgId> = None;
            let mut seen = Vec::new();
            for &id in reals {
                let p = self.u.pkg(id);
                if !self.visible(p) || self.archkey(p) != arch {
                    continue;
                }
                seen.push(p.version.to_string());
                if !rel.version_matches(Some(&p.version)) {
                    continue;
                }
                match best {
                    Some(b) if self.u.pkg(b).version >= p.version => {}
                    _ => best = Some(id),
                }
            }
            if let Some(id) = best {
                if rel.version.is_some() && self.candidate(&rel.name, &arch) != Some(id) {
                    self.pins.insert((rel.name.clone(), arch), id);
                }
                return Ok(id);
            }
            if !seen.is_empty() {
                seen.dedup();
                return Err(ResolveError::NoMatchingVersion {
                    relation: rel.to_string(),
                    detail: format!("available: {}", seen.join(", ")),
                });
            }
        }
        // Virtual: one provider is taken (apt: "Note, selecting X instead of Y").
        let mut provs: Vec<PkgId> = Vec::new();
        if let Some(list) = self.u.providers.get(&rel.name) {
            for &(id, k) in list {
                let p = self.u.pkg(id);
                if self.is_candidate(id)
                    && self.archkey(p) == arch
                    && rel.version_matches(p.provides[k as usize].version.as_ref().map(|v| &v.1))
                    && !provs.contains(&id)
                {
                    provs.push(id);
                }
            }
        }
        match provs.as_slice() {
            [one] => Ok(*one),
            [] => {
                if self.u.by_name.contains_key(&rel.name)
                    || self.u.providers.contains_key(&rel.name)
                {
                    Err(ResolveError::NoMatchingVersion {
                        relation: rel.to_string(),
                        detail: format!("nothing fits on {arch}"),
                    })
                } else {
                    Err(ResolveError::NotFound {
                        name: rel.name.clone(),
                        suggestion: self.u.suggest(&rel.name),
                    })
                }
            }
            many => {
                let mut names: Vec<String> = many.iter().map(|&id| self.display(id)).collect();
                names.sort();
                Err(ResolveError::VirtualChoice {
                    name: rel.name.clone(),
                    providers: names,
                })
            }
        }
    }
}

/// Resolves `req` against `universe`. See the module documentation for the rules.
pub fn resolve(universe: &Universe, req: &Request) -> Result<Resolution, ResolveError> {
    let mut archs = vec![req.native_arch.clone()];
    for a in &req.foreign_archs {
        if !archs.contains(a) {
            archs.push(a.clone());
        }
    }
    let mut s = Solver {
        u: universe,
        native: req.native_arch.clone(),
        archs,
        exclude: &req.exclude,
        pins: HashMap::default(),
        selected: BTreeMap::new(),
        provided: HashMap::default(),
        dropped: BTreeMap::new(),
        reasons: BTreeMap::new(),
        protected: HashSet::default(),
        banned: HashMap::default(),
        evicted: BTreeMap::new(),
        installed_repo: None,
    };
    // 0. What is installed already is marked, and stays.
    if let Some(repo) = req
        .installed
        .as_deref()
        .and_then(|id| universe.repos.iter().position(|r| r.id == id))
    {
        s.installed_repo = u32::try_from(repo).ok();
        for idx in 0..universe.repos[repo].packages.len() {
            let id = PkgId {
                repo: u32::try_from(repo).unwrap_or(u32::MAX),
                idx: u32::try_from(idx).unwrap_or(u32::MAX),
            };
            if !s.visible(universe.pkg(id)) {
                continue;
            }
            let key = s.key(id);
            s.select(id, false);
            s.reasons.insert(key, "installed".into());
        }
    }
    // 1. Pick and mark every requested package (apt: MarkInstall without AutoInst).
    let mut requested: Vec<PkgId> = Vec::new();
    for rel in &req.install {
        let id = s.pick_requested(rel)?;
        if !requested.contains(&id) {
            requested.push(id);
        }
    }
    for &id in &requested {
        if let Some(f) = s.clash(id) {
            return Err(conflict_error(f));
        }
        let key = s.key(id);
        s.select(id, false);
        s.protected.insert(key.clone());
        s.reasons.insert(key, "requested".into());
    }
    // 2. Their dependencies, in request order (apt's doAutoInstall walks the command line
    //    order), skipping those whose dependencies are all met already.
    for &id in &requested {
        let p = universe.pkg(id);
        let ctx = s.archkey(p).to_string();
        let all_met = Solver::critical_groups(p).all(|(_, g)| {
            !Solver::group_applies(g, &ctx)
                || g.iter()
                    .any(|r| s.selected_meeting(r, &ctx).iter().any(|x| !x.phantom))
        });
        if all_met {
            continue;
        }
        let walked = s
            .precheck(id)
            .and_then(|()| s.remove_conflicts(id))
            .and_then(|()| s.install_dependencies(id));
        if let Err(f) = walked {
            return Err(match f {
                Failure::Conflict { .. } => conflict_error(f),
                other => ResolveError::Unsatisfiable {
                    package: s.display(id),
                    explanation: other.render(),
                },
            });
        }
    }
    // 3. Final checks: no selected pair may conflict, and no dependency may have lost its
    //    solution to a conflict (apt would hand both cases to its problem resolver).
    let ids: Vec<PkgId> = s
        .selected
        .values()
        .filter(|x| !x.phantom)
        .map(|x| x.id)
        .collect();
    for id in ids {
        if let Some(f) = s.clash(id) {
            return Err(conflict_error(f));
        }
    }
    if let Some((package, explanation)) = s.broken_dependency() {
        return Err(ResolveError::Unsatisfiable {
            package,
            explanation,
        });
    }
    Ok(finish(s))
}

fn conflict_error(f: Failure) -> ResolveError {
    match f {
        Failure::Conflict {
            pkg,
            other,
            kind,
            field,
            relation,
        } => ResolveError::Conflict {
            package: pkg,
            other,
            kind,
            field,
            relation,
        },
        other => ResolveError::Unsatisfiable {
            package: String::new(),
            explanation: other.render(),
        },
    }
}

fn finish(s: Solver<'_>) -> Resolution {
    let real: Vec<(Key, PkgId)> = s
        .selected
        .iter()
        .filter(|(_, x)| !x.phantom)
        .map(|(k, x)| (k.clone(), x.id))
        .collect();
    let present: BTreeSet<String> = real.iter().map(|(_, id)| s.display(*id)).collect();
    let mut packages = Vec::with_capacity(real.len());
    let mut reasons = BTreeMap::new();
    for (key, id) in &real {
        let pkg = s.u.pkg(*id);
        packages.push((s.u.repos[id.repo as usize].id.clone(), pkg.clone()));
        let mut why = s.reasons.get(key).cloned().unwrap_or_default();
        // A package pulled in by an attempt that apt (and we) later abandoned.
        if let Some(parent) = why.split(' ').next()
            && why != "requested"
            && why != "installed"
            && !present.contains(parent)
        {
            why.push_str(&format!(
                " (kept although {parent} itself is not installed)"
            ));
        }
        reasons.insert(s.display(*id), why);
    }
    // BTreeMap order is (name, arch): exactly "sorted by name then arch".
    let dropped = s
        .dropped
        .into_iter()
        .filter_map(|(name, by)| {
            let required_by: Vec<String> = by.into_iter().filter(|b| present.contains(b)).collect();
            (!required_by.is_empty()).then_some(Dropped { name, required_by })
        })
        .collect();
    Resolution {
        packages,
        dropped,
        reasons,
    }
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (needed by {})",
            self.name,
            self.required_by.join(", ")
        )
    }
}

/// Convenience for callers and tests: the `name (version)` pairs of a resolution.
impl Resolution {
    pub fn names(&self) -> Vec<&str> {
        self.packages.iter().map(|(_, p)| p.name.as_str()).collect()
    }

    pub fn versions(&self) -> BTreeMap<String, DebVersion> {
        self.packages
            .iter()
            .map(|(_, p)| (p.name.clone(), p.version.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests;
