//! The OCI image config (what runs, as whom, with which layers), merging a base image's config
//! with the user's settings, canonical JSON, and RFC 3339 times from epoch seconds.
//!
//! Serialisation follows Go's image-spec types, which every runtime parses: optional strings and
//! lists are omitted when empty (Go's `omitempty`), `ExposedPorts`/`Volumes` are maps of `{}`,
//! `config` and `rootfs.diff_ids` are always present.

use std::collections::{BTreeMap, BTreeSet};

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::OciError;
use super::digest::Sha256Digest;
use super::manifest::{Descriptor, Platform, media_types};

/// An OCI image config (`application/vnd.oci.image.config.v1+json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// RFC 3339 creation time, from SOURCE_DATE_EPOCH (see [`epoch_to_rfc3339`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub config: RuntimeConfig,
    pub rootfs: RootFs,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<History>,
}

/// The execution parameters of a container (the config's `config` object).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeConfig {
    /// `user`, `uid`, `user:group` or `uid:gid`.
    #[serde(default, skip_serializing_if = "is_empty_opt")]
    pub user: Option<String>,
    /// `KEY=value` strings, in order.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub entrypoint: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cmd: Vec<String>,
    #[serde(default, skip_serializing_if = "is_empty_opt")]
    pub working_dir: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// `port/proto` (`80/tcp`); serialised as a map of empty objects.
    #[serde(
        default,
        serialize_with = "set_as_map",
        deserialize_with = "map_as_set",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub exposed_ports: BTreeSet<String>,
    /// Volume paths; serialised as a map of empty objects.
    #[serde(
        default,
        serialize_with = "set_as_map",
        deserialize_with = "map_as_set",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub volumes: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "is_empty_opt")]
    pub stop_signal: Option<String>,
    /// Docker extensions kept from a base image: `Healthcheck`, `Shell`, `OnBuild` (see
    /// [`ImageConfig::from_json`]).
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The config's `rootfs`: the layers' diff_ids, bottom first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, deserialize_with = "nullable")]
    pub diff_ids: Vec<Sha256Digest>,
}

impl Default for RootFs {
    fn default() -> Self {
        Self {
            kind: "layers".to_owned(),
            diff_ids: Vec::new(),
        }
    }
}

/// One history entry; one per layer (plus `empty_layer` entries inherited from bases).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// Docker runtime extensions that survive from a base image's config; everything else that this
/// module does not model (legacy `Hostname`, `Image`, `ArgsEscaped`, …) is dropped.
const KEPT_EXTRA: [&str; 3] = ["Healthcheck", "OnBuild", "Shell"];

impl ImageConfig {
    /// An empty config (no layers) for `platform`, created at `created` epoch seconds.
    pub fn new(platform: &Platform, created: u64) -> Self {
        Self {
            created: Some(epoch_to_rfc3339(created)),
            author: None,
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            os_version: platform.os_version.clone(),
            variant: platform.variant.clone(),
            config: RuntimeConfig::default(),
            rootfs: RootFs::default(),
            history: Vec::new(),
        }
    }

    /// Parses a (base image's) config. Docker's `null` lists are read as empty; of the runtime
    /// fields this module does not model, only `Healthcheck`, `Shell` and `OnBuild` are kept.
    pub fn from_json(bytes: &[u8]) -> Result<Self, OciError> {
        let mut cfg: Self = serde_json::from_slice(bytes).map_err(|source| OciError::Json {
            what: "image config".to_owned(),
            source,
        })?;
        cfg.config
            .extra
            .retain(|k, v| KEPT_EXTRA.contains(&k.as_str()) && !v.is_null());
        Ok(cfg)
    }

    /// The platform this config describes.
    pub fn platform(&self) -> Platform {
        Platform {
            architecture: self.architecture.clone(),
            os: self.os.clone(),
            os_version: self.os_version.clone(),
            variant: self.variant.clone(),
        }
    }

    /// Appends a layer: its diff_id, and a history entry `himg: layer NAME` dated like the
    /// config.
    pub fn push_layer(&mut self, diff_id: Sha256Digest, name: &str, comment: Option<&str>) {
        self.rootfs.diff_ids.push(diff_id);
        self.history.push(History {
            created: self.created.clone(),
            created_by: Some(format!("himg: layer {name}")),
            author: None,
            comment: comment.map(str::to_owned),
            empty_layer: false,
        });
    }

    /// The canonical JSON bytes (the blob).
    pub fn to_canonical_json(&self) -> Result<Vec<u8>, OciError> {
        canonical_json(self)
    }

    /// The blob bytes and their descriptor.
    pub fn to_blob(&self) -> Result<(Vec<u8>, Descriptor), OciError> {
        let bytes = self.to_canonical_json()?;
        let desc = Descriptor::of_bytes(media_types::CONFIG, &bytes);
        Ok((bytes, desc))
    }
}

