//! Licences of Debian packages from their machine-readable copyright files (DEP-5,
//! `/usr/share/doc/PKG/copyright` with a `Format: …copyright-format/1.0…` header), as SPDX licence
//! expressions. Debian short names map to SPDX identifiers (`GPL-2+` → `GPL-2.0-or-later`,
//! `Expat` → `MIT`); anything else becomes a `LicenseRef-…`. A file that is not DEP-5 gives `None`
//! (the SBOM then says `NOASSERTION`).

use std::collections::BTreeSet;

/// Debian short names (lowercase) and the SPDX identifiers they stand for.
const DEBIAN_TO_SPDX: &[(&str, &str)] = &[
    ("apache-2.0", "Apache-2.0"),
    ("apache-2", "Apache-2.0"),
    ("artistic", "Artistic-1.0-Perl"),
    ("artistic-1.0", "Artistic-1.0"),
    ("artistic-2.0", "Artistic-2.0"),
    ("bsd-2-clause", "BSD-2-Clause"),
    ("bsd-3-clause", "BSD-3-Clause"),
    ("bsd-4-clause", "BSD-4-Clause"),
    ("bsl-1.0", "BSL-1.0"),
    ("cc0", "CC0-1.0"),
    ("cc0-1.0", "CC0-1.0"),
    ("cc-by-3.0", "CC-BY-3.0"),
    ("cc-by-4.0", "CC-BY-4.0"),
    ("cc-by-sa-3.0", "CC-BY-SA-3.0"),
    ("cc-by-sa-4.0", "CC-BY-SA-4.0"),
    ("curl", "curl"),
    ("expat", "MIT"),
    ("mit", "MIT"),
    ("fsfap", "FSFAP"),
    ("fsful", "FSFUL"),
    ("fsfullr", "FSFULLR"),
    ("gfdl-1.2", "GFDL-1.2-only"),
    ("gfdl-1.2+", "GFDL-1.2-or-later"),
    ("gfdl-1.3", "GFDL-1.3-only"),
    ("gfdl-1.3+", "GFDL-1.3-or-later"),
    ("gpl-1", "GPL-1.0-only"),
    ("gpl-1+", "GPL-1.0-or-later"),
    ("gpl-2", "GPL-2.0-only"),
    ("gpl-2+", "GPL-2.0-or-later"),
    ("gpl-2.0", "GPL-2.0-only"),
    ("gpl-2.0+", "GPL-2.0-or-later"),
    ("gpl-3", "GPL-3.0-only"),
    ("gpl-3+", "GPL-3.0-or-later"),
    ("gpl-3.0", "GPL-3.0-only"),
    ("gpl-3.0+", "GPL-3.0-or-later"),
    ("isc", "ISC"),
    ("lgpl-2", "LGPL-2.0-only"),
    ("lgpl-2+", "LGPL-2.0-or-later"),
    ("lgpl-2.1", "LGPL-2.1-only"),
    ("lgpl-2.1+", "LGPL-2.1-or-later"),
    ("lgpl-3", "LGPL-3.0-only"),
    ("lgpl-3+", "LGPL-3.0-or-later"),
    ("lgpl-3.0", "LGPL-3.0-only"),
    ("lgpl-3.0+", "LGPL-3.0-or-later"),
    ("mpl-1.1", "MPL-1.1"),
    ("mpl-2.0", "MPL-2.0"),
    ("openssl", "OpenSSL"),
    ("psf-2", "PSF-2.0"),
    ("python-2.0", "Python-2.0"),
    ("sleepycat", "Sleepycat"),
    ("unicode-dfs-2016", "Unicode-DFS-2016"),
    ("x11", "X11"),
    ("zlib", "Zlib"),
    ("zpl-2.1", "ZPL-2.1"),
];

/// The SPDX licence expression of a DEP-5 copyright file, or `None` when it is not machine-readable
/// or names no licence. Every distinct `License:` synopsis of the header and `Files` paragraphs is
/// one term; terms are joined with `AND`, sorted.
pub fn from_copyright(text: &str) -> Option<String> {
    let paragraphs = paragraphs(text);
    let header = paragraphs.first()?;
    let format = field(header, "Format")?;
    if !format.contains("copyright-format") && !format.contains("dep5") {
        return None;
    }
    let mut terms = BTreeSet::new();
    for (i, p) in paragraphs.iter().enumerate() {
        // Stand-alone `License:` paragraphs give licence texts, not the package's licences.
        if i > 0 && field(p, "Files").is_none() {
            continue;
        }
        if let Some(synopsis) = field(p, "License")
            && let Some(expr) = synopsis_to_spdx(&synopsis)
        {
            terms.insert(expr);
        }
    }
    if terms.is_empty() {
        return None;
    }
    let many = terms.len() > 1;
    Some(
        terms
            .into_iter()
            .map(|t| {
                if many && t.contains(" OR ") {
                    format!("({t})")
                } else {
                    t
                }
            })
            .collect::<Vec<_>>()
            .join(" AND "),
    )
}

