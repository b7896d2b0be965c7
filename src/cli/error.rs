//! The CLI's error type: every layer's error, its exit code, and a hint for the user.

use himg_store::StoreError;

use crate::load::LoadError;
use crate::oci::OciError;
use crate::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Oci(#[from] OciError),
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
    #[error("no image named `{name}` in `{file}`")]
    NoSuchImage {
        name: String,
        file: String,
        available: Vec<String>,
    },
    #[error("`{file}` declares no image")]
    NoImages { file: String },
    #[error("the lock file `{lock}` is {} for image `{image}`", if *missing { "missing an entry" } else { "stale" })]
    StaleLock {
        image: String,
        lock: String,
        missing: bool,
    },
    #[error(transparent)]
    Debian(#[from] crate::debian::DebianError),
    #[error(transparent)]
    Lock(#[from] crate::debian::lockfile::LockError),
    #[error(transparent)]
    Why(#[from] crate::debian::why::WhyError),
    #[error(transparent)]
    Fetch(#[from] crate::debian::fetch::FetchError),
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Base(#[from] crate::registry::base::BaseError),
    #[error("{0}")]
    Layout(String),
    #[error(transparent)]
    Test(#[from] crate::testing::TestError),
    #[error("{failed} of {total} tests failed")]
    TestsFailed { failed: usize, total: usize },
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("`{target}` holds {found} images matching {wanted}, expected exactly one")]
    ImageSelect {
        target: String,
        wanted: String,
        found: usize,
        available: Vec<String>,
    },
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error("{0}")]
    CacheConfig(String),
    #[error("policy violated by {}", images.join(", "))]
    PolicyViolation { images: Vec<String> },
    #[error(transparent)]
    Vuln(#[from] crate::vuln::VulnError),
    #[error("the vulnerability database `{path}` holds no advisories")]
    EmptyVulnDb { path: std::path::PathBuf },
    #[error("cannot tell the Debian release of image `{image}`")]
    UnknownRelease { image: String },
    #[error(transparent)]
    Promote(#[from] crate::promote::PromoteError),
    #[error(transparent)]
    Provenance(#[from] crate::provenance::ProvenanceError),
    #[error("cannot access `{path}`")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl CliError {
    /// The documented exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Load(LoadError::Language(_)) => 1,
            CliError::Load(_) => 1,
            CliError::NoSuchImage { .. } | CliError::NoImages { .. } => 1,
            CliError::StaleLock { .. } => 1,
            CliError::Why(
                crate::debian::why::WhyError::NotInImage { .. }
                | crate::debian::why::WhyError::NoPackages { .. }
                | crate::debian::why::WhyError::NoArchitecture { .. },
            ) => 1,
            CliError::TestsFailed { .. } => 6,
            CliError::ImageSelect { .. } => 1,
            CliError::PolicyViolation { .. } => 5,
            CliError::EmptyVulnDb { .. } | CliError::UnknownRelease { .. } => 1,
            CliError::Vuln(
                crate::vuln::VulnError::Format { .. } | crate::vuln::VulnError::Vex { .. },
            ) => 1,
            CliError::Promote(
                crate::promote::PromoteError::MissingStage { .. }
                | crate::promote::PromoteError::Refused { .. },
            ) => 12,
            CliError::Promote(crate::promote::PromoteError::Vulnerable { .. }) => 11,
            CliError::Promote(
                crate::promote::PromoteError::Unevaluable { .. }
                | crate::promote::PromoteError::Stage(_),
            ) => 1,
            CliError::Provenance(e) if e.is_rejection() => 13,
            CliError::Store(StoreError::IncompatibleVersion { .. }) => 4,
            CliError::Plan(PlanError::Store(StoreError::IncompatibleVersion { .. })) => 4,
            _ => 3,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        if names_corrupt_object(self) {
            return Some(
                "a store object is damaged: `himg store verify --repair` removes it and every output built from it; the next build rebuilds them"
                    .into(),
            );
        }
        match self {
            CliError::NoSuchImage { available, .. } => Some(format!(
                "images in this file: {}",
                available
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            CliError::Why(crate::debian::why::WhyError::NotInImage { .. }) => Some(
                "the image's lock lists what it installs (`FILE.himg.lock`, under `architectures`) and what its exclusions dropped (`dropped`)".into(),
            ),
            CliError::StaleLock { lock, .. } => Some(format!(
                "run `himg lock` to resolve the packages again and review the change to `{lock}`"
            )),
            CliError::ImageSelect { available, .. } => Some(format!(
                "choose with --image NAME and --arch ARCH; it holds: {}",
                available.join(", ")
            )),
            CliError::PolicyViolation { .. } => Some(
                "fix each file named above, or add a `waive \"RULE\" { path = …, reason = …, until = … }` to the image's `policy`".to_string(),
            ),
            CliError::EmptyVulnDb { .. } => Some(
                "import advisories first: `himg vulndb import debian-security-tracker.json` or an OSV zip"
                    .into(),
            ),
            CliError::UnknownRelease { .. } => Some(
                "the image has no lock with a suite codename and no /etc/os-release; pass `--release trixie`"
                    .into(),
            ),
            CliError::Promote(crate::promote::PromoteError::MissingStage { stage, .. }) => Some(format!(
                "promote the same digest to `{stage}` first (`himg promote … --stage {stage}`); nothing was pushed"
            )),
            CliError::Provenance(crate::provenance::ProvenanceError::Signature(_)) => Some(
                "trust the public key that signs provenance: --trusted-key NAME:base64 (`himg key generate` printed it)".into(),
            ),
            CliError::Provenance(crate::provenance::ProvenanceError::Missing { .. }) => Some(
                "attach it with `himg push FILE.himg REF --provenance`".into(),
            ),
            CliError::Promote(crate::promote::PromoteError::Refused { .. }) => Some(
                "trust the public key that signs promotions: --trusted-key NAME:base64 (`himg key generate` printed it) or `[promote] trusted-keys` in the config file; nothing was pushed".into(),
            ),
            CliError::Promote(crate::promote::PromoteError::Unevaluable { .. }) => Some(
                "a gate that cannot be evaluated fails; for --fail-on import advisories first (`himg vulndb import …`); nothing was pushed".into(),
            ),
            CliError::Promote(crate::promote::PromoteError::Vulnerable { .. }) => Some(
                "update the packages (`himg update`) and promote the rebuilt image; nothing was pushed".into(),
            ),
            CliError::NoImages { .. } => {
                Some("declare one with `image \"name\" { ... }`".to_string())
            }
            CliError::Plan(PlanError::SourceChanged { .. }) => {
                Some("a file changed during the build; nothing was recorded for it".into())
            }
            CliError::Base(_) => Some(
                "registry bases are pulled once into the store (credentials as for `himg pull`); a registry on 127.0.0.1 or localhost is spoken to over http".into(),
            ),
            CliError::Plan(PlanError::LayerBudget { .. }) => {
                Some("raise `max_layers`, or group content into fewer `layer` blocks".to_string())
            }
            CliError::Store(StoreError::IncompatibleVersion { .. }) => Some(
                "this store was written by a newer himg; use that version or another --store"
                    .to_string(),
            ),
            CliError::Cache(crate::cache::CacheError::Denied { .. }) => Some(
                "pass a token with access to this namespace: --cache-token TOKEN or $HIMG_CACHE_TOKEN"
                    .into(),
            ),
            CliError::Plan(PlanError::Store(_)) | CliError::Store(_) => {
                Some("`himg store verify` checks the store and names any corrupt entry".into())
            }
            CliError::TestsFailed { .. } => Some(
                "each failure above shows what was expected and what the image gave; `himg run FILE -- sh` opens a shell in the same sandbox when the image has one".into(),
            ),
            CliError::Plan(PlanError::Derivation { name, .. })
                if name.ends_with(" scan") || name.contains(" analysis ") =>
            {
                Some(
                    "the image's layers were built but could not be read back for its SBOMs and policy facts; `--no-sbom --no-policy` builds without that step"
                        .into(),
                )
            }
            _ => None,
        }
    }
}

/// Whether a damaged store object ([`StoreError::Corrupt`]) is somewhere in `err`'s chain, also
/// inside an I/O error (a checked reader reports it as one).
fn names_corrupt_object(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if matches!(
            e.downcast_ref::<StoreError>(),
            Some(StoreError::Corrupt { .. })
        ) {
            return true;
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            && names_corrupt_object(inner)
        {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_analysis_suggests_building_without_it() {
        let failed = |name: &str| {
            CliError::Plan(PlanError::Derivation {
                name: name.into(),
                source: Box::new(PlanError::BadEpoch("x".into())),
            })
        };
        for name in ["app analysis amd64", "app/l1 scan"] {
            assert!(
                failed(name)
                    .hint()
                    .unwrap_or_default()
                    .contains("--no-sbom --no-policy")
            );
        }
        assert_eq!(failed("app/l1").hint(), None);
    }
}
