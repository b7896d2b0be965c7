//! Debian packages of a build: the locks it needs (current, or resolved and written when allowed),
//! the repositories' base URLs, and the fetcher and index cache that `lock`, `update` and `why` share.

use std::collections::BTreeMap;

use himg_lang::ImageSpec;

use super::{Error, Session};
use crate::debian::fetch::{FetchOptions, Fetcher};
use crate::debian::lockfile::{LOCK_VERSION, LockFile, LockedImage, lock_path};
use crate::debian::locking::{LockContext, inputs_hash, lock_image};
use crate::debian::mirror::MirrorResolver;
use crate::debian::plan::DebianInputs;
use crate::load::Loaded;

/// How a build treats the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Use a current lock; resolve and write one when it is missing or stale.
    Auto,
    /// Fail when the lock is missing or stale (`--locked`).
    Locked,
}

/// Every image `specs` need (their chains, their builds' environments) that declares packages.
pub fn images_with_packages(specs: &[ImageSpec]) -> Vec<&ImageSpec> {
    himg_lang::images_reached(specs)
        .into_iter()
        .filter(|s| s.packages.is_some())
        .collect()
}

/// Where verified package indexes are kept, by sha256 (`<store>/indexes/`), so that re-locking
/// downloads only indexes that changed.
fn index_cache(session: &Session<'_>) -> Result<std::path::PathBuf, Error> {
    let dir = session.store_root()?.join(crate::debian::index_cache::DIR);
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        path: dir.clone(),
        source,
    })?;
    Ok(dir)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn fetcher() -> Result<Fetcher, Error> {
    fetcher_with_progress(crate::printer::Transfer::hidden())
}

/// [`fetcher`], counting the bytes it downloads in `progress`.
pub fn fetcher_with_progress(progress: crate::printer::Transfer) -> Result<Fetcher, Error> {
    let credentials = crate::debian::fetch::Credentials::from_env()?;
    Ok(Fetcher::new(FetchOptions {
        credentials,
        progress,
        ..FetchOptions::default()
    }))
}

/// On a registry base (`from = "HOST/REPO@sha256:…"` at the bottom of the chain), what it has
/// installed: the base is pulled into the store when missing (as `himg build` does) and its dpkg
/// database read, per architecture of the image.
fn base_status(
    session: &Session<'_>,
    spec: &ImageSpec,
) -> Result<Option<crate::debian::locking::BaseStatus>, Error> {
    let Some(reference) = crate::debian::locking::registry_base_of(spec) else {
        return Ok(None);
    };
    let store = session.open_store()?;
    let bases =
        crate::registry::base::resolve_bases(&store, &[reference.to_owned()], session.printer())?;
    let mut status = crate::debian::locking::BaseStatus {
        reference: reference.to_owned(),
        architectures: BTreeMap::new(),
    };
    for (arch, base) in bases.get(reference).into_iter().flatten() {
        if !spec.architectures.contains(arch) {
            continue;
        }
        let text =
            crate::registry::base::dpkg_status(&store, &base.manifest).map_err(|problem| {
                crate::registry::base::BaseError::Invalid {
                    reference: reference.to_owned(),
                    problem: format!("its dpkg database cannot be read: {problem}"),
                }
            })?;
        status.architectures.insert(arch.clone(), text.all());
    }
    Ok(Some(status))
}

/// What resolving packages needs: the mirrors, a fetcher and the index cache.
pub struct Resolver {
    mirrors: MirrorResolver,
    fetcher: Fetcher,
    scratch: std::path::PathBuf,
    /// What this resolver has read: each suite's InRelease once, each index parsed once.
    indexes: std::sync::Arc<crate::debian::locking::IndexMemo>,
}

impl Resolver {
    pub fn new(session: &Session<'_>) -> Result<Resolver, Error> {
        Ok(Resolver {
            mirrors: MirrorResolver::from_env().map_err(crate::debian::DebianError::from)?,
            fetcher: fetcher()?,
            scratch: index_cache(session)?,
            indexes: session.indexes(),
        })
    }

    /// Resolves and locks the packages of image `spec` of `loaded` (a status line first); on a
    /// registry base, what the base has installed counts as installed.
    pub fn lock(
        &self,
        session: &Session<'_>,
        loaded: &Loaded,
        spec: &ImageSpec,
        packages: &himg_lang::spec::PackagesSpec,
    ) -> Result<LockedImage, Error> {
        session
            .printer()
            .status("Resolving", &format!("packages of image `{}`", spec.name));
        let cx = LockContext {
            loader: &loaded.loader,
            fetcher: &self.fetcher,
            mirrors: &self.mirrors,
            now: now(),
            scratch: &self.scratch,
            indexes: &self.indexes,
        };
        let base = base_status(session, spec)?;
        Ok(lock_image(&cx, spec, packages, base.as_ref())?)
    }
}

/// Resolves the locks the build needs and the repositories' base URLs.
pub fn prepare(
    session: &Session<'_>,
    loaded: &Loaded,
    specs: &[ImageSpec],
    mode: LockMode,
) -> Result<DebianInputs, Error> {
    let with_packages = images_with_packages(specs);
    let mut inputs = DebianInputs::default();
    if with_packages.is_empty() {
        return Ok(inputs);
    }
    let mirrors = MirrorResolver::from_env().map_err(crate::debian::DebianError::from)?;
    let mut resolver: Option<Resolver> = None;
    let mut locks: BTreeMap<std::path::PathBuf, (LockFile, bool)> = BTreeMap::new();
    for spec in with_packages {
        let Some(packages) = &spec.packages else {
            continue;
        };
        let himg_path = loaded.loader.resolve(&spec.declared_in);
        let lpath = lock_path(&himg_path);
        if !locks.contains_key(&lpath) {
            let lock = LockFile::read(&lpath)?.unwrap_or(LockFile {
                version: LOCK_VERSION,
                images: BTreeMap::new(),
            });
            locks.insert(lpath.clone(), (lock, false));
        }
        let Some((lock, dirty)) = locks.get_mut(&lpath) else {
            continue;
        };
        let want = inputs_hash(spec, packages, &loaded.loader)?;
        let current = lock
            .images
            .get(&spec.name)
            .filter(|l| l.inputs == want)
            .cloned();
        let locked = match (current, mode) {
            (Some(l), _) => l,
            (None, LockMode::Locked) => {
                return Err(Error::StaleLock {
                    image: spec.name.clone(),
                    lock: lpath.display().to_string(),
                    missing: !lock.images.contains_key(&spec.name),
                });
            }
            (None, LockMode::Auto) => {
                let resolver = resolver.get_or_insert(Resolver::new(session)?);
                let l = resolver.lock(session, loaded, spec, packages)?;
                lock.images.insert(spec.name.clone(), l.clone());
                *dirty = true;
                l
            }
        };
        for repo in &packages.repositories {
            if let Ok(url) = mirrors.resolve(&repo.url) {
                inputs.base_urls.insert(repo.url.clone(), url);
            }
        }
        inputs
            .locks
            .insert((spec.declared_in.0.clone(), spec.name.clone()), locked);
    }
    for (path, (lock, dirty)) in locks {
        if dirty {
            lock.write(&path)?;
            session
                .printer()
                .status("Locked", &path.display().to_string());
        }
    }
    Ok(inputs)
}
