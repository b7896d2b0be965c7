//! SLSA build provenance: an in-toto Statement v1 (predicate `https://slsa.dev/provenance/v1`)
//! saying which inputs made one image manifest, and its DSSE envelope signed with a himg key.
//!
//! The statement is a pure function of the build's declared inputs (the `.himg` file's and the
//! lock's bytes, the project files it imports, copies or trusts as keyrings, the locked `.deb`s,
//! the registry bases, `SOURCE_DATE_EPOCH`) and the manifest
//! digest: no clock, no host, no random id, canonical JSON. Ed25519 signatures are deterministic, so
//! the envelope is byte-identical across builds too.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Digest;

use crate::cache::sign::{SecretKey, SignatureProblem, TrustedKeys};
use crate::debian::lockfile::LockedPackage;

pub mod sources;

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SLSA provenance predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What a himg build is (the `buildType` URI; ours, not a web page).
pub const BUILD_TYPE: &str = "urn:himg:build:v1";
/// Who builds (the `builder.id`).
pub const BUILDER_ID: &str = "urn:himg:builder:v1";
/// The DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The artifact type of a DSSE envelope attached to an image.
pub const ENVELOPE_ARTIFACT_TYPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The tag suffix of an attached envelope (`sha256-<hex>.att`).
pub const ENVELOPE_TAG_SUFFIX: &str = "att";

/// Why provenance could not be made or was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    #[error(transparent)]
    Json(#[from] crate::oci::OciError),
    #[error("the DSSE envelope is malformed: {0}")]
    Malformed(String),
    #[error("the DSSE envelope's signature is not accepted: {0}")]
    Signature(SignatureProblem),
    #[error("the provenance is about `{found}`, not `{expected}`")]
    Subject { expected: String, found: String },
    #[error("no provenance is attached to `{digest}` (no `{tag}` artifact)")]
    Missing { digest: String, tag: String },
    #[error("cannot fetch the provenance attached to `{digest}`")]
    Fetch {
        digest: String,
        #[source]
        source: Box<crate::registry::artifact::ArtifactError>,
    },
}

impl ProvenanceError {
    /// Whether provenance was found wanting (as opposed to not made or not fetched).
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            ProvenanceError::Malformed(_)
                | ProvenanceError::Signature(_)
                | ProvenanceError::Subject { .. }
                | ProvenanceError::Missing { .. }
        )
    }
}

/// A file the build read, with its bytes' sha256 (hex).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// As given, relative to the working directory.
    pub path: String,
    pub sha256: String,
}

impl InputFile {
    /// `path` (as it will be written) with the sha256 of `bytes`.
    pub fn new(path: impl Into<String>, bytes: &[u8]) -> InputFile {
        InputFile {
            path: path.into(),
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
        }
    }
}

/// Everything one image manifest's provenance says.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The image name.
    pub image: &'a str,
    /// Its architecture (`amd64`).
    pub architecture: &'a str,
    /// The per-architecture image manifest digest, `sha256:<hex>`.
    pub manifest_digest: &'a str,
    /// The `.himg` file.
    pub file: InputFile,
    /// Its lock file, when it has one.
    pub lock: Option<InputFile>,
    /// The other project files the build read: imported `.himg` files, keyrings, copied files.
    pub sources: Vec<InputFile>,
    /// The lock's packages of this image and architecture.
    pub packages: &'a [LockedPackage],
    /// Registry base references along the image's `from` chain (`HOST/REPO@sha256:…`).
    pub bases: &'a [String],
    /// `SOURCE_DATE_EPOCH` of the build.
    pub epoch: u64,
    /// The build steps (`build` blocks) whose outputs the image holds, directly or through the
    /// builds they consume.
    pub builds: Vec<BuildStepInput>,
    /// himg's version.
    pub himg_version: &'a str,
}

/// One build step of an image, for its provenance: what ran, in which environment, and the
/// environment's locked packages (listed among the resolved dependencies).
#[derive(Debug, Clone)]
pub struct BuildStepInput {
    pub name: String,
    /// The environment image's name.
    pub environment: String,
    pub run: Vec<String>,
    pub env: Vec<(String, String)>,
    pub outputs: Vec<String>,
    /// A fixed-output build's declared hash.
    pub hash: Option<String>,
    pub packages: Vec<LockedPackage>,
}

