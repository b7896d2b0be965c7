//! The CA bundle and links that `update-ca-certificates` (run by ca-certificates' postinst) produces.
//!
//! `update-ca-certificates` reads `/etc/ca-certificates.conf` — which the package's config script fills
//! with every `*.crt` below `/usr/share/ca-certificates`, sorted — and for each enabled certificate
//! appends the file to `/etc/ssl/certs/ca-certificates.crt`, adding a final newline when missing, and
//! links `/etc/ssl/certs/<name>.pem` to it. Local certificates (`/usr/local/share/ca-certificates`)
//! follow, sorted.
//!
//! [`ca_bundle`] reproduces the bundle byte for byte for certificates with LF line endings (all of
//! Debian's): sorted bytewise by path, each certificate's text followed by one newline if it lacks one.
//! Differences, deliberate: CRLF and lone CR line endings are normalised to LF (the script copies them
//! verbatim; OpenSSL reads both). Not generated: the `openssl rehash` `<hash>.0` links (they need X.509
//! subject-name canonicalisation; programs that use the bundle file, the common case, do not need them)
//! and the Java keystore hook.

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum CaBundleError {
    #[error("certificate `{path}` is not UTF-8 text")]
    NotText { path: String },
}

/// Where the certificates live in the image.
pub const CERTS_DIR: &str = "/usr/share/ca-certificates";
/// The bundle file.
pub const BUNDLE_PATH: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The bundle text from `(path, bytes)` pairs (paths under [`CERTS_DIR`], any order). Non-UTF-8
/// certificates are copied with invalid bytes replaced; see [`try_ca_bundle`] to refuse them instead.
pub fn ca_bundle(certs: &[(String, Vec<u8>)]) -> String {
    let mut sorted: Vec<&(String, Vec<u8>)> = certs.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = String::new();
    for (_, bytes) in sorted {
        append_cert(&mut out, &String::from_utf8_lossy(bytes));
    }
    out
}

/// [`ca_bundle`], refusing certificates that are not UTF-8.
pub fn try_ca_bundle(certs: &[(String, Vec<u8>)]) -> Result<String, CaBundleError> {
    for (path, bytes) in certs {
        if std::str::from_utf8(bytes).is_err() {
            return Err(CaBundleError::NotText { path: path.clone() });
        }
    }
    Ok(ca_bundle(certs))
}

fn append_cert(out: &mut String, text: &str) {
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    out.push_str(&normalised);
    if !normalised.is_empty() && !normalised.ends_with('\n') {
        out.push('\n');
    }
}

/// Whether `path` is a certificate `update-ca-certificates` picks up: a `*.crt` below [`CERTS_DIR`].
pub fn is_ca_cert(path: &str) -> bool {
    path.strip_prefix(CERTS_DIR)
        .is_some_and(|r| r.starts_with('/'))
        && path.ends_with(".crt")
}

/// The `/etc/ssl/certs/<name>.pem → <cert path>` links, as `(link path, target)`, sorted by link path.
/// `<name>` is the file name without `.crt`, with spaces and commas turned into `_` and parentheses into
/// `=` (the script's `sed`).
pub fn ca_cert_links(cert_paths: &[String]) -> Vec<(String, String)> {
    let mut links: Vec<(String, String)> = cert_paths
        .iter()
        .map(|p| {
            let base = p.rsplit('/').next().unwrap_or(p);
            let base = base.strip_suffix(".crt").unwrap_or(base);
            let name: String = base
                .chars()
                .map(|c| match c {
                    ' ' | ',' => '_',
                    '(' | ')' => '=',
                    c => c,
                })
                .collect();
            (format!("/etc/ssl/certs/{name}.pem"), p.clone())
        })
        .collect();
    links.sort();
    links
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_and_links() {
        let certs = vec![
            (
                "/usr/share/ca-certificates/mozilla/b.crt".to_owned(),
                b"B\r\nB".to_vec(),
            ),
            (
                "/usr/share/ca-certificates/mozilla/a (x),y.crt".to_owned(),
                b"A\n".to_vec(),
            ),
        ];
        assert_eq!(ca_bundle(&certs), "A\nB\nB\n");
        let links = ca_cert_links(&certs.iter().map(|c| c.0.clone()).collect::<Vec<_>>());
        assert_eq!(links[0].0, "/etc/ssl/certs/a_=x=_y.pem");
        assert!(is_ca_cert("/usr/share/ca-certificates/mozilla/a.crt"));
        assert!(!is_ca_cert("/usr/share/ca-certificates-java/a.crt"));
    }
}
