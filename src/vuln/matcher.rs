//! Matching installed packages against advisories: by source package and source version, with dpkg's
//! version ordering, in one release.
//!
//! Rules (the book's scan chapter explains why):
//! - A binary package is matched through its source package (`Source:` name and version); a binNMU
//!   (`1.2-3+b1` built from source `1.2-3`) is therefore compared as `1.2-3`.
//! - Tracker `fixed_version` `0` means the release was never affected: no finding. `resolved` with a
//!   fixed version: a finding while the installed source version is lower. `open` and `undetermined`
//!   without a fixed version: a finding with no fix yet. Urgency `end-of-life`: a finding in its own
//!   state, as the release no longer receives security support for the package.
//! - OSV: the `ECOSYSTEM` range events are walked in version order (introduced / fixed /
//!   last_affected / limit) as the OSV specification says; explicit `versions` also match.
//! - When the tracker has an advisory for an id, OSV records about that id (or aliasing it) for the
//!   same package and release are not used: the tracker is Debian's own, most current verdict.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::import::{Event, Rule, TRACKER_SOURCE};
use super::{Advisory, Severity, VulnError};
use crate::debian::version::DebVersion;

/// One installed binary package, as matching needs it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PackageRef {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub source: String,
    pub source_version: String,
}

impl From<&crate::image::InstalledPackage> for PackageRef {
    fn from(p: &crate::image::InstalledPackage) -> Self {
        PackageRef {
            name: p.name.clone(),
            version: p.version.clone(),
            architecture: p.architecture.clone(),
            source: p.source.clone(),
            source_version: p.source_version.clone(),
        }
    }
}

impl From<&crate::debian::lockfile::LockedPackage> for PackageRef {
    fn from(p: &crate::debian::lockfile::LockedPackage) -> Self {
        PackageRef {
            name: p.name.clone(),
            version: p.version.clone(),
            architecture: p.architecture.clone(),
            source: p.source.clone(),
            source_version: p.source_version.clone(),
        }
    }
}

impl PackageRef {
    /// The source version to compare: `source_version`, with a binNMU suffix (`+bN`) removed when
    /// the recorded source version is just the binary version (a dpkg database without
    /// `Source: name (version)`).
    pub fn effective_source_version(&self) -> String {
        if self.source_version == self.version
            && let Some((base, n)) = self.version.rsplit_once("+b")
            && !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit())
        {
            return base.to_string();
        }
        self.source_version.clone()
    }
}

/// How a finding can be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingState {
    /// A fixed version exists in the release: `himg update` brings it in.
    FixAvailable,
    /// Affected; Debian has no fix yet (tracker `open`/`undetermined`, OSV without `fixed`).
    NoFixYet,
    /// The release no longer receives security support for this package (tracker urgency
    /// `end-of-life`): no fix will come; move to a newer release.
    EndOfLife,
}

impl FindingState {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingState::FixAvailable => "fix-available",
            FindingState::NoFixYet => "no-fix-yet",
            FindingState::EndOfLife => "end-of-life",
        }
    }
}

/// One vulnerability of one source package, with every binary package built from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub id: String,
    pub aliases: Vec<String>,
    pub release: String,
    /// Source package name.
    pub source: String,
    /// The installed source version that was compared.
    pub installed: String,
    /// The binary packages built from this source that the image installs.
    pub packages: Vec<PackageRef>,
    /// The first version with the fix, when there is one.
    pub fixed_version: Option<String>,
    pub state: FindingState,
    pub severity: Severity,
    /// The tracker urgency or OSV urgency as written.
    pub urgency: String,
    pub description: String,
    /// The database source that decided (`debian-tracker`, `osv:Debian:12`).
    pub data_source: String,
}

/// The outcome of matching: findings sorted by severity (highest first), id, source package.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Matched {
    pub findings: Vec<Finding>,
    /// Packages or advisories that could not be compared (an unparsable version).
    pub warnings: Vec<String>,
}

/// What one advisory says about one installed version.
enum Verdict {
    NotAffected,
    Affected {
        fixed: Option<String>,
        state: FindingState,
    },
}

fn parse(v: &str) -> Option<DebVersion> {
    v.parse().ok()
}

fn tracker_verdict(
    status: &str,
    fixed: Option<&str>,
    urgency: &str,
    installed: &DebVersion,
) -> Result<Verdict, String> {
    if fixed == Some("0") {
        return Ok(Verdict::NotAffected);
    }
    let eol = urgency.trim() == "end-of-life";
    if let Some(f) = fixed {
        let fv = parse(f).ok_or_else(|| format!("fixed version `{f}` does not parse"))?;
        if installed >= &fv {
            return Ok(Verdict::NotAffected);
        }
        let state = if eol {
            FindingState::EndOfLife
        } else {
            FindingState::FixAvailable
        };
        return Ok(Verdict::Affected {
            fixed: Some(f.to_string()),
            state,
        });
    }
    if status == "resolved" {
        // Resolved without a version: Debian marks the issue as not applying.
        return Ok(Verdict::NotAffected);
    }
    let state = if eol {
        FindingState::EndOfLife
    } else {
        FindingState::NoFixYet
    };
    Ok(Verdict::Affected { fixed: None, state })
}

