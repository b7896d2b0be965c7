//! Parsing vulnerability data into [`Advisory`] rows: the Debian security tracker JSON and OSV records
//! (single files, JSON arrays, directories or zip archives) for the `Debian:N` ecosystems.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{Severity, VulnError, release};

/// The source name of every row from the Debian security tracker.
pub const TRACKER_SOURCE: &str = "debian-tracker";

/// One advisory about one source package in one release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Advisory {
    /// `debian-tracker`, or `osv:Debian:12` for OSV records of that ecosystem.
    pub source: String,
    /// The vulnerability id findings carry: a CVE id when the record is about one (`DEBIAN-CVE-…`
    /// records are reported under their CVE), else the record's own id (`DSA-…`, `TEMP-…`).
    pub id: String,
    /// Other names of the vulnerability (OSV `aliases`, `upstream`, the record id when renamed).
    pub aliases: Vec<String>,
    /// Release key (a codename, see [`release::normalize`]).
    pub release: String,
    /// Source package name.
    pub package: String,
    pub rule: Rule,
    pub severity: Severity,
    /// The tracker urgency as written (`unimportant`, `low*`, `end-of-life`), or OSV's
    /// `ecosystem_specific.urgency`; empty when there is none.
    pub urgency: String,
    pub description: String,
}

/// Which versions an advisory affects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Rule {
    /// Tracker: `status` (`resolved`, `open`, `undetermined`) and `fixed_version` (`0` = never affected).
    Tracker {
        status: String,
        fixed: Option<String>,
    },
    /// OSV: `ECOSYSTEM` ranges (events in the record's order) and explicit `versions`.
    Osv {
        ranges: Vec<Vec<Event>>,
        versions: Vec<String>,
    },
}

/// One OSV range event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

/// Everything one import produced, by source name.
#[derive(Debug, Default)]
pub struct Imported {
    /// Rows by source name (every source seen, even with zero rows, is replaced).
    pub sources: BTreeMap<String, Vec<Advisory>>,
    /// OSV records skipped because no `affected` entry is in a `Debian:N` ecosystem.
    pub skipped: usize,
}

impl Imported {
    fn add(&mut self, advisory: Advisory) {
        self.sources
            .entry(advisory.source.clone())
            .or_default()
            .push(advisory);
    }
}

// ------------------------------------------------------------------ entry points

/// Reads a file or directory: a directory or `.zip` of OSV records, or one JSON file that is either
/// the tracker document, one OSV record or an array of OSV records.
pub fn import_path(path: &Path) -> Result<Imported, VulnError> {
    let io = |source| VulnError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        return import_dir(path);
    }
    let bytes = std::fs::read(path).map_err(io)?;
    import_bytes(&path.display().to_string(), &bytes)
}

/// Parses downloaded or read bytes (`what` names them in errors): a zip archive of OSV records, or
/// one JSON document.
pub fn import_bytes(what: &str, bytes: &[u8]) -> Result<Imported, VulnError> {
    let mut out = Imported::default();
    if bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06") {
        import_zip(what, bytes, &mut out)?;
    } else {
        import_json(what, bytes, &mut out)?;
    }
    Ok(out)
}

fn import_dir(dir: &Path) -> Result<Imported, VulnError> {
    let mut out = Imported::default();
    let mut files: Vec<PathBuf> = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| VulnError::Io {
            path: dir.to_path_buf(),
            source: e.into(),
        })?;
        if entry.file_type().is_file() && entry.path().extension().is_some_and(|e| e == "json") {
            files.push(entry.into_path());
        }
    }
    for file in files {
        let bytes = std::fs::read(&file).map_err(|source| VulnError::Io {
            path: file.clone(),
            source,
        })?;
        let what = file.display().to_string();
        let value = parse_value(&what, &bytes)?;
        osv_value(&what, value, &mut out)?;
    }
    Ok(out)
}

fn import_zip(what: &str, bytes: &[u8], out: &mut Imported) -> Result<(), VulnError> {
    let zip_err = |source| VulnError::Zip {
        path: PathBuf::from(what),
        source,
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(zip_err)?;
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).map_err(zip_err)?;
        let name = file.name().map_err(zip_err)?.to_string();
        if !file.is_file() || !name.ends_with(".json") {
            continue;
        }
        let mut data = Vec::new();
        file.read_to_end(&mut data)
            .map_err(|source| VulnError::Io {
                path: PathBuf::from(format!("{what}!{name}")),
                source,
            })?;
        entries.push((name, data));
    }
    entries.sort();
    for (name, data) in entries {
        let entry = format!("{what}!{name}");
        let value = parse_value(&entry, &data)?;
        osv_value(&entry, value, out)?;
    }
    Ok(())
}

