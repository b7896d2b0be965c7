//! SLSA provenance of built image manifests: the statement (or its DSSE envelope, signed with a
//! himg key) of one, the envelopes a push attaches, and checking the ones a registry holds.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::push::PushedLayout;
use super::{Error, Session};
use crate::cache::sign::{PublicKey, TrustedKeys};
use crate::debian::lockfile::LockFile;
use crate::image::{ImageSource, ManifestSummary};
use crate::printer::Printer;
use crate::provenance::{self, Envelope, InputFile, ProvenanceError};
use crate::registry::{Client, Reference};

/// Which image manifest of which file, and whether to sign its statement.
#[derive(Debug, Clone, Default)]
pub struct ProvenanceOptions {
    /// The `.himg` file (built first, reusing the store).
    pub file: PathBuf,
    /// The image (`None`: the only one).
    pub image: Option<String>,
    /// The architecture (`None`: the only one).
    pub arch: Option<String>,
    /// Wrap the statement in a DSSE envelope signed with `sign_key`.
    pub sign: bool,
    /// The signing key (`None`: the configured one).
    pub sign_key: Option<String>,
}

/// The provenance of one image manifest.
#[derive(Debug, Clone)]
pub struct Provenance {
    /// The statement (canonical JSON), or its signed envelope.
    pub bytes: Vec<u8>,
    pub signed: bool,
    /// The manifest it is about, and its architecture.
    pub digest: String,
    pub architecture: String,
}

impl Provenance {
    /// Writes the bytes to `out`, with a `Wrote` status line.
    pub fn write(&self, out: &Path, printer: &Printer) -> Result<(), Error> {
        std::fs::write(out, &self.bytes).map_err(|source| Error::Io {
            path: out.to_path_buf(),
            source,
        })?;
        printer.status(
            "Wrote",
            &format!(
                "{} of {} ({}) to {}",
                if self.signed {
                    "signed provenance"
                } else {
                    "provenance"
                },
                self.digest,
                self.architecture,
                out.display()
            ),
        );
        Ok(())
    }
}