fn event_version(e: &Event) -> &str {
    match e {
        Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
    }
}

fn osv_verdict(
    ranges: &[Vec<Event>],
    versions: &[String],
    installed: &DebVersion,
) -> Result<Verdict, String> {
    let mut affected = versions
        .iter()
        .any(|v| parse(v).is_some_and(|v| &v == installed));
    let mut fixed_after: Option<(DebVersion, String)> = None;
    for range in ranges {
        // Sort by version; `introduced: 0` is the lowest of all.
        let mut events: Vec<(Option<DebVersion>, &Event)> = Vec::new();
        for e in range {
            let v = event_version(e);
            if matches!(e, Event::Introduced(_)) && v == "0" {
                events.push((None, e));
                continue;
            }
            let parsed = parse(v).ok_or_else(|| format!("range version `{v}` does not parse"))?;
            events.push((Some(parsed), e));
        }
        events.sort_by(|a, b| match (&a.0, &b.0) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Less,
            (Some(_), None) => std::cmp::Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(y),
        });
        let mut vulnerable = false;
        for (v, e) in &events {
            match e {
                Event::Introduced(_) => {
                    if v.as_ref().is_none_or(|v| installed >= v) {
                        vulnerable = true;
                    }
                }
                Event::Fixed(raw) => {
                    if let Some(v) = v {
                        if installed >= v {
                            vulnerable = false;
                        } else if vulnerable && fixed_after.as_ref().is_none_or(|(f, _)| v < f) {
                            fixed_after = Some((v.clone(), raw.clone()));
                        }
                    }
                }
                Event::LastAffected(_) | Event::Limit(_) => {
                    let below = match e {
                        Event::LastAffected(_) => v.as_ref().is_some_and(|v| installed > v),
                        _ => v.as_ref().is_some_and(|v| installed >= v),
                    };
                    if below {
                        vulnerable = false;
                    }
                }
            }
        }
        affected |= vulnerable;
    }
    if !affected {
        return Ok(Verdict::NotAffected);
    }
    Ok(match fixed_after {
        Some((_, raw)) => Verdict::Affected {
            fixed: Some(raw),
            state: FindingState::FixAvailable,
        },
        None => Verdict::Affected {
            fixed: None,
            state: FindingState::NoFixYet,
        },
    })
}

