//! Resolving an image's `packages` into a [`LockedImage`]: fetch and verify every repository's signed
//! InRelease and package indexes, resolve the request per architecture, and pin the result.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use himg_lang::{ImageSpec, PackagesSpec, SourceLoader};
use sha2::Digest;

use super::control::parse_stanzas;
use super::control::{Op, Relation, parse_relations};
use super::fetch::Fetcher;
use super::index::{BinaryPackage, parse_packages};
use super::keyring::Keyring;
use super::lockfile::{
    BaseInstalledPackage, DroppedPackage, LockedImage, LockedPackage, LockedRepository, LockedSuite,
};
use super::mirror::MirrorResolver;
use super::parsed;
use super::release::{fetch_verified_index, index_path, verify_inrelease_named};
use super::resolve::{Request, Universe, resolve};
use super::version::DebVersion;
use super::{BaseConflict, DebianError};
use crate::load::FsLoader;

/// What one process has read of the repositories: each suite's signed InRelease, fetched once (so
/// every image and file locked together sees the same snapshot), and the parsed Packages indexes
/// by the signed digests of the index files (parsed once however many images lock against them).
#[derive(Default)]
pub struct IndexMemo {
    releases: Mutex<HashMap<String, Arc<Vec<u8>>>>,
    packages: Mutex<HashMap<IndexKey, Arc<Vec<BinaryPackage>>>>,
    /// Universes built from the same repositories' indexes, in the same order (one per
    /// architecture of each distinct set of repositories): building one indexes every package by
    /// name and by what it provides, which costs as much again as parsing.
    universes: Mutex<HashMap<UniverseKey, Arc<Universe>>>,
}

/// The repositories of a universe, in order: each one's id and index key.
type UniverseKey = Vec<(String, IndexKey)>;

/// The sha256 of each component's index file of one suite and architecture, in component order.
type IndexKey = Vec<[u8; 32]>;

impl std::fmt::Debug for IndexMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = |n: Option<usize>| n.unwrap_or(0);
        f.debug_struct("IndexMemo")
            .field(
                "releases",
                &count(self.releases.lock().ok().map(|m| m.len())),
            )
            .field(
                "indexes",
                &count(self.packages.lock().ok().map(|m| m.len())),
            )
            .finish()
    }
}

impl IndexMemo {
    fn packages(&self, key: &[[u8; 32]]) -> Option<Arc<Vec<BinaryPackage>>> {
        self.packages.lock().ok()?.get(key).cloned()
    }

    fn put_packages(&self, key: Vec<[u8; 32]>, packages: Arc<Vec<BinaryPackage>>) {
        if let Ok(mut map) = self.packages.lock() {
            map.insert(key, packages);
        }
    }

    /// The universe of these repositories (id, index key, packages), built on first use.
    fn universe(&self, repos: Vec<(String, IndexKey, Arc<Vec<BinaryPackage>>)>) -> Arc<Universe> {
        let key: UniverseKey = repos
            .iter()
            .map(|(id, k, _)| (id.clone(), k.clone()))
            .collect();
        if let Some(u) = self
            .universes
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return u;
        }
        let mut universe = Universe::new();
        for (id, _, packages) in repos {
            universe.add_repository(&id, packages);
        }
        let universe = Arc::new(universe);
        if let Ok(mut map) = self.universes.lock() {
            map.insert(key, Arc::clone(&universe));
        }
        universe
    }

    /// The InRelease at `url`, fetched on first use.
    fn release(&self, fetcher: &Fetcher, url: &str) -> Result<Arc<Vec<u8>>, DebianError> {
        if let Some(bytes) = self.releases.lock().ok().and_then(|m| m.get(url).cloned()) {
            return Ok(bytes);
        }
        let bytes = Arc::new(fetcher.get_bytes(url, 64 * 1024 * 1024)?);
        if let Ok(mut map) = self.releases.lock() {
            map.insert(url.to_owned(), Arc::clone(&bytes));
        }
        Ok(bytes)
    }
}

/// What locking needs from the outside world.
pub struct LockContext<'a> {
    pub loader: &'a FsLoader,
    pub fetcher: &'a Fetcher,
    pub mirrors: &'a MirrorResolver,
    /// Seconds since the epoch, for Valid-Until checks.
    pub now: i64,
    /// The index cache (`<store>/indexes/`): index downloads, their text and their parsed form.
    pub scratch: &'a std::path::Path,
    /// Indexes already parsed by this process.
    pub indexes: &'a IndexMemo,
}

