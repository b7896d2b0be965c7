//! Waivers: an exception for one rule, on a path (or glob), a package or the whole image, with a
//! reason and the last day it holds. Dates are calendar days; "today" comes from the clock, or from
//! `HIMG_TODAY=YYYY-MM-DD` (tests, or re-checking a past report).

use globset::{Glob, GlobMatcher};
use himg_lang::WaiverSpec;

use super::rules::{Rule, Violation};

/// A calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date {
    pub year: u32,
    pub month: u32,
    pub day: u32,
}

impl Date {
    pub fn parse(text: &str) -> Option<Date> {
        let mut it = text.trim().splitn(3, '-');
        let year = it.next()?.parse().ok()?;
        let month: u32 = it.next()?.parse().ok()?;
        let day: u32 = it.next()?.parse().ok()?;
        ((1..=12).contains(&month) && (1..=31).contains(&day)).then_some(Date { year, month, day })
    }

    /// Today in UTC, or `HIMG_TODAY` when set.
    pub fn today() -> Result<Date, WaiverError> {
        if let Ok(text) = std::env::var("HIMG_TODAY") {
            return Date::parse(&text).ok_or(WaiverError::BadToday(text));
        }
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let text = crate::oci::config::epoch_to_rfc3339(secs);
        Date::parse(text.get(..10).unwrap_or("1970-01-01")).ok_or(WaiverError::BadToday(text))
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WaiverError {
    #[error("`HIMG_TODAY={0}` is not a date (YYYY-MM-DD)")]
    BadToday(String),
    #[error("waiver for `{rule}`: `{path}` is not a valid glob")]
    Glob {
        rule: String,
        path: String,
        #[source]
        source: globset::Error,
    },
    #[error("waiver names an unknown rule `{0}`")]
    UnknownRule(String),
    #[error("waiver for `{rule}`: `{until}` is not a date")]
    BadDate { rule: String, until: String },
}

/// A waiver ready to match.
#[derive(Debug, Clone)]
pub struct Waiver {
    pub rule: Rule,
    pub path: Option<String>,
    pub package: Option<String>,
    pub reason: String,
    pub until: Date,
    matcher: Option<GlobMatcher>,
}

impl PartialEq for Waiver {
    fn eq(&self, other: &Self) -> bool {
        (
            self.rule,
            &self.path,
            &self.package,
            &self.reason,
            self.until,
        ) == (
            other.rule,
            &other.path,
            &other.package,
            &other.reason,
            other.until,
        )
    }
}
impl Eq for Waiver {}

impl Waiver {
    pub fn from_spec(spec: &WaiverSpec) -> Result<Waiver, WaiverError> {
        let rule = Rule::from_name(&spec.rule)
            .ok_or_else(|| WaiverError::UnknownRule(spec.rule.clone()))?;
        let until = Date::parse(&spec.until).ok_or_else(|| WaiverError::BadDate {
            rule: spec.rule.clone(),
            until: spec.until.clone(),
        })?;
        let matcher = match &spec.path {
            Some(p) => Some(
                Glob::new(p)
                    .map_err(|source| WaiverError::Glob {
                        rule: spec.rule.clone(),
                        path: p.clone(),
                        source,
                    })?
                    .compile_matcher(),
            ),
            None => None,
        };
        Ok(Waiver {
            rule,
            path: spec.path.clone(),
            package: spec.package.clone(),
            reason: spec.reason.clone(),
            until,
            matcher,
        })
    }

    /// Whether this waiver covers the violation.
    pub fn covers(&self, v: &Violation) -> bool {
        if v.rule != self.rule {
            return false;
        }
        match (&self.matcher, &self.package) {
            (Some(m), _) => v.path.as_deref().is_some_and(|p| m.is_match(p)),
            (None, Some(pkg)) => v.package.as_deref() == Some(pkg.as_str()),
            (None, None) => true,
        }
    }

    /// `rule path|package|image`.
    pub fn target(&self) -> String {
        match (&self.path, &self.package) {
            (Some(p), _) => format!("path {p}"),
            (None, Some(p)) => format!("package {p}"),
            (None, None) => "the whole image".into(),
        }
    }
}
