//! Judging SBOMs with the real validators: `pyspdxtools -i` for SPDX and CycloneDX's
//! `JsonStrictValidator` (schema 1.6), plus the reference checks the schema cannot do.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::{require_tool, run_tool};

/// `pyspdxtools -i FILE` exits 0.
pub fn validate_spdx(path: &Path) {
    require_tool("pyspdxtools");
    run_tool(Command::new("pyspdxtools").arg("-i").arg(path));
}

/// The CycloneDX strict JSON validator accepts the file, and every `dependsOn` ref exists.
pub fn validate_cyclonedx(path: &Path) {
    require_tool("python3");
    let script = r#"
import sys
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(open(sys.argv[1]).read())
if errors:
    print(errors, file=sys.stderr)
    sys.exit(1)
"#;
    run_tool(Command::new("python3").arg("-c").arg(script).arg(path));
    let doc: Value = serde_json::from_slice(&std::fs::read(path).expect("read cdx")).expect("json");
    let mut refs: BTreeSet<String> = doc["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["bom-ref"].as_str().map(str::to_string))
        .collect();
    if let Some(r) = doc["metadata"]["component"]["bom-ref"].as_str() {
        refs.insert(r.to_string());
    }
    for d in doc["dependencies"].as_array().expect("dependencies") {
        let r = d["ref"].as_str().expect("ref");
        assert!(refs.contains(r), "dependency ref `{r}` is no component");
        for on in d["dependsOn"].as_array().into_iter().flatten() {
            let on = on.as_str().expect("dependsOn string");
            assert!(refs.contains(on), "dependsOn `{on}` is no component");
        }
    }
}

/// purls of the Debian packages of a CycloneDX SBOM.
pub fn deb_purls(path: &Path) -> BTreeSet<String> {
    let doc: Value = serde_json::from_slice(&std::fs::read(path).expect("read cdx")).expect("json");
    doc["components"]
        .as_array()
        .expect("components")
        .iter()
        .filter_map(|c| c["purl"].as_str())
        .filter(|p| p.starts_with("pkg:deb/"))
        .map(str::to_string)
        .collect()
}

/// The purl an SBOM must give a locked package (`distro` left out when `distro` is None).
pub fn expected_purl(pkg: &Value, distro: Option<&str>) -> String {
    let enc = |s: &str| {
        s.replace('%', "%25")
            .replace('+', "%2B")
            .replace(':', "%3A")
    };
    let mut purl = format!(
        "pkg:deb/debian/{}@{}?arch={}",
        enc(pkg["name"].as_str().expect("name")),
        enc(pkg["version"].as_str().expect("version")),
        pkg["architecture"].as_str().expect("arch")
    );
    if let Some(d) = distro {
        purl.push_str(&format!("&distro={d}"));
    }
    purl
}

/// Checks both SBOMs `build` wrote for an image against the validators and the lock's packages.
pub fn check_built_sboms(
    out: &Path,
    image: &str,
    arch: &str,
    locked: &[Value],
    distro: Option<&str>,
) {
    let mut dir = out.as_os_str().to_owned();
    dir.push(".sbom");
    let dir = Path::new(&dir).to_path_buf();
    let spdx = dir.join(format!("{image}-{arch}.spdx.json"));
    let cdx = dir.join(format!("{image}-{arch}.cdx.json"));
    validate_spdx(&spdx);
    validate_cyclonedx(&cdx);
    let purls = deb_purls(&cdx);
    let spdx_text = std::fs::read_to_string(&spdx).expect("spdx");
    for pkg in locked {
        let purl = expected_purl(pkg, distro);
        assert!(purls.contains(&purl), "{purl} missing from {purls:?}");
        assert!(
            spdx_text.contains(&format!("\"{purl}\"")),
            "{purl} missing from SPDX"
        );
        let sha = pkg["sha256"].as_str().expect("sha256");
        assert!(
            spdx_text.contains(sha),
            "the .deb sha256 of {purl} is missing"
        );
    }
    assert_eq!(purls.len(), locked.len(), "{purls:?}");
}
