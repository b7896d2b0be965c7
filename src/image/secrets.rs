//! Recognising credentials in file contents: PEM private keys and AWS access keys. Used by the
//! `no-secrets` policy rule, through the facts gathered while a layer is read.

/// Largest file the secret scan reads.
pub const SCAN_LIMIT: u64 = 1 << 20;

/// What secret a file holds, if any: a PEM private key or an AWS-style access key.
pub fn secret_in(bytes: &[u8]) -> Option<&'static str> {
    let find = |needle: &[u8]| bytes.windows(needle.len()).position(|w| w == needle);
    if let Some(at) = find(b"-----BEGIN ") {
        let rest = &bytes[at..bytes.len().min(at + 64)];
        let line = rest.split(|b| *b == b'\n').next().unwrap_or(rest);
        if line.windows(11).any(|w| w == b"PRIVATE KEY") {
            return Some("a PEM private key");
        }
    }
    // `AKIA`/`ASIA` + 16 upper-case letters or digits, standing alone.
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    for i in 0..bytes.len().saturating_sub(19) {
        let w = &bytes[i..i + 4];
        if (w == b"AKIA" || w == b"ASIA")
            && (i == 0 || !alnum(bytes[i - 1]))
            && bytes[i + 4..i + 20]
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            && bytes.get(i + 20).is_none_or(|b| !alnum(*b))
        {
            return Some("an AWS access key id");
        }
    }
    if find(b"aws_secret_access_key").is_some() {
        return Some("an AWS secret access key");
    }
    None
}
