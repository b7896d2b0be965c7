//! OCI descriptors, image manifests and image indexes (image-spec v1.1), as ordered serde types.
//! Serialise them with [`canonical_json`] (or their
//! `to_canonical_json`) so the blob digest is stable.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::OciError;
use super::config::canonical_json;
use super::digest::Sha256Digest;

/// Media types of OCI and Docker blobs.
pub mod media_types {
    /// OCI layer, uncompressed tar.
    pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
    /// OCI layer, gzip-compressed tar.
    pub const LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    /// OCI layer, zstd-compressed tar.
    pub const LAYER_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    /// OCI image config.
    pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    /// OCI image manifest.
    pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    /// OCI image index.
    pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";

    /// Docker image manifest v2 schema 2.
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    /// Docker manifest list.
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Docker image config.
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    /// Docker layer, gzip-compressed tar.
    pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    /// Docker layer, uncompressed tar (what `docker save` of Docker ≥ 25 writes).
    pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
    /// Docker layer, zstd-compressed tar.
    pub const DOCKER_LAYER_TAR_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";

    /// Is this a manifest (OCI or Docker)?
    pub fn is_manifest(mt: &str) -> bool {
        mt == MANIFEST || mt == DOCKER_MANIFEST
    }

    /// Is this an index / manifest list (OCI or Docker)?
    pub fn is_index(mt: &str) -> bool {
        mt == INDEX || mt == DOCKER_MANIFEST_LIST
    }

    /// Is this a layer that `docker load` can read (uncompressed or gzip)?
    pub fn is_docker_loadable_layer(mt: &str) -> bool {
        [
            LAYER_TAR,
            LAYER_TAR_GZIP,
            DOCKER_LAYER_TAR,
            DOCKER_LAYER_TAR_GZIP,
        ]
        .contains(&mt)
    }
}

/// The platform of a manifest in an index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// GOARCH spelling: `amd64`, `arm64`, `arm`, `386`, `ppc64le`, `s390x`, `riscv64`.
    pub architecture: String,
    /// GOOS spelling: `linux`.
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// `v7`, `v8`, … where the architecture needs it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/<architecture>` without variant.
    pub fn linux(architecture: impl Into<String>) -> Self {
        Self {
            architecture: architecture.into(),
            os: "linux".to_owned(),
            os_version: None,
            variant: None,
        }
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A content descriptor: what a blob is, its digest and size.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Sha256Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

impl Descriptor {
    /// A descriptor without annotations or platform.
    pub fn new(media_type: impl Into<String>, digest: Sha256Digest, size: u64) -> Self {
        Self {
            media_type: media_type.into(),
            digest,
            size,
            artifact_type: None,
            annotations: BTreeMap::new(),
            platform: None,
        }
    }

    /// The descriptor of `bytes` (hashes them).
    pub fn of_bytes(media_type: impl Into<String>, bytes: &[u8]) -> Self {
        Self::new(media_type, Sha256Digest::of(bytes), bytes.len() as u64)
    }

    /// Adds or replaces an annotation.
    pub fn with_annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// Sets the platform.
    pub fn with_platform(mut self, platform: Platform) -> Self {
        self.platform = Some(platform);
        self
    }
}

/// An image manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    /// Always set when written; may be missing in manifests read from elsewhere.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// An OCI image manifest.
    pub fn new(config: Descriptor, layers: Vec<Descriptor>) -> Self {
        Self {
            schema_version: 2,
            media_type: media_types::MANIFEST.to_owned(),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
        }
    }

    /// The canonical JSON bytes (the blob).
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, OciError> {
        canonical_json(self)
    }

    /// Parses a manifest blob.
    pub fn from_json(bytes: &[u8]) -> Result<Self, OciError> {
        serde_json::from_slice(bytes).map_err(|source| OciError::Json {
            what: "image manifest".to_owned(),
            source,
        })
    }
}

/// An image index (multi-platform image).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    /// An OCI image index.
    pub fn new(manifests: Vec<Descriptor>) -> Self {
        Self {
            schema_version: 2,
            media_type: media_types::INDEX.to_owned(),
            artifact_type: None,
            manifests,
            annotations: BTreeMap::new(),
        }
    }

    /// The canonical JSON bytes (the blob).
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, OciError> {
        canonical_json(self)
    }

    /// Parses an index blob.
    pub fn from_json(bytes: &[u8]) -> Result<Self, OciError> {
        serde_json::from_slice(bytes).map_err(|source| OciError::Json {
            what: "image index".to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(b: &[u8]) -> Sha256Digest {
        Sha256Digest::of(b)
    }

    #[test]
    fn manifest_json_is_canonical_and_omits_empty() -> Result<(), OciError> {
        let m = Manifest::new(
            Descriptor::new(media_types::CONFIG, digest(b"c"), 10),
            vec![Descriptor::new(
                media_types::LAYER_TAR_GZIP,
                digest(b"l"),
                20,
            )],
        );
        let json = String::from_utf8(m.to_canonical_json()?).unwrap_or_default();
        assert_eq!(
            json,
            format!(
                "{{\"config\":{{\"digest\":\"{}\",\"mediaType\":\"{}\",\"size\":10}},\
                 \"layers\":[{{\"digest\":\"{}\",\"mediaType\":\"{}\",\"size\":20}}],\
                 \"mediaType\":\"{}\",\"schemaVersion\":2}}",
                digest(b"c"),
                media_types::CONFIG,
                digest(b"l"),
                media_types::LAYER_TAR_GZIP,
                media_types::MANIFEST
            )
        );
        assert_eq!(Manifest::from_json(json.as_bytes())?, m);
        Ok(())
    }

    #[test]
    fn index_with_platforms_round_trips() -> Result<(), OciError> {
        let idx = Index::new(vec![
            Descriptor::new(media_types::MANIFEST, digest(b"a"), 1)
                .with_platform(Platform::linux("amd64")),
            Descriptor::new(media_types::MANIFEST, digest(b"b"), 2).with_platform(Platform {
                variant: Some("v8".to_owned()),
                ..Platform::linux("arm64")
            }),
        ]);
        let bytes = idx.to_canonical_json()?;
        let text = String::from_utf8(bytes.clone()).unwrap_or_default();
        assert!(
            text.contains(r#""platform":{"architecture":"arm64","os":"linux","variant":"v8"}"#)
        );
        assert_eq!(Index::from_json(&bytes)?, idx);
        Ok(())
    }

    #[test]
    fn parses_docker_manifest_with_unknown_fields() -> Result<(), OciError> {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":7,"digest":"{}"}},
            "layers":[{{"mediaType":"{}","size":9,"digest":"{}","urls":["x"]}}],"extra":1}}"#,
            media_types::DOCKER_MANIFEST,
            media_types::DOCKER_CONFIG,
            digest(b"c"),
            media_types::DOCKER_LAYER_TAR_GZIP,
            digest(b"l")
        );
        let m = Manifest::from_json(json.as_bytes())?;
        assert_eq!(m.layers[0].size, 9);
        assert!(media_types::is_manifest(&m.media_type));
        Ok(())
    }
}