/// The `LicenseRef-…` identifiers an expression uses (they need a declaration in SPDX documents).
pub fn license_refs(expression: &str) -> BTreeSet<String> {
    expression
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|t| t.starts_with("LicenseRef-"))
        .map(str::to_string)
        .collect()
}

/// Deb822 paragraphs: each a list of (field, first-line value).
fn paragraphs(text: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut current: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) || line.starts_with('#') {
            continue; // continuation lines (licence texts) and comments
        }
        if let Some((key, value)) = line.split_once(':') {
            current.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn field(paragraph: &[(String, String)], name: &str) -> Option<String> {
    paragraph
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
}

/// One `License:` synopsis (`GPL-2+ or Artistic`, `GPL-2+ with OpenSSL exception`, `MIT, and
/// BSD-3-clause`) as an SPDX expression.
fn synopsis_to_spdx(synopsis: &str) -> Option<String> {
    let words: Vec<&str> = synopsis
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        match w.to_ascii_lowercase().as_str() {
            "or" => out.push("OR".into()),
            "and" => out.push("AND".into()),
            _ => {
                // `NAME with SOMETHING exception`: one reference for the whole phrase.
                let mut name = w.to_string();
                if words
                    .get(i + 1)
                    .is_some_and(|n| n.eq_ignore_ascii_case("with"))
                {
                    let mut j = i + 2;
                    let mut phrase = vec![w, "with"];
                    while j < words.len() {
                        let lw = words[j].to_ascii_lowercase();
                        if lw == "or" || lw == "and" {
                            break;
                        }
                        phrase.push(words[j]);
                        j += 1;
                    }
                    i = j;
                    out.push(license_ref(&phrase.join("-")));
                    continue;
                }
                name = spdx_id(&name);
                out.push(name);
            }
        }
        i += 1;
    }
    // Drop dangling operators (`MIT and`), then require operand/operator alternation.
    while out.last().is_some_and(|t| t == "OR" || t == "AND") {
        out.pop();
    }
    while out.first().is_some_and(|t| t == "OR" || t == "AND") {
        out.remove(0);
    }
    let alternates = out
        .iter()
        .enumerate()
        .all(|(i, t)| (i % 2 == 1) == (t == "OR" || t == "AND"));
    if out.is_empty() || !alternates {
        return None;
    }
    // Mixed AND/OR without parentheses is ambiguous in Debian's syntax: keep it as one reference.
    if out.iter().any(|t| t == "OR") && out.iter().any(|t| t == "AND") {
        return Some(license_ref(synopsis));
    }
    Some(out.join(" "))
}

/// The SPDX identifier of a Debian short name, else a `LicenseRef-`.
fn spdx_id(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    DEBIAN_TO_SPDX
        .iter()
        .find(|(d, _)| *d == lower)
        .map(|(_, s)| (*s).to_string())
        .unwrap_or_else(|| license_ref(name))
}

/// `LicenseRef-` plus the name with `+` spelled `-or-later` and every other character outside
/// `[A-Za-z0-9.-]` replaced by `-`.
fn license_ref(name: &str) -> String {
    let mut id = String::from("LicenseRef-");
    let mut last_dash = false;
    for c in name.replace('+', "-or-later").chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            c
        } else {
            '-'
        };
        if c == '-' && last_dash {
            continue;
        }
        last_dash = c == '-';
        id.push(c);
    }
    while id.ends_with('-') {
        id.pop();
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP5: &str = "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: demo

Files: *
Copyright: 2000 someone
License: GPL-2+

Files: lib/*
Copyright: 2001 someone else
License: Expat or Artistic

Files: odd/*
License: GPL-2+ with OpenSSL exception

License: GPL-2+
 This program is free software...
";

    #[test]
    fn dep5_gives_an_spdx_expression() {
        assert_eq!(
            from_copyright(DEP5).as_deref(),
            Some(
                "GPL-2.0-or-later AND LicenseRef-GPL-2-or-later-with-OpenSSL-exception AND (MIT OR Artistic-1.0-Perl)"
            )
        );
    }

    #[test]
    fn not_dep5_is_none() {
        assert_eq!(from_copyright("GPL\n"), None);
        assert_eq!(
            from_copyright("This is free software.\n\nLicense: MIT\n"),
            None
        );
        assert_eq!(
            from_copyright("Format: copyright-format/1.0\n\nFiles: *\nCopyright: x\n"),
            None
        );
    }

    #[test]
    fn unknown_names_become_references() {
        assert_eq!(
            from_copyright("Format: copyright-format/1.0\n\nFiles: *\nLicense: public-domain\n")
                .as_deref(),
            Some("LicenseRef-public-domain")
        );
        assert_eq!(
            license_refs("(MIT OR LicenseRef-a) AND LicenseRef-b"),
            ["LicenseRef-a".to_string(), "LicenseRef-b".to_string()].into()
        );
    }
}
