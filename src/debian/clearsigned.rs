//! The cleartext signature framework of `InRelease` files (RFC 9580 §7), split and checked by
//! hand before any OpenPGP parsing, in one linear pass.
//!
//! ```text
//! -----BEGIN PGP SIGNED MESSAGE-----
//! Hash: SHA512                        ← zero or more `Hash:` armor headers, nothing else
//!                                     ← one empty line
//! Origin: Debian                      ← the signed text, dash-escaped (`- -----…`)
//! …
//! -----BEGIN PGP SIGNATURE-----       ← the only line of the text that may start with `-----`
//! …armored signature packets…
//! -----END PGP SIGNATURE-----         ← then nothing but whitespace
//! ```
//!
//! Every deviation is refused with a sentence naming the rule, so a damaged or hostile file never
//! reaches the OpenPGP library's own framing code (whose errors are internal assertions, and whose
//! body scan is quadratic in the number of lines). Only the signature block is handed to the
//! library. The signed text is rebuilt as RFC 9580 defines it: dash escapes removed, trailing
//! spaces and tabs removed, lines joined with CR LF, no line break after the last line.

/// The three parts of a clearsigned message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clearsigned<'a> {
    /// The algorithm names of the `Hash:` headers, as written (`SHA512`), in order.
    pub hashes: Vec<&'a str>,
    /// The text as signed: unescaped, trailing whitespace trimmed, CR LF line ends.
    pub signed_text: String,
    /// The armored signature block, from its `-----BEGIN PGP SIGNATURE-----` line to its
    /// `-----END PGP SIGNATURE-----` line inclusive.
    pub signature_block: &'a str,
}

const MESSAGE_BEGIN: &str = "-----BEGIN PGP SIGNED MESSAGE-----";
const SIGNATURE_BEGIN: &str = "-----BEGIN PGP SIGNATURE-----";
const SIGNATURE_END: &str = "-----END PGP SIGNATURE-----";

/// At most this many characters of a line are quoted in a message.
const QUOTE_CHARS: usize = 60;

/// A line for a message: printable ASCII, at most [`QUOTE_CHARS`] characters.
fn quote(line: &str) -> String {
    let mut q: String = line
        .chars()
        .take(QUOTE_CHARS)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if line.chars().count() > QUOTE_CHARS {
        q.push('…');
    }
    q
}

/// Lines with their end (`\n` or `\r\n`) removed, and the byte offset where each starts.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut offset = 0;
    text.split_inclusive('\n').map(move |raw| {
        let start = offset;
        offset += raw.len();
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        (start, line.strip_suffix('\r').unwrap_or(line))
    })
}

