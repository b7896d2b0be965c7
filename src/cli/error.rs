//! What an operation's error means on the command line: its documented exit code and a hint for
//! the user (which names commands and flags, so it lives here, not in `ops`).

use himg_store::StoreError;

use crate::load::LoadError;
use crate::ops::Error;
use crate::plan::PlanError;

/// The documented exit code for this error.
pub fn exit_code(err: &Error) -> u8 {
    match err {
        Error::Load(LoadError::Language(_)) => 1,
        Error::Load(_) => 1,
        Error::NoSuchImage { .. } | Error::NoImages { .. } => 1,
        Error::KeyExists { .. } | Error::NoSuchKey { .. } | Error::TagNeedsOneImage { .. } => 1,
        Error::NoSuchBuild { .. } | Error::NoBuildLog { .. } => 1,
        Error::NotReproducible { .. } => 14,
        Error::StaleLock { .. } => 1,
        Error::Config(_) | Error::Base(crate::registry::base::BaseError::Config(_)) => 1,
        Error::Debian(crate::debian::DebianError::Mirror(m))
            if matches!(**m, crate::debian::mirror::MirrorError::Config(_)) =>
        {
            1
        }
        Error::Why(
            crate::debian::why::WhyError::NotInImage { .. }
            | crate::debian::why::WhyError::NoPackages { .. }
            | crate::debian::why::WhyError::NoArchitecture { .. },
        ) => 1,
        Error::TestsFailed { .. } => 6,
        Error::ImageSelect { .. } => 1,
        Error::PolicyViolation { .. } => 5,
        Error::EmptyVulnDb { .. } | Error::UnknownRelease { .. } => 1,
        Error::Vuln(crate::vuln::VulnError::Format { .. } | crate::vuln::VulnError::Vex { .. }) => {
            1
        }
        Error::Promote(
            crate::promote::PromoteError::MissingStage { .. }
            | crate::promote::PromoteError::Refused { .. },
        ) => 12,
        Error::Promote(crate::promote::PromoteError::Vulnerable { .. }) => 11,
        Error::Promote(
            crate::promote::PromoteError::Unevaluable { .. }
            | crate::promote::PromoteError::Stage(_),
        ) => 1,
        Error::Provenance(e) if e.is_rejection() => 13,
        Error::Store(StoreError::IncompatibleVersion { .. }) => 4,
        Error::Plan(PlanError::Store(StoreError::IncompatibleVersion { .. })) => 4,
        _ => 3,
    }
}

/// What the user can do about it.
pub fn hint(err: &Error) -> Option<String> {
    if names_corrupt_object(err) {
        return Some(
            "a store object is damaged: `himg store verify --repair` removes it and every output built from it; the next build rebuilds them"
                .into(),
        );
    }
    input_hint(err)
        .or_else(|| gate_hint(err))
        .or_else(|| registry_hint(err))
        .or_else(|| store_hint(err))
}

/// The hint of a registry's error (by its OCI error code) anywhere in `err`'s chain.
fn registry_hint(err: &Error) -> Option<String> {
    if let Error::Registry(r) = err {
        return r.hint();
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<crate::registry::RegistryError>() {
            return r.hint();
        }
        cur = e.source();
    }
    None
}

/// Hints for a wrong input: the file, its images, its lock.
fn input_hint(err: &Error) -> Option<String> {
    match err {
        Error::NoSuchImage {
            name, available, ..
        } => Some(no_such_image_hint(name, available)),
        Error::NoSuchKey { available, .. } => Some(if available.is_empty() {
            "there are no named keys yet: create one with `himg key generate NAME`".into()
        } else {
            format!(
                "keys there: {} (`himg key list` shows them)",
                available.join(", ")
            )
        }),
        Error::Why(crate::debian::why::WhyError::NotInImage { .. }) => Some(
            "the image's lock lists what it installs (`FILE.himg.lock`, under `architectures`) and what its exclusions dropped (`dropped`)".into(),
        ),
        Error::StaleLock { lock, .. } => Some(format!(
            "run `himg lock` to resolve the packages again and review the change to `{lock}`"
        )),
        Error::ImageSelect { available, .. } => Some(format!(
            "choose with --image NAME and --arch ARCH; it holds: {}",
            available.join(", ")
        )),
        Error::NoImages { .. } => {
            Some("declare one with `image \"name\" { ... }`".to_string())
        }
        Error::Plan(PlanError::SourceChanged { .. }) => {
            Some("a file changed during the build; nothing was recorded for it".into())
        }
        Error::Plan(PlanError::LayerBudget { .. }) => {
            Some("raise `max_layers`, or group content into fewer `layer` blocks".to_string())
        }
        _ => None,
    }
}

