//! Signing keys: `himg key generate|list|public`, and the one resolution of a `--sign-key
//! NAME|FILE` value every command uses.
//!
//! A value naming an existing file is that file; else a plain name (no `/`) is the key
//! `himg key generate NAME` saved, `<config dir>/keys/NAME.secret`; else the value is refused,
//! naming both places looked.

use std::path::{Path, PathBuf};

use super::Error;
use crate::cache::SecretKey;
use crate::cache::sign::secret_key_path;
use crate::config::config_dir;

/// A key pair `generate` made: where the secret key went, and the public key to share.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub path: PathBuf,
    /// `NAME:base64`.
    pub public: String,
}

/// A key of the key directory, as `himg key list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub name: String,
    /// `NAME:base64`, to paste into `--trusted-key`.
    pub public: String,
    pub file: PathBuf,
}

impl KeyInfo {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "public": self.public,
            "file": self.file.display().to_string(),
        })
    }
}

/// `<config dir>/keys`, where `himg key generate NAME` keeps named keys.
pub fn keys_dir() -> Option<PathBuf> {
    config_dir().map(|d| d.join("keys"))
}

/// Creates an Ed25519 key pair named `name` and saves the secret key at `out` (default: the
/// config directory's `keys/NAME.secret`). An existing file is never overwritten.
pub fn generate(name: &str, out: Option<&Path>) -> Result<GeneratedKey, Error> {
    let key = SecretKey::generate(name)?;
    let path = match out {
        Some(p) => p.to_path_buf(),
        None => secret_key_path(
            &config_dir().ok_or_else(|| {
                Error::CacheConfig(
                    "no config directory (set HOME or HIMG_CONFIG_DIR), or pass --out FILE".into(),
                )
            })?,
            name,
        ),
    };
    let exists = || Error::KeyExists {
        name: name.to_owned(),
        path: path.clone(),
    };
    if path.symlink_metadata().is_ok() {
        return Err(exists());
    }
    match key.save(&path) {
        Err(crate::cache::CacheError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            return Err(exists());
        }
        other => other?,
    }
    Ok(GeneratedKey {
        path,
        public: key.public().to_string(),
    })
}

/// The secret key files of the key directory (`*.secret`), sorted by file name.
fn key_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "secret"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

/// The names of the keys in the key directory (file names without `.secret`).
fn names_in(dir: &Path) -> Vec<String> {
    key_files(dir)
        .iter()
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_owned))
        .collect()
}

/// Every key of the key directory, sorted by name (empty when there is none).
pub fn list() -> Result<Vec<KeyInfo>, Error> {
    let Some(dir) = keys_dir() else {
        return Ok(Vec::new());
    };
    let mut keys = key_files(&dir)
        .into_iter()
        .map(|file| {
            let key = SecretKey::read(&file)?;
            Ok(KeyInfo {
                name: key.name.clone(),
                public: key.public().to_string(),
                file,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    keys.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.file.cmp(&b.file)));
    Ok(keys)
}

/// The secret key file a `--sign-key NAME|FILE` value means (see the module doc).
pub fn resolve(value: &str) -> Result<PathBuf, Error> {
    let as_file = Path::new(value);
    if as_file.is_file() {
        return Ok(as_file.to_path_buf());
    }
    let dir = keys_dir();
    if !value.contains('/')
        && let Some(config) = config_dir()
    {
        let named = secret_key_path(&config, value);
        if named.is_file() {
            return Ok(named);
        }
    }
    Err(Error::NoSuchKey {
        value: value.to_owned(),
        available: dir.as_deref().map(names_in).unwrap_or_default(),
        keys_dir: dir,
    })
}

/// The secret key a `--sign-key NAME|FILE` value means.
pub fn read(value: &str) -> Result<SecretKey, Error> {
    Ok(SecretKey::read(&resolve(value)?)?)
}

/// The public key `NAME:base64` of the key `value` (NAME or FILE) means.
pub fn public(value: &str) -> Result<String, Error> {
    Ok(read(value)?.public().to_string())
}

/// The only key of the key directory, if there is exactly one; `Err` naming them when several.
pub fn only() -> Result<Option<SecretKey>, Error> {
    let Some(dir) = keys_dir() else {
        return Ok(None);
    };
    match key_files(&dir).as_slice() {
        [one] => Ok(Some(SecretKey::read(one)?)),
        [] => Ok(None),
        _ => Err(Error::CacheConfig(format!(
            "several keys in {} ({}): choose one with --sign-key NAME",
            dir.display(),
            names_in(&dir).join(", ")
        ))),
    }
}