/// What an image definition sets on top of its base's runtime config.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigOverrides {
    pub user: Option<String>,
    /// Variables to set, in order: an existing variable keeps its place, a new one is appended.
    pub env: IndexMap<String, String>,
    /// Replaces the base's entrypoint and, unless `cmd` is also set, clears its cmd (Docker's
    /// rule: a base's CMD was written for the base's ENTRYPOINT).
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    /// Added to (and override) the base's labels.
    pub labels: BTreeMap<String, String>,
    /// Added to the base's; `80` means `80/tcp`.
    pub exposed_ports: BTreeSet<String>,
    /// Added to the base's.
    pub volumes: BTreeSet<String>,
    pub stop_signal: Option<String>,
}

impl RuntimeConfig {
    /// This (base) config with `o` applied.
    pub fn merged(&self, o: &ConfigOverrides) -> RuntimeConfig {
        let mut c = self.clone();
        if let Some(u) = &o.user {
            c.user = Some(u.clone());
        }
        for (k, v) in &o.env {
            let line = format!("{k}={v}");
            let existing = c
                .env
                .iter_mut()
                .find(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == k);
            match existing {
                Some(slot) => *slot = line,
                None => c.env.push(line),
            }
        }
        if let Some(ep) = &o.entrypoint {
            c.entrypoint = ep.clone();
            if o.cmd.is_none() {
                c.cmd.clear();
            }
        }
        if let Some(cmd) = &o.cmd {
            c.cmd = cmd.clone();
        }
        if let Some(w) = &o.working_dir {
            c.working_dir = Some(w.clone());
        }
        c.labels
            .extend(o.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        c.exposed_ports.extend(o.exposed_ports.iter().map(|p| {
            if p.contains('/') {
                p.clone()
            } else {
                format!("{p}/tcp")
            }
        }));
        c.volumes.extend(o.volumes.iter().cloned());
        if let Some(s) = &o.stop_signal {
            c.stop_signal = Some(s.clone());
        }
        c
    }
}

/// Serialises `v` as canonical JSON: object keys sorted by their UTF-8 bytes at every level, no
/// whitespace, strings escaped minimally (`"`, `\`, control characters) and otherwise raw UTF-8.
/// Independent of serde_json's `preserve_order` feature.
pub fn canonical_json<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, OciError> {
    let value = serde_json::to_value(v).map_err(|source| OciError::Json {
        what: std::any::type_name::<T>().to_owned(),
        source,
    })?;
    let mut out = Vec::with_capacity(1024);
    write_canonical(&value, &mut out);
    Ok(out)
}

fn write_canonical(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(item, out);
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, val)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write_canonical(val, out);
            }
            out.push(b'}');
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{08}' => out.extend_from_slice(b"\\b"),
            '\u{0c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

/// Formats epoch seconds as RFC 3339 UTC with whole seconds: `1970-01-01T00:00:01Z`.
/// (Years past 9999 are printed with more digits, which RFC 3339 cannot express.)
pub fn epoch_to_rfc3339(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, for non-negative days).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

fn is_empty_opt(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(str::is_empty)
}

/// Reads `null` as the type's default (Docker writes `"Env": null`).
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn set_as_map<S: Serializer>(set: &BTreeSet<String>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(set.len()))?;
    for k in set {
        map.serialize_entry(k, &BTreeMap::<String, Value>::new())?;
    }
    map.end()
}

