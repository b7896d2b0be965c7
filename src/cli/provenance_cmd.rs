//! `himg provenance`: the SLSA provenance of one built image manifest (an in-toto statement, or
//! its DSSE envelope signed with a himg key), and the envelopes `himg push --provenance` attaches.

use std::path::Path;
use std::process::ExitCode;

use serde_json::json;

use super::args::{GlobalArgs, ProvenanceArgs, PushArgs};
use super::{Error, Printer};
use crate::cache::sign::{PublicKey, TrustedKeys};
use crate::debian::lockfile::LockFile;
use crate::image::{ImageSource, ManifestSummary};
use crate::provenance::{self, Envelope, InputFile, ProvenanceError};
use crate::registry::{Client, Reference};

/// `himg provenance FILE.himg`: builds (reusing the store) and prints or writes the statement.
pub fn provenance(
    global: &GlobalArgs,
    args: &ProvenanceArgs,
    printer: &Printer,
) -> Result<ExitCode, Error> {
    let (Some(file), None) = (&args.file, &args.verify) else {
        return verify(args, printer);
    };
    let images: Vec<String> = args.image.iter().cloned().collect();
    let built =
        crate::ops::build::materialize(&super::session(global, printer), file, &images, false)?;
    // Provenance names manifests only: their layers are not read back.
    let source = ImageSource::open(&built.layout())?;
    let views = source.manifests()?;
    let chosen: Vec<&ManifestSummary> = views
        .iter()
        .filter(|v| args.image.is_none() || v.name == args.image)
        .filter(|v| {
            args.arch
                .as_ref()
                .is_none_or(|a| &v.config.architecture == a)
        })
        .collect();
    let [view] = chosen.as_slice() else {
        return Err(Error::ImageSelect {
            target: file.display().to_string(),
            wanted: format!(
                "image {} architecture {}",
                args.image.as_deref().unwrap_or("*"),
                args.arch.as_deref().unwrap_or("*")
            ),
            found: chosen.len(),
            available: views
                .iter()
                .map(|v| {
                    format!(
                        "{} ({})",
                        v.name.as_deref().unwrap_or("?"),
                        v.config.architecture
                    )
                })
                .collect(),
        });
    };
    let statement = statement_of(
        file,
        global.project_root.as_deref(),
        built.lock.as_ref(),
        view,
    )?;
    let bytes = if args.sign {
        let key = crate::ops::config::signing_key_named(args.sign_key.as_deref())?;
        Envelope::sign(&statement, &key).to_bytes()?
    } else {
        statement
    };
    match &args.out {
        Some(out) => {
            std::fs::write(out, &bytes).map_err(|source| Error::Io {
                path: out.clone(),
                source,
            })?;
            printer.status(
                "Wrote",
                &format!(
                    "{} of {} ({}) to {}",
                    if args.sign {
                        "signed provenance"
                    } else {
                        "provenance"
                    },
                    view.digest,
                    view.config.architecture,
                    out.display()
                ),
            );
        }
        None => printer.data(&format!("{}\n", String::from_utf8_lossy(&bytes))),
    }
    Ok(ExitCode::SUCCESS)
}

/// `himg provenance --verify REF`: every image manifest REF names (each architecture of an index)
/// has an attached envelope, signed by a `--trusted-key`, whose statement is about that manifest.
fn verify(args: &ProvenanceArgs, printer: &Printer) -> Result<ExitCode, Error> {
    use crate::registry::{ClientOptions, Credentials, OCI_INDEX, artifact};
    let text = args.verify.as_deref().unwrap_or_default();
    let reference: Reference = text.parse()?;
    let trusted = TrustedKeys::new(
        args.trusted_keys
            .iter()
            .map(|k| PublicKey::parse(k))
            .collect::<Result<Vec<_>, _>>()?,
    );
    let client = Client::new(ClientOptions {
        insecure: args.insecure || crate::registry::base::is_loopback_registry(&reference.registry),
        credentials: Credentials::from_env()?,
        ..ClientOptions::default()
    });
    let (media_type, bytes, digest) = client.manifest(&reference)?;
    // The per-architecture manifests: an index's children (those of `--arch`), or the manifest.
    let mut manifests = Vec::new();
    if media_type == OCI_INDEX || media_type == crate::registry::DOCKER_MANIFEST_LIST {
        let index: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Layout(format!("{reference}: the index is not JSON: {e}")))?;
        for child in index["manifests"].as_array().into_iter().flatten() {
            let arch = child["platform"]["architecture"]
                .as_str()
                .unwrap_or_default();
            if let Some(d) = child["digest"].as_str()
                && args.arch.as_deref().is_none_or(|a| a == arch)
            {
                manifests.push((d.to_owned(), arch.to_owned()));
            }
        }
    } else {
        manifests.push((digest, args.arch.clone().unwrap_or_default()));
    }
    let mut verified = Vec::new();
    for (digest, arch) in &manifests {
        let tag = artifact::tag(digest, provenance::ENVELOPE_TAG_SUFFIX)
            .ok_or_else(|| Error::Layout(format!("manifest digest {digest} is not sha256")))?;
        let payload = artifact::fetch(
            &client,
            &reference,
            &tag,
            provenance::ENVELOPE_ARTIFACT_TYPE,
            digest,
            ENVELOPE_LIMIT,
        )
        .map_err(|source| ProvenanceError::Fetch {
            digest: digest.clone(),
            source: Box::new(source),
        })?
        .ok_or_else(|| ProvenanceError::Missing {
            digest: digest.clone(),
            tag: tag.clone(),
        })?;
        let (key, statement) = Envelope::parse(&payload)?.verify(&trusted)?;
        provenance::check_subject(&statement, digest)?;
        let definition = &statement["predicate"]["buildDefinition"];
        let dependencies = definition["resolvedDependencies"]
            .as_array()
            .map_or(0, Vec::len);
        printer.status(
            "Verified",
            &format!(
                "provenance of {digest}{} signed by `{key}`: image `{}` from `{}`, {dependencies} resolved dependencies",
                if arch.is_empty() { String::new() } else { format!(" ({arch})") },
                statement["subject"][0]["name"].as_str().unwrap_or_default(),
                definition["externalParameters"]["file"].as_str().unwrap_or_default(),
            ),
        );
        verified.push(json!({"subject": digest, "key": key, "statement": statement}));
    }
    if args.json {
        printer.json(&json!({"reference": text, "verified": verified}));
    }
    Ok(ExitCode::SUCCESS)
}

