//! Registry credentials: a Docker-style `config.json` (`REGISTRY_AUTH_FILE`,
//! else `~/.docker/config.json`), else `HIMG_REGISTRY_USER`/`HIMG_REGISTRY_PASSWORD`.
//! Secrets are never printed: `Debug` shows only hosts and the source.

use super::RegistryError;
use base64::Engine as _;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// Environment variable naming a Docker-style auth file.
pub const AUTH_FILE_ENV: &str = "REGISTRY_AUTH_FILE";
/// Environment variable with the user name (fallback source).
pub const USER_ENV: &str = "HIMG_REGISTRY_USER";
/// Environment variable with the password (fallback source).
pub const PASSWORD_ENV: &str = "HIMG_REGISTRY_PASSWORD";

/// Human-readable list of the credential sources, for error hints.
pub(super) const SOURCES_HINT: &str = "put {\"auths\": {\"<host>\": {\"auth\": \"<base64 of user:password>\"}}} in the file named by REGISTRY_AUTH_FILE or in ~/.docker/config.json, or set HIMG_REGISTRY_USER and HIMG_REGISTRY_PASSWORD";

/// User name and password pairs per registry host.
#[derive(Clone, Default)]
pub struct Credentials {
    by_host: BTreeMap<String, (String, String)>,
    fallback: Option<(String, String)>,
    source: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("hosts", &self.by_host.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback.is_some())
            .field("source", &self.source)
            .finish()
    }
}

impl Credentials {
    /// No credentials at all (anonymous access).
    pub fn none() -> Self {
        Self::default()
    }

    /// Loads from the process environment, see the module docs.
    pub fn from_env() -> Result<Self, RegistryError> {
        Self::load_with(|k| std::env::var(k).ok())
    }

    /// Loads using `var` to read environment variables (`REGISTRY_AUTH_FILE`,
    /// `HOME`, `HIMG_REGISTRY_USER`, `HIMG_REGISTRY_PASSWORD`).
    pub fn load_with(var: impl Fn(&str) -> Option<String>) -> Result<Self, RegistryError> {
        let mut creds = Self::default();
        let file = match var(AUTH_FILE_ENV).filter(|s| !s.is_empty()) {
            Some(p) => Some(PathBuf::from(p)),
            None => var("HOME")
                .map(|h| PathBuf::from(h).join(".docker/config.json"))
                .filter(|p| p.is_file()),
        };
        if let Some(path) = file {
            creds.by_host = parse_auth_file(&path)?;
            creds.source = path.display().to_string();
        }
        if let (Some(u), Some(p)) = (var(USER_ENV), var(PASSWORD_ENV)) {
            creds.fallback = Some((u, p));
            if creds.source.is_empty() {
                creds.source = format!("{USER_ENV}/{PASSWORD_ENV}");
            }
        }
        Ok(creds)
    }

    /// Credentials for one host given explicitly.
    pub fn with_login(host: &str, user: &str, password: &str) -> Self {
        let mut by_host = BTreeMap::new();
        by_host.insert(host.to_owned(), (user.to_owned(), password.to_owned()));
        Credentials {
            by_host,
            fallback: None,
            source: "explicit login".to_owned(),
        }
    }

    /// User and password for `host`, if any.
    pub fn lookup(&self, host: &str) -> Option<(&str, &str)> {
        self.by_host
            .get(host)
            .or(self.fallback.as_ref())
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// Where the credentials came from (a path or variable names), for messages.
    pub fn source(&self) -> &str {
        &self.source
    }
}

fn normalise_host(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    k.split('/').next().unwrap_or(k).to_owned()
}

fn parse_auth_file(
    path: &std::path::Path,
) -> Result<BTreeMap<String, (String, String)>, RegistryError> {
    let err = |reason: String| RegistryError::Credentials {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let json: serde_json::Value = serde_json::from_slice(&text).map_err(|e| err(e.to_string()))?;
    let mut out = BTreeMap::new();
    let Some(auths) = json.get("auths").and_then(|a| a.as_object()) else {
        return Ok(out);
    };
    for (host, entry) in auths {
        let pair = if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| err(format!("auth for {host} is not base64")))?;
            let s =
                String::from_utf8(raw).map_err(|_| err(format!("auth for {host} is not UTF-8")))?;
            let (u, p) = s
                .split_once(':')
                .ok_or_else(|| err(format!("auth for {host} is not user:password")))?;
            (u.to_owned(), p.to_owned())
        } else if let (Some(u), Some(p)) = (
            entry.get("username").and_then(|v| v.as_str()),
            entry.get("password").and_then(|v| v.as_str()),
        ) {
            (u.to_owned(), p.to_owned())
        } else {
            continue;
        };
        out.insert(normalise_host(host), pair);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_auth_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("auth.json");
        std::fs::write(
            &f,
            r#"{"auths":{"https://registry.example/v1/":{"auth":"dXNlcjpwdzp3aXRoOmNvbG9u"}}}"#,
        )
        .unwrap();
        let fp = f.display().to_string();
        let c = Credentials::load_with(|k| match k {
            AUTH_FILE_ENV => Some(fp.clone()),
            USER_ENV => Some("envuser".into()),
            PASSWORD_ENV => Some("envpw".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            c.lookup("registry.example"),
            Some(("user", "pw:with:colon"))
        );
        assert_eq!(c.lookup("other.example"), Some(("envuser", "envpw")));
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("envpw") && !dbg.contains("with:colon"));
        let none = Credentials::load_with(|_| None).unwrap();
        assert_eq!(none.lookup("registry.example"), None);
    }
}
