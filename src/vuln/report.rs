//! Scan reports: findings with their VEX verdicts, rendered as a table, JSON or SARIF 2.1.0.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::{Value, json};

use super::Severity;
use super::matcher::{Finding, FindingState};
use super::vex::{VexDocument, VexVerdict, verdict};

/// The VEX statement that suppressed a finding (kept in the report, with its justification).
pub type SuppressedBy = VexVerdict;

/// One finding as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportFinding {
    #[serde(flatten)]
    pub finding: Finding,
    /// The command that brings the fixed version, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<String>,
    /// The applicable VEX statement, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vex: Option<VexVerdict>,
    /// True when a VEX statement says `not_affected` or `fixed`.
    pub suppressed: bool,
}

/// The scan of one image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub image: String,
    pub digest: String,
    pub architecture: String,
    pub release: String,
    /// The vulnerability database version the findings come from.
    pub database: String,
    pub packages: usize,
    pub findings: Vec<ReportFinding>,
    /// Counts of findings not suppressed, by severity (every severity present, zero included).
    pub summary: BTreeMap<Severity, usize>,
    pub suppressed: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// What a report is about.
#[derive(Debug, Clone)]
pub struct Subject<'a> {
    pub image: &'a str,
    pub digest: &'a str,
    pub architecture: &'a str,
    pub release: &'a str,
    pub database: &'a str,
    pub packages: usize,
    /// The `.himg` file `himg update` should be run on (`IMAGE.himg` when the target is a layout).
    pub himg_file: &'a str,
}

impl Report {
    /// Applies `vex` to `findings` and counts.
    pub fn new(
        subject: &Subject<'_>,
        findings: Vec<Finding>,
        warnings: Vec<String>,
        vex: &[VexDocument],
    ) -> Report {
        let mut summary: BTreeMap<Severity, usize> =
            Severity::ALL.into_iter().map(|s| (s, 0)).collect();
        let mut suppressed = 0;
        let findings: Vec<ReportFinding> = findings
            .into_iter()
            .map(|finding| {
                let vex = verdict(vex, &finding, subject.digest);
                let is_suppressed = vex.as_ref().is_some_and(VexVerdict::suppresses);
                if is_suppressed {
                    suppressed += 1;
                } else {
                    *summary.entry(finding.severity).or_default() += 1;
                }
                let update = (finding.state == FindingState::FixAvailable).then(|| {
                    let mut names: Vec<&str> =
                        finding.packages.iter().map(|p| p.name.as_str()).collect();
                    names.dedup();
                    format!("himg update {} {}", subject.himg_file, names.join(" "))
                });
                ReportFinding {
                    finding,
                    update,
                    vex,
                    suppressed: is_suppressed,
                }
            })
            .collect();
        Report {
            image: subject.image.to_string(),
            digest: subject.digest.to_string(),
            architecture: subject.architecture.to_string(),
            release: subject.release.to_string(),
            database: subject.database.to_string(),
            packages: subject.packages,
            findings,
            summary,
            suppressed,
            warnings,
        }
    }