/// Builds `opts.file` (reusing the store) and returns the provenance of the one manifest chosen.
pub fn provenance(session: &Session<'_>, opts: &ProvenanceOptions) -> Result<Provenance, Error> {
    let images: Vec<String> = opts.image.iter().cloned().collect();
    let built = super::build::materialize(session, &opts.file, &images, false)?;
    // Provenance names manifests only: their layers are not read back.
    let source = ImageSource::open(&built.layout())?;
    let views = source.manifests()?;
    let chosen: Vec<&ManifestSummary> = views
        .iter()
        .filter(|v| opts.image.is_none() || v.name == opts.image)
        .filter(|v| {
            opts.arch
                .as_ref()
                .is_none_or(|a| &v.config.architecture == a)
        })
        .collect();
    let [view] = chosen.as_slice() else {
        return Err(Error::ImageSelect {
            target: opts.file.display().to_string(),
            wanted: format!(
                "image {} architecture {}",
                opts.image.as_deref().unwrap_or("*"),
                opts.arch.as_deref().unwrap_or("*")
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
    let statement = statement_of(session, &opts.file, built.lock.as_ref(), view)?;
    let bytes = if opts.sign {
        let key = super::config::signing_key_named(opts.sign_key.as_deref())?;
        Envelope::sign(&statement, &key).to_bytes()?
    } else {
        statement
    };
    Ok(Provenance {
        bytes,
        signed: opts.sign,
        digest: view.digest.clone(),
        architecture: view.config.architecture.clone(),
    })
}

/// Which registry image to check, against which keys.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// The reference, as given (the report repeats it).
    pub reference: String,
    /// `NAME:KEY` public keys whose signatures are accepted.
    pub trusted_keys: Vec<String>,
    /// Plain HTTP to a registry that is not on the loopback interface.
    pub insecure: bool,
    /// Only this architecture of an index.
    pub arch: Option<String>,
}

/// The envelopes checked: one per image manifest.
#[derive(Debug, Clone)]
pub struct Verified {
    pub reference: String,
    /// `{subject, key, statement}` of each.
    pub verified: Vec<serde_json::Value>,
}

impl Verified {
    pub fn json(&self) -> serde_json::Value {
        json!({"reference": self.reference, "verified": self.verified})
    }
}

/// Every image manifest `opts.reference` names (each architecture of an index) has an attached
/// envelope, signed by a trusted key, whose statement is about that manifest.
pub fn verify(session: &Session<'_>, opts: &VerifyOptions) -> Result<Verified, Error> {
    use crate::registry::{ClientOptions, Credentials};
    let reference: Reference = opts.reference.parse()?;
    let trusted = TrustedKeys::new(
        opts.trusted_keys
            .iter()
            .map(|k| PublicKey::parse(k))
            .collect::<Result<Vec<_>, _>>()?,
    );
    let client = Client::new(ClientOptions {
        insecure: super::registry::plain_http(&reference.registry, opts.insecure)?,
        credentials: Credentials::from_env()?,
        ..ClientOptions::default()
    });
    let mut verified = Vec::new();
    for (digest, arch) in &image_manifests(&client, &reference, opts.arch.as_deref())? {
        verified.push(verify_one(
            &client,
            &reference,
            &trusted,
            digest,
            arch,
            session.printer(),
        )?);
    }
    Ok(Verified {
        reference: opts.reference.clone(),
        verified,
    })
}

/// The per-architecture manifests of `reference`, with their architectures: an index's children
/// (those of `arch`), or the manifest.
fn image_manifests(
    client: &Client,
    reference: &Reference,
    arch: Option<&str>,
) -> Result<Vec<(String, String)>, Error> {
    use crate::registry::OCI_INDEX;
    let (media_type, bytes, digest) = client.manifest(reference)?;
    let mut manifests = Vec::new();
    if media_type == OCI_INDEX || media_type == crate::registry::DOCKER_MANIFEST_LIST {
        let index: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Layout(format!("{reference}: the index is not JSON: {e}")))?;
        for child in index["manifests"].as_array().into_iter().flatten() {
            let child_arch = child["platform"]["architecture"]
                .as_str()
                .unwrap_or_default();
            if let Some(d) = child["digest"].as_str()
                && arch.is_none_or(|a| a == child_arch)
            {
                manifests.push((d.to_owned(), child_arch.to_owned()));
            }
        }
    } else {
        manifests.push((digest, arch.unwrap_or_default().to_owned()));
    }
    Ok(manifests)
}

/// Fetches and checks the envelope attached to `digest`; prints `Verified`.
fn verify_one(
    client: &Client,
    reference: &Reference,
    trusted: &TrustedKeys,
    digest: &str,
    arch: &str,
    printer: &Printer,
) -> Result<serde_json::Value, Error> {
    use crate::registry::artifact;
    let tag = artifact::tag(digest, provenance::ENVELOPE_TAG_SUFFIX)
        .ok_or_else(|| Error::Layout(format!("manifest digest {digest} is not sha256")))?;
    let payload = artifact::fetch(
        client,
        reference,
        &tag,
        provenance::ENVELOPE_ARTIFACT_TYPE,
        digest,
        ENVELOPE_LIMIT,
    )
    .map_err(|source| ProvenanceError::Fetch {
        digest: digest.to_owned(),
        source: Box::new(source),
    })?
    .ok_or_else(|| ProvenanceError::Missing {
        digest: digest.to_owned(),
        tag: tag.clone(),
    })?;
    let (key, statement) = Envelope::parse(&payload)?.verify(trusted)?;
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
    Ok(json!({"subject": digest, "key": key, "statement": statement}))
}

/// The largest envelope `verify` fetches.
const ENVELOPE_LIMIT: u64 = 16 << 20;

/// The provenance statement (canonical JSON) of the image manifest `view`, built from `file` and
/// its `lock`.
fn statement_of(
    session: &Session<'_>,
    file: &Path,
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
    let loaded = session.load(file)?;
    let bases = registry_bases(&loaded, &name);
    let builds = build_steps(&loaded, lock, &name);
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
        builds,
        himg_version: env!("CARGO_PKG_VERSION"),
    })?)
}

/// The build steps image `name` uses, with their environments' locked packages (builds run on
/// this host's architecture).
fn build_steps(
    loaded: &crate::load::Loaded,
    lock: Option<&LockFile>,
    name: &str,
) -> Vec<provenance::BuildStepInput> {
    let specs: Vec<himg_lang::ImageSpec> = loaded
        .evaluated
        .images
        .iter()
        .filter(|i| i.name == name)
        .cloned()
        .collect();
    let arch = crate::builder::native_architecture();
    himg_lang::builds_reached(&specs)
        .into_iter()
        .map(|b| provenance::BuildStepInput {
            name: b.name.clone(),
            environment: b.environment.name.clone(),
            run: b.run.clone(),
            env: b.env.clone(),
            outputs: b.outputs.clone(),
            hash: b.hash.clone(),
            packages: lock
                .and_then(|l| l.images.get(&b.environment.name))
                .and_then(|i| i.architectures.get(arch))
                .cloned()
                .unwrap_or_default(),
        })
        .collect()
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

/// Attaches the provenance, signed with `sign_key`, of every image manifest `pushed` holds (built
/// from `file`, a .himg file) to its repository; returns what was attached, for the JSON report.
pub fn attach(
    session: &Session<'_>,
    pushed: &PushedLayout<'_>,
    file: &Path,
    sign_key: Option<&str>,
) -> Result<Vec<serde_json::Value>, Error> {
    let reference = pushed.reference;
    let key = super::config::signing_key_named(sign_key)?;
    let (_, manifests) = pushed.manifests()?;
    let mut attached = Vec::new();
    for view in manifests {
        let statement = statement_of(session, file, pushed.lock, &view)?;
        let envelope = Envelope::sign(&statement, &key).to_bytes()?;
        let (digest, tag) = pushed.attach(
            &view,
            provenance::ENVELOPE_TAG_SUFFIX,
            provenance::ENVELOPE_ARTIFACT_TYPE,
            &envelope,
        )?;
        session.printer().status(
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
