//! What policies need to know about one image, gathered once: the violations of every rule that
//! takes no parameter, the size of its files, and what a vulnerability scan needs (packages and
//! `os-release`). Facts are a pure function of the image, so they are computed with the image and
//! cached (and substituted from binary caches) like any derivation output; evaluating a policy over
//! them (rule selection, limits, waivers, today's date) is cheap and done on every run.

use serde::{Deserialize, Serialize};

use super::rules::{ALL, Rule, Subject, Violation};
use crate::image::ImageView;
use crate::sbom::FileContents;
use crate::vuln::matcher::PackageRef;

/// The gathered facts of one image (one architecture).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// Manifest digest `sha256:<hex>`.
    pub digest: String,
    pub architecture: String,
    /// Sum of the sizes of the image's regular files (the `max-size` rule).
    pub files_size: u64,
    /// Violations of every parameter-free rule, grouped by rule in [`ALL`] order, each group sorted.
    pub violations: Vec<Violation>,
    /// Installed Debian packages, sorted (for the `max-vulnerabilities` rule's scan).
    pub packages: Vec<PackageRef>,
    /// `/etc/os-release` (else `/usr/lib/os-release`), when the image has one.
    pub os_release: Option<String>,
}

/// Whether a rule's violations depend only on the image (not on a policy's limits or on a scan).
pub fn is_intrinsic(rule: Rule) -> bool {
    !matches!(rule, Rule::MaxSize | Rule::MaxVulnerabilities)
}

impl Facts {
    /// Checks every intrinsic rule on `view`, reading file contents through `contents`.
    pub fn gather(view: &ImageView, contents: &dyn FileContents) -> Facts {
        let subject = Subject::new(view, contents);
        let mut violations = Vec::new();
        for rule in ALL.iter().copied().filter(|r| is_intrinsic(*r)) {
            let mut found = subject.check(rule);
            found.sort();
            violations.extend(found);
        }
        let os_release = ["etc/os-release", "usr/lib/os-release"]
            .iter()
            .find_map(|p| crate::sbom::read_text(view, contents, p));
        Facts {
            digest: view.digest.clone(),
            architecture: view.config.architecture.clone(),
            files_size: view.files.values().map(|e| e.size).sum(),
            violations,
            packages: view.packages.iter().map(PackageRef::from).collect(),
            os_release,
        }
    }

    /// The recorded violations of one intrinsic rule, sorted.
    pub fn violations_of(&self, rule: Rule) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(move |v| v.rule == rule)
    }
}
