//! The dpkg database that `dpkg-query`, Trivy, Grype and Syft read, generated instead of running dpkg.
//!
//! # Layout written (decision)
//! By default an image gets what dpkg itself would leave on a merged-/usr system:
//! - `/var/lib/dpkg/status` — one stanza per package ([`status_stanza`]), sorted by name then
//!   architecture ([`status_file`]). `dpkg-query`, apt, Trivy, Grype and Syft all read it.
//! - `/var/lib/dpkg/info/<pkg>.list`, `.md5sums`, `.conffiles` ([`info_files`]); `<pkg>` is
//!   `name:arch` for `Multi-Arch: same` packages, as dpkg names them ([`info_name`]). The `.list` holds the
//!   paths **as shipped** (`/lib/x86_64-linux-gnu/libc.so.6`, not the merged `/usr/lib/…` one), exactly as
//!   dpkg records them on a merged-/usr system; this keeps `dpkg -S`, `dpkg --verify` and a later
//!   `apt-get upgrade` inside the image consistent with the package's own `md5sums`.
//!
//! - `/var/lib/dpkg/info/format` containing `1` ([`info_format_file`]): without it dpkg assumes the
//!   pre-multiarch layout and does not find `name:arch.list` files.
//!
//! The distroless layout — `/var/lib/dpkg/status.d/<pkg>` (one stanza) and `<pkg>.md5sums` — is
//! available through [`status_d_entries`] for per-package layers (each layer then carries its own
//! metadata). Do **not** write both layouts into one image: Syft and Trivy read both and would report
//! every package twice; and `dpkg-query` only reads `status`.

use std::collections::BTreeSet;

use super::unpack::DebEntry;

/// Errors of this module (none of the generators can fail on well-formed input; parsing can).
#[derive(Debug, thiserror::Error)]
pub enum DpkgDbError {
    #[error("control file has no `{field}` field")]
    MissingField { field: &'static str },
    #[error("control file line {line} is neither `Field: value` nor a continuation: {text:?}")]
    BadLine { line: usize, text: String },
}

/// dpkg's field order for the status file (`lib/dpkg/parse.c` `fieldinfos`); others follow in their
/// original order.
const FIELD_ORDER: &[&str] = &[
    "Package",
    "Essential",
    "Protected",
    "Status",
    "Priority",
    "Section",
    "Installed-Size",
    "Origin",
    "Maintainer",
    "Bugs",
    "Architecture",
    "Multi-Arch",
    "Source",
    "Version",
    "Config-Version",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Breaks",
    "Conflicts",
    "Enhances",
    "Conffiles",
    "Filename",
    "Size",
    "MD5sum",
    "MSDOS-Filename",
    "Description",
    "Triggers-Pending",
    "Triggers-Awaited",
];

/// Parse a control stanza into `(field, value)` pairs; the value keeps continuation lines (with their
/// leading space) after a `\n`, and has the first line's surrounding whitespace trimmed.
pub fn parse_control(control: &str) -> Result<Vec<(String, String)>, DpkgDbError> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for (i, line) in control.lines().enumerate() {
        if line.trim().is_empty() {
            if fields.is_empty() {
                continue;
            }
            break; // one stanza only
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            match fields.last_mut() {
                Some((_, v)) => {
                    v.push('\n');
                    v.push_str(line.trim_end());
                }
                None => {
                    return Err(DpkgDbError::BadLine {
                        line: i + 1,
                        text: line.to_owned(),
                    });
                }
            }
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(DpkgDbError::BadLine {
                line: i + 1,
                text: line.to_owned(),
            });
        };
        fields.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    Ok(fields)
}

/// The value of `field` (case-insensitive) in a control stanza.
pub fn control_field(control: &str, field: &str) -> Option<String> {
    parse_control(control)
        .ok()?
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(field))
        .map(|(_, v)| v)
}

/// The status stanza dpkg writes for an installed package: the control fields in dpkg's order with
/// `Status: install ok installed`, ending in a newline. Conffiles are omitted: see
/// [`status_stanza_with_conffiles`].
pub fn status_stanza(control: &str) -> String {
    status_stanza_with_conffiles(control, &[])
}