/// The images a file declares; for a value that looks like a reference (`nginx:1.0`), that
/// `--image` selects and `--tag` names.
fn no_such_image_hint(name: &str, available: &[String]) -> String {
    let list = available
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ");
    if name.contains(':') || name.contains('/') {
        format!(
            "--image selects an image the file declares, by name (images in this file: {list}); to name a build's output `{name}`, use `himg build … --tag {name}`"
        )
    } else {
        format!("images in this file: {list}")
    }
}

/// Hints for a gate that refused: policies, vulnerabilities, promotions, provenance, tests.
fn gate_hint(err: &Error) -> Option<String> {
    match err {
        Error::PolicyViolation { .. } => Some(
            "fix each file named above, or add a `waive \"RULE\" { path = …, reason = …, until = … }` to the image's `policy`".to_string(),
        ),
        Error::EmptyVulnDb { .. } => Some(
            "import advisories first: `himg vulndb import debian-security-tracker.json` or an OSV zip"
                .into(),
        ),
        Error::UnknownRelease { .. } => Some(
            "the image has no lock with a suite codename and no /etc/os-release; pass `--release trixie`"
                .into(),
        ),
        Error::Promote(crate::promote::PromoteError::MissingStage { stage, .. }) => Some(format!(
            "promote the same digest to `{stage}` first (`himg promote … --stage {stage}`); nothing was pushed"
        )),
        Error::Provenance(crate::provenance::ProvenanceError::Signature(_)) => Some(
            "trust the public key that signs provenance: --trusted-key NAME:base64 (`himg key generate` printed it)".into(),
        ),
        Error::Provenance(crate::provenance::ProvenanceError::Missing { .. }) => Some(
            "attach it with `himg push FILE.himg REF --provenance`".into(),
        ),
        Error::Promote(crate::promote::PromoteError::Refused { .. }) => Some(
            "trust the public key that signs promotions: --trusted-key NAME:base64 (`himg key generate` printed it) or `[promote] trusted-keys` in the config file; nothing was pushed".into(),
        ),
        Error::Promote(crate::promote::PromoteError::Unevaluable { .. }) => Some(
            "a gate that cannot be evaluated fails; for --fail-on import advisories first (`himg vulndb import …`); nothing was pushed".into(),
        ),
        Error::Promote(crate::promote::PromoteError::Vulnerable { .. }) => Some(
            "update the packages (`himg update`) and promote the rebuilt image; nothing was pushed".into(),
        ),
        Error::TestsFailed { .. } => Some(
            "each failure above shows what was expected and what the image gave; `himg run FILE -- sh` opens a shell in the same sandbox when the image has one".into(),
        ),
        _ => None,
    }
}

/// Hints for the store, caches and registry bases.
fn store_hint(err: &Error) -> Option<String> {
    match err {
        Error::Base(_) => Some(
            "registry bases are pulled once into the store (credentials as for `himg pull`); a registry on 127.0.0.1 or localhost is spoken to over http".into(),
        ),
        Error::Store(StoreError::IncompatibleVersion { .. }) => Some(
            "this store was written by a newer himg; use that version or another --store"
                .to_string(),
        ),
        Error::Cache(crate::cache::CacheError::Denied { .. }) => Some(
            "pass a token with access to this namespace: --cache-token TOKEN or $HIMG_CACHE_TOKEN"
                .into(),
        ),
        Error::Plan(PlanError::Store(_)) | Error::Store(_) => {
            Some("`himg store verify` checks the store and names any corrupt entry".into())
        }
        Error::Plan(PlanError::Derivation { source, .. })
            if matches!(
                **source,
                PlanError::Build(crate::builder::BuildError::Failed { offline: true, .. })
            ) =>
        {
            Some(
                "the command ran without the network, as every build does unless it declares the `hash` of its outputs: download in a fetch (a build with `hash`), then consume its outputs (`source builds.NAME`)"
                    .into(),
            )
        }
        Error::Plan(PlanError::Derivation { name, .. })
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
            Error::Plan(PlanError::Derivation {
                name: name.into(),
                source: Box::new(PlanError::BadEpoch("x".into())),
            })
        };
        for name in ["app analysis amd64", "app/l1 scan"] {
            assert!(
                hint(&failed(name))
                    .unwrap_or_default()
                    .contains("--no-sbom --no-policy")
            );
        }
        assert_eq!(hint(&failed("app/l1")), None);
    }
}