/// The provenance statement of one image manifest, as a JSON value.
pub fn statement(input: &Input<'_>) -> Value {
    let file_dep = |f: &InputFile| json!({"name": f.path, "digest": {"sha256": f.sha256}});
    let mut dependencies = vec![file_dep(&input.file)];
    dependencies.extend(input.lock.as_ref().map(file_dep));
    let mut sources: Vec<&InputFile> = input.sources.iter().collect();
    sources.sort_by(|a, b| a.path.cmp(&b.path));
    sources.dedup_by(|a, b| a.path == b.path);
    dependencies.extend(sources.into_iter().map(file_dep));
    let mut packages: Vec<&LockedPackage> = input.packages.iter().collect();
    packages.sort_by(|a, b| {
        (&a.name, &a.architecture, &a.version, &a.filename).cmp(&(
            &b.name,
            &b.architecture,
            &b.version,
            &b.filename,
        ))
    });
    dependencies.extend(packages.iter().map(|p| {
        json!({
            "name": p.name,
            "uri": format!("mirror://{}/{}", p.repository, p.filename.trim_start_matches('/')),
            "digest": {"sha256": p.sha256},
            "annotations": {"version": p.version, "architecture": p.architecture},
        })
    }));
    for build in &input.builds {
        let mut packages: Vec<&LockedPackage> = build.packages.iter().collect();
        packages.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        dependencies.extend(packages.iter().map(|p| {
            json!({
                "name": p.name,
                "uri": format!("mirror://{}/{}", p.repository, p.filename.trim_start_matches('/')),
                "digest": {"sha256": p.sha256},
                "annotations": {
                    "version": p.version,
                    "architecture": p.architecture,
                    "buildEnvironment": build.name,
                },
            })
        }));
    }
    let mut bases: Vec<&String> = input.bases.iter().collect();
    bases.sort();
    bases.dedup();
    dependencies.extend(bases.iter().map(|reference| {
        let mut dep = json!({"name": reference});
        if let Some(hex) = reference.rsplit_once("@sha256:").map(|(_, h)| h) {
            dep["digest"] = json!({"sha256": hex});
        }
        dep
    }));
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": input.image,
            "digest": {"sha256": input.manifest_digest.trim_start_matches("sha256:")},
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": external_parameters(input),
                "internalParameters": {
                    "himgVersion": input.himg_version,
                    "SOURCE_DATE_EPOCH": input.epoch.to_string(),
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {
                    "id": BUILDER_ID,
                    "version": {"himg": input.himg_version},
                },
            },
        },
    })
}

/// What the user declared: the file, image and architecture, and the build steps (when any).
fn external_parameters(input: &Input<'_>) -> Value {
    let mut params = json!({
        "file": input.file.path,
        "image": input.image,
        "architecture": input.architecture,
    });
    if !input.builds.is_empty() {
        let mut builds: Vec<&BuildStepInput> = input.builds.iter().collect();
        builds.sort_by(|a, b| a.name.cmp(&b.name));
        params["builds"] = builds
            .iter()
            .map(|b| {
                let mut step = json!({
                    "name": b.name,
                    "environment": b.environment,
                    "run": b.run,
                    "env": b.env.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
                    "outputs": b.outputs,
                });
                if let Some(hash) = &b.hash {
                    step["hash"] = json!(hash);
                }
                step
            })
            .collect();
    }
    params
}

/// The statement's bytes: canonical JSON (sorted keys, no whitespace).
pub fn statement_bytes(input: &Input<'_>) -> Result<Vec<u8>, ProvenanceError> {
    Ok(crate::oci::canonical_json(&statement(input))?)
}

/// A DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The payload, base64.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of a DSSE envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeSignature {
    /// The himg key's name.
    pub keyid: String,
    /// The Ed25519 signature over the PAE, base64.
    pub sig: String,
}

/// DSSE's pre-authentication encoding: `"DSSEv1" SP len(type) SP type SP len(body) SP body`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

impl Envelope {
    /// Signs the in-toto statement `payload` with `key`.
    pub fn sign(payload: &[u8], key: &SecretKey) -> Envelope {
        let signed = key.sign(&pae(PAYLOAD_TYPE, payload));
        // `NAME:base64`; key names never hold a colon.
        let sig = signed
            .split_once(':')
            .map_or(signed.as_str(), |(_, s)| s)
            .to_owned();
        Envelope {
            payload_type: PAYLOAD_TYPE.to_owned(),
            payload: B64.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: key.name.clone(),
                sig,
            }],
        }
    }

    /// The envelope as canonical JSON.
    pub fn to_bytes(&self) -> Result<Vec<u8>, ProvenanceError> {
        Ok(crate::oci::canonical_json(self)?)
    }

    /// Parses an envelope.
    pub fn parse(bytes: &[u8]) -> Result<Envelope, ProvenanceError> {
        serde_json::from_slice(bytes).map_err(|e| ProvenanceError::Malformed(e.to_string()))
    }

    /// Checks that a trusted key signed the envelope and that it holds an in-toto statement;
    /// returns the key's name and the statement.
    pub fn verify(&self, trusted: &TrustedKeys) -> Result<(String, Value), ProvenanceError> {
        if self.payload_type != PAYLOAD_TYPE {
            return Err(ProvenanceError::Malformed(format!(
                "payload type `{}` is not `{PAYLOAD_TYPE}`",
                self.payload_type
            )));
        }
        let payload = B64
            .decode(&self.payload)
            .map_err(|e| ProvenanceError::Malformed(format!("payload: {e}")))?;
        let signatures: Vec<String> = self
            .signatures
            .iter()
            .map(|s| format!("{}:{}", s.keyid, s.sig))
            .collect();
        let key = trusted
            .check(&pae(&self.payload_type, &payload), &signatures)
            .map_err(ProvenanceError::Signature)?;
        let statement: Value = serde_json::from_slice(&payload)
            .map_err(|e| ProvenanceError::Malformed(format!("payload is not JSON: {e}")))?;
        if statement["_type"] != STATEMENT_TYPE || statement["predicateType"] != PREDICATE_TYPE {
            return Err(ProvenanceError::Malformed(
                "the payload is not SLSA provenance v1".into(),
            ));
        }
        Ok((key, statement))
    }
}