fn parse_value(what: &str, bytes: &[u8]) -> Result<serde_json::Value, VulnError> {
    serde_json::from_slice(bytes).map_err(|e| VulnError::Format {
        what: what.to_string(),
        message: e.to_string(),
    })
}

fn import_json(what: &str, bytes: &[u8], out: &mut Imported) -> Result<(), VulnError> {
    // The tracker document (tens of megabytes) is parsed straight into its typed form; OSV records
    // (an object with a string `id`, or an array of them) go through a `Value`.
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace()).copied();
    if first != Some(b'[') {
        match serde_json::from_slice::<TrackerDoc>(bytes) {
            Ok(doc) => return tracker_doc(doc, out),
            Err(tracker_err) => {
                let value = parse_value(what, bytes)?;
                if !value.get("id").is_some_and(|v| v.is_string()) {
                    return Err(VulnError::Format {
                        what: what.to_string(),
                        message: format!(
                            "neither an OSV record nor the Debian security tracker JSON: {tracker_err}"
                        ),
                    });
                }
                return osv_value(what, value, out);
            }
        }
    }
    let value = parse_value(what, bytes)?;
    osv_value(what, value, out)
}

// ------------------------------------------------------------------ Debian security tracker

#[derive(Deserialize)]
struct TrackerIssue {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    releases: BTreeMap<String, TrackerRelease>,
}

#[derive(Deserialize)]
struct TrackerRelease {
    #[serde(default)]
    status: String,
    #[serde(default)]
    fixed_version: Option<String>,
    #[serde(default)]
    urgency: String,
}

/// The tracker document: source package → issue id → issue.
type TrackerDoc = BTreeMap<String, BTreeMap<String, TrackerIssue>>;

