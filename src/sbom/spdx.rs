//! SPDX 2.3 JSON: one document per image and architecture. The image is the described package
//! (`primaryPackagePurpose: CONTAINER`, an OCI purl); it `CONTAINS` every Debian package and every
//! file no package owns; packages `DEPENDS_ON` each other. Licences that are not on the SPDX list are
//! declared as `hasExtractedLicensingInfos`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{Bom, licenses};

/// An SPDX identifier from arbitrary text: `SPDXRef-` + `[A-Za-z0-9.-]`.
fn spdx_id(prefix: &str, text: &str) -> String {
    let body: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{prefix}-{body}")
}

/// The document.
pub fn document(bom: &Bom) -> Value {
    let image_id = "SPDXRef-Image".to_string();
    let mut relationships = vec![rel("SPDXRef-DOCUMENT", "DESCRIBES", &image_id)];
    let mut packages = vec![json!({
        "SPDXID": image_id,
        "name": bom.image.name,
        "versionInfo": bom.image.digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "checksums": [{
            "algorithm": "SHA256",
            "checksumValue": bom.image.digest.strip_prefix("sha256:").unwrap_or(&bom.image.digest),
        }],
        "externalRefs": [purl_ref(&bom.image.purl)],
        "comment": format!("OCI image `{}` for {}, built by himg", bom.image.name, bom.image.architecture),
    })];

    // Unique identifiers per package name (a collision after sanitising gets a counter).
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    let mut used = BTreeSet::new();
    for p in &bom.packages {
        let base = spdx_id("Package-deb", &format!("{}-{}", p.name, p.architecture));
        let mut id = base.clone();
        let mut n = 2;
        while !used.insert(id.clone()) {
            id = format!("{base}-{n}");
            n += 1;
        }
        ids.insert(p.name.as_str(), id);
    }

    let mut refs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in &bom.packages {
        let id = &ids[p.name.as_str()];
        let license = p.license.clone().unwrap_or_else(|| "NOASSERTION".into());
        for r in licenses::license_refs(&license) {
            refs.entry(r).or_default().insert(p.name.clone());
        }
        let mut pkg = json!({
            "SPDXID": id,
            "name": p.name,
            "versionInfo": p.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": license,
            "copyrightText": "NOASSERTION",
            "supplier": "Organization: Debian",
            "sourceInfo": format!("built from the Debian source package {} {}", p.source, p.source_version),
            "externalRefs": [purl_ref(&p.purl)],
            "comment": format!("architecture {}; source {}", p.architecture, p.source_purl),
        });
        if let Some(sha) = &p.deb_sha256 {
            pkg["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": sha}]);
        }
        if let Some(f) = &p.deb_filename {
            pkg["packageFileName"] = json!(f);
        }
        packages.push(pkg);
        relationships.push(rel(&image_id, "CONTAINS", id));
        for dep in &p.depends_on {
            if let Some(dep_id) = ids.get(dep.as_str()) {
                relationships.push(rel(id, "DEPENDS_ON", dep_id));
            }
        }
    }

    // SPDX requires a SHA-1 per file: a file whose bytes could not be read is left out here.
    let listed: Vec<&super::FileComponent> =
        bom.files.iter().filter(|f| f.sha1.is_some()).collect();
    if !listed.is_empty() {
        // The image "contains" files, so its files count as analysed: the verification code is
        // the SHA-1 of the sorted SHA-1s of those files (SPDX 2.3 §7.9).
        let mut sha1s: Vec<&str> = listed.iter().filter_map(|f| f.sha1.as_deref()).collect();
        sha1s.sort_unstable();
        let code = hex::encode(<sha1::Sha1 as sha1::Digest>::digest(
            sha1s.concat().as_bytes(),
        ));
        packages[0]["filesAnalyzed"] = json!(true);
        packages[0]["packageVerificationCode"] = json!({"packageVerificationCodeValue": code});
    }
    let mut files = Vec::new();
    for f in listed {
        let id = format!(
            "SPDXRef-File-{}",
            &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(f.path.as_bytes()))[..16]
        );
        let mut checksums = Vec::new();
        if let Some(sha1) = &f.sha1 {
            checksums.push(json!({"algorithm": "SHA1", "checksumValue": sha1}));
        }
        checksums.push(json!({"algorithm": "SHA256", "checksumValue": f.sha256}));
        files.push(json!({
            "SPDXID": id,
            "fileName": format!(".{}", f.path),
            "checksums": checksums,
            "licenseConcluded": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "comment": "not installed by a package: copied or generated by the build",
        }));
        relationships.push(rel(&image_id, "CONTAINS", &id));
    }

    let extracted: Vec<Value> = refs
        .iter()
        .map(|(id, pkgs)| {
            json!({
                "licenseId": id,
                "name": id.trim_start_matches("LicenseRef-"),
                "extractedText": format!(
                    "A licence named in the Debian copyright files (/usr/share/doc/PACKAGE/copyright) of: {}",
                    pkgs.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            })
        })
        .collect();

    let mut doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{}-{}", bom.image.name, bom.image.architecture),
        "documentNamespace": format!(
            "https://spdx.org/spdxdocs/himg/{}-{}-{}",
            bom.image.name, bom.image.architecture, bom.uuid
        ),
        "creationInfo": {
            "created": bom.created,
            "creators": [format!("Tool: himg-{}", Bom::tool_version())],
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !files.is_empty() {
        doc["files"] = Value::Array(files);
    }
    if !extracted.is_empty() {
        doc["hasExtractedLicensingInfos"] = Value::Array(extracted);
    }
    doc
}

fn purl_ref(purl: &str) -> Value {
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": purl,
    })
}

fn rel(a: &str, kind: &str, b: &str) -> Value {
    json!({
        "spdxElementId": a,
        "relationshipType": kind,
        "relatedSpdxElement": b,
    })
}