/// Checks that `statement`'s subject is the manifest `digest` (`sha256:<hex>`).
pub fn check_subject(statement: &Value, digest: &str) -> Result<(), ProvenanceError> {
    let found = statement["subject"][0]["digest"]["sha256"]
        .as_str()
        .unwrap_or_default();
    if format!("sha256:{found}") != digest {
        return Err(ProvenanceError::Subject {
            expected: digest.to_owned(),
            found: format!("sha256:{found}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(name: &str) -> LockedPackage {
        LockedPackage {
            name: name.into(),
            version: "1.0-1".into(),
            architecture: "amd64".into(),
            source: name.into(),
            source_version: "1.0-1".into(),
            repository: "debian".into(),
            suite: "trixie".into(),
            filename: format!("pool/main/{name}_1.0-1_amd64.deb"),
            size: 10,
            sha256: "ab".repeat(32),
        }
    }

    fn input<'a>(packages: &'a [LockedPackage], bases: &'a [String]) -> Input<'a> {
        Input {
            image: "app",
            architecture: "amd64",
            manifest_digest: "sha256:0123",
            file: InputFile::new("app.himg", b"image app {}"),
            lock: Some(InputFile::new("app.himg.lock", b"{}")),
            sources: vec![
                InputFile::new("src/b.txt", b"b"),
                InputFile::new("lib/common.himg", b"let x = 1"),
                InputFile::new("src/b.txt", b"b"),
            ],
            packages,
            bases,
            epoch: 7,
            builds: Vec::new(),
            himg_version: "0.1.0",
        }
    }

    #[test]
    fn statement_is_sorted_and_stable() {
        let a = [package("zlib1g"), package("base-files")];
        let b = [package("base-files"), package("zlib1g")];
        let s = statement_bytes(&input(&a, &[])).unwrap();
        assert_eq!(s, statement_bytes(&input(&b, &[])).unwrap());
        let v: Value = serde_json::from_slice(&s).unwrap();
        let deps = v["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap();
        assert_eq!(deps[0]["name"], "app.himg");
        assert_eq!(deps[1]["name"], "app.himg.lock");
        // Project files: sorted by path, each once.
        assert_eq!(deps[2]["name"], "lib/common.himg");
        assert_eq!(deps[3]["name"], "src/b.txt");
        assert_eq!(deps[4]["name"], "base-files");
        assert_eq!(
            deps[5]["uri"],
            "mirror://debian/pool/main/zlib1g_1.0-1_amd64.deb"
        );
        assert_eq!(v["subject"][0]["digest"]["sha256"], "0123");
    }

    #[test]
    fn envelope_signs_and_detects_tampering() {
        let key = SecretKey::generate("prov-1").unwrap();
        let trusted = TrustedKeys::new([key.public()]);
        let payload = statement_bytes(&input(&[], &[])).unwrap();
        let env = Envelope::sign(&payload, &key);
        let parsed = Envelope::parse(&env.to_bytes().unwrap()).unwrap();
        let (name, st) = parsed.verify(&trusted).unwrap();
        assert_eq!(name, "prov-1");
        check_subject(&st, "sha256:0123").unwrap();
        assert!(check_subject(&st, "sha256:4567").is_err());
        let mut tampered = parsed.clone();
        tampered.payload = B64.encode(String::from_utf8(payload).unwrap().replace("0123", "4567"));
        assert!(matches!(
            tampered.verify(&trusted),
            Err(ProvenanceError::Signature(SignatureProblem::Invalid(_)))
        ));
    }

    #[test]
    fn registry_bases_are_pinned_dependencies() {
        let bases = [
            "127.0.0.1:5000/base/b@sha256:".to_owned() + &"cd".repeat(32),
            "127.0.0.1:5000/base/a@sha256:".to_owned() + &"ef".repeat(32),
        ];
        let v = statement(&input(&[], &bases));
        let deps = v["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .unwrap();
        // file, lock, two project files, then the bases sorted.
        assert_eq!(deps.len(), 6);
        assert_eq!(deps[4]["name"], bases[1].as_str());
        assert_eq!(deps[4]["digest"]["sha256"], "ef".repeat(32));
        assert_eq!(deps[5]["digest"]["sha256"], "cd".repeat(32));
    }

    #[test]
    fn pae_matches_the_dsse_spec() {
        assert_eq!(pae("t", b"ab"), b"DSSEv1 1 t 2 ab".to_vec());
    }
}