/// The registry image at the bottom of `spec`'s `from` chain (`HOST/REPO@sha256:…`), if any.
pub fn registry_base_of(spec: &ImageSpec) -> Option<&str> {
    registry_base_spec(spec).and_then(|s| s.base_reference.as_deref())
}

/// The image of `spec`'s `from` chain (itself included) that declares its registry base.
pub fn registry_base_spec(spec: &ImageSpec) -> Option<&ImageSpec> {
    let mut next = Some(spec);
    while let Some(s) = next {
        if s.base_reference.is_some() {
            return Some(s);
        }
        next = s.base.as_deref();
    }
    None
}

/// What a registry base has installed: per architecture, the stanzas of its dpkg database.
#[derive(Debug, Clone, Default)]
pub struct BaseStatus {
    /// The reference written in `from`.
    pub reference: String,
    pub architectures: BTreeMap<String, String>,
}

/// The universe repository id of a base's installed packages.
const BASE_REPO: &str = "(base image)";

/// The installed packages of a dpkg status text (`Status: … installed`, or no `Status` field as
/// in distroless `status.d` files), sorted by name and architecture.
fn installed_packages(text: &str) -> Result<Vec<BinaryPackage>, DebianError> {
    let mut out = Vec::new();
    for stanza in parse_stanzas(text)? {
        if stanza
            .get("Status")
            .is_some_and(|s| !s.trim_end().ends_with(" installed"))
        {
            continue;
        }
        out.push(BinaryPackage::from_installed(&stanza)?);
    }
    out.sort_by(|a, b| (&a.name, &a.architecture).cmp(&(&b.name, &b.architecture)));
    out.dedup_by(|a, b| a.name == b.name && a.architecture == b.architecture);
    Ok(out)
}

/// blake3 over everything that decides a resolution: repositories (with their keyrings' contents),
/// requested and excluded packages, architectures, a registry base. A lock whose `inputs` differ
/// is stale.
pub fn inputs_hash(
    spec: &ImageSpec,
    packages: &PackagesSpec,
    loader: &FsLoader,
) -> Result<String, DebianError> {
    let mut repos = Vec::new();
    for r in &packages.repositories {
        let keyring = loader
            .read(&r.keyring)
            .map_err(|source| DebianError::Keyring {
                path: loader.resolve(&r.keyring),
                source,
            })?;
        repos.push(serde_json::json!({
            "name": r.name, "url": r.url, "suites": r.suites, "components": r.components,
            "keyring": blake3::hash(&keyring).to_hex().to_string(),
        }));
    }
    let mut doc = serde_json::json!({
        "repositories": repos,
        "install": packages.install,
        "exclude": packages.exclude,
        "architectures": spec.architectures,
        "configure_tools": super::configure::TOOLS,
    });
    // Only when there is one, so that the locks of other images stay current.
    if let (Some(reference), Some(map)) = (registry_base_of(spec), doc.as_object_mut()) {
        map.insert("registry_base".into(), reference.into());
    }
    let bytes = crate::oci::canonical_json(&doc).unwrap_or_default();
    Ok(format!("b3:{}", blake3::hash(&bytes).to_hex()))
}

/// Parses one `packages` entry: `name`, `name:arch`, `name (>= 1.0)`, `name=1.0`.
pub fn parse_request(text: &str) -> Result<Relation, DebianError> {
    if let Some((name, version)) = text.split_once('=').filter(|(n, _)| !n.contains('(')) {
        {
            let version: DebVersion =
                version
                    .trim()
                    .parse()
                    .map_err(|_| DebianError::BadRequest {
                        request: text.to_string(),
                    })?;
            let mut rel = parse_single(name.trim(), text)?;
            rel.version = Some((Op::Eq, version));
            return Ok(rel);
        }
    }
    parse_single(text, text)
}

fn parse_single(text: &str, original: &str) -> Result<Relation, DebianError> {
    let mut alts = parse_relations(text).map_err(|_| DebianError::BadRequest {
        request: original.to_string(),
    })?;
    match (alts.len(), alts.first().map(|a| a.len())) {
        (1, Some(1)) => Ok(alts.remove(0).remove(0)),
        _ => Err(DebianError::BadRequest {
            request: original.to_string(),
        }),
    }
}