/// Splits and checks a clearsigned message; the error is the broken rule, as a sentence
/// fragment that follows "InRelease of SUITE is not a clearsigned OpenPGP message: ".
pub fn split(text: &str) -> Result<Clearsigned<'_>, String> {
    if text.contains('\0') {
        return Err("it contains a NUL byte".into());
    }
    let mut it = lines(text).peekable();
    // Leading empty lines are tolerated (as by GnuPG); any other text before the header is not.
    while it.peek().is_some_and(|(_, l)| l.trim().is_empty()) {
        it.next();
    }
    match it.next() {
        Some((_, l)) if l.trim_end() == MESSAGE_BEGIN => {}
        Some((_, l)) => {
            return Err(format!(
                "it starts with `{}` instead of `{MESSAGE_BEGIN}`",
                quote(l)
            ));
        }
        None => return Err("it is empty".into()),
    }
    let mut hashes = Vec::new();
    loop {
        let Some((_, line)) = it.next() else {
            return Err("it ends in its armor headers, before the signed text".into());
        };
        if line.trim().is_empty() {
            break;
        }
        let Some(value) = line.strip_prefix("Hash:") else {
            return Err(format!(
                "its armor header `{}` is not `Hash: ALGORITHM` (the only header a signed message may have)",
                quote(line)
            ));
        };
        for name in value.split(',').map(str::trim) {
            if name.is_empty() {
                return Err(format!("its header `{}` names no algorithm", quote(line)));
            }
            hashes.push(name);
        }
    }
    let mut signed_text = String::new();
    let mut first = true;
    let block_start = loop {
        let Some((start, line)) = it.next() else {
            return Err(format!("it has no `{SIGNATURE_BEGIN}` line"));
        };
        if line.starts_with("-----") {
            if line.trim_end() != SIGNATURE_BEGIN {
                return Err(format!(
                    "the signed text ends with `{}` instead of `{SIGNATURE_BEGIN}`",
                    quote(line)
                ));
            }
            break start;
        }
        if !first {
            signed_text.push_str("\r\n");
        }
        first = false;
        let unescaped = line.strip_prefix("- ").unwrap_or(line);
        signed_text.push_str(unescaped.trim_end_matches([' ', '\t']));
    };
    let block_end = loop {
        let Some((start, line)) = it.next() else {
            return Err(format!("its signature block has no `{SIGNATURE_END}` line"));
        };
        if line.trim_end() == SIGNATURE_END {
            break start + line.len();
        }
        if line.starts_with("-----") {
            return Err(format!(
                "its signature block has `{}` where `{SIGNATURE_END}` belongs",
                quote(line)
            ));
        }
    };
    if let Some((_, extra)) = it.find(|(_, l)| !l.trim().is_empty()) {
        return Err(format!(
            "text follows its signature block (`{}`); nothing may follow `{SIGNATURE_END}`",
            quote(extra)
        ));
    }
    Ok(Clearsigned {
        hashes,
        signed_text,
        signature_block: &text[block_start..block_end],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "-----BEGIN PGP SIGNATURE-----\n\nAAAA\n=AAAA\n-----END PGP SIGNATURE-----\n";

    #[test]
    fn splits_unescapes_and_trims() {
        let text = format!(
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512, SHA256\n\nA: b  \n- -x\r\n\n{SIG}\n\n"
        );
        let c = split(&text).expect("splits");
        assert_eq!(c.hashes, vec!["SHA512", "SHA256"]);
        assert_eq!(c.signed_text, "A: b\r\n-x\r\n");
        assert_eq!(c.signature_block, SIG.trim_end());
    }

    #[test]
    fn refuses_each_broken_rule() {
        let cases = [
            ("", "it is empty"),
            (
                "Origin: x\n",
                "instead of `-----BEGIN PGP SIGNED MESSAGE-----`",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n",
                "ends in its armor headers",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\nComment: x\n\n",
                "is not `Hash: ALGORITHM`",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\nHash: ,\n\n",
                "names no algorithm",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\n\nA: b\n",
                "has no `-----BEGIN PGP SIGNATURE-----`",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\n\n-----BEGIN PGP MESSAGE-----\n",
                "instead of",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\n\n-----BEGIN PGP SIGNATURE-----\nAA\n",
                "no `-----END",
            ),
            (
                "-----BEGIN PGP SIGNED MESSAGE-----\n\n-----BEGIN PGP SIGNATURE-----\n-----END PGP MESSAGE-----\n",
                "where",
            ),
            ("\0", "NUL"),
        ];
        for (text, want) in cases {
            let err = split(text).expect_err(text);
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let trailing = format!("-----BEGIN PGP SIGNED MESSAGE-----\n\nA\n{SIG}Valid-Until: x\n");
        let err = split(&trailing).expect_err("trailing text");
        assert!(
            err.contains("text follows its signature block (`Valid-Until: x`)"),
            "{err}"
        );
    }

    #[test]
    fn quotes_are_short_and_printable() {
        let long = format!("\x1b[31m{}", "x".repeat(200));
        let q = quote(&long);
        assert!(q.starts_with("?[31m"), "{q}");
        assert_eq!(q.chars().count(), QUOTE_CHARS + 1);
    }
}