fn map_as_set<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
    let map: Option<BTreeMap<String, Value>> = Option::deserialize(d)?;
    Ok(map.unwrap_or_default().into_keys().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_vectors() {
        assert_eq!(epoch_to_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(epoch_to_rfc3339(1), "1970-01-01T00:00:01Z");
        assert_eq!(epoch_to_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(epoch_to_rfc3339(951_868_799), "2000-02-29T23:59:59Z");
        assert_eq!(epoch_to_rfc3339(951_868_800), "2000-03-01T00:00:00Z");
        assert_eq!(epoch_to_rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(epoch_to_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(epoch_to_rfc3339(4_107_456_000), "2100-02-28T00:00:00Z");
        // 2100 is not a leap year: the day after Feb 28 is Mar 1.
        assert_eq!(epoch_to_rfc3339(4_107_542_400), "2100-03-01T00:00:00Z");
        assert_eq!(epoch_to_rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn civil_from_days_matches_a_day_by_day_walk() {
        // Walk 1970-01-01 .. 2400-12-31 one day at a time with a naive calendar.
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for days in 0..157_000u64 {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let len = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() -> Result<(), OciError> {
        let v: Value = serde_json::from_str(
            r#"{"b":1,"a":{"z":[{"y":1,"x":2}],"é":"\u0001\"\\\n","A":true},"c":null}"#,
        )
        .map_err(|source| OciError::Json {
            what: "test".into(),
            source,
        })?;
        let out = String::from_utf8(canonical_json(&v)?).unwrap_or_default();
        assert_eq!(
            out,
            r#"{"a":{"A":true,"z":[{"x":2,"y":1}],"é":"\u0001\"\\\n"},"b":1,"c":null}"#
        );
        Ok(())
    }

    fn sample_config() -> ImageConfig {
        let mut cfg = ImageConfig::new(&Platform::linux("amd64"), 1);
        cfg.config = RuntimeConfig::default().merged(&ConfigOverrides {
            user: Some("10001:10001".into()),
            env: IndexMap::from([
                ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
                ("LANG".to_owned(), "C.UTF-8".to_owned()),
            ]),
            entrypoint: Some(vec!["/usr/bin/app".into()]),
            cmd: Some(vec!["--serve".into()]),
            working_dir: Some("/srv".into()),
            labels: BTreeMap::from([
                ("z.last".to_owned(), "1".to_owned()),
                ("a.first".to_owned(), "2".to_owned()),
            ]),
            exposed_ports: BTreeSet::from(["8080".to_owned(), "53/udp".to_owned()]),
            volumes: BTreeSet::from(["/data".to_owned()]),
            stop_signal: Some("SIGTERM".into()),
        });
        cfg.push_layer(Sha256Digest::of(b"layer1"), "base", None);
        cfg.push_layer(Sha256Digest::of(b"layer2"), "app", Some("the app"));
        cfg
    }

    #[test]
    fn config_json_golden() -> Result<(), OciError> {
        let cfg = sample_config();
        let (bytes, desc) = cfg.to_blob()?;
        let text = String::from_utf8(bytes.clone()).unwrap_or_default();
        let expected = format!(
            concat!(
                r#"{{"architecture":"amd64","config":{{"Cmd":["--serve"],"Entrypoint":["/usr/bin/app"],"#,
                r#""Env":["PATH=/usr/bin:/bin","LANG=C.UTF-8"],"ExposedPorts":{{"53/udp":{{}},"8080/tcp":{{}}}},"#,
                r#""Labels":{{"a.first":"2","z.last":"1"}},"StopSignal":"SIGTERM","User":"10001:10001","#,
                r#""Volumes":{{"/data":{{}}}},"WorkingDir":"/srv"}},"created":"1970-01-01T00:00:01Z","#,
                r#""history":[{{"created":"1970-01-01T00:00:01Z","created_by":"himg: layer base"}},"#,
                r#"{{"comment":"the app","created":"1970-01-01T00:00:01Z","created_by":"himg: layer app"}}],"#,
                r#""os":"linux","rootfs":{{"diff_ids":["{}","{}"],"type":"layers"}}}}"#
            ),
            Sha256Digest::of(b"layer1"),
            Sha256Digest::of(b"layer2")
        );
        assert_eq!(text, expected);
        // Golden digest: changes only if the config format changes.
        assert_eq!(
            desc.digest.to_string(),
            "sha256:899137c0257fd84fbc8dd523e3a826c123114a7721e806340b328fc68916897c"
        );
        assert_eq!(ImageConfig::from_json(&bytes)?, cfg);
        Ok(())
    }

    #[test]
    fn empty_config_keeps_required_fields() -> Result<(), OciError> {
        let cfg = ImageConfig::new(&Platform::linux("arm64"), 0);
        let text = String::from_utf8(cfg.to_canonical_json()?).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"architecture":"arm64","config":{},"created":"1970-01-01T00:00:00Z","os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}"#
        );
        Ok(())
    }

    #[test]
    fn merge_follows_docker_rules() -> Result<(), OciError> {
        let base = ImageConfig::from_json(
            br#"{"architecture":"amd64","os":"linux","config":{"Hostname":"","Image":"sha256:x",
            "Env":["PATH=/bin","HOME=/root"],"Cmd":["bash"],"Entrypoint":null,"Volumes":null,
            "Labels":{"maintainer":"a"},"OnBuild":null,"Healthcheck":{"Test":["CMD","true"]},
            "ExposedPorts":{"80/tcp":{}}},"rootfs":{"type":"layers","diff_ids":[]},
            "container_config":{"Cmd":["x"]}}"#,
        )?;
        assert_eq!(
            base.config.extra.keys().collect::<Vec<_>>(),
            ["Healthcheck"]
        );
        let merged = base.config.merged(&ConfigOverrides {
            env: IndexMap::from([
                ("NEW".to_owned(), "1".to_owned()),
                ("PATH".to_owned(), "/usr/bin".to_owned()),
            ]),
            entrypoint: Some(vec!["/app".into()]),
            labels: BTreeMap::from([("maintainer".to_owned(), "b".to_owned())]),
            exposed_ports: BTreeSet::from(["443".to_owned()]),
            ..ConfigOverrides::default()
        });
        assert_eq!(merged.env, ["PATH=/usr/bin", "HOME=/root", "NEW=1"]);
        assert_eq!(merged.entrypoint, ["/app"]);
        assert!(
            merged.cmd.is_empty(),
            "entrypoint without cmd clears the base cmd"
        );
        assert_eq!(merged.labels["maintainer"], "b");
        assert_eq!(
            merged.exposed_ports.iter().collect::<Vec<_>>(),
            ["443/tcp", "80/tcp"]
        );
        let only_cmd = base.config.merged(&ConfigOverrides {
            cmd: Some(vec!["sh".into()]),
            ..ConfigOverrides::default()
        });
        assert_eq!(only_cmd.cmd, ["sh"]);
        Ok(())
    }
}
