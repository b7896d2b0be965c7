//! Registry credentials, from the sources Docker and podman users already have, in this order (the
//! first source that knows a host wins):
//!
//! 1. the file named by `REGISTRY_AUTH_FILE`;
//! 2. the containers auth files `${XDG_RUNTIME_DIR}/containers/auth.json` and
//!    `${XDG_CONFIG_HOME:-$HOME/.config}/containers/auth.json` (what `podman login` writes);
//! 3. Docker's `config.json` in `DOCKER_CONFIG`, else in `~/.docker` (what `docker login` writes);
//! 4. `HIMG_REGISTRY_USER`/`HIMG_REGISTRY_PASSWORD`, for any host.
//!
//! In each file, a credential helper for the host (`credHelpers`, else the default `credsStore`) is
//! asked first ([`credhelper`](super::credhelper)), then the `auths` entry. Helpers are asked lazily,
//! once per host actually contacted. Missing files are skipped. Secrets are never printed: `Debug`
//! shows only hosts, helper names and sources.

use super::RegistryError;
use super::credhelper::{self, HelperError, PREFIX};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Environment variable naming an auth file (podman's, read first).
pub const AUTH_FILE_ENV: &str = "REGISTRY_AUTH_FILE";
/// Environment variable naming Docker's configuration directory (its `config.json`).
pub const DOCKER_CONFIG_ENV: &str = "DOCKER_CONFIG";
/// Environment variable with the user name (fallback source).
pub const USER_ENV: &str = "HIMG_REGISTRY_USER";
/// Environment variable with the password (fallback source).
pub const PASSWORD_ENV: &str = "HIMG_REGISTRY_PASSWORD";

/// Human-readable list of the credential sources, for error hints.
pub(super) const SOURCES_HINT: &str = "log in with `docker login` or `podman login` (an `auths` entry or a `credHelpers`/`credsStore` credential helper in the file named by REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json, ~/.config/containers/auth.json, $DOCKER_CONFIG/config.json or ~/.docker/config.json), or set HIMG_REGISTRY_USER and HIMG_REGISTRY_PASSWORD";

/// Docker Hub's key in Docker's config files, and the server URL its helpers are told.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// A secret for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Login {
    /// A user name and password: Basic auth, or Basic auth to the token service.
    Password {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// A Docker identity token (a helper's `Username` `<token>`, or `identitytoken` in `auths`):
    /// an OAuth2 refresh token for the registry's token service.
    IdentityToken(String),
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Login::Password { user, .. } => f
                .debug_struct("Password")
                .field("user", user)
                .field("password", &"<redacted>")
                .finish(),
            Login::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// A login and where it came from.
#[derive(Clone)]
struct Found {
    login: Login,
    source: String,
}

/// One auth file as read: its `auths`, `credHelpers` and `credsStore`.
#[derive(Clone, Default)]
struct AuthFile {
    label: String,
    logins: BTreeMap<String, Login>,
    helpers: BTreeMap<String, String>,
    store: Option<String>,
}

/// The credential sources, and the logins resolved so far per host (shared by clones).
#[derive(Clone, Default)]
pub struct Credentials {
    files: Vec<AuthFile>,
    fallback: Option<Login>,
    /// `PATH` to find credential helpers on.
    path: Option<String>,
    resolved: Arc<Mutex<BTreeMap<String, Option<Found>>>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files: Vec<_> = self
            .files
            .iter()
            .map(|file| {
                format!(
                    "{}: hosts {:?}, helpers {:?}, store {:?}",
                    file.label,
                    file.logins.keys().collect::<Vec<_>>(),
                    file.helpers,
                    file.store
                )
            })
            .collect();
        f.debug_struct("Credentials")
            .field("files", &files)
            .field("fallback", &self.fallback.is_some())
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

    /// Loads using `var` to read environment variables (`REGISTRY_AUTH_FILE`, `XDG_RUNTIME_DIR`,
    /// `XDG_CONFIG_HOME`, `DOCKER_CONFIG`, `HOME`, `HIMG_REGISTRY_USER`, `HIMG_REGISTRY_PASSWORD`,
    /// and `PATH` to find credential helpers on). Files are read now, helpers run at [`lookup`].
    ///
    /// [`lookup`]: Credentials::lookup
    pub fn load_with(var: impl Fn(&str) -> Option<String>) -> Result<Self, RegistryError> {
        let mut files = Vec::new();
        for path in auth_file_paths(&var) {
            if path.is_file() {
                files.push(read_auth_file(&path)?);
            }
        }
        let fallback = match (var(USER_ENV), var(PASSWORD_ENV)) {
            (Some(user), Some(password)) => Some(Login::Password { user, password }),
            _ => None,
        };
        Ok(Credentials {
            files,
            fallback,
            path: var("PATH"),
            resolved: Arc::default(),
        })
    }

    /// Credentials for one host given explicitly.
    pub fn with_login(host: &str, user: &str, password: &str) -> Self {
        let login = Login::Password {
            user: user.to_owned(),
            password: password.to_owned(),
        };
        Credentials {
            files: vec![AuthFile {
                label: "explicit login".to_owned(),
                logins: BTreeMap::from([(host.to_owned(), login)]),
                ..AuthFile::default()
            }],
            ..Credentials::default()
        }
    }

    /// The login for `host`, if any source has one; a credential helper is run the first time a
    /// host is asked for, and its answer kept.
    pub fn lookup(&self, host: &str) -> Result<Option<Login>, RegistryError> {
        let mut resolved = self.resolved.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = resolved.get(host) {
            return Ok(found.as_ref().map(|f| f.login.clone()));
        }
        let found = self.resolve(host)?;
        let login = found.as_ref().map(|f| f.login.clone());
        resolved.insert(host.to_owned(), found);
        Ok(login)
    }

    /// Where the login of `host` came from, once [`lookup`](Credentials::lookup) found one.
    pub fn source_of(&self, host: &str) -> Option<String> {
        let resolved = self.resolved.lock().unwrap_or_else(PoisonError::into_inner);
        resolved.get(host)?.as_ref().map(|f| f.source.clone())
    }

    /// The sources consulted (file paths, variable names), for messages.
    pub fn source(&self) -> String {
        let mut sources: Vec<String> = self.files.iter().map(|f| f.label.clone()).collect();
        if self.fallback.is_some() {
            sources.push(format!("{USER_ENV}/{PASSWORD_ENV}"));
        }
        sources.join(", ")
    }

    fn resolve(&self, host: &str) -> Result<Option<Found>, HelperError> {
        for file in &self.files {
            if let Some(found) = file.resolve(host, self.path.as_deref())? {
                return Ok(Some(found));
            }
        }
        Ok(self.fallback.clone().map(|login| Found {
            login,
            source: format!("{USER_ENV}/{PASSWORD_ENV}"),
        }))
    }
}

impl AuthFile {
    /// The helper for `host` (its own, else the default store), then the `auths` entry.
    fn resolve(&self, host: &str, path: Option<&str>) -> Result<Option<Found>, HelperError> {
        let keys = host_keys(host);
        let helper = keys
            .iter()
            .find_map(|k| self.helpers.get(*k))
            .or(self.store.as_ref());
        if let Some(helper) = helper
            && let Some(login) = credhelper::get(helper, host, server_url(host), path)?
        {
            return Ok(Some(Found {
                login,
                source: format!("{PREFIX}{helper} (named in {})", self.label),
            }));
        }
        Ok(keys
            .iter()
            .find_map(|k| self.logins.get(*k))
            .map(|login| Found {
                login: login.clone(),
                source: self.label.clone(),
            }))
    }
}

/// The auth files in precedence order (existing or not).
fn auth_file_paths(var: &impl Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let set = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let home = set("HOME");
    let containers_config =
        set("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")));
    let docker_dir = set(DOCKER_CONFIG_ENV).or_else(|| home.as_ref().map(|h| h.join(".docker")));
    let candidates = [
        set(AUTH_FILE_ENV),
        set("XDG_RUNTIME_DIR").map(|d| d.join("containers/auth.json")),
        containers_config.map(|d| d.join("containers/auth.json")),
        docker_dir.map(|d| d.join("config.json")),
    ];
    let mut paths: Vec<PathBuf> = Vec::new();
    for path in candidates.into_iter().flatten() {
        if !paths.contains(&path) {
            paths.push(path);
        }
    }
    paths
}