/// [`status_stanza`] with a `Conffiles:` field; each conffile is `(absolute path, md5 hex)`, as
/// [`super::unpack::UnpackedDeb::conffile_md5s`] gives them.
pub fn status_stanza_with_conffiles(control: &str, conffiles: &[(String, String)]) -> String {
    status_stanza_full(control, conffiles, &[])
}

/// [`status_stanza_with_conffiles`] with field `overrides` (`(name, value)`, replacing or adding).
/// apt-installed systems carry the archive's `Priority`/`Section` overrides from the `Packages` index,
/// which can differ from the `.deb` (bookworm's zlib1g: `required` in the `.deb`, `optional` in the
/// index); pass the index values here to match them.
pub fn status_stanza_full(
    control: &str,
    conffiles: &[(String, String)],
    overrides: &[(&str, &str)],
) -> String {
    // A malformed control still yields its well-formed lines: parse leniently here.
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in control.lines() {
        if line.trim().is_empty() {
            if fields.is_empty() {
                continue;
            }
            break;
        }
        if line.starts_with(' ') || line.starts_with('\t') {
            if let Some((_, v)) = fields.last_mut() {
                v.push('\n');
                v.push_str(line.trim_end());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.push((k.trim().to_owned(), v.trim().to_owned()));
        }
    }
    fields.retain(|(k, _)| {
        ![
            "Status",
            "Conffiles",
            "Config-Version",
            "Triggers-Pending",
            "Triggers-Awaited",
        ]
        .iter()
        .any(|f| f.eq_ignore_ascii_case(k))
    });
    for (name, value) in overrides {
        match fields
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some((_, v)) => *v = (*value).to_owned(),
            None => fields.push(((*name).to_owned(), (*value).to_owned())),
        }
    }
    fields.push(("Status".into(), "install ok installed".into()));
    if !conffiles.is_empty() {
        let mut v = String::new();
        for (path, md5) in conffiles {
            v.push_str(&format!("\n {path} {md5}"));
        }
        fields.push(("Conffiles".into(), v));
    }
    let rank = |k: &str| {
        FIELD_ORDER
            .iter()
            .position(|f| f.eq_ignore_ascii_case(k))
            .unwrap_or(FIELD_ORDER.len())
    };
    // Stable sort: unknown fields keep their original order after the known ones.
    let mut indexed: Vec<(usize, (String, String))> = fields.into_iter().enumerate().collect();
    indexed.sort_by_key(|(i, (k, _))| (rank(k), *i));
    let mut out = String::new();
    for (_, (k, v)) in indexed {
        let name = FIELD_ORDER
            .iter()
            .find(|f| f.eq_ignore_ascii_case(&k))
            .map_or(k.as_str(), |f| f);
        out.push_str(name);
        out.push(':');
        if !v.is_empty() && !v.starts_with('\n') {
            out.push(' ');
        }
        out.push_str(&v);
        out.push('\n');
    }
    out
}

/// `/var/lib/dpkg/status`: stanzas sorted by package name, then architecture, each followed by a blank line.
pub fn status_file(stanzas: &[String]) -> String {
    let mut keyed: Vec<(String, String, &String)> = stanzas
        .iter()
        .map(|s| {
            let pkg = control_field(s, "Package").unwrap_or_default();
            let arch = control_field(s, "Architecture").unwrap_or_default();
            (pkg, arch, s)
        })
        .collect();
    keyed.sort();
    let mut out = String::new();
    for (_, _, s) in keyed {
        out.push_str(s.trim_end_matches('\n'));
        out.push_str("\n\n");
    }
    out
}

/// The name dpkg gives a package's files under `info/`: `name`, or `name:arch` for `Multi-Arch: same`.
pub fn info_name(control: &str) -> Result<String, DpkgDbError> {
    let fields = parse_control(control)?;
    let get = |f: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(f))
            .map(|(_, v)| v.as_str())
    };
    let name = get("Package").ok_or(DpkgDbError::MissingField { field: "Package" })?;
    Ok(match (get("Multi-Arch"), get("Architecture")) {
        (Some(ma), Some(arch)) if ma.eq_ignore_ascii_case("same") => format!("{name}:{arch}"),
        _ => name.to_owned(),
    })
}

