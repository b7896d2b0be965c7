//! Alternatives pinned by the image (`alternatives = { NAME = PATH }`): the driver's input, and
//! the check that each one points where it was pinned, naming the registered choices otherwise.

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigureError;

/// `/.himg/alternatives`: `NAME PATH` lines for `update-alternatives --set`.
pub(super) fn write_alternatives(
    work: &Path,
    pinned: &BTreeMap<String, String>,
) -> Result<(), ConfigureError> {
    let text: String = pinned
        .iter()
        .map(|(name, path)| format!("{name} {path}\n"))
        .collect();
    let path = work.join("alternatives");
    std::fs::write(&path, text).map_err(|e| ConfigureError::io(&path, e))
}

/// Each pinned alternative now points at its path (`/etc/alternatives/NAME`), else the error
/// lists the choices the packages registered.
pub(super) fn check_alternatives(
    root: &Path,
    pinned: &BTreeMap<String, String>,
) -> Result<(), ConfigureError> {
    for (name, path) in pinned {
        let link = std::fs::read_link(root.join("etc/alternatives").join(name)).ok();
        if link.as_deref() == Some(Path::new(path)) {
            continue;
        }
        let admin = std::fs::read_to_string(root.join("var/lib/dpkg/alternatives").join(name))
            .unwrap_or_default();
        let choices = alternative_choices(&admin);
        return Err(ConfigureError::Alternative {
            name: name.clone(),
            path: path.clone(),
            choices,
        });
    }
    Ok(())
}

/// The choices of an alternative's admin file (`/var/lib/dpkg/alternatives/NAME`): its mode and
/// master link, `(slave name, slave link)` pairs up to a blank line, then per choice its path, its
/// priority and one line per slave, up to a blank line.
pub(super) fn alternative_choices(admin: &str) -> Vec<String> {
    let lines: Vec<&str> = admin.lines().collect();
    let mut i = 2;
    let mut slaves = 0;
    while i + 1 < lines.len() && !lines[i].is_empty() {
        slaves += 1;
        i += 2;
    }
    i += 1;
    let mut out = Vec::new();
    while i < lines.len() && !lines[i].is_empty() {
        out.push(lines[i].to_string());
        i += 2 + slaves;
    }
    out
}