/// The keys `host` may be filed under: itself, and Docker Hub's key for Docker Hub's names.
fn host_keys(host: &str) -> Vec<&str> {
    match host {
        "docker.io" | "registry-1.docker.io" => vec![host, "index.docker.io"],
        _ => vec![host],
    }
}

/// The server URL a credential helper is told for `host`, as Docker tells it.
fn server_url(host: &str) -> &str {
    match host {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => DOCKER_HUB_SERVER,
        _ => host,
    }
}

fn normalise_host(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    k.split('/').next().unwrap_or(k).to_owned()
}

/// The parts of a Docker `config.json` / containers `auth.json` that name credentials.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct AuthFileJson {
    auths: BTreeMap<String, serde_json::Value>,
    #[serde(rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(rename = "credsStore")]
    creds_store: Option<String>,
}

fn read_auth_file(path: &Path) -> Result<AuthFile, RegistryError> {
    let err = |reason: String| RegistryError::Credentials {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let json: AuthFileJson = serde_json::from_slice(&text).map_err(|e| err(e.to_string()))?;
    let mut logins = BTreeMap::new();
    for (host, entry) in &json.auths {
        if let Some(login) = parse_auths_entry(host, entry).map_err(err)? {
            logins.insert(normalise_host(host), login);
        }
    }
    let helpers = json
        .cred_helpers
        .into_iter()
        .map(|(host, helper)| (normalise_host(&host), helper))
        .collect();
    Ok(AuthFile {
        label: path.display().to_string(),
        logins,
        helpers,
        store: json.creds_store.filter(|s| !s.is_empty()),
    })
}

/// One `auths` entry: `identitytoken`, else `auth` (base64 `user:password`), else
/// `username`/`password`; an entry with none of them (what a helper-backed login leaves) is `None`.
fn parse_auths_entry(host: &str, entry: &serde_json::Value) -> Result<Option<Login>, String> {
    let field = |name: &str| {
        entry
            .get(name)
            .and_then(|v| v.as_str())
            .filter(|s| !s.is_empty())
    };
    if let Some(token) = field("identitytoken") {
        return Ok(Some(Login::IdentityToken(token.to_owned())));
    }
    if let Some(auth) = field("auth") {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| format!("auth for {host} is not base64"))?;
        let s = String::from_utf8(raw).map_err(|_| format!("auth for {host} is not UTF-8"))?;
        let (user, password) = s
            .split_once(':')
            .ok_or_else(|| format!("auth for {host} is not user:password"))?;
        return Ok(Some(Login::Password {
            user: user.to_owned(),
            password: password.to_owned(),
        }));
    }
    Ok(match (field("username"), field("password")) {
        (Some(user), Some(password)) => Some(Login::Password {
            user: user.to_owned(),
            password: password.to_owned(),
        }),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(user: &str, password: &str) -> Login {
        Login::Password {
            user: user.into(),
            password: password.into(),
        }
    }

    /// A directory with `docker-credential-NAME` scripts: `body` is the script after `#!/bin/sh`;
    /// each run appends its stdin to `calls.log`.
    struct Helpers(tempfile::TempDir);

    impl Helpers {
        fn new() -> Helpers {
            Helpers(tempfile::tempdir().expect("tempdir"))
        }
        fn add(&self, name: &str, body: &str) {
            use std::os::unix::fs::PermissionsExt as _;
            let path = self.0.path().join(format!("docker-credential-{name}"));
            let log = self.0.path().join("calls.log");
            let script = format!(
                "#!/bin/sh\nread -r url\necho \"{name} $1 $url\" >> '{}'\n{body}\n",
                log.display()
            );
            std::fs::write(&path, script).expect("write helper");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        fn calls(&self) -> String {
            std::fs::read_to_string(self.0.path().join("calls.log")).unwrap_or_default()
        }
        fn path(&self) -> String {
            self.0.path().display().to_string()
        }
    }

    fn write(dir: &Path, rel: &str, json: &str) -> PathBuf {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, json).expect("write");
        path
    }

    #[test]
    fn reads_auth_file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "auth.json",
            r#"{"auths":{"https://registry.example/v1/":{"auth":"dXNlcjpwdzp3aXRoOmNvbG9u"}}}"#,
        );
        let fp = f.display().to_string();
        let c = Credentials::load_with(|k| match k {
            AUTH_FILE_ENV => Some(fp.clone()),
            USER_ENV => Some("envuser".into()),
            PASSWORD_ENV => Some("envpw".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            c.lookup("registry.example").unwrap(),
            Some(password("user", "pw:with:colon"))
        );
        assert_eq!(c.source_of("registry.example"), Some(fp.clone()));
        assert_eq!(
            c.lookup("other.example").unwrap(),
            Some(password("envuser", "envpw"))
        );
        let dbg = format!("{c:?} {:?}", c.lookup("other.example"));
        assert!(
            !dbg.contains("envpw") && !dbg.contains("with:colon"),
            "{dbg}"
        );
        let none = Credentials::load_with(|_| None).unwrap();
        assert_eq!(none.lookup("registry.example").unwrap(), None);
    }

    #[test]
    fn earlier_sources_win_per_host() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let entry = |host: &str, user: &str| {
            let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:pw"));
            format!(r#""{host}":{{"auth":"{auth}"}}"#)
        };
        let explicit = write(
            d,
            "explicit.json",
            &format!("{{\"auths\":{{{}}}}}", entry("a.example", "explicit")),
        );
        write(
            d,
            "run/containers/auth.json",
            &format!(
                "{{\"auths\":{{{},{}}}}}",
                entry("a.example", "runtime"),
                entry("b.example", "runtime")
            ),
        );
        write(
            d,
            "home/.config/containers/auth.json",
            &format!(
                "{{\"auths\":{{{},{}}}}}",
                entry("b.example", "config"),
                entry("c.example", "config")
            ),
        );
        write(
            d,
            "dockerdir/config.json",
            &format!(
                "{{\"auths\":{{{},{}}}}}",
                entry("c.example", "docker"),
                entry("d.example", "docker")
            ),
        );
        write(
            d,
            "home/.docker/config.json",
            &format!("{{\"auths\":{{{}}}}}", entry("e.example", "homedocker")),
        );
        let vars = |with_docker_config: bool| {
            let d = d.to_owned();
            let explicit = explicit.clone();
            move |k: &str| {
                let p = |rel: &str| Some(d.join(rel).display().to_string());
                match k {
                    AUTH_FILE_ENV => Some(explicit.display().to_string()),
                    "XDG_RUNTIME_DIR" => p("run"),
                    "HOME" => p("home"),
                    DOCKER_CONFIG_ENV if with_docker_config => p("dockerdir"),
                    _ => None,
                }
            }
        };
        let c = Credentials::load_with(vars(true)).unwrap();
        let user = |host: &str| match c.lookup(host).unwrap() {
            Some(Login::Password { user, .. }) => Some(user),
            _ => None,
        };
        assert_eq!(user("a.example").as_deref(), Some("explicit"));
        assert_eq!(user("b.example").as_deref(), Some("runtime"));
        assert_eq!(user("c.example").as_deref(), Some("config"));
        assert_eq!(user("d.example").as_deref(), Some("docker"));
        assert_eq!(user("e.example"), None, "DOCKER_CONFIG replaces ~/.docker");
        let c = Credentials::load_with(vars(false)).unwrap();
        assert!(matches!(
            c.lookup("e.example").unwrap(),
            Some(Login::Password { user, .. }) if user == "homedocker"
        ));
        assert!(c.source().contains("explicit.json"), "{}", c.source());
    }

    #[test]
    fn helpers_are_asked_lazily_once_per_host() {
        let helpers = Helpers::new();
        helpers.add(
            "per",
            r#"printf '{"ServerURL":"%s","Username":"helper-user","Secret":"helper-pw"}' "$url""#,
        );
        helpers.add(
            "store",
            r#"case "$url" in
  known.example) printf '{"ServerURL":"x","Username":"<token>","Secret":"idtok"}' ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"x","Username":"hub","Secret":"hubpw"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac"#,
        );
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "config.json",
            r#"{"credsStore":"store","credHelpers":{"per.example":"per"},
                "auths":{"fallthrough.example":{"username":"file","password":"filepw"}}}"#,
        );
        let docker_dir = dir.path().display().to_string();
        let path = helpers.path();
        let c = Credentials::load_with(|k| match k {
            DOCKER_CONFIG_ENV => Some(docker_dir.clone()),
            "PATH" => Some(path.clone()),
            _ => None,
        })
        .unwrap();
        assert_eq!(helpers.calls(), "", "nothing is asked before a lookup");
        for _ in 0..2 {
            assert_eq!(
                c.lookup("per.example").unwrap(),
                Some(password("helper-user", "helper-pw"))
            );
        }
        assert_eq!(helpers.calls(), "per get per.example\n");
        assert!(
            c.source_of("per.example")
                .is_some_and(|s| s.contains("docker-credential-per"))
        );
        assert_eq!(
            c.lookup("known.example").unwrap(),
            Some(Login::IdentityToken("idtok".into()))
        );
        assert_eq!(
            c.lookup("fallthrough.example").unwrap(),
            Some(password("file", "filepw")),
            "a helper without credentials falls through to the file's auths"
        );
        assert_eq!(c.lookup("unknown.example").unwrap(), None);
        assert_eq!(
            c.lookup("docker.io").unwrap(),
            Some(password("hub", "hubpw"))
        );
        assert!(!format!("{c:?}").contains("helper-pw"));
    }

    #[test]
    fn a_failing_helper_is_an_error_naming_it_and_the_host() {
        let helpers = Helpers::new();
        helpers.add("broken", "echo 'keychain locked' >&2; exit 3");
        helpers.add("garbage", "echo 'Secret: hunter2'");
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "config.json",
            r#"{"credHelpers":{"a.example":"broken","b.example":"garbage","c.example":"../x",
                "d.example":"absent"}}"#,
        );
        let docker_dir = dir.path().display().to_string();
        let path = helpers.path();
        let c = Credentials::load_with(|k| match k {
            DOCKER_CONFIG_ENV => Some(docker_dir.clone()),
            "PATH" => Some(path.clone()),
            _ => None,
        })
        .unwrap();
        let msg = |host: &str| c.lookup(host).unwrap_err().to_string();
        let broken = msg("a.example");
        assert!(
            broken.contains("docker-credential-broken")
                && broken.contains("a.example")
                && broken.contains("keychain locked"),
            "{broken}"
        );
        let garbage = msg("b.example");
        assert!(
            garbage.contains("docker-credential-garbage") && !garbage.contains("hunter2"),
            "{garbage}"
        );
        assert!(msg("c.example").contains("not a helper name"));
        assert!(msg("d.example").contains("not on PATH"));
    }

    #[test]
    fn identity_tokens_and_empty_entries_in_auths() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            "auth.json",
            r#"{"auths":{"a.example":{"auth":"","identitytoken":"tok"},"b.example":{},
                "c.example":{"auth":""}}}"#,
        );
        let fp = f.display().to_string();
        let c = Credentials::load_with(|k| (k == AUTH_FILE_ENV).then(|| fp.clone())).unwrap();
        assert_eq!(
            c.lookup("a.example").unwrap(),
            Some(Login::IdentityToken("tok".into()))
        );
        assert_eq!(c.lookup("b.example").unwrap(), None);
        assert_eq!(c.lookup("c.example").unwrap(), None);
        let bad = write(
            dir.path(),
            "bad.json",
            r#"{"auths":{"a.example":{"auth":"!!"}}}"#,
        );
        let bp = bad.display().to_string();
        let err = Credentials::load_with(|k| (k == AUTH_FILE_ENV).then(|| bp.clone())).unwrap_err();
        assert!(err.to_string().contains("not base64"), "{err}");
    }
}