/// One component's Packages index of one suite and architecture.
struct IndexFile<'a> {
    repository: &'a str,
    base: &'a str,
    suite: &'a str,
    release: &'a super::release::Release,
    component: &'a str,
    arch: &'a str,
    /// The index file's signed sha256.
    sha256: &'a [u8; 32],
}

/// The packages of one index file: its parsed form from the index cache when one is there and
/// sound (`parsed`), else the verified index parsed (and its parsed form kept for the next
/// process; a cache that cannot be written is only slower next time).
fn index_packages(
    cx: &LockContext<'_>,
    index: &IndexFile<'_>,
) -> Result<Vec<BinaryPackage>, DebianError> {
    if let Ok(packages) = parsed::load(cx.scratch, index.sha256) {
        return Ok(packages);
    }
    let text = fetch_verified_index(
        cx.fetcher,
        index.base,
        index.suite,
        index.release,
        index.component,
        index.arch,
        cx.scratch,
    )
    .map_err(|source| DebianError::Release {
        repository: index.repository.to_string(),
        suite: index.suite.to_string(),
        source: Box::new(source),
    })?;
    let packages = parse_packages(&String::from_utf8_lossy(&text))?;
    drop(text);
    let _ = parsed::save(cx.scratch, index.sha256, &packages);
    Ok(packages)
}

