//! CycloneDX 1.6 JSON: the image is `metadata.component` (type `container`); Debian packages are
//! `library` components (bom-ref = purl), files no package owns are `file` components; `dependencies`
//! lists every package with the packages it depends on, and the image with everything it contains.

use serde_json::{Value, json};

use super::Bom;

/// The document.
pub fn document(bom: &Bom) -> Value {
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    let mut contained = Vec::new();
    for p in &bom.packages {
        let mut c = json!({
            "type": "library",
            "bom-ref": p.purl,
            "name": p.name,
            "version": p.version,
            "purl": p.purl,
            "publisher": "Debian",
            "properties": [
                {"name": "himg:deb:architecture", "value": p.architecture},
                {"name": "himg:deb:source", "value": p.source},
                {"name": "himg:deb:source_purl", "value": p.source_purl},
                {"name": "himg:deb:source_version", "value": p.source_version},
            ],
        });
        if let Some(l) = &p.license {
            c["licenses"] = json!([{"expression": l}]);
        }
        if let Some(sha) = &p.deb_sha256 {
            c["hashes"] = json!([{"alg": "SHA-256", "content": sha}]);
        }
        components.push(c);
        contained.push(p.purl.clone());
        let depends_on: Vec<&str> = p
            .depends_on
            .iter()
            .filter_map(|d| bom.packages.iter().find(|q| &q.name == d))
            .map(|q| q.purl.as_str())
            .collect();
        dependencies.push(json!({"ref": p.purl, "dependsOn": depends_on}));
    }
    for f in &bom.files {
        let bom_ref = format!("file:{}", f.path);
        let mut hashes = Vec::new();
        if let Some(sha1) = &f.sha1 {
            hashes.push(json!({"alg": "SHA-1", "content": sha1}));
        }
        hashes.push(json!({"alg": "SHA-256", "content": f.sha256}));
        components.push(json!({
            "type": "file",
            "bom-ref": bom_ref,
            "name": f.path,
            "hashes": hashes,
        }));
        contained.push(bom_ref);
    }
    dependencies.insert(0, json!({"ref": bom.image.purl, "dependsOn": contained}));

    let hex = bom
        .image
        .digest
        .strip_prefix("sha256:")
        .unwrap_or(&bom.image.digest);
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", bom.uuid),
        "version": 1,
        "metadata": {
            "timestamp": bom.created,
            "tools": {"components": [{
                "type": "application",
                "name": "himg",
                "version": Bom::tool_version(),
            }]},
            "component": {
                "type": "container",
                "bom-ref": bom.image.purl,
                "name": bom.image.name,
                "version": bom.image.digest,
                "purl": bom.image.purl,
                "hashes": [{"alg": "SHA-256", "content": hex}],
                "properties": [{"name": "himg:image:architecture", "value": bom.image.architecture}],
            },
        },
        "components": components,
        "dependencies": dependencies,
    })
}
