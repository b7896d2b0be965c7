//! Debian releases: codenames and the `Debian:N` ecosystem names of OSV, mapped both ways.

/// Known Debian releases: (major version, codename). `sid` has no number.
const RELEASES: &[(u32, &str)] = &[
    (7, "wheezy"),
    (8, "jessie"),
    (9, "stretch"),
    (10, "buster"),
    (11, "bullseye"),
    (12, "bookworm"),
    (13, "trixie"),
    (14, "forky"),
    (15, "duke"),
];

/// The codename for a major version (`12` → `bookworm`).
pub fn codename_of(major: u32) -> Option<&'static str> {
    RELEASES.iter().find(|(n, _)| *n == major).map(|(_, c)| *c)
}

/// The major version of a codename (`bookworm` → `12`).
pub fn major_of(codename: &str) -> Option<u32> {
    RELEASES
        .iter()
        .find(|(_, c)| c.eq_ignore_ascii_case(codename))
        .map(|(n, _)| *n)
}

/// The canonical release key the database stores: a codename (`bookworm`, `sid`), lower case.
/// Accepts codenames, major versions (`12`), `Debian:12` and `debian-12`; `None` for anything else.
pub fn normalize(text: &str) -> Option<String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t
        .strip_prefix("debian:")
        .or_else(|| t.strip_prefix("debian-"))
        .unwrap_or(&t)
        .to_string();
    if t == "sid" || t == "unstable" {
        return Some("sid".into());
    }
    if let Ok(n) = t.split('.').next().unwrap_or("").parse::<u32>() {
        return Some(
            codename_of(n)
                .map(str::to_owned)
                .unwrap_or(format!("debian-{n}")),
        );
    }
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_lowercase()) {
        return Some(t);
    }
    None
}

/// The OSV ecosystem of a release key (`bookworm` → `Debian:12`).
pub fn ecosystem_of(release: &str) -> Option<String> {
    if let Some(n) = major_of(release) {
        return Some(format!("Debian:{n}"));
    }
    release
        .strip_prefix("debian-")
        .map(|n| format!("Debian:{n}"))
}

/// Finds the release in an `/etc/os-release` text: `VERSION_CODENAME`, else `VERSION_ID`.
pub fn from_os_release(text: &str) -> Option<String> {
    let mut codename = None;
    let mut version = None;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"').trim_matches('\'');
        match k.trim() {
            "VERSION_CODENAME" if !v.is_empty() => codename = Some(v.to_string()),
            "VERSION_ID" if !v.is_empty() => version = Some(v.to_string()),
            _ => {}
        }
    }
    codename
        .and_then(|c| normalize(&c))
        .or_else(|| version.and_then(|v| normalize(&v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert_eq!(normalize("Debian:12").as_deref(), Some("bookworm"));
        assert_eq!(normalize("13").as_deref(), Some("trixie"));
        assert_eq!(normalize("Trixie").as_deref(), Some("trixie"));
        assert_eq!(normalize("unstable").as_deref(), Some("sid"));
        assert_eq!(normalize("Debian:99").as_deref(), Some("debian-99"));
        assert_eq!(normalize("12.4").as_deref(), Some("bookworm"));
        assert_eq!(normalize("trixie-security"), None);
        assert_eq!(ecosystem_of("bookworm").as_deref(), Some("Debian:12"));
        assert_eq!(ecosystem_of("debian-99").as_deref(), Some("Debian:99"));
        let os = "PRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nVERSION_ID=\"13\"\nVERSION_CODENAME=trixie\n";
        assert_eq!(from_os_release(os).as_deref(), Some("trixie"));
        assert_eq!(
            from_os_release("VERSION_ID=\"12\"").as_deref(),
            Some("bookworm")
        );
    }
}