    /// Findings not suppressed at `threshold` or above.
    pub fn failing(&self, threshold: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| !f.suppressed && f.finding.severity >= threshold)
            .count()
    }

    /// The one-line summary (`3 findings: 1 high, 2 low; 1 suppressed by VEX`).
    pub fn summary_line(&self) -> String {
        let active: usize = self.summary.values().sum();
        let mut parts: Vec<String> = self
            .summary
            .iter()
            .rev()
            .filter(|(_, n)| **n > 0)
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        if parts.is_empty() {
            parts.push("none".into());
        }
        let mut line = format!(
            "{active} finding{} ({})",
            if active == 1 { "" } else { "s" },
            parts.join(", ")
        );
        if self.suppressed > 0 {
            let _ = write!(line, "; {} suppressed by VEX", self.suppressed);
        }
        line
    }

    /// The human table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} ({}, {}) {}: {} in {} packages",
            self.image,
            self.architecture,
            self.release,
            short_digest(&self.digest),
            self.summary_line(),
            self.packages
        );
        let rows: Vec<[String; 6]> = self
            .findings
            .iter()
            .filter(|f| !f.suppressed)
            .map(|f| {
                let fin = &f.finding;
                let fixed = match fin.state {
                    FindingState::FixAvailable => fin.fixed_version.clone().unwrap_or_default(),
                    FindingState::NoFixYet => "no fix yet".into(),
                    FindingState::EndOfLife => "end-of-life".into(),
                };
                let action = f
                    .update
                    .clone()
                    .or_else(|| {
                        f.vex
                            .as_ref()
                            .map(|v| format!("VEX {}: {}", v.status, v.reason()))
                    })
                    .unwrap_or_else(|| match fin.state {
                        FindingState::EndOfLife => "move to a supported release".into(),
                        _ => "-".into(),
                    });
                [
                    fin.severity.to_string(),
                    fin.id.clone(),
                    package_label(fin),
                    fin.installed.clone(),
                    fixed,
                    action,
                ]
            })
            .collect();
        if !rows.is_empty() {
            let header = [
                "SEVERITY",
                "ID",
                "PACKAGE (SOURCE)",
                "INSTALLED",
                "FIXED",
                "ACTION",
            ];
            let mut widths: [usize; 6] = header.map(str::len);
            for r in &rows {
                for (w, c) in widths.iter_mut().zip(r) {
                    *w = (*w).max(c.chars().count());
                }
            }
            let line = |cells: [&str; 6]| {
                let mut s = String::new();
                for (i, c) in cells.iter().enumerate() {
                    if i == 5 {
                        s.push_str(c);
                    } else {
                        let _ = write!(s, "{c:<w$}  ", w = widths[i]);
                    }
                }
                s.trim_end().to_string()
            };
            let _ = writeln!(out, "{}", line(header));
            for r in &rows {
                let _ = writeln!(
                    out,
                    "{}",
                    line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]].map(String::as_str))
                );
            }
        }
        let suppressed: Vec<&ReportFinding> =
            self.findings.iter().filter(|f| f.suppressed).collect();
        if !suppressed.is_empty() {
            let _ = writeln!(out, "Suppressed by VEX:");
            for f in suppressed {
                if let Some(v) = &f.vex {
                    let _ = writeln!(
                        out,
                        "  {} {} {}: {} ({})",
                        f.finding.id,
                        package_label(&f.finding),
                        v.status,
                        v.reason(),
                        v.document
                    );
                }
            }
        }
        out
    }
}

fn short_digest(d: &str) -> String {
    match d.strip_prefix("sha256:") {
        Some(hex) if hex.len() > 12 => format!("sha256:{}", &hex[..12]),
        _ => d.to_string(),
    }
}

fn package_label(f: &Finding) -> String {
    let mut names: Vec<&str> = f.packages.iter().map(|p| p.name.as_str()).collect();
    names.dedup();
    let names = names.join(",");
    if names == f.source {
        names
    } else {
        format!("{names} ({})", f.source)
    }
}

/// The JSON document of `--json`.
pub fn to_json(reports: &[Report]) -> Value {
    json!({ "images": reports })
}

fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        _ => "note",
    }
}

/// GitHub code scanning reads `security-severity` (a CVSS-like number) to rank alerts.
fn security_severity(s: Severity) -> Option<&'static str> {
    match s {
        Severity::Critical => Some("9.5"),
        Severity::High => Some("8.0"),
        Severity::Medium => Some("5.5"),
        Severity::Low => Some("2.0"),
        Severity::Negligible => Some("0.1"),
        Severity::Unknown => None,
    }
}

