//! Baselines and the effective rule set of a policy.
//!
//! - `baseline`: non-root-user, no-setuid, no-world-writable, no-world-writable-dirs, no-temp-files,
//!   no-secrets, ca-bundle.
//! - `strict`: `baseline` plus no-shell, no-package-manager, no-compiler.
//! - `none`: only the rules a policy enables.
//!
//! `max-size` and `max-vulnerabilities` join when their limits are set.

use std::collections::{BTreeMap, BTreeSet};

use himg_lang::PolicySpec;

use super::rules::Rule;
use super::waiver::{Date, Waiver, WaiverError};

pub const BASELINE: &[Rule] = &[
    Rule::NonRootUser,
    Rule::NoSetuid,
    Rule::NoWorldWritable,
    Rule::NoWorldWritableDirs,
    Rule::NoTempFiles,
    Rule::NoSecrets,
    Rule::CaBundle,
];

pub const STRICT_EXTRA: &[Rule] = &[Rule::NoShell, Rule::NoPackageManager, Rule::NoCompiler];

/// A policy ready to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `baseline`, `strict` or `none`.
    pub baseline: String,
    /// Whether the image declared it (an undeclared policy only warns).
    pub declared: bool,
    pub rules: BTreeSet<Rule>,
    pub max_size: Option<u64>,
    pub max_vulnerabilities: BTreeMap<String, u32>,
    pub waivers: Vec<Waiver>,
}

/// The rules of a named baseline.
pub fn rules_of(baseline: &str) -> Option<BTreeSet<Rule>> {
    match baseline {
        "none" => Some(BTreeSet::new()),
        "baseline" => Some(BASELINE.iter().copied().collect()),
        "strict" => Some(BASELINE.iter().chain(STRICT_EXTRA).copied().collect()),
        _ => None,
    }
}

impl Policy {
    /// A named baseline without waivers (`himg audit --policy NAME`, or the default).
    pub fn named(baseline: &str, declared: bool) -> Option<Policy> {
        Some(Policy {
            baseline: baseline.to_string(),
            declared,
            rules: rules_of(baseline)?,
            max_size: None,
            max_vulnerabilities: BTreeMap::new(),
            waivers: Vec::new(),
        })
    }

    /// The policy an image declares, else `baseline` as an undeclared (warning-only) policy.
    pub fn from_spec(spec: Option<&PolicySpec>) -> Result<Policy, WaiverError> {
        let Some(spec) = spec else {
            return Ok(Policy::undeclared());
        };
        let mut rules = rules_of(&spec.baseline).unwrap_or_default();
        rules.extend(spec.enable.iter().filter_map(|n| Rule::from_name(n)));
        for n in &spec.disable {
            if let Some(r) = Rule::from_name(n) {
                rules.remove(&r);
            }
        }
        if spec.max_size.is_some() {
            rules.insert(Rule::MaxSize);
        }
        if !spec.max_vulnerabilities.is_empty() {
            rules.insert(Rule::MaxVulnerabilities);
        }
        let waivers = spec
            .waivers
            .iter()
            .map(Waiver::from_spec)
            .collect::<Result<_, _>>()?;
        Ok(Policy {
            baseline: spec.baseline.clone(),
            declared: true,
            rules,
            max_size: spec.max_size,
            max_vulnerabilities: spec.max_vulnerabilities.clone(),
            waivers,
        })
    }

    /// Waivers whose date has passed.
    pub fn expired(&self, today: Date) -> Vec<&Waiver> {
        self.waivers.iter().filter(|w| w.until < today).collect()
    }
}

impl Policy {
    /// What an image without `policy` is checked against: `baseline`, as warnings.
    pub fn undeclared() -> Policy {
        Policy {
            baseline: "baseline".into(),
            declared: false,
            rules: BASELINE.iter().copied().collect(),
            max_size: None,
            max_vulnerabilities: BTreeMap::new(),
            waivers: Vec::new(),
        }
    }
}
