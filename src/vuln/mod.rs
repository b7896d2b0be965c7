//! Vulnerability scanning: import advisories (Debian security tracker JSON, OSV) into a local SQLite
//! database, match an image's installed packages against them by source package and Debian version,
//! apply OpenVEX statements, and report as a table, JSON or SARIF.
//!
//! Matching follows what Trivy and Grype do for Debian: advisories name *source* packages, so a
//! binary package is matched through its `Source:` name and version, per Debian release.

pub mod cache;
pub mod db;
pub mod import;
pub mod matcher;
pub mod release;
pub mod report;
pub mod vex;

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use db::{DbStatus, SourceStatus, VulnDb};
pub use import::{Advisory, Imported};
pub use matcher::{Finding, FindingState, Matched, PackageRef, match_packages};
pub use report::{Report, SuppressedBy};
pub use vex::VexDocument;

/// Why vulnerability data could not be imported, stored or applied.
#[derive(Debug, thiserror::Error)]
pub enum VulnError {
    #[error("cannot read `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{what}` is not valid vulnerability data: {message}")]
    Format { what: String, message: String },
    #[error("cannot read the zip archive `{path}`")]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    #[error("the vulnerability database `{path}` failed")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the vulnerability database `{path}` has schema version {found}; this himg reads version {expected}"
    )]
    Schema {
        path: PathBuf,
        found: String,
        expected: u32,
    },
    #[error("the vulnerability database `{path}` is empty")]
    Empty { path: PathBuf },
    #[error("`{path}` is not a valid OpenVEX document: {message}")]
    Vex { path: PathBuf, message: String },
}

/// One severity scale for tracker urgencies and OSV severities, lowest first.
///
/// | scale        | Debian tracker urgency                      | OSV                                        |
/// |--------------|---------------------------------------------|--------------------------------------------|
/// | `unknown`    | `not yet assigned`, empty, `end-of-life`    | no severity, or one himg cannot read       |
/// | `negligible` | `unimportant`                               | `NEGLIGIBLE`, urgency `unimportant`        |
/// | `low`        | `low`, `low*`, `low**`                      | `LOW`, CVSS < 4.0                          |
/// | `medium`     | `medium` (and starred)                      | `MEDIUM`/`MODERATE`, CVSS 4.0–6.9          |
/// | `high`       | `high` (and starred)                        | `HIGH`/`IMPORTANT`, CVSS 7.0–8.9           |
/// | `critical`   | —                                           | `CRITICAL`, CVSS ≥ 9.0                     |
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    #[default]
    Unknown,
    Negligible,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// All values, lowest first.
    pub const ALL: [Severity; 6] = [
        Severity::Unknown,
        Severity::Negligible,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Negligible => "negligible",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// Parses the scale's own names (`high`), case-insensitively.
    pub fn parse(text: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
    }

    /// A Debian security tracker urgency.
    pub fn from_urgency(urgency: &str) -> Severity {
        let u = urgency.trim().trim_end_matches('*').to_ascii_lowercase();
        match u.as_str() {
            "unimportant" => Severity::Negligible,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            _ => Severity::Unknown,
        }
    }

    /// A named severity as OSV databases write it (`HIGH`, `MODERATE`, …), or a tracker urgency.
    pub fn from_name(name: &str) -> Severity {
        match name.trim().to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" | "important" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "negligible" => Severity::Negligible,
            other => Severity::from_urgency(other),
        }
    }

    /// A CVSS base score.
    pub fn from_cvss(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Unknown
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