/// Matches `packages` in `release`, looking advisories up by source package with `lookup`.
pub fn match_packages(
    packages: &[PackageRef],
    release: &str,
    mut lookup: impl FnMut(&str) -> Result<Vec<Advisory>, VulnError>,
) -> Result<Matched, VulnError> {
    // Group binaries by (source, effective source version).
    let mut by_source: BTreeMap<(String, String), Vec<PackageRef>> = BTreeMap::new();
    for p in packages {
        by_source
            .entry((p.source.clone(), p.effective_source_version()))
            .or_default()
            .push(p.clone());
    }
    let mut out = Matched::default();
    let mut cache: BTreeMap<String, Vec<Advisory>> = BTreeMap::new();
    for ((source, version), mut binaries) in by_source {
        binaries.sort();
        let Some(installed) = parse(&version) else {
            out.warnings.push(format!(
                "source package `{source}` has version `{version}`, which does not parse; not checked"
            ));
            continue;
        };
        if !cache.contains_key(&source) {
            cache.insert(source.clone(), lookup(&source)?);
        }
        let advisories = cache.get(&source).map(Vec::as_slice).unwrap_or_default();
        let tracker_ids: BTreeSet<&str> = advisories
            .iter()
            .filter(|a| a.source == TRACKER_SOURCE)
            .map(|a| a.id.as_str())
            .collect();
        let all_ids: BTreeSet<&str> = advisories.iter().map(|a| a.id.as_str()).collect();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for a in advisories {
            if a.release != release || a.package != source {
                continue;
            }
            let verdict = match &a.rule {
                Rule::Tracker { status, fixed } => {
                    tracker_verdict(status, fixed.as_deref(), &a.urgency, &installed)
                }
                Rule::Osv { ranges, versions } => {
                    let shadowed = tracker_ids.contains(a.id.as_str())
                        || a.aliases.iter().any(|x| {
                            tracker_ids.contains(x.as_str())
                                || (all_ids.contains(x.as_str()) && x != &a.id)
                        });
                    if shadowed {
                        continue;
                    }
                    osv_verdict(ranges, versions, &installed)
                }
            };
            let (fixed, state) = match verdict {
                Ok(Verdict::NotAffected) => continue,
                Ok(Verdict::Affected { fixed, state }) => (fixed, state),
                Err(why) => {
                    out.warnings.push(format!(
                        "{} ({}) for `{source}`: {why}; skipped",
                        a.id, a.source
                    ));
                    continue;
                }
            };
            if !seen.insert(a.id.clone()) {
                continue;
            }
            out.findings.push(Finding {
                id: a.id.clone(),
                aliases: a.aliases.clone(),
                release: release.to_string(),
                source: source.clone(),
                installed: version.clone(),
                packages: binaries.clone(),
                fixed_version: fixed,
                state,
                severity: a.severity,
                urgency: a.urgency.clone(),
                description: a.description.clone(),
                data_source: a.source.clone(),
            });
        }
    }
    out.findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.source.cmp(&b.source))
            .then_with(|| a.installed.cmp(&b.installed))
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vuln::import::import_bytes;

    fn pkg(name: &str, version: &str, source: &str, source_version: &str) -> PackageRef {
        PackageRef {
            name: name.into(),
            version: version.into(),
            architecture: "amd64".into(),
            source: source.into(),
            source_version: source_version.into(),
        }
    }

    fn run(data: &[u8], packages: &[PackageRef], release: &str) -> Matched {
        let imported = import_bytes("x", data).unwrap();
        let all: Vec<Advisory> = imported.sources.into_values().flatten().collect();
        match_packages(packages, release, |s| {
            Ok(all.iter().filter(|a| a.package == s).cloned().collect())
        })
        .unwrap()
    }

    #[test]
    fn tracker_statuses() {
        let data = br#"{
          "a": {"CVE-1": {"releases": {"trixie": {"status": "resolved", "fixed_version": "1.2-4", "urgency": "high"}}},
                "CVE-2": {"releases": {"trixie": {"status": "resolved", "fixed_version": "0", "urgency": "high"}}},
                "CVE-3": {"releases": {"trixie": {"status": "open", "urgency": "unimportant"}}},
                "CVE-4": {"releases": {"trixie": {"status": "open", "urgency": "end-of-life"}}},
                "CVE-5": {"releases": {"trixie": {"status": "resolved", "fixed_version": "1.2-3", "urgency": "low"}}},
                "CVE-6": {"releases": {"bookworm": {"status": "open", "urgency": "low"}}}}}"#;
        let m = run(data, &[pkg("liba1", "1.2-3+b1", "a", "1.2-3")], "trixie");
        let got: Vec<(&str, FindingState, Severity)> = m
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.state, f.severity))
            .collect();
        assert_eq!(
            got,
            vec![
                ("CVE-1", FindingState::FixAvailable, Severity::High),
                ("CVE-3", FindingState::NoFixYet, Severity::Negligible),
                ("CVE-4", FindingState::EndOfLife, Severity::Unknown),
            ]
        );
        assert_eq!(m.findings[0].installed, "1.2-3");
        assert_eq!(m.findings[0].packages[0].version, "1.2-3+b1");
    }

    #[test]
    fn binnmu_without_source_version_and_epochs() {
        assert_eq!(
            pkg("x", "1.2-3+b1", "x", "1.2-3+b1").effective_source_version(),
            "1.2-3"
        );
        let data = br#"{"e": {"CVE-7": {"releases": {"trixie": {"status": "resolved", "fixed_version": "1:2.0-1", "urgency": "medium"}}}}}"#;
        // 3.0-1 without epoch is lower than 1:2.0-1.
        let m = run(data, &[pkg("e", "3.0-1", "e", "3.0-1")], "trixie");
        assert_eq!(m.findings.len(), 1);
        let m = run(data, &[pkg("e", "1:2.0-1", "e", "1:2.0-1")], "trixie");
        assert!(m.findings.is_empty());
    }

    #[test]
    fn osv_ranges() {
        let data = br#"[
          {"id": "DEBIAN-CVE-10", "affected": [{"package": {"ecosystem": "Debian:13", "name": "o"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0-1"}]}]}]},
          {"id": "DEBIAN-CVE-11", "affected": [{"package": {"ecosystem": "Debian:13", "name": "o"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.5"}, {"last_affected": "1.8"}]}]}]},
          {"id": "DEBIAN-CVE-12", "affected": [{"package": {"ecosystem": "Debian:13", "name": "o"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]},
          {"id": "DSA-1", "aliases": ["CVE-12"], "affected": [{"package": {"ecosystem": "Debian:13", "name": "o"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9"}]}]}]}
        ]"#;
        let m = run(data, &[pkg("o", "1.9-1", "o", "1.9-1")], "trixie");
        let got: Vec<(&str, Option<&str>)> = m
            .findings
            .iter()
            .map(|f| (f.id.as_str(), f.fixed_version.as_deref()))
            .collect();
        assert_eq!(got, vec![("CVE-10", Some("2.0-1")), ("CVE-12", None)]);
    }
}
