//! OpenVEX (v0.2.0, and the older string forms of `vulnerability` and `products`): statements that
//! say whether a vulnerability affects a product. `not_affected` and `fixed` suppress a finding;
//! `affected` and `under_investigation` are shown next to it.
//!
//! A statement applies to a finding when its `vulnerability.name` (or one of its `aliases`) is the
//! finding's id or an alias, and one product matches:
//! - a Debian package purl naming a binary package of the finding (`pkg:deb/debian/libssl3`), or its
//!   source package with `arch=source`; a version or `arch` in the purl must then be equal;
//! - an image: `pkg:oci/…` (with `@sha256%3A…` equal to the manifest digest, or no version) or the
//!   bare manifest digest; with `subcomponents`, one of them must match as above.
//!
//! When several statements apply, the last one wins (files in the order given, statements in order).

use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Finding, VulnError};

/// A parsed OpenVEX document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VexDocument {
    /// Where it was read from (shown in reports).
    pub path: PathBuf,
    pub id: String,
    pub statements: Vec<Statement>,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// The vulnerability name and its aliases.
    pub names: Vec<String>,
    pub products: Vec<Product>,
    pub status: String,
    pub justification: Option<String>,
    pub impact_statement: Option<String>,
    pub action_statement: Option<String>,
}

/// A product and its subcomponents, by identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub ids: Vec<String>,
    pub subcomponents: Vec<Vec<String>>,
}

/// The statement that decided a finding's VEX status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VexVerdict {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub impact_statement: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_statement: Option<String>,
    /// The VEX file and its `@id`.
    pub document: String,
    pub document_id: String,
}

impl VexVerdict {
    /// `not_affected` and `fixed` remove the finding from the counts and from `--fail-on`.
    pub fn suppresses(&self) -> bool {
        self.status == "not_affected" || self.status == "fixed"
    }

    /// The reason a reader sees: justification, impact statement, else the status.
    pub fn reason(&self) -> String {
        match (&self.justification, &self.impact_statement) {
            (Some(j), Some(i)) => format!("{j}: {i}"),
            (Some(j), None) => j.clone(),
            (None, Some(i)) => i.clone(),
            (None, None) => self.status.clone(),
        }
    }
}

const STATUSES: [&str; 4] = ["not_affected", "affected", "fixed", "under_investigation"];