/// `/var/lib/dpkg/info/<pkg>.list`: `/.` first, then every path the package owns as shipped (and every
/// ancestor directory, which real packages list too), sorted bytewise, one per line.
pub fn info_list(entries: &[DebEntry]) -> String {
    let mut paths: BTreeSet<&str> = BTreeSet::new();
    for e in entries {
        let p = e.dpkg_path();
        paths.insert(p);
        let mut cur = p;
        while let Some(idx) = cur.rfind('/') {
            cur = &cur[..idx];
            if cur.is_empty() {
                break;
            }
            paths.insert(cur);
        }
    }
    let mut out = String::from("/.\n");
    for p in paths {
        out.push_str(p);
        out.push('\n');
    }
    out
}

/// `/var/lib/dpkg/info/format`: the info database layout version (`1` = multiarch names), once per image.
pub fn info_format_file() -> (String, String) {
    ("/var/lib/dpkg/info/format".to_owned(), "1\n".to_owned())
}

/// The `info/` files of one package as `(absolute path, content)`: `.list`, and `.md5sums` and
/// `.conffiles` when the package has them.
pub fn info_files(
    control: &str,
    entries: &[DebEntry],
    md5sums: Option<&str>,
    conffiles: &[String],
) -> Result<Vec<(String, String)>, DpkgDbError> {
    let name = info_name(control)?;
    let dir = "/var/lib/dpkg/info";
    let mut out = vec![(format!("{dir}/{name}.list"), info_list(entries))];
    if let Some(m) = md5sums {
        out.push((format!("{dir}/{name}.md5sums"), m.to_owned()));
    }
    if !conffiles.is_empty() {
        let text: String = conffiles.iter().map(|c| format!("{c}\n")).collect();
        out.push((format!("{dir}/{name}.conffiles"), text));
    }
    out.sort();
    Ok(out)
}

/// Distroless-style metadata for one package: `/var/lib/dpkg/status.d/<name>` holding its status stanza
/// and, when present, `/var/lib/dpkg/status.d/<name>.md5sums`. `<name>` is the bare package name.
pub fn status_d_entries(
    control: &str,
    md5sums: Option<&str>,
) -> Result<Vec<(String, String)>, DpkgDbError> {
    let fields = parse_control(control)?;
    let name = fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Package"))
        .map(|(_, v)| v.clone())
        .ok_or(DpkgDbError::MissingField { field: "Package" })?;
    let mut out = vec![(
        format!("/var/lib/dpkg/status.d/{name}"),
        status_stanza(control),
    )];
    if let Some(m) = md5sums {
        out.push((
            format!("/var/lib/dpkg/status.d/{name}.md5sums"),
            m.to_owned(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONTROL: &str = "Package: foo\nVersion: 1.0-1\nArchitecture: amd64\nMulti-Arch: same\n\
Maintainer: M <m@example.org>\nHomepage: https://example.org\nDepends: libc6\nDescription: short\n long line\n .\n more\n";

    #[test]
    fn stanza_order() {
        let s = status_stanza_with_conffiles(CONTROL, &[("/etc/foo.conf".into(), "abc".into())]);
        assert_eq!(
            s,
            "Package: foo\nStatus: install ok installed\nMaintainer: M <m@example.org>\nArchitecture: amd64\n\
Multi-Arch: same\nVersion: 1.0-1\nDepends: libc6\nConffiles:\n /etc/foo.conf abc\nDescription: short\n long line\n .\n more\n\
Homepage: https://example.org\n"
        );
        assert_eq!(info_name(CONTROL).ok().as_deref(), Some("foo:amd64"));
        let f = status_file(&[
            status_stanza("Package: b\nVersion: 1\n"),
            status_stanza("Package: a\nVersion: 2\n"),
        ]);
        assert_eq!(
            f,
            "Package: a\nStatus: install ok installed\nVersion: 2\n\nPackage: b\nStatus: install ok installed\nVersion: 1\n\n"
        );
    }
}
