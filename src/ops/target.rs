//! An image target opened for reading: a `.himg` file (built into a temporary layout), a registry
//! reference (pulled into one), or an OCI layout or archive on disk — the one way `sbom`, `audit`,
//! `scan`, `inspect` and `diff` reach their images.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use himg_lang::ImageSpec;

use super::build::{Analysed, Materialized, materialize};
use super::compile::is_himg_file;
use super::registry::{PulledTemp, pull_if_reference};
use super::vuln::VulnContext;
use super::{Error, Session};
use crate::debian::lockfile::LockFile;
use crate::image::ImageSource;

/// How to open a target.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// For a `.himg` file: build only these images (empty: every image).
    pub images: Vec<String>,
    /// For a `.himg` file: realise the images' analyses (SBOMs, policy facts) too.
    pub analyse: bool,
    /// For a registry reference: allow plain HTTP beyond loopback registries.
    pub insecure: bool,
    /// Refuse a target that is neither an existing path nor a registry reference up front, saying
    /// so; else the image reader reports the path it cannot open.
    pub explain_missing: bool,
}

/// An opened target: its images, and what its `.himg` file declares when it is one. Temporary
/// layouts (built or pulled) live as long as this value.
pub struct Target {
    pub source: ImageSource,
    /// `FILE.himg.lock`, when the target is a `.himg` file declaring packages.
    pub lock: Option<LockFile>,
    /// The images a `.himg` target declares (empty otherwise).
    pub specs: Vec<ImageSpec>,
    /// The OpenVEX files each image of a `.himg` target declares, resolved to paths.
    pub vex: BTreeMap<String, Vec<PathBuf>>,
    /// The `.himg` file, when the target is one.
    pub himg_file: Option<PathBuf>,
    built: Option<Materialized>,
    pulled: Option<PulledTemp>,
}

impl Target {
    /// Opens `target` (see [`OpenOptions`]).
    pub fn open(session: &Session<'_>, target: &Path, opts: &OpenOptions) -> Result<Target, Error> {
        if is_himg_file(target) {
            let loaded = session.load(target)?;
            let built = materialize(session, target, &opts.images, opts.analyse)?;
            return Ok(Target {
                source: ImageSource::open(&built.layout())?,
                lock: built.lock.clone(),
                specs: loaded.evaluated.images.clone(),
                vex: super::audit::declared_vex(&loaded),
                himg_file: Some(target.to_path_buf()),
                built: Some(built),
                pulled: None,
            });
        }
        let pulled = match target.to_str() {
            Some(t) => pull_if_reference(t, opts.insecure, session.printer())?,
            None => None,
        };
        if pulled.is_none() && opts.explain_missing && !target.exists() {
            return Err(Error::Io {
                path: target.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory, and not a registry reference (HOST/REPOSITORY[:TAG])",
                ),
            });
        }
        let path = pulled.as_ref().map_or(target, |p| p.layout.as_path());
        Ok(Target {
            source: ImageSource::open(path)?,
            lock: None,
            specs: Vec::new(),
            vex: BTreeMap::new(),
            himg_file: None,
            built: None,
            pulled,
        })
    }

    /// The analyses of a built `.himg` file's images (empty for a layout, archive or reference,
    /// and unless [`OpenOptions::analyse`]).
    pub fn analysed(&self) -> &[Analysed] {
        self.built.as_ref().map_or(&[], |m| &m.analysed)
    }

    /// The registry image this target was pulled from, when it is a reference.
    pub fn pulled(&self) -> Option<&PulledTemp> {
        self.pulled.as_ref()
    }

    /// What the `max-vulnerabilities` rule and a scan need: the lock and the declared VEX files.
    pub fn vuln_context(&self) -> VulnContext<'_> {
        VulnContext {
            lock: self.lock.as_ref(),
            vex: &self.vex,
        }
    }
}