fn bad(path: &Path, message: impl Into<String>) -> VulnError {
    VulnError::Vex {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn ids_of(value: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Object(map) => {
            if let Some(s) = map.get("@id").and_then(|v| v.as_str()) {
                out.push(s.to_string());
            }
            if let Some(ids) = map.get("identifiers").and_then(|v| v.as_object()) {
                out.extend(ids.values().filter_map(|v| v.as_str()).map(str::to_owned));
            }
        }
        _ => {}
    }
    out
}

impl VexDocument {
    /// Reads and checks an OpenVEX file.
    pub fn read(path: &Path) -> Result<VexDocument, VulnError> {
        let bytes = std::fs::read(path).map_err(|source| VulnError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        VexDocument::parse(path, &bytes)
    }

    /// Parses an OpenVEX document (`path` only names it).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<VexDocument, VulnError> {
        let doc: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| bad(path, e.to_string()))?;
        let context = doc.get("@context").and_then(|v| v.as_str()).unwrap_or("");
        if !context.starts_with("https://openvex.dev/ns") {
            return Err(bad(
                path,
                "`@context` must be an OpenVEX context (`https://openvex.dev/ns/v0.2.0`)",
            ));
        }
        let id = doc
            .get("@id")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        let raw = doc
            .get("statements")
            .and_then(|v| v.as_array())
            .ok_or_else(|| bad(path, "`statements` must be a list"))?;
        let mut statements = Vec::new();
        for (i, s) in raw.iter().enumerate() {
            let n = i + 1;
            let vuln = s.get("vulnerability");
            let mut names = Vec::new();
            match vuln {
                Some(serde_json::Value::String(v)) => names.push(v.clone()),
                Some(serde_json::Value::Object(v)) => {
                    for k in ["name", "@id"] {
                        if let Some(x) = v.get(k).and_then(|x| x.as_str()) {
                            names.push(x.to_string());
                        }
                    }
                    if let Some(a) = v.get("aliases").and_then(|x| x.as_array()) {
                        names.extend(a.iter().filter_map(|x| x.as_str()).map(str::to_owned));
                    }
                }
                _ => {}
            }
            if names.is_empty() {
                return Err(bad(path, format!("statement {n} names no vulnerability")));
            }
            let status = s.get("status").and_then(|v| v.as_str()).unwrap_or("");
            if !STATUSES.contains(&status) {
                return Err(bad(
                    path,
                    format!(
                        "statement {n} has status `{status}`; expected one of {}",
                        STATUSES.join(", ")
                    ),
                ));
            }
            let text = |k: &str| {
                s.get(k)
                    .and_then(|v| v.as_str())
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
            };
            let justification = text("justification");
            let impact_statement = text("impact_statement");
            if status == "not_affected" && justification.is_none() && impact_statement.is_none() {
                return Err(bad(
                    path,
                    format!(
                        "statement {n} is `not_affected` without a `justification` or `impact_statement`"
                    ),
                ));
            }
            let products = s
                .get("products")
                .and_then(|v| v.as_array())
                .map(|list| {
                    list.iter()
                        .map(|p| Product {
                            ids: ids_of(p),
                            subcomponents: p
                                .get("subcomponents")
                                .and_then(|v| v.as_array())
                                .map(|subs| subs.iter().map(ids_of).collect())
                                .unwrap_or_default(),
                        })
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            if products.is_empty() {
                return Err(bad(path, format!("statement {n} lists no products")));
            }
            statements.push(Statement {
                names,
                products,
                status: status.to_string(),
                justification,
                impact_statement,
                action_statement: text("action_statement"),
            });
        }
        Ok(VexDocument {
            path: path.to_path_buf(),
            id,
            statements,
        })
    }
}

/// A parsed purl: type, name, version and qualifiers (percent-decoded).
struct Purl {
    kind: String,
    name: String,
    version: Option<String>,
    qualifiers: Vec<(String, String)>,
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_purl(text: &str) -> Option<Purl> {
    let rest = text.strip_prefix("pkg:")?;
    let rest = rest.split('#').next().unwrap_or(rest);
    let (rest, query) = match rest.split_once('?') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let (path, version) = match rest.rsplit_once('@') {
        Some((a, b)) => (a, Some(decode(b))),
        None => (rest, None),
    };
    let mut parts = path.split('/');
    let kind = parts.next()?.to_ascii_lowercase();
    let name = decode(path.rsplit('/').next()?);
    let qualifiers = query
        .map(|q| {
            q.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_ascii_lowercase(), decode(v)))
                .collect()
        })
        .unwrap_or_default();
    Some(Purl {
        kind,
        name,
        version,
        qualifiers,
    })
}

fn qualifier<'a>(p: &'a Purl, key: &str) -> Option<&'a str> {
    p.qualifiers
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Whether `id` names a package of the finding.
fn names_package(id: &str, finding: &Finding) -> bool {
    let Some(p) = parse_purl(id) else {
        return false;
    };
    if p.kind != "deb" {
        return false;
    }
    let arch = qualifier(&p, "arch");
    if arch == Some("source") {
        return p.name == finding.source
            && p.version.as_ref().is_none_or(|v| *v == finding.installed);
    }
    finding.packages.iter().any(|b| {
        b.name == p.name
            && p.version.as_ref().is_none_or(|v| *v == b.version)
            && arch.is_none_or(|a| a == b.architecture || a == "all")
    })
}

/// Whether `id` names the image with manifest digest `digest`.
fn names_image(id: &str, digest: &str) -> bool {
    if id == digest {
        return true;
    }
    match parse_purl(id) {
        Some(p) if p.kind == "oci" => p.version.as_ref().is_none_or(|v| v == digest),
        _ => false,
    }
}

fn product_matches(product: &Product, finding: &Finding, digest: &str) -> bool {
    if product.ids.iter().any(|id| names_package(id, finding)) {
        return true;
    }
    if product.ids.iter().any(|id| names_image(id, digest)) {
        return product.subcomponents.is_empty()
            || product
                .subcomponents
                .iter()
                .any(|ids| ids.iter().any(|id| names_package(id, finding)));
    }
    false
}