fn tracker_doc(doc: TrackerDoc, out: &mut Imported) -> Result<(), VulnError> {
    out.sources.entry(TRACKER_SOURCE.to_string()).or_default();
    for (package, issues) in doc {
        for (id, issue) in issues {
            for (rel, r) in issue.releases {
                let Some(rel) = release::normalize(&rel) else {
                    continue;
                };
                out.add(Advisory {
                    source: TRACKER_SOURCE.to_string(),
                    id: id.clone(),
                    aliases: Vec::new(),
                    release: rel,
                    package: package.clone(),
                    rule: Rule::Tracker {
                        status: r.status,
                        fixed: r.fixed_version.filter(|v| !v.is_empty()),
                    },
                    severity: Severity::from_urgency(&r.urgency),
                    urgency: r.urgency,
                    description: issue.description.clone().unwrap_or_default(),
                });
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ OSV

#[derive(Deserialize)]
struct OsvRecord {
    id: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    upstream: Vec<String>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    details: Option<String>,
    #[serde(default)]
    severity: Vec<OsvSeverity>,
    #[serde(default)]
    affected: Vec<OsvAffected>,
    #[serde(default)]
    database_specific: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct OsvSeverity {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    score: String,
}

#[derive(Deserialize)]
struct OsvAffected {
    package: Option<OsvPackage>,
    #[serde(default)]
    ranges: Vec<OsvRange>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    ecosystem_specific: Option<serde_json::Value>,
    #[serde(default)]
    severity: Vec<OsvSeverity>,
}

#[derive(Deserialize)]
struct OsvPackage {
    #[serde(default)]
    ecosystem: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct OsvRange {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    events: Vec<BTreeMap<String, String>>,
}

fn osv_value(what: &str, value: serde_json::Value, out: &mut Imported) -> Result<(), VulnError> {
    if let serde_json::Value::Array(items) = value {
        for item in items {
            osv_value(what, item, out)?;
        }
        return Ok(());
    }
    let record: OsvRecord = serde_json::from_value(value).map_err(|e| VulnError::Format {
        what: what.to_string(),
        message: format!("not an OSV record: {e}"),
    })?;
    let mut used = false;
    for affected in &record.affected {
        let Some(pkg) = &affected.package else {
            continue;
        };
        // `Debian:12`; a bare `Debian` names no release and cannot be matched per release.
        let Some(number) = pkg.ecosystem.strip_prefix("Debian:") else {
            continue;
        };
        let Some(rel) = release::normalize(number) else {
            continue;
        };
        used = true;
        out.add(osv_advisory(
            &record,
            affected,
            &pkg.name,
            &pkg.ecosystem,
            rel,
        ));
    }
    if !used {
        out.skipped += 1;
    }
    Ok(())
}

fn osv_advisory(
    record: &OsvRecord,
    affected: &OsvAffected,
    package: &str,
    ecosystem: &str,
    rel: String,
) -> Advisory {
    let (id, mut aliases) = match record.id.strip_prefix("DEBIAN-") {
        Some(rest) if rest.starts_with("CVE-") => (rest.to_string(), vec![record.id.clone()]),
        _ => (record.id.clone(), Vec::new()),
    };
    aliases.extend(record.aliases.iter().cloned());
    aliases.extend(record.upstream.iter().cloned());
    aliases.retain(|a| *a != id);
    aliases.sort();
    aliases.dedup();
    let ranges = affected
        .ranges
        .iter()
        .filter(|r| r.kind == "ECOSYSTEM")
        .map(|r| {
            r.events
                .iter()
                .filter_map(|e| {
                    let (k, v) = e.iter().next()?;
                    let v = v.clone();
                    Some(match k.as_str() {
                        "introduced" => Event::Introduced(v),
                        "fixed" => Event::Fixed(v),
                        "last_affected" => Event::LastAffected(v),
                        "limit" => Event::Limit(v),
                        _ => return None,
                    })
                })
                .collect()
        })
        .collect();
    let urgency = affected
        .ecosystem_specific
        .as_ref()
        .and_then(|v| v.get("urgency"))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string();
    let severity = osv_severity(record, affected, &urgency);
    let description = record
        .summary
        .clone()
        .filter(|s| !s.is_empty())
        .or_else(|| record.details.clone())
        .unwrap_or_default();
    Advisory {
        source: format!("osv:{ecosystem}"),
        id,
        aliases,
        release: rel,
        package: package.to_string(),
        rule: Rule::Osv {
            ranges,
            versions: affected.versions.clone(),
        },
        severity,
        urgency,
        description,
    }
}

/// The highest of: the named `database_specific.severity`, numeric CVSS scores, the urgency.
fn osv_severity(record: &OsvRecord, affected: &OsvAffected, urgency: &str) -> Severity {
    let mut best = Severity::from_urgency(urgency);
    let named = record
        .database_specific
        .as_ref()
        .and_then(|v| v.get("severity"))
        .and_then(|v| v.as_str());
    if let Some(name) = named {
        best = best.max(Severity::from_name(name));
    }
    for s in record.severity.iter().chain(&affected.severity) {
        let sev = if let Ok(score) = s.score.trim().parse::<f64>() {
            Severity::from_cvss(score)
        } else if s.kind == "Ubuntu" || s.kind == "Debian" {
            Severity::from_name(&s.score)
        } else {
            // A CVSS vector: himg does not compute base scores; the named severity decides.
            Severity::Unknown
        };
        best = best.max(sev);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_document() {
        let doc = br#"{"openssl": {"CVE-2024-1": {"description": "bad", "releases": {
            "bookworm": {"status": "resolved", "fixed_version": "3.0.1-1", "urgency": "high"},
            "trixie": {"status": "open", "urgency": "unimportant"},
            "experimental": {"status": "open", "urgency": "low"}}}}}"#;
        let got = import_bytes("t.json", doc).unwrap();
        let rows = &got.sources[TRACKER_SOURCE];
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].release, "bookworm");
        assert_eq!(rows[0].severity, Severity::High);
        assert_eq!(rows[2].release, "trixie");
        assert_eq!(rows[2].severity, Severity::Negligible);
    }

    #[test]
    fn osv_record() {
        let doc = br#"{"id": "DEBIAN-CVE-2024-2", "upstream": ["CVE-2024-2"],
            "affected": [{"package": {"ecosystem": "Debian:12", "name": "zlib"},
              "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:1.2-3"}]}],
              "ecosystem_specific": {"urgency": "medium"}},
              {"package": {"ecosystem": "PyPI", "name": "x"}}]}"#;
        let got = import_bytes("o.json", doc).unwrap();
        let rows = &got.sources["osv:Debian:12"];
        assert_eq!(rows[0].id, "CVE-2024-2");
        assert_eq!(rows[0].aliases, vec!["DEBIAN-CVE-2024-2".to_string()]);
        assert_eq!(rows[0].severity, Severity::Medium);
        assert_eq!(
            rows[0].rule,
            Rule::Osv {
                ranges: vec![vec![
                    Event::Introduced("0".into()),
                    Event::Fixed("1:1.2-3".into())
                ]],
                versions: vec![]
            }
        );
    }
}
