//! Image references: `host[:port]/repository[:tag][@digest]`.

use super::RegistryError;
use std::fmt;
use std::str::FromStr;

/// A parsed image reference such as `registry.example/org/app:1.0` or
/// `127.0.0.1:5000/app@sha256:…`. The registry part is mandatory (no implicit
/// default registry).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Host and optional port.
    pub registry: String,
    /// Repository path, e.g. `org/app`.
    pub repository: String,
    /// Tag, if any.
    pub tag: Option<String>,
    /// Digest (`algo:hex`), if any.
    pub digest: Option<String>,
}

impl Reference {
    /// The tag or digest to address the manifest by (digest wins; default `latest`).
    pub fn manifest_ref(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

fn bad(input: &str, reason: &'static str) -> RegistryError {
    RegistryError::InvalidReference {
        input: input.to_owned(),
        reason,
    }
}

impl FromStr for Reference {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let (algo, hex) = d
                    .split_once(':')
                    .ok_or_else(|| bad(s, "digest lacks algorithm"))?;
                let hex_ok = !hex.is_empty()
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
                if algo.is_empty() || !hex_ok || (algo == "sha256" && hex.len() != 64) {
                    return Err(bad(s, "malformed digest"));
                }
                (r, Some(d.to_owned()))
            }
            None => (s, None),
        };
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| bad(s, "missing registry host"))?;
        if registry.is_empty()
            || !registry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        {
            return Err(bad(s, "malformed registry host"));
        }
        // A tag is a ':' after the last '/'.
        let (repository, tag) = match path.rfind(':') {
            Some(i) if !path[i..].contains('/') => (&path[..i], Some(path[i + 1..].to_owned())),
            _ => (path, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                && !t.starts_with(['.', '-']);
            if !ok {
                return Err(bad(s, "malformed tag"));
            }
        }
        let repo_ok = !repository.is_empty()
            && repository.split('/').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
                    && c.as_bytes()[0].is_ascii_alphanumeric()
            });
        if !repo_ok {
            return Err(bad(s, "malformed repository name"));
        }
        Ok(Reference {
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays() {
        let r: Reference = "127.0.0.1:5000/org/app:1.0".parse().unwrap();
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "org/app");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert_eq!(r.to_string(), "127.0.0.1:5000/org/app:1.0");
        let d = format!("sha256:{}", "a".repeat(64));
        let r: Reference = format!("registry.example/app@{d}").parse().unwrap();
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.manifest_ref(), d);
        assert_eq!(r.to_string(), format!("registry.example/app@{d}"));
        let r: Reference = "registry.example:443/a/b".parse().unwrap();
        assert_eq!(r.manifest_ref(), "latest");
        for bad in [
            "app",
            "registry.example/App",
            "registry.example/app:",
            "registry.example/app@sha256:xyz",
            "/app",
        ] {
            assert!(bad.parse::<Reference>().is_err(), "{bad}");
        }
    }
}
