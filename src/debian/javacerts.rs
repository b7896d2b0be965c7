//! The Java trust store `/etc/ssl/certs/java/cacerts` that ca-certificates-java builds with `keytool`.
//!
//! Debian's store is a JKS keystore with password `changeit` holding one trusted-certificate entry per CA
//! certificate that `update-ca-certificates` enabled, aliased `debian:<name>.pem` after the
//! `/etc/ssl/certs/<name>.pem` link it was handed (see [`cabundle::ca_cert_links`]). JKS is a tiny
//! format, so it is written here by hand rather than through a keystore crate:
//!
//! ```text
//! u32 0xFEEDFEED, u32 version 2, u32 entry count
//! per entry: u32 tag 2 (trusted certificate), UTF alias, u64 creation time in ms,
//!            UTF "X.509", u32 DER length, DER bytes
//! SHA-1( password as UTF-16BE ‖ "Mighty Aphrodite" ‖ every preceding byte )
//! ```
//!
//! where `UTF` is Java's `DataOutput.writeUTF` (u16 length, modified UTF-8) and integers are big-endian.
//! Byte-reproducible where keytool is not: entries are sorted by alias (keytool writes a hash table's
//! order) and every entry's creation time is the given epoch (keytool writes the current time).
//! Aliases are lowercased as Java's JKS provider does. A file holding several certificates contributes
//! its first, as Java's `CertificateFactory.generateCertificate` does. Two files with the same link name
//! (in different directories) give one entry: the later path, bytewise, wins, like `ln -sf` in
//! `update-ca-certificates`.
//!
//! Checked against trixie's own store (ca-certificates-java with openjdk-21): from the same 148 Mozilla
//! certificates it holds the same entries (alias bytes, type, DER) and has the same size; only the entry
//! order and the timestamps differ.

use std::collections::BTreeMap;

use base64::Engine as _;
use sha1::{Digest, Sha1};

use super::cabundle;

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum JavaCertsError {
    #[error("certificate `{path}` holds no PEM `CERTIFICATE` block that decodes")]
    BadPem { path: String },
    #[error("certificate `{path}`: its alias `{alias}` is too long for a Java keystore")]
    AliasTooLong { path: String, alias: String },
    #[error("certificate `{path}` is too large for a Java keystore")]
    CertTooLarge { path: String },
    #[error("the time {epoch_seconds} s is out of a Java keystore's range")]
    Time { epoch_seconds: u64 },
}

/// Where Debian puts the store.
pub const CACERTS_PATH: &str = "/etc/ssl/certs/java/cacerts";
/// The store password Debian (and every JDK) uses.
pub const PASSWORD: &str = "changeit";

const MAGIC: u32 = 0xFEED_FEED;
const VERSION: u32 = 2;
const TAG_TRUSTED_CERT: u32 = 2;
const DIGEST_SALT: &[u8] = b"Mighty Aphrodite";
/// `writeUTF("X.509")`.
const CERT_TYPE: &[u8] = b"\0\x05X.509";

