//! Runtime configuration merged along the `from` chain (base first, then each derived image).
//!
//! Rules (documented in the book): scalar fields are inherited unless the derived image sets them;
//! setting `entrypoint` without `cmd` clears an inherited `cmd` (as a Dockerfile does); `env` keys
//! override in place and new keys are appended; labels merge with the derived image winning; ports and
//! volumes are unions. Annotations are not inherited: they describe one image.

use std::collections::BTreeMap;

use himg_lang::ConfigSpec;
use serde::Serialize;

/// The fully merged runtime config of one image.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RuntimeConfigPlan {
    pub user: Option<String>,
    pub env: Vec<(String, String)>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub workdir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
    pub volumes: Vec<String>,
    pub stop_signal: Option<String>,
}

impl RuntimeConfigPlan {
    /// Applies a derived image's declared config on top of this (the base's) config.
    pub fn extend(&self, own: &ConfigSpec) -> RuntimeConfigPlan {
        let mut env = self.env.clone();
        for (k, v) in &own.env {
            match env.iter_mut().find(|(ek, _)| ek == k) {
                Some(slot) => slot.1 = v.clone(),
                None => env.push((k.clone(), v.clone())),
            }
        }
        let cmd = match (&own.entrypoint, &own.cmd) {
            (_, Some(cmd)) => Some(cmd.clone()),
            (Some(_), None) => None,
            (None, None) => self.cmd.clone(),
        };
        let mut labels = self.labels.clone();
        labels.extend(own.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut exposed_ports = self.exposed_ports.clone();
        exposed_ports.extend(own.exposed_ports.iter().cloned());
        exposed_ports.sort();
        exposed_ports.dedup();
        let mut volumes = self.volumes.clone();
        volumes.extend(own.volumes.iter().cloned());
        volumes.sort();
        volumes.dedup();
        RuntimeConfigPlan {
            user: own.user.clone().or_else(|| self.user.clone()),
            env,
            entrypoint: own.entrypoint.clone().or_else(|| self.entrypoint.clone()),
            cmd,
            workdir: own.workdir.clone().or_else(|| self.workdir.clone()),
            labels,
            exposed_ports,
            volumes,
            stop_signal: own.stop_signal.clone().or_else(|| self.stop_signal.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entrypoint_resets_inherited_cmd_and_env_overrides_in_place() {
        let base = RuntimeConfigPlan::default().extend(&ConfigSpec {
            env: vec![("A".into(), "1".into()), ("B".into(), "2".into())],
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        });
        let own = ConfigSpec {
            env: vec![("A".into(), "x".into()), ("C".into(), "3".into())],
            entrypoint: Some(vec!["/app".into()]),
            ..Default::default()
        };
        let merged = base.extend(&own);
        assert_eq!(
            merged.env,
            vec![
                ("A".to_string(), "x".to_string()),
                ("B".to_string(), "2".to_string()),
                ("C".to_string(), "3".to_string())
            ]
        );
        assert_eq!(merged.cmd, None);
        assert_eq!(merged.entrypoint, Some(vec!["/app".to_string()]));
    }
}
