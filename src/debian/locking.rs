//! Resolving an image's `packages` into a [`LockedImage`]: fetch and verify every repository's signed
//! InRelease and package indexes, resolve the request per architecture, and pin the result.

use std::collections::{BTreeMap, BTreeSet};

use himg_lang::{ImageSpec, PackagesSpec, SourceLoader};
use sha2::Digest;

use super::DebianError;
use super::control::{Op, Relation, parse_relations};
use super::fetch::Fetcher;
use super::index::parse_packages;
use super::keyring::Keyring;
use super::lockfile::{DroppedPackage, LockedImage, LockedPackage, LockedRepository, LockedSuite};
use super::mirror::MirrorResolver;
use super::release::{fetch_verified_index, verify_inrelease_named};
use super::resolve::{Request, Universe, resolve};
use super::version::DebVersion;
use crate::load::FsLoader;

/// What locking needs from the outside world.
pub struct LockContext<'a> {
    pub loader: &'a FsLoader,
    pub fetcher: &'a Fetcher,
    pub mirrors: &'a MirrorResolver,
    /// Seconds since the epoch, for Valid-Until checks.
    pub now: i64,
    /// Where index downloads go (a temp directory).
    pub scratch: &'a std::path::Path,
}

/// blake3 over everything that decides a resolution: repositories (with their keyrings' contents),
/// requested and excluded packages, architectures. A lock whose `inputs` differ is stale.
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
    let doc = serde_json::json!({
        "repositories": repos,
        "install": packages.install,
        "exclude": packages.exclude,
        "architectures": spec.architectures,
        "configure_tools": super::configure::TOOLS,
    });
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

/// Resolves one image's packages against the live repositories.
pub fn lock_image(
    cx: &LockContext<'_>,
    spec: &ImageSpec,
    packages: &PackagesSpec,
) -> Result<LockedImage, DebianError> {
    let mut universes: BTreeMap<String, Universe> = spec
        .architectures
        .iter()
        .map(|a| (a.clone(), Universe::new()))
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
            let bytes = cx.fetcher.get_bytes(&url, 64 * 1024 * 1024)?;
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
                inrelease_sha256: hex::encode(sha2::Sha256::digest(&bytes)),
            });
            for (arch, universe) in universes.iter_mut() {
                let mut all = Vec::new();
                for component in &repo.components {
                    let text = fetch_verified_index(
                        cx.fetcher, &base, suite, &release, component, arch, cx.scratch,
                    )
                    .map_err(|source| DebianError::Release {
                        repository: repo.name.clone(),
                        suite: suite.clone(),
                        source: Box::new(source),
                    })?;
                    let text = String::from_utf8_lossy(&text);
                    all.extend(parse_packages(&text)?);
                }
                universe.add_repository(&format!("{}/{}", repo.name, suite), all);
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
    let mut architectures = BTreeMap::new();
    let mut tools = BTreeMap::new();
    let mut dropped: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (arch, universe) in &universes {
        let request = Request {
            install: install.clone(),
            exclude: exclude.clone(),
            native_arch: arch.clone(),
            foreign_archs: Vec::new(),
        };
        let resolution = resolve(universe, &request).map_err(|source| DebianError::Resolve {
            image: spec.name.clone(),
            arch: arch.clone(),
            source: Box::new(source),
        })?;
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
    })
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
