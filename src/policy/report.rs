//! Evaluating a policy: violations, waived violations, waivers in force and expired ones.

use serde_json::{Value, json};

use super::baseline::Policy;
use super::facts::Facts;
use super::rules::{self, Rule, Violation};
use super::waiver::{Date, Waiver};

/// A violation with its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub violation: Violation,
    /// The waiver in force that covers it.
    pub waived_by: Option<Waiver>,
}

/// The outcome of one policy on one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub image: String,
    pub architecture: String,
    pub policy: Policy,
    pub today: Date,
    pub findings: Vec<Finding>,
    /// Waivers whose date is today or later.
    pub in_force: Vec<Waiver>,
    /// Waivers whose date has passed: each one fails the policy.
    pub expired: Vec<Waiver>,
    /// Set when `max-vulnerabilities` is on but no scan results were given.
    pub vulnerabilities_unchecked: bool,
}

/// Evaluates `policy` on an image's gathered [`Facts`]. `vulnerabilities` is the hook for a
/// scanner's results as `(severity, count)` pairs; without it `max-vulnerabilities` is reported as
/// not evaluated.
pub fn evaluate(
    image: &str,
    facts: &Facts,
    policy: &Policy,
    vulnerabilities: Option<&[(String, u64)]>,
    today: Date,
) -> Report {
    let (expired, in_force): (Vec<Waiver>, Vec<Waiver>) = policy
        .waivers
        .iter()
        .cloned()
        .partition(|w| w.until < today);
    let mut findings = Vec::new();
    for rule in &policy.rules {
        let found: Vec<Violation> = match rule {
            Rule::MaxSize => rules::max_size(facts.files_size, policy.max_size)
                .into_iter()
                .collect(),
            Rule::MaxVulnerabilities => vulnerabilities
                .map(|v| rules::max_vulnerabilities(v, &policy.max_vulnerabilities))
                .unwrap_or_default(),
            intrinsic => facts.violations_of(*intrinsic).cloned().collect(),
        };
        for violation in found {
            let waived_by = in_force.iter().find(|w| w.covers(&violation)).cloned();
            findings.push(Finding {
                violation,
                waived_by,
            });
        }
    }
    Report {
        image: image.to_string(),
        architecture: facts.architecture.clone(),
        policy: policy.clone(),
        today,
        findings,
        in_force,
        expired,
        vulnerabilities_unchecked: policy.rules.contains(&Rule::MaxVulnerabilities)
            && vulnerabilities.is_none(),
    }
}

impl Report {
    /// Violations no waiver covers.
    pub fn violations(&self) -> impl Iterator<Item = &Violation> {
        self.findings
            .iter()
            .filter(|f| f.waived_by.is_none())
            .map(|f| &f.violation)
    }

    /// Whether the image passes: no unwaived violation and no expired waiver.
    pub fn passed(&self) -> bool {
        self.violations().next().is_none() && self.expired.is_empty()
    }

    /// Human lines, one per problem, each naming the file, the package and the fix or waiver.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for v in self.violations() {
            let mut line = format!("[{}] {}", v.rule.name(), v.message);
            if let Some(p) = &v.path {
                line.push_str(&format!(": {p}"));
            }
            if let Some(pkg) = &v.package {
                line.push_str(&format!(" (from package `{pkg}`)"));
            }
            let target = match (&v.path, &v.package) {
                (Some(p), _) => format!(" path = \"{p}\","),
                (None, Some(p)) => format!(" package = \"{p}\","),
                _ => String::new(),
            };
            line.push_str(&format!(
                "\n    fix: {}\n    or waive: waive \"{}\" {{{target} reason = \"…\", until = \"YYYY-MM-DD\" }}",
                v.rule.fix(),
                v.rule.name()
            ));
            out.push(line);
        }
        for w in &self.expired {
            out.push(format!(
                "[{}] the waiver for {} expired on {} (today is {}): renew its `until` after review, or remove it",
                w.rule.name(),
                w.target(),
                w.until,
                self.today
            ));
        }
        out
    }

    /// The JSON form (`himg audit --json`).
    pub fn to_json(&self) -> Value {
        let waiver = |w: &Waiver| {
            json!({
                "rule": w.rule.name(),
                "path": w.path,
                "package": w.package,
                "reason": w.reason,
                "until": w.until.to_string(),
            })
        };
        json!({
            "image": self.image,
            "architecture": self.architecture,
            "policy": self.policy.baseline,
            "declared": self.policy.declared,
            "rules": self.policy.rules.iter().map(|r| r.name()).collect::<Vec<_>>(),
            "today": self.today.to_string(),
            "passed": self.passed(),
            "violations": self.findings.iter().map(|f| json!({
                "rule": f.violation.rule.name(),
                "path": f.violation.path,
                "package": f.violation.package,
                "message": f.violation.message,
                "fix": f.violation.rule.fix(),
                "waived": f.waived_by.is_some(),
            })).collect::<Vec<_>>(),
            "waivers_in_force": self.in_force.iter().map(waiver).collect::<Vec<_>>(),
            "waivers_expired": self.expired.iter().map(waiver).collect::<Vec<_>>(),
            "vulnerabilities_unchecked": self.vulnerabilities_unchecked,
        })
    }
}
