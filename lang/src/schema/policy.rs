//! Hardening policy of an image: `policy = "strict"` or a `policy { … }` block with a baseline, extra
//! or disabled rules, limits and `waive "RULE" { … }` waivers. Policies are checked against the built
//! image by the composer; they are not image content.

use std::collections::BTreeMap;

use super::{Check, both_set};
use crate::codes;
use crate::diagnostic::Diag;
use crate::spec::*;
use crate::suggest::did_you_mean;
use crate::value::{Field, Record, V, Value};

/// Fields of a `policy` block.
const POLICY_FIELDS: &[&str] = &[
    "baseline",
    "enable",
    "disable",
    "max_size",
    "max_vulnerabilities",
    "waive",
];
/// Fields of a `waive` block.
const WAIVER_FIELDS: &[&str] = &["rule", "path", "package", "reason", "until"];

/// Whether `y-m-d` is a calendar date.
fn valid_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return false;
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return false;
    }
    let (Ok(y), Ok(m), Ok(d)) = (y.parse::<u32>(), m.parse::<u32>(), d.parse::<u32>()) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

/// `"200MiB"`, `"1GB"`, `"512"` → bytes.
fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    number.checked_mul(factor)
}

impl Check<'_> {
    /// The image's policy (`None` when neither it nor a base declares one).
    pub(super) fn policy(
        &mut self,
        field: Option<&Field>,
        base: Option<&ImageSpec>,
    ) -> Option<PolicySpec> {
        let Some(field) = field else {
            return base.and_then(|b| b.policy.clone());
        };
        match &field.value.kind {
            V::Str(s) => {
                let name = s.to_string();
                self.baseline_name(&name, field.value.span)
                    .then(|| PolicySpec {
                        baseline: name,
                        ..PolicySpec::default()
                    })
            }
            V::Record(record) => self.policy_block(record),
            V::List(list) => {
                if let Some(second) = list.items.get(1) {
                    self.push(
                        Diag::new(codes::DUPLICATE_KEY, second.span, "a second `policy` block")
                            .label("second declaration")
                            .secondary(list.items[0].span, "first declared here")
                            .help("an image has one policy: merge the blocks"),
                    );
                    return None;
                }
                match list.items.first().map(|v| &v.kind) {
                    Some(V::Record(record)) => self.policy_block(record),
                    _ => {
                        self.mismatch(
                            field,
                            "policy",
                            "a baseline name or a `policy { … }` block",
                            None,
                        );
                        None
                    }
                }
            }
            _ => {
                self.mismatch(
                    field,
                    "policy",
                    "a baseline name or a `policy { … }` block",
                    Some(
                        "write `policy = \"baseline\"` or `policy { baseline = \"strict\" }`"
                            .into(),
                    ),
                );
                None
            }
        }
    }

    fn baseline_name(&mut self, name: &str, span: crate::span::Span) -> bool {
        if POLICY_BASELINES.contains(&name) {
            return true;
        }
        let help = did_you_mean(name, POLICY_BASELINES.iter())
            .unwrap_or_else(|| "the baselines are `baseline`, `strict` and `none`".into());
        self.push(
            Diag::new(
                codes::UNKNOWN_RULE,
                span,
                format!("unknown policy baseline `{name}`"),
            )
            .label("not a baseline")
            .help(help),
        );
        false
    }

    fn rule_name(&mut self, field: &Field, what: &str) -> Option<String> {
        let name = self.string(field, what)?;
        if POLICY_RULES.contains(&name.as_str()) {
            return Some(name);
        }
        let help = did_you_mean(&name, POLICY_RULES.iter())
            .unwrap_or_else(|| "see the rules in the book's chapter on policies".into());
        self.push(
            Diag::new(
                codes::UNKNOWN_RULE,
                field.value.span,
                format!("unknown policy rule `{name}`"),
            )
            .label("not a rule")
            .help(help),
        );
        None
    }

    fn rule_list(&mut self, field: &Field, what: &str) -> Vec<String> {
        let Some(items) = self.list_of(field, what) else {
            return Vec::new();
        };
        let mut out: Vec<String> = items
            .into_iter()
            .filter_map(|value| {
                let f = Field {
                    key_span: field.key_span,
                    value,
                };
                self.rule_name(&f, &format!("each item of `{what}`"))
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn policy_block(&mut self, record: &Record) -> Option<PolicySpec> {
        self.unknown_fields(record, POLICY_FIELDS, "a `policy` block", false);
        let get = |key: &str| record.fields.get(key);
        let mut spec = PolicySpec::default();
        if let Some(f) = get("baseline")
            && let Some(name) = self.string(f, "baseline")
            && self.baseline_name(&name, f.value.span)
        {
            spec.baseline = name;
        }
        if let Some(f) = get("enable") {
            spec.enable = self.rule_list(f, "enable");
        }
        if let Some(f) = get("disable") {
            spec.disable = self.rule_list(f, "disable");
        }
        if let Some(f) = get("max_size") {
            spec.max_size = self.size(f);
        }
        if let Some(f) = get("max_vulnerabilities") {
            spec.max_vulnerabilities = self.severity_limits(f);
        }
        if let Some(f) = get("waive") {
            for value in self.records(f, "waive") {
                if let Some(w) = self.waiver(value) {
                    spec.waivers.push(w);
                }
            }
        }
        Some(spec)
    }

    fn size(&mut self, field: &Field) -> Option<u64> {
        match &field.value.kind {
            V::Int(n) if *n > 0 => u64::try_from(*n).ok(),
            V::Str(s) if parse_size(s).is_some_and(|n| n > 0) => parse_size(s),
            V::Int(_) | V::Str(_) => {
                self.push(
                    Diag::new(codes::BAD_SIZE, field.value.span, "invalid `max_size`")
                        .label("not a positive size")
                        .help("write a number of bytes or a number with a unit: `\"200MiB\"`, `\"1GB\"` (B, KB, MB, GB, KiB, MiB, GiB)"),
                );
                None
            }
            _ => {
                self.mismatch(
                    field,
                    "max_size",
                    "a size",
                    Some("write `max_size = \"200MiB\"`".into()),
                );
                None
            }
        }
    }

    fn severity_limits(&mut self, field: &Field) -> BTreeMap<String, u32> {
        let V::Record(record) = &field.value.kind else {
            self.mismatch(
                field,
                "max_vulnerabilities",
                "a record of counts",
                Some("write `max_vulnerabilities = { critical = 0, high = 5 }`".into()),
            );
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for (key, f) in &record.fields {
            if !SEVERITIES.contains(&key.as_str()) {
                let help = did_you_mean(key, SEVERITIES.iter()).unwrap_or_else(|| {
                    format!("the severities are {}", super::list_names(SEVERITIES))
                });
                self.push(
                    Diag::new(
                        codes::BAD_SEVERITY,
                        f.key_span,
                        format!("unknown severity `{key}`"),
                    )
                    .label("not a severity")
                    .help(help),
                );
                continue;
            }
            if let Some(n) = self.int_in(f, &format!("max_vulnerabilities.{key}"), 0, 1_000_000) {
                out.insert(key.clone(), n);
            }
        }
        out
    }

    fn waiver(&mut self, value: &Value) -> Option<WaiverSpec> {
        let V::Record(record) = &value.kind else {
            return None;
        };
        self.unknown_fields(record, WAIVER_FIELDS, "a `waive` block", false);
        let what = "a `waive` block";
        let rule = self
            .required(record, value.span, "rule", what)
            .and_then(|f| self.rule_name(f, "rule"));
        let reason = self
            .required(record, value.span, "reason", what)
            .and_then(|f| {
                let text = self.string(f, "reason")?;
                if text.trim().is_empty() {
                    self.push(
                        Diag::new(codes::BAD_WAIVER, f.value.span, "a waiver needs a reason")
                            .label("empty reason")
                            .help("say why the exception is acceptable, for the next reviewer"),
                    );
                    return None;
                }
                Some(text)
            });
        let until = self
            .required(record, value.span, "until", what)
            .and_then(|f| {
                let text = self.string(f, "until")?;
                if !valid_date(&text) {
                    self.push(
                        Diag::new(
                            codes::BAD_DATE,
                            f.value.span,
                            format!("`{text}` is not a date"),
                        )
                        .label("expected YYYY-MM-DD")
                        .help("write the expiry as a calendar date: `until = \"2027-03-01\"`"),
                    );
                    return None;
                }
                Some(text)
            });
        let path = record
            .fields
            .get("path")
            .and_then(|f| self.abs_path(f, "path"));
        let package = record
            .fields
            .get("package")
            .and_then(|f| self.string(f, "package"));
        if let (Some(p), Some(k)) = (record.fields.get("path"), record.fields.get("package")) {
            self.push(
                both_set(
                    codes::BAD_WAIVER,
                    p,
                    k,
                    "a waiver names both a `path` and a `package`",
                )
                .help("waive one path or one package per `waive` block"),
            );
            return None;
        }
        Some(WaiverSpec {
            rule: rule?,
            path,
            package,
            reason: reason?,
            until: until?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_sizes() {
        assert!(valid_date("2027-03-01"));
        assert!(valid_date("2028-02-29"));
        assert!(!valid_date("2027-02-29"));
        assert!(!valid_date("2027-13-01"));
        assert!(!valid_date("27-03-01"));
        assert_eq!(parse_size("200MiB"), Some(200 << 20));
        assert_eq!(parse_size("1GB"), Some(1_000_000_000));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("1.5GB"), None);
        assert_eq!(parse_size("5 parsecs"), None);
    }
}