/// Resolves one image's packages against the live repositories; on a registry base, what `base`
/// has installed counts as installed (only what is missing is resolved and locked).
pub fn lock_image(
    cx: &LockContext<'_>,
    spec: &ImageSpec,
    packages: &PackagesSpec,
    base: Option<&BaseStatus>,
) -> Result<LockedImage, DebianError> {
    // Per architecture: the repositories' (id, index key, packages), in order.
    type Sources = Vec<(String, IndexKey, Arc<Vec<BinaryPackage>>)>;
    let mut sources: BTreeMap<String, Sources> = spec
        .architectures
        .iter()
        .map(|a| (a.clone(), Vec::new()))
        .collect();
    let mut repositories = Vec::new();
    for repo in &packages.repositories {
        let keyring_bytes =
            cx.loader
                .read(&repo.keyring)
                .map_err(|source| DebianError::Keyring {
                    path: cx.loader.resolve(&repo.keyring),
                    source,
                })?;
        let keyring = Keyring::from_bytes(&keyring_bytes)?;
        let base = cx.mirrors.resolve(&repo.url)?;
        let base = base.trim_end_matches('/').to_string();
        let mut suites = Vec::new();
        for suite in &repo.suites {
            let url = format!("{base}/dists/{suite}/InRelease");
            let bytes = cx.indexes.release(cx.fetcher, &url)?;
            let release = verify_inrelease_named(&bytes, &keyring, cx.now, Some(suite))
                .and_then(|release| release.check_suite(suite).map(|()| release))
                .map_err(|source| DebianError::Release {
                    repository: repo.name.clone(),
                    suite: suite.clone(),
                    source: Box::new(source),
                })?;
            suites.push(LockedSuite {
                suite: suite.clone(),
                codename: release.codename.clone(),
                date: crate::oci::epoch_to_rfc3339(u64::try_from(release.date).unwrap_or(0)),
                inrelease_sha256: hex::encode(sha2::Sha256::digest(bytes.as_slice())),
            });
            let release_err = |source| DebianError::Release {
                repository: repo.name.clone(),
                suite: suite.clone(),
                source: Box::new(source),
            };
            for (arch, arch_sources) in sources.iter_mut() {
                let key: Vec<[u8; 32]> = repo
                    .components
                    .iter()
                    .map(|c| index_path(&release, c, arch).map(|choice| choice.sha256))
                    .collect::<Result<_, _>>()
                    .map_err(release_err)?;
                let packages = match cx.indexes.packages(&key) {
                    Some(packages) => packages,
                    None => {
                        let mut all = Vec::new();
                        for (component, sha256) in repo.components.iter().zip(&key) {
                            let index = IndexFile {
                                repository: &repo.name,
                                base: &base,
                                suite,
                                release: &release,
                                component,
                                arch,
                                sha256,
                            };
                            all.extend(index_packages(cx, &index)?);
                        }
                        let all = Arc::new(all);
                        cx.indexes.put_packages(key.clone(), Arc::clone(&all));
                        all
                    }
                };
                arch_sources.push((format!("{}/{}", repo.name, suite), key, packages));
            }
        }
        repositories.push(LockedRepository {
            name: repo.name.clone(),
            url: repo.url.clone(),
            suites,
        });
    }

    let install: Vec<Relation> = packages
        .install
        .iter()
        .map(|t| parse_request(t))
        .collect::<Result<_, _>>()?;
    let exclude: BTreeSet<String> = packages.exclude.iter().cloned().collect();
    let universes: BTreeMap<String, Arc<Universe>> = sources
        .into_iter()
        .map(|(arch, repos)| (arch, cx.indexes.universe(repos)))
        .collect();
    let mut architectures = BTreeMap::new();
    let mut tools = BTreeMap::new();
    let mut dropped: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut base_installed = BTreeMap::new();
    for (arch, universe) in &universes {
        let installed = match base.and_then(|b| b.architectures.get(arch)) {
            Some(text) => installed_packages(text)?,
            None => Vec::new(),
        };
        let reference = base.map(|b| b.reference.clone()).unwrap_or_default();
        let base_version = |name: &str| -> Option<&BinaryPackage> {
            installed
                .iter()
                .find(|p| p.name == name && (p.architecture == *arch || p.architecture == "all"))
        };
        // A requested package the base has stays as it is, when its version fits the request.
        let mut arch_install = Vec::new();
        for rel in &install {
            match base_version(&rel.name) {
                Some(p) if rel.arch_qualifier.is_none() => {
                    if !rel.version_matches(Some(&p.version)) {
                        return Err(DebianError::BaseVersion(Box::new(BaseConflict {
                            image: spec.name.clone(),
                            arch: arch.clone(),
                            package: rel.name.clone(),
                            installed: p.version.to_string(),
                            wanted: rel
                                .version
                                .as_ref()
                                .map(|(op, v)| format!("({op} {v})"))
                                .unwrap_or_default(),
                            needed_by: Some("requested".into()),
                            reference: reference.clone(),
                        })));
                    }
                }
                _ => arch_install.push(rel.clone()),
            }
        }
        let with_base = !installed.is_empty();
        let extended;
        let universe: &Universe = if with_base {
            let mut u = Universe::clone(universe);
            u.add_repository(BASE_REPO, installed.clone());
            extended = u;
            &extended
        } else {
            universe
        };
        let request = Request {
            install: arch_install,
            exclude: exclude.clone(),
            native_arch: arch.clone(),
            foreign_archs: Vec::new(),
            installed: with_base.then(|| BASE_REPO.to_string()),
        };
        let mut resolution =
            resolve(universe, &request).map_err(|source| DebianError::Resolve {
                image: spec.name.clone(),
                arch: arch.clone(),
                source: Box::new(source),
            })?;
        if with_base {
            check_base_kept(spec, arch, &reference, &installed, &resolution)?;
            resolution.packages.retain(|(repo, _)| repo != BASE_REPO);
            base_installed.insert(
                arch.clone(),
                installed
                    .iter()
                    .map(|p| BaseInstalledPackage {
                        name: p.name.clone(),
                        version: p.version.to_string(),
                        architecture: p.architecture.clone(),
                    })
                    .collect(),
            );
        }
        for d in &resolution.dropped {
            dropped
                .entry(d.name.clone())
                .or_default()
                .extend(d.required_by.iter().cloned());
        }
        architectures.insert(arch.clone(), locked_packages(&resolution));
        // The tools the configure step runs maintainer scripts with (a shell, dpkg, adduser…),
        // from the same repositories. A repository without them (a test fixture, a third-party
        // repository alone) locks none: the build then reports the scripts it could not run.
        let tools_request = Request {
            install: super::configure::TOOLS
                .iter()
                .map(|t| parse_request(t))
                .collect::<Result<_, _>>()?,
            exclude: BTreeSet::new(),
            native_arch: arch.clone(),
            foreign_archs: Vec::new(),
            installed: None,
        };
        if let Ok(resolution) = resolve(universe, &tools_request) {
            tools.insert(arch.clone(), locked_packages(&resolution));
        }
    }
    Ok(LockedImage {
        inputs: inputs_hash(spec, packages, cx.loader)?,
        repositories,
        architectures,
        dropped: DroppedPackage::list(dropped),
        tools,
        base_installed,
    })
}