/// A SARIF 2.1.0 log with one run per image; `location` is the scanned file or layout as given.
pub fn to_sarif(reports: &[Report], location: &str) -> Value {
    let runs: Vec<Value> = reports
        .iter()
        .map(|r| {
            let mut rules: BTreeMap<&str, (usize, &Finding)> = BTreeMap::new();
            for f in &r.findings {
                rules.entry(f.finding.id.as_str()).or_insert((0, &f.finding));
            }
            for (i, v) in rules.values_mut().enumerate() {
                v.0 = i;
            }
            let rule_values: Vec<Value> = rules
                .iter()
                .map(|(id, (_, f))| {
                    let mut props = json!({ "tags": ["security", "vulnerability", f.severity.as_str()] });
                    if let Some(s) = security_severity(f.severity) {
                        props["security-severity"] = json!(s);
                    }
                    let text = if f.description.is_empty() {
                        format!("{id} in the Debian source package {}", f.source)
                    } else {
                        f.description.clone()
                    };
                    json!({
                        "id": id,
                        "name": id,
                        "shortDescription": { "text": format!("{id} ({})", f.severity) },
                        "fullDescription": { "text": text },
                        "help": { "text": format!("{id}: {text}") },
                        "defaultConfiguration": { "level": sarif_level(f.severity) },
                        "properties": props,
                    })
                })
                .collect();
            let results: Vec<Value> = r
                .findings
                .iter()
                .map(|f| {
                    let fin = &f.finding;
                    let fix = match (&fin.fixed_version, fin.state) {
                        (Some(v), FindingState::FixAvailable) => format!("fixed in {v}"),
                        (_, FindingState::EndOfLife) => "end-of-life: no fix will come".into(),
                        _ => "no fix yet".into(),
                    };
                    let mut message = format!(
                        "{} in {} {} (image {} {}): {}",
                        fin.id,
                        package_label(fin),
                        fin.installed,
                        r.image,
                        r.architecture,
                        fix
                    );
                    if let Some(u) = &f.update {
                        let _ = write!(message, "; run `{u}`");
                    }
                    let fingerprint = blake3::hash(
                        format!("{}\0{}\0{}\0{}", r.image, r.architecture, fin.id, fin.source)
                            .as_bytes(),
                    )
                    .to_hex()[..32]
                        .to_string();
                    let mut result = json!({
                        "ruleId": fin.id,
                        "ruleIndex": rules.get(fin.id.as_str()).map(|v| v.0).unwrap_or(0),
                        "level": sarif_level(fin.severity),
                        "message": { "text": message },
                        "locations": [{
                            "physicalLocation": { "artifactLocation": { "uri": location } },
                            "logicalLocations": fin.packages.iter().map(|p| json!({
                                "name": p.name,
                                "fullyQualifiedName": format!("{}:{}@{}", p.name, p.architecture, p.version),
                                "kind": "package",
                            })).collect::<Vec<_>>(),
                        }],
                        "partialFingerprints": { "himgFinding/v1": fingerprint },
                        "properties": {
                            "severity": fin.severity.as_str(),
                            "state": fin.state.as_str(),
                            "source": fin.source,
                            "installedVersion": fin.installed,
                            "fixedVersion": fin.fixed_version,
                            "release": fin.release,
                        },
                    });
                    if let Some(v) = &f.vex
                        && f.suppressed
                    {
                        result["suppressions"] = json!([{
                            "kind": "external",
                            "status": "accepted",
                            "justification": format!("OpenVEX {}: {} ({})", v.status, v.reason(), v.document),
                        }]);
                    }
                    result
                })
                .collect();
            json!({
                "tool": { "driver": {
                    "name": "himg",
                    "version": env!("CARGO_PKG_VERSION"),
                    "semanticVersion": env!("CARGO_PKG_VERSION"),
                    "rules": rule_values,
                }},
                "automationDetails": { "id": format!("himg-scan/{}/{}/", r.image, r.architecture) },
                "results": results,
                "properties": {
                    "image": r.image,
                    "digest": r.digest,
                    "release": r.release,
                    "database": r.database,
                },
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": runs,
    })
}