/// The JKS store from `(path, PEM bytes)` pairs (paths under [`cabundle::CERTS_DIR`], any order), every
/// entry created at `epoch_seconds`.
pub fn java_cacerts(
    certs: &[(String, Vec<u8>)],
    epoch_seconds: u64,
) -> Result<Vec<u8>, JavaCertsError> {
    let millis = epoch_seconds
        .checked_mul(1000)
        .filter(|ms| i64::try_from(*ms).is_ok())
        .ok_or(JavaCertsError::Time { epoch_seconds })?;

    let mut sorted: Vec<&(String, Vec<u8>)> = certs.iter().collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut entries: BTreeMap<String, (&str, Vec<u8>)> = BTreeMap::new();
    for (path, pem) in sorted {
        let der = first_pem_certificate(pem)
            .ok_or_else(|| JavaCertsError::BadPem { path: path.clone() })?;
        entries.insert(alias(path), (path.as_str(), der));
    }

    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC.to_be_bytes());
    out.extend_from_slice(&VERSION.to_be_bytes());
    // A BTreeMap built from a slice cannot exceed u32 entries on any real input; saturate regardless.
    out.extend_from_slice(
        &u32::try_from(entries.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for (alias, (path, der)) in &entries {
        out.extend_from_slice(&TAG_TRUSTED_CERT.to_be_bytes());
        write_utf(&mut out, alias).ok_or_else(|| JavaCertsError::AliasTooLong {
            path: (*path).to_owned(),
            alias: alias.clone(),
        })?;
        out.extend_from_slice(&millis.to_be_bytes());
        out.extend_from_slice(CERT_TYPE);
        let len = u32::try_from(der.len()).map_err(|_| JavaCertsError::CertTooLarge {
            path: (*path).to_owned(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(der);
    }
    let digest = integrity_digest(PASSWORD, &out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// The alias ca-certificates-java gives the certificate at `path`: `debian:` and the name of its
/// `/etc/ssl/certs/<name>.pem` link, lowercased as the JKS provider stores it.
pub fn alias(path: &str) -> String {
    let links = cabundle::ca_cert_links(&[path.to_owned()]);
    let link = links.first().map(|(l, _)| l.as_str()).unwrap_or(path);
    let name = link.rsplit('/').next().unwrap_or(link);
    format!("debian:{name}").to_lowercase()
}

/// The keyed SHA-1 that closes a JKS store: over the password's UTF-16BE code units, the salt
/// "Mighty Aphrodite" and `data`.
pub fn integrity_digest(password: &str, data: &[u8]) -> [u8; 20] {
    let mut h = Sha1::new();
    for unit in password.encode_utf16() {
        h.update(unit.to_be_bytes());
    }
    h.update(DIGEST_SALT);
    h.update(data);
    h.finalize().into()
}

/// The DER bytes of the first `CERTIFICATE` block of a PEM text.
fn first_pem_certificate(pem: &[u8]) -> Option<Vec<u8>> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let text = std::str::from_utf8(pem).ok()?;
    let body = &text[text.find(BEGIN)? + BEGIN.len()..];
    let body = &body[..body.find(END)?];
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    // An X.509 certificate is a DER SEQUENCE.
    (der.first() == Some(&0x30)).then_some(der)
}

/// Appends `s` as Java's `DataOutput.writeUTF` does (u16 byte length, modified UTF-8: NUL as two bytes,
/// characters beyond the BMP as two three-byte surrogates); `None` past 65535 bytes.
fn write_utf(out: &mut Vec<u8>, s: &str) -> Option<()> {
    let mut bytes = Vec::with_capacity(s.len());
    for unit in s.encode_utf16() {
        match unit {
            0x0001..=0x007F => bytes.push(unit as u8),
            0x0000 | 0x0080..=0x07FF => {
                bytes.push(0xC0 | (unit >> 6) as u8);
                bytes.push(0x80 | (unit & 0x3F) as u8);
            }
            _ => {
                bytes.push(0xE0 | (unit >> 12) as u8);
                bytes.push(0x80 | ((unit >> 6) & 0x3F) as u8);
                bytes.push(0x80 | (unit & 0x3F) as u8);
            }
        }
    }
    out.extend_from_slice(&u16::try_from(bytes.len()).ok()?.to_be_bytes());
    out.extend_from_slice(&bytes);
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A fresh self-signed certificate from the host's `openssl` (the test fails when it is missing).
    fn self_signed(dir: &std::path::Path, cn: &str) -> Vec<u8> {
        let key = dir.join(format!("{cn}.key"));
        let crt = dir.join(format!("{cn}.crt"));
        let status = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "1", "-subj", &format!("/CN={cn}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&crt)
            .output()
            .expect("the test needs `openssl`; run `bash tests/run.sh`, which installs it");
        assert!(status.status.success(), "openssl: {status:?}");
        std::fs::read(&crt).expect("read certificate")
    }

    fn fixture() -> Vec<(String, Vec<u8>)> {
        let dir = tempfile::tempdir().expect("tempdir");
        vec![
            (
                "/usr/share/ca-certificates/mozilla/Zeta_Root.crt".to_owned(),
                self_signed(dir.path(), "zeta"),
            ),
            (
                "/usr/share/ca-certificates/mozilla/Alpha (X), Root.crt".to_owned(),
                self_signed(dir.path(), "alpha"),
            ),
            (
                "/usr/share/ca-certificates/local/beta.crt".to_owned(),
                self_signed(dir.path(), "beta"),
            ),
        ]
    }

    fn read_u32(b: &[u8], at: &mut usize) -> u32 {
        let v = u32::from_be_bytes(b[*at..*at + 4].try_into().expect("4 bytes"));
        *at += 4;
        v
    }

    fn read_utf(b: &[u8], at: &mut usize) -> String {
        let len = u16::from_be_bytes([b[*at], b[*at + 1]]) as usize;
        let s = String::from_utf8(b[*at + 2..*at + 2 + len].to_vec()).expect("utf8");
        *at += 2 + len;
        s
    }

    #[test]
    fn store_is_reproducible_sorted_and_verifies() {
        let certs = fixture();
        let store = java_cacerts(&certs, 1_700_000_000).expect("store");
        let mut reversed = certs.clone();
        reversed.reverse();
        assert_eq!(
            store,
            java_cacerts(&reversed, 1_700_000_000).expect("store")
        );

        let (body, digest) = store.split_at(store.len() - 20);
        assert_eq!(digest, integrity_digest("changeit", body));
        assert_ne!(digest, integrity_digest("changeme", body));

        let mut at = 0;
        assert_eq!(read_u32(body, &mut at), 0xFEED_FEED);
        assert_eq!(read_u32(body, &mut at), 2);
        assert_eq!(read_u32(body, &mut at), 3);
        let mut aliases = Vec::new();
        for _ in 0..3 {
            assert_eq!(read_u32(body, &mut at), 2);
            aliases.push(read_utf(body, &mut at));
            let ms = u64::from_be_bytes(body[at..at + 8].try_into().expect("8 bytes"));
            assert_eq!(ms, 1_700_000_000_000);
            at += 8;
            assert_eq!(read_utf(body, &mut at), "X.509");
            let len = read_u32(body, &mut at) as usize;
            assert_eq!(body[at], 0x30);
            at += len;
        }
        assert_eq!(at, body.len());
        assert_eq!(
            aliases,
            [
                "debian:alpha_=x=__root.pem",
                "debian:beta.pem",
                "debian:zeta_root.pem"
            ]
        );
    }

    #[test]
    fn one_entry_per_alias_the_later_path_wins() {
        let certs = fixture();
        let twin = vec![
            (
                "/usr/share/ca-certificates/b/same.crt".to_owned(),
                certs[0].1.clone(),
            ),
            (
                "/usr/share/ca-certificates/a/same.crt".to_owned(),
                certs[1].1.clone(),
            ),
        ];
        let store = java_cacerts(&twin, 0).expect("store");
        let only_b = java_cacerts(&twin[..1], 0).expect("store");
        assert_eq!(store, only_b);
    }

    #[test]
    fn bad_pem_names_the_path() {
        let mut certs = fixture();
        certs.push((
            "/usr/share/ca-certificates/mozilla/broken.crt".to_owned(),
            b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n".to_vec(),
        ));
        let err = java_cacerts(&certs, 0).expect_err("broken PEM");
        assert!(err.to_string().contains("mozilla/broken.crt"), "{err}");
        assert!(java_cacerts(&[("/x.crt".to_owned(), b"text".to_vec())], 0).is_err());
    }

    #[test]
    fn modified_utf8() {
        let mut out = Vec::new();
        write_utf(&mut out, "a\0é😀").expect("short");
        assert_eq!(
            out,
            [
                0, 11, b'a', 0xC0, 0x80, 0xC3, 0xA9, 0xED, 0xA0, 0xBD, 0xED, 0xB8, 0x80
            ]
        );
        assert!(write_utf(&mut Vec::new(), &"x".repeat(65536)).is_none());
        assert_eq!(
            alias("/usr/share/ca-certificates/mozilla/Főtanúsítvány.crt"),
            "debian:főtanúsítvány.pem"
        );
    }
}
