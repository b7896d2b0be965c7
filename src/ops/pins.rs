//! Registry-base pins that move: each `from = "HOST/REPO:TAG@sha256:…"` of a file is checked
//! against what its tag names now; a move is shown with the packages it changes (from the two
//! bases' dpkg databases) and, unless checking, written into the file that declares the pin.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{Error, Session};
use crate::load::Loaded;
use crate::registry::Reference;

/// One package the base's move changes (`from`/`to` absent: added/removed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BasePackageChange {
    pub package: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// An image a workspace member publishes (`publish = "HOST/REPO[:TAG]"`), as built now: a pin on
/// that repository (and tag, when the publish names one) follows this digest instead of the
/// registry's, so a base update cascades to the files built on it within one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: String,
    /// The member that publishes it (`base.himg`).
    pub by: String,
}

impl Published {
    /// Whether a pin on `pinned` follows this image.
    fn follows(&self, pinned: &Reference) -> bool {
        publish_covers(
            &self.registry,
            &self.repository,
            self.tag.as_deref(),
            pinned,
        )
    }
}

/// Whether an image published to `registry/repository[:tag]` is what a pin on `pinned` names:
/// the same repository, and the same tag when the publish names one.
pub fn publish_covers(
    registry: &str,
    repository: &str,
    tag: Option<&str>,
    pinned: &Reference,
) -> bool {
    registry == pinned.registry
        && repository == pinned.repository
        && (tag.is_none() || tag == pinned.tag.as_deref())
}

/// A pinned registry base whose tag names another digest now.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PinMove {
    /// The file that declares the pin.
    pub file: PathBuf,
    /// The images built on it.
    pub images: Vec<String>,
    /// The pin as written, and as it is to be written.
    pub from: String,
    pub to: String,
    /// What the move changes in the base's installed packages (its first architecture).
    pub packages: Vec<BasePackageChange>,
    /// The workspace member whose build the pin follows (absent: the registry's tag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_by: Option<String>,
}

/// Every pinned registry base (with a tag) that `loaded`'s images are built on, checked against
/// what a workspace member publishes there (`published`), else against the registry: the moves,
/// pin by pin.
pub fn moves(
    session: &Session<'_>,
    loaded: &Loaded,
    published: &[Published],
) -> Result<Vec<PinMove>, Error> {
    // pin → (declaring file, images on it, an architecture)
    let mut pins: BTreeMap<String, (PathBuf, Vec<String>, String)> = BTreeMap::new();
    for image in &loaded.evaluated.images {
        let Some(spec) = crate::debian::locking::registry_base_spec(image) else {
            continue;
        };
        let Some(reference) = &spec.base_reference else {
            continue;
        };
        let entry = pins.entry(reference.clone()).or_insert_with(|| {
            (
                loaded.loader.resolve(&spec.declared_in),
                Vec::new(),
                spec.architectures.first().cloned().unwrap_or_default(),
            )
        });
        entry.1.push(image.name.clone());
    }
    let mut out = Vec::new();
    for (pin, (file, images, arch)) in pins {
        let pinned: Reference = pin.parse()?;
        let (Some(tag), Some(old)) = (&pinned.tag, &pinned.digest) else {
            continue; // pinned by digest alone: there is no tag to follow
        };
        let publisher = published.iter().find(|p| p.follows(&pinned));
        let now = match publisher {
            Some(p) => p.digest.clone(),
            None => {
                let by_tag = Reference {
                    digest: None,
                    ..pinned.clone()
                };
                let client = super::registry::client_for(&by_tag, false)?;
                client.manifest(&by_tag)?.2
            }
        };
        if now == *old {
            continue;
        }
        let to = format!("{}/{}:{tag}@{now}", pinned.registry, pinned.repository);
        let packages = package_changes(session, &pin, &to, &arch)?;
        out.push(PinMove {
            file,
            images,
            from: pin,
            to,
            packages,
            published_by: publisher.map(|p| p.by.clone()),
        });
    }
    Ok(out)
}

/// The installed packages that differ between the bases `from` and `to` (both pulled into the
/// store), for `arch`.
fn package_changes(
    session: &Session<'_>,
    from: &str,
    to: &str,
    arch: &str,
) -> Result<Vec<BasePackageChange>, Error> {
    let store = session.open_store()?;
    let refs = [from.to_owned(), to.to_owned()];
    let bases = crate::registry::base::resolve_bases(&store, &refs, session.printer())?;
    let installed = |reference: &str| -> BTreeMap<String, String> {
        let Some(base) = bases.get(reference).and_then(|b| b.get(arch)) else {
            return BTreeMap::new();
        };
        let Ok(status) = crate::registry::base::dpkg_status(&store, &base.manifest) else {
            return BTreeMap::new();
        };
        crate::debian::control::parse_stanzas(&status.all())
            .unwrap_or_default()
            .iter()
            .filter_map(|s| Some((s.get("Package")?.to_owned(), s.get("Version")?.to_owned())))
            .collect()
    };
    let (old, new) = (installed(from), installed(to));
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .filter(|n| old.get(*n) != new.get(*n))
        .map(|n| BasePackageChange {
            package: n.clone(),
            from: old.get(n).cloned(),
            to: new.get(n).cloned(),
        })
        .collect())
}

/// Writes a move into the file that declares the pin: the pin's text, written once as a string
/// literal there, is replaced (a pin assembled from parts must be edited by hand).
pub fn write(mv: &PinMove) -> Result<(), Error> {
    let text = std::fs::read_to_string(&mv.file).map_err(|source| Error::Io {
        path: mv.file.clone(),
        source,
    })?;
    let quoted = format!("\"{}\"", mv.from);
    if text.matches(&quoted).count() != 1 {
        return Err(Error::PinNotLiteral {
            file: mv.file.clone(),
            from: mv.from.clone(),
            to: mv.to.clone(),
        });
    }
    let new = text.replacen(&quoted, &format!("\"{}\"", mv.to), 1);
    let tmp = mv.file.with_extension("himg.tmp");
    std::fs::write(&tmp, new)
        .and_then(|()| std::fs::rename(&tmp, &mv.file))
        .map_err(|source| Error::Io {
            path: mv.file.clone(),
            source,
        })
}