/// The verdict of the last applicable statement of `docs` for `finding` in the image `digest`.
pub fn verdict(docs: &[VexDocument], finding: &Finding, digest: &str) -> Option<VexVerdict> {
    let mut out = None;
    for doc in docs {
        for s in &doc.statements {
            let named = s
                .names
                .iter()
                .any(|n| *n == finding.id || finding.aliases.contains(n));
            if named
                && s.products
                    .iter()
                    .any(|p| product_matches(p, finding, digest))
            {
                out = Some(VexVerdict {
                    status: s.status.clone(),
                    justification: s.justification.clone(),
                    impact_statement: s.impact_statement.clone(),
                    action_statement: s.action_statement.clone(),
                    document: doc.path.display().to_string(),
                    document_id: doc.id.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vuln::Severity;
    use crate::vuln::matcher::{FindingState, PackageRef};

    fn finding() -> Finding {
        Finding {
            id: "CVE-1".into(),
            aliases: vec!["DEBIAN-CVE-1".into()],
            release: "trixie".into(),
            source: "openssl".into(),
            installed: "3.0-1".into(),
            packages: vec![PackageRef {
                name: "libssl3".into(),
                version: "3.0-1+b1".into(),
                architecture: "amd64".into(),
                source: "openssl".into(),
                source_version: "3.0-1".into(),
            }],
            fixed_version: None,
            state: FindingState::NoFixYet,
            severity: Severity::High,
            urgency: String::new(),
            description: String::new(),
            data_source: "debian-tracker".into(),
        }
    }

    fn doc(statements: &str) -> VexDocument {
        let text = format!(
            r#"{{"@context": "https://openvex.dev/ns/v0.2.0", "@id": "https://example.invalid/vex/1",
               "author": "t", "timestamp": "2026-01-01T00:00:00Z", "version": 1, "statements": {statements}}}"#
        );
        VexDocument::parse(Path::new("v.json"), text.as_bytes()).unwrap()
    }

    #[test]
    fn product_forms() {
        let f = finding();
        for product in [
            r#"{"@id": "pkg:deb/debian/libssl3@3.0-1%2Bb1?arch=amd64"}"#,
            r#"{"@id": "pkg:deb/debian/openssl@3.0-1?arch=source"}"#,
            r#"{"@id": "pkg:oci/app@sha256%3Aabc", "subcomponents": [{"@id": "pkg:deb/debian/libssl3"}]}"#,
            r#"{"@id": "sha256:abc"}"#,
        ] {
            let d = doc(&format!(
                r#"[{{"vulnerability": {{"name": "CVE-1"}}, "products": [{product}],
                    "status": "not_affected", "justification": "vulnerable_code_not_in_execute_path"}}]"#
            ));
            let v = verdict(&[d], &f, "sha256:abc").expect(product);
            assert!(v.suppresses());
            assert_eq!(v.reason(), "vulnerable_code_not_in_execute_path");
        }
        for product in [
            r#"{"@id": "pkg:deb/debian/libssl3@9"}"#,
            r#"{"@id": "pkg:deb/debian/openssl"}"#,
            r#"{"@id": "pkg:oci/app@sha256%3Aother"}"#,
            r#"{"@id": "pkg:oci/app", "subcomponents": [{"@id": "pkg:deb/debian/zlib1g"}]}"#,
        ] {
            let d = doc(&format!(
                r#"[{{"vulnerability": {{"name": "CVE-1"}}, "products": [{product}],
                    "status": "not_affected", "justification": "component_not_present"}}]"#
            ));
            assert_eq!(verdict(&[d], &f, "sha256:abc"), None, "{product}");
        }
    }

    #[test]
    fn refusals() {
        for bad in [
            r#"{"statements": []}"#,
            r#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vulnerability": {"name": "X"}, "products": [{"@id": "a"}], "status": "maybe"}]}"#,
            r#"{"@context": "https://openvex.dev/ns/v0.2.0", "statements": [{"vulnerability": {"name": "X"}, "products": [{"@id": "a"}], "status": "not_affected"}]}"#,
        ] {
            assert!(
                VexDocument::parse(Path::new("v"), bad.as_bytes()).is_err(),
                "{bad}"
            );
        }
    }
}