/// Every package the base has installed is still there at its version: a dependency that needs
/// another version, or a new package that conflicts with it, is refused.
fn check_base_kept(
    spec: &ImageSpec,
    arch: &str,
    reference: &str,
    installed: &[BinaryPackage],
    resolution: &super::resolve::Resolution,
) -> Result<(), DebianError> {
    for p in installed {
        let key = |q: &BinaryPackage| {
            q.name == p.name
                && (q.architecture == p.architecture
                    || (q.architecture == "all") != (p.architecture == "all"))
        };
        let kept = resolution
            .packages
            .iter()
            .any(|(repo, q)| repo == BASE_REPO && q.name == p.name && q.version == p.version);
        if kept {
            continue;
        }
        if let Some((_, other)) = resolution
            .packages
            .iter()
            .find(|(repo, q)| repo != BASE_REPO && key(q))
        {
            return Err(DebianError::BaseVersion(Box::new(BaseConflict {
                image: spec.name.clone(),
                arch: arch.to_string(),
                package: p.name.clone(),
                installed: p.version.to_string(),
                wanted: other.version.to_string(),
                needed_by: resolution.reasons.get(&p.name).cloned(),
                reference: reference.to_string(),
            })));
        }
        if p.architecture == arch || p.architecture == "all" {
            return Err(DebianError::BaseRemoved(Box::new(BaseConflict {
                image: spec.name.clone(),
                arch: arch.to_string(),
                package: p.name.clone(),
                installed: p.version.to_string(),
                wanted: "a new package conflicts with it".into(),
                needed_by: None,
                reference: reference.to_string(),
            })));
        }
    }
    Ok(())
}

/// A resolution's packages as the lock pins them, sorted.
fn locked_packages(resolution: &super::resolve::Resolution) -> Vec<LockedPackage> {
    let mut locked: Vec<LockedPackage> = resolution
        .packages
        .iter()
        .map(|(repo_id, p)| {
            let (repository, suite) = repo_id
                .split_once('/')
                .map(|(r, s)| (r.to_string(), s.to_string()))
                .unwrap_or_else(|| (repo_id.clone(), String::new()));
            LockedPackage {
                name: p.name.clone(),
                version: p.version.to_string(),
                architecture: p.architecture.clone(),
                source: p.source.clone(),
                source_version: p.source_version.to_string(),
                repository,
                suite,
                filename: p.filename.clone(),
                size: p.size,
                sha256: p.sha256.clone(),
            }
        })
        .collect();
    locked.sort();
    locked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_packages_of_a_status_are_the_installed_ones() {
        let status = "Package: b\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\n\
                      Package: a\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n\n\
                      Package: c\nVersion: 2\nArchitecture: all\nProvides: d (= 2)\n\n\
                      Package: b\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n";
        let got: Vec<String> = installed_packages(status)
            .expect("status")
            .iter()
            .map(|p| format!("{} {} {}", p.name, p.version, p.architecture))
            .collect();
        // `a` only left configuration files; a distroless stanza (no Status) is installed;
        // `status` and `status.d` both listing `b` give one.
        assert_eq!(got, ["b 1 amd64", "c 2 all"]);
    }

    #[test]
    fn a_base_conflict_says_what_to_do() {
        let conflict = BaseConflict {
            image: "py".into(),
            arch: "amd64".into(),
            package: "libc6".into(),
            installed: "2.41-12".into(),
            wanted: "2.41-13".into(),
            needed_by: Some("python3 depends on libc6 (>= 2.41-13)".into()),
            reference: "127.0.0.1:5000/base@sha256:00".into(),
        };
        assert_eq!(
            DebianError::BaseVersion(Box::new(conflict)).to_string(),
            "image `py` (amd64) needs libc6 2.41-13 (python3 depends on libc6 (>= 2.41-13)), but its base `127.0.0.1:5000/base@sha256:00` has libc6 2.41-12 installed, and himg does not replace a registry base's packages: request the base's version (`libc6=2.41-12`) or leave the version out, or build `from` a base image that has libc6 2.41-13"
        );
    }
}
