//! The analysis derivation: what `himg build` reports about each image it wrote — its SBOMs (SPDX
//! and CycloneDX) and the facts its policies are judged on — made once per image manifest and kept
//! in the store like any derivation output, so a rebuild, or a build that substitutes from a binary
//! cache, reads a small record instead of decompressing and hashing every layer again.
//!
//! The step's input is the image's manifest node; its parameters are what the SBOM takes from the
//! lock (pinned `.deb` hashes and file names, suite codenames) and [`RULES`]. The output is a blob
//! holding the policy [`Facts`] and the blake3 digests of the two rendered SBOM documents, which
//! are stored as blobs beside it. Policies themselves (which rules, limits, waivers, today's date)
//! are applied when the record is read, never stored.

use himg_store::{B3Digest, ObjectRef, Store};
use serde::{Deserialize, Serialize};

use crate::debian::lockfile::LockedPackage;
use crate::image::ImageSource;
use crate::image::scan::LayerScan;
use crate::plan::PlanError;
use crate::policy::Facts;
use crate::sbom::{self, Bom, Format};

/// Version of what the analysis computes (SBOM rendering, policy rules); bump it whenever either
/// changes so stored records are not reused.
pub const RULES: u32 = 2;

/// The parameters of an analysis derivation (they enter its key).
#[derive(Debug, Clone, Serialize)]
pub struct AnalysisStep {
    /// The image name (SBOM names and purls).
    pub image: String,
    pub architecture: String,
    /// The lock's packages for this image and architecture (empty without packages).
    pub locked: Vec<LockedPackage>,
    /// Codenames of the lock's suites, for the purl `distro` of images without `os-release`.
    pub codenames: Vec<String>,
    pub rules: u32,
}

/// The stored record: facts inline, SBOM documents by blob digest.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    rules: u32,
    facts: Facts,
    /// `spdx.json` / `cdx.json` → blob digest of the rendered document.
    sboms: std::collections::BTreeMap<String, String>,
}

/// What an analysis produced, read back from the store.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub facts: Facts,
    /// `(suffix, blob)` for SPDX then CycloneDX: the store blobs holding the documents as
    /// `himg sbom` renders them.
    pub sboms: Vec<(&'static str, B3Digest)>,
}

/// The built analysis: the record blob and every object the output holds.
pub struct Analysed {
    pub record: B3Digest,
    pub size: u64,
    pub objects: Vec<ObjectRef>,
}

/// Scans the layer blob `layer` (an OCI blob of the store) → the scan record's JSON.
pub fn scan_layer(
    store: &Store,
    layer: &ObjectRef,
    media_type: &str,
    size: u64,
    diff_id: &str,
) -> Result<Vec<u8>, PlanError> {
    let ObjectRef::Oci(digest) = layer else {
        return Err(PlanError::BadStoreEntry {
            what: format!("{layer} (a layer scan input is not a layer blob)"),
        });
    };
    let scan = crate::image::scan::scan_blob(
        &store.oci_dir(),
        &format!("sha256:{}", digest.to_hex()),
        media_type,
        size,
        diff_id,
    )?;
    Ok(crate::oci::canonical_json(&scan)?)
}

/// Analyses the image whose manifest is the OCI blob `manifest`, its layers read from their
/// stored scans (`scans`, one per layer, bottom first) rather than from the layer blobs.
pub fn analyse(
    store: &Store,
    step: &AnalysisStep,
    manifest: &ObjectRef,
    scans: &[ObjectRef],
) -> Result<Analysed, PlanError> {
    let ObjectRef::Oci(digest) = manifest else {
        return Err(PlanError::BadStoreEntry {
            what: format!("{manifest} (an analysis input is not a manifest)"),
        });
    };
    let mut layer_scans = Vec::with_capacity(scans.len());
    for s in scans {
        let ObjectRef::Blob(blob) = s else {
            return Err(PlanError::BadStoreEntry {
                what: format!("{s} (not a layer scan)"),
            });
        };
        let scan: LayerScan = serde_json::from_slice(&store.read_blob(blob)?).map_err(|e| {
            PlanError::BadStoreEntry {
                what: format!("{s} (layer scan: {e})"),
            }
        })?;
        layer_scans.push(scan);
    }
    let source = ImageSource::blob_store(&store.oci_dir());
    let (view, contents) = source
        .scanned_image(
            &format!("sha256:{}", digest.to_hex()),
            Some(&step.image),
            &layer_scans,
        )?
        .ok_or_else(|| PlanError::BadStoreEntry {
            what: format!("{manifest} (not an image manifest)"),
        })?;
    let bom = Bom::new(&sbom::Input {
        view: &view,
        name: &step.image,
        locked: &step.locked,
        codenames: &step.codenames,
        contents: &contents,
    });
    let facts = Facts::gather(&view, &contents);
    let mut objects = Vec::new();
    let mut sboms = std::collections::BTreeMap::new();
    for format in [Format::Spdx, Format::CycloneDx] {
        let blob = store.put_blob(format.render(&bom).as_bytes())?;
        objects.push(ObjectRef::Blob(blob));
        sboms.insert(format.suffix().to_string(), blob.to_string());
    }
    let bytes = crate::oci::canonical_json(&Record {
        rules: step.rules,
        facts,
        sboms,
    })?;
    let record = store.put_blob(&bytes)?;
    objects.push(ObjectRef::Blob(record));
    objects.sort_by_key(|r| r.to_string());
    objects.dedup();
    Ok(Analysed {
        record,
        size: bytes.len() as u64,
        objects,
    })
}

impl Analysis {
    /// Reads an analysis output (the record blob `content`); its SBOM documents must be in the
    /// store.
    pub fn load(store: &Store, content: &ObjectRef) -> Result<Analysis, PlanError> {
        let bad = |why: String| PlanError::BadStoreEntry {
            what: format!("{content} ({why})"),
        };
        let ObjectRef::Blob(blob) = content else {
            return Err(bad("not an analysis record".into()));
        };
        let record: Record = serde_json::from_slice(&store.read_blob(blob)?)
            .map_err(|e| bad(format!("analysis record: {e}")))?;
        let mut sboms = Vec::new();
        for format in [Format::Spdx, Format::CycloneDx] {
            let digest = record
                .sboms
                .get(format.suffix())
                .ok_or_else(|| bad(format!("no {} document", format.suffix())))?;
            let digest = B3Digest::try_from(digest.as_str())
                .map_err(|e| bad(format!("SBOM digest: {e}")))?;
            if !store.has_blob(&digest) {
                return Err(bad(format!("{} document missing", format.suffix())));
            }
            sboms.push((format.suffix(), digest));
        }
        Ok(Analysis {
            facts: record.facts,
            sboms,
        })
    }
}