/// The largest envelope `--verify` fetches.
const ENVELOPE_LIMIT: u64 = 16 << 20;

/// The provenance statement (canonical JSON) of the image manifest `view`, built from `file` and
/// its `lock`.
fn statement_of(
    file: &Path,
    project_root: Option<&Path>,
    lock: Option<&LockFile>,
    view: &ManifestSummary,
) -> Result<Vec<u8>, Error> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let shown = relative(file);
    let input_file = InputFile::new(&shown, &read(file)?);
    let lock_path = crate::debian::lockfile::lock_path(file);
    let lock_file = if lock_path.exists() {
        Some(InputFile::new(relative(&lock_path), &read(&lock_path)?))
    } else {
        None
    };
    let name = view.name.clone().unwrap_or_default();
    let packages = lock
        .and_then(|l| l.images.get(&name))
        .and_then(|i| i.architectures.get(&view.config.architecture))
        .cloned()
        .unwrap_or_default();
    let loaded = crate::load::load_file(file, project_root)?;
    let bases = registry_bases(&loaded, &name);
    let sources = provenance::sources::project_files(&loaded, &name)?
        .into_iter()
        .map(|f| InputFile {
            path: relative(&f.path),
            sha256: f.sha256,
        })
        .collect();
    let epoch = crate::plan::CompileOptions::from_env()?.epoch;
    Ok(provenance::statement_bytes(&provenance::Input {
        image: &name,
        architecture: &view.config.architecture,
        manifest_digest: &view.digest,
        file: input_file,
        lock: lock_file,
        sources,
        packages: &packages,
        bases: &bases,
        epoch,
        himg_version: env!("CARGO_PKG_VERSION"),
    })?)
}

/// `path` as given, or relative to the working directory when it is absolute and below it.
fn relative(path: &Path) -> String {
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf());
    // `./x` (a file beside a `.himg` given without a directory) is shown as `x`.
    let shown = shown.strip_prefix(".").unwrap_or(&shown);
    shown.to_string_lossy().into_owned()
}

/// The registry base references along image `name`'s `from` chain.
fn registry_bases(loaded: &crate::load::Loaded, name: &str) -> Vec<String> {
    let mut refs = Vec::new();
    let mut next = loaded.evaluated.images.iter().find(|i| i.name == name);
    while let Some(spec) = next {
        refs.extend(spec.base_reference.clone());
        next = spec.base.as_deref();
    }
    refs
}

/// Attaches the provenance, signed with `--sign-key`, of every image manifest pushed from
/// `layout_dir` (built from `args.layout`, a .himg file, with its `lock`; the image `--image`, or
/// all) to `reference`'s repository; returns what was attached, for the JSON report.
pub(super) fn attach(
    client: &Client,
    layout_dir: &Path,
    reference: &Reference,
    args: &PushArgs,
    project_root: Option<&Path>,
    lock: Option<&LockFile>,
    printer: &Printer,
) -> Result<Vec<serde_json::Value>, Error> {
    use crate::registry::artifact;
    let (file, image) = (&args.layout, args.image.as_deref());
    let key = crate::ops::config::signing_key_named(args.sign_key.as_deref())?;
    let source = ImageSource::open(layout_dir)?;
    let mut attached = Vec::new();
    for view in source.manifests()? {
        if image.is_some_and(|n| view.name.as_deref() != Some(n)) {
            continue;
        }
        let (subject, created) = crate::ops::registry::artifact_subject(&view);
        let envelope =
            Envelope::sign(&statement_of(file, project_root, lock, &view)?, &key).to_bytes()?;
        let tag =
            artifact::tag(&view.digest, provenance::ENVELOPE_TAG_SUFFIX).ok_or_else(|| {
                Error::Layout(format!("manifest digest {} is not sha256", view.digest))
            })?;
        let manifest = artifact::manifest(
            &subject,
            provenance::ENVELOPE_ARTIFACT_TYPE,
            &envelope,
            &created,
        )?;
        let digest = artifact::push(client, reference, &tag, &manifest, &envelope)?;
        printer.status(
            "Attached",
            &format!(
                "provenance of {} ({}) signed by `{}` → {}:{tag}",
                view.digest, view.config.architecture, key.name, reference.repository
            ),
        );
        attached.push(json!({
            "subject": view.digest,
            "architecture": view.config.architecture,
            "artifact_type": provenance::ENVELOPE_ARTIFACT_TYPE,
            "tag": tag,
            "digest": digest,
            "key": key.name,
        }));
    }
    Ok(attached)
}
