//! The project files one image's build read: the `.himg` files it imports, its repositories'
//! keyrings, every file its `copy` items put into it (along its local `from` chain) and every
//! project file its builds read (their `source` blocks, and their environments' copies), each
//! with its sha256, for the statement's `resolvedDependencies`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use himg_lang::ImageSpec;
use himg_lang::{BuildSource, ContentItem};
use rayon::prelude::*;

use crate::load::Loaded;
use crate::plan::PlanError;
use crate::plan::inputs::copied_files;

/// A file on disk and the sha256 (hex) of its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFile {
    pub path: PathBuf,
    pub sha256: String,
}

/// The files image `image` of `loaded` was built from, besides the entry file itself, sorted by
/// path and without repeats.
pub fn project_files(loaded: &Loaded, image: &str) -> Result<Vec<ProjectFile>, PlanError> {
    let loader = &loaded.loader;
    let entry = loader.resolve(&loaded.evaluated.entry);
    let mut paths: BTreeSet<PathBuf> = loaded
        .evaluated
        .files_read
        .iter()
        .map(|p| loader.resolve(p))
        .filter(|p| *p != entry)
        .collect();
    let specs: Vec<ImageSpec> = loaded
        .evaluated
        .images
        .iter()
        .filter(|i| i.name == image)
        .cloned()
        .collect();
    for spec in himg_lang::images_reached(&specs) {
        if let Some(packages) = &spec.packages {
            paths.extend(
                packages
                    .repositories
                    .iter()
                    .map(|r| loader.resolve(&r.keyring)),
            );
        }
        for item in spec.layers.iter().flat_map(|l| &l.items) {
            if let ContentItem::Copy {
                source,
                include,
                exclude,
                ..
            } = item
            {
                let files = copied_files(&loader.resolve(source), include, exclude)?;
                paths.extend(files.into_iter().map(|(_, abs)| abs));
            }
        }
    }
    for build in himg_lang::builds_reached(&specs) {
        for source in &build.sources {
            if let BuildSource::Files {
                source,
                include,
                exclude,
                ..
            } = source
            {
                let files = copied_files(&loader.resolve(source), include, exclude)?;
                paths.extend(files.into_iter().map(|(_, abs)| abs));
            }
        }
    }
    paths
        .into_par_iter()
        .map(|path| {
            let (digest, _) =
                himg_store::sha256_file(&path).map_err(|source| PlanError::ReadSource {
                    path: path.clone(),
                    source,
                })?;
            Ok(ProjectFile {
                sha256: digest.to_hex(),
                path,
            })
        })
        .collect()
}
