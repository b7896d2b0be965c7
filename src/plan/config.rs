//! Runtime configuration merged along the `from` chain: a `.himg` image's declared config becomes
//! [`oci::ConfigOverrides`] applied on top of its base's [`oci::RuntimeConfig`].
//!
//! Rules (documented in the book, implemented by `RuntimeConfig::merged`): scalar fields are inherited
//! unless the derived image sets them; setting `entrypoint` without `cmd` clears an inherited `cmd` (as
//! a Dockerfile does); `env` keys override in place and new keys are appended; labels merge with the
//! derived image winning; ports and volumes are unions. Annotations are not inherited.

use himg_lang::ConfigSpec;

use crate::oci::{ConfigOverrides, Platform, RuntimeConfig};

/// The declared config of one image as overrides for its base's config.
pub fn overrides(spec: &ConfigSpec) -> ConfigOverrides {
    ConfigOverrides {
        user: spec.user.clone(),
        env: spec.env.iter().cloned().collect(),
        entrypoint: spec.entrypoint.clone(),
        cmd: spec.cmd.clone(),
        working_dir: spec.workdir.clone(),
        labels: spec.labels.clone(),
        exposed_ports: spec.exposed_ports.iter().cloned().collect(),
        volumes: spec.volumes.iter().cloned().collect(),
        stop_signal: spec.stop_signal.clone(),
    }
}

/// `base` with a derived image's declarations applied.
pub fn extend(base: &RuntimeConfig, own: &ConfigSpec) -> RuntimeConfig {
    base.merged(&overrides(own))
}

/// A Debian architecture name as an OCI platform (`arm64` → `linux/arm64/v8`, `armhf` → `linux/arm/v7`).
pub fn platform(debian_arch: &str) -> Platform {
    let (arch, variant) = match debian_arch {
        "arm64" => ("arm64", Some("v8")),
        "armhf" => ("arm", Some("v7")),
        "armel" => ("arm", Some("v5")),
        "i386" => ("386", None),
        "ppc64el" => ("ppc64le", None),
        other => (other, None),
    };
    let mut p = Platform::linux(arch);
    p.variant = variant.map(str::to_string);
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_resets_inherited_cmd_and_env_overrides_in_place() {
        let base = extend(
            &RuntimeConfig::default(),
            &ConfigSpec {
                env: vec![("A".into(), "1".into()), ("B".into(), "2".into())],
                cmd: Some(vec!["sh".into()]),
                ..Default::default()
            },
        );
        let own = ConfigSpec {
            env: vec![("A".into(), "x".into()), ("C".into(), "3".into())],
            entrypoint: Some(vec!["/app".into()]),
            ..Default::default()
        };
        let merged = extend(&base, &own);
        assert_eq!(merged.env, vec!["A=x", "B=2", "C=3"]);
        assert!(merged.cmd.is_empty());
        assert_eq!(merged.entrypoint, vec!["/app".to_string()]);
    }

    #[test]
    fn debian_architectures_map_to_oci_platforms() {
        assert_eq!(platform("arm64").to_string(), "linux/arm64/v8");
        assert_eq!(platform("amd64").to_string(), "linux/amd64");
        assert_eq!(platform("ppc64el").to_string(), "linux/ppc64le");
    }
}
