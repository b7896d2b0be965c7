//! deb822 control data: stanzas of `Field: value` lines, and dependency relations.
//!
//! [`parse_stanzas`] reads the format of Packages indexes, dpkg status files and
//! `DEBIAN/control`: paragraphs separated by blank lines (lines of only spaces or tabs count
//! as blank), field names matched case-insensitively, continuation lines (starting with a
//! space or tab) kept verbatim. A value is stored the way dpkg stores it: the text after
//! the colon with surrounding whitespace removed, then for every continuation line a `\n`
//! followed by that line (leading whitespace kept, trailing whitespace removed). So
//! `Description` keeps its ` .` lines and [`Stanza`]'s `Display` writes the stanza back
//! byte-for-byte in dpkg's layout. Lines starting with `#` between fields are comments.
//! PGP-armored input (an `InRelease` file) is refused: strip the signature first.
//!
//! [`parse_relations`] reads `Depends`-style fields: `a (>= 1) | b:any, c [amd64 !i386] <!nocheck>`.
//! Build profiles (`<…>`) are accepted and dropped; the deprecated operators `<` and `>`
//! mean `<=` and `>=`, as in dpkg. Empty groups (a trailing comma) are skipped.

use std::fmt;

use super::version::{DebVersion, VersionError};

/// Why control data could not be read. Line numbers start at 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    #[error("line {line}: expected `Field: value`, found `{text}`")]
    MissingColon { line: usize, text: String },
    #[error("line {line}: empty field name")]
    EmptyFieldName { line: usize },
    #[error("line {line}: continuation line before any field")]
    ContinuationWithoutField { line: usize },
    #[error("line {line}: field `{name}` appears twice in one stanza")]
    DuplicateField { line: usize, name: String },
    #[error("line {line}: input is PGP-armored; verify and strip the signature before parsing")]
    PgpArmored { line: usize },
    #[error("invalid relation `{input}`: {reason}")]
    Relation { input: String, reason: String },
    #[error("invalid version in `{context}`")]
    Version {
        context: String,
        #[source]
        source: VersionError,
    },
    #[error("stanza {stanza}: required field `{field}` is missing")]
    MissingField { stanza: String, field: &'static str },
    #[error("package `{package}`: field `{field}` has invalid value `{value}`: {reason}")]
    InvalidField {
        package: String,
        field: String,
        value: String,
        reason: String,
    },
}

/// One paragraph of deb822 data, fields in their original order.
///
/// Stored as one text buffer plus `(name, value)` offsets, so a 60,000-stanza index costs
/// two allocations per stanza instead of two per field. Values are in the stored form
/// described in the module documentation.
#[derive(Clone, Default)]
pub struct Stanza {
    buf: String,
    /// `[name_start, name_end (= value_start), value_end]` into `buf`.
    spans: Vec<[u32; 3]>,
}

impl Stanza {
    /// Builds a stanza from ordered `(name, value)` pairs.
    pub fn from_fields<N: AsRef<str>, V: AsRef<str>>(
        fields: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut st = Stanza::default();
        for (n, v) in fields {
            st.push(n.as_ref(), v.as_ref());
        }
        st
    }

    fn push(&mut self, name: &str, value: &str) {
        let a = self.buf.len();
        self.buf.push_str(name);
        let b = self.buf.len();
        self.buf.push_str(value);
        let c = self.buf.len();
        self.spans
            .push([a, b, c].map(|x| u32::try_from(x).unwrap_or(u32::MAX)));
    }

    fn name_at(&self, sp: &[u32; 3]) -> &str {
        &self.buf[sp[0] as usize..sp[1] as usize]
    }

    fn value_at(&self, sp: &[u32; 3]) -> &str {
        &self.buf[sp[1] as usize..sp[2] as usize]
    }

    /// The value of a field, matched case-insensitively.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.spans
            .iter()
            .find(|sp| self.name_at(sp).eq_ignore_ascii_case(name))
            .map(|sp| self.value_at(sp))
    }

    /// All `(name, value)` fields in order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans
            .iter()
            .map(|sp| (self.name_at(sp), self.value_at(sp)))
    }

    /// Sets a field: replaces the value in place (keeping the field's position) if
    /// present, else appends it.
    pub fn set(&mut self, name: &str, value: impl AsRef<str>) {
        let value = value.as_ref();
        match self
            .spans
            .iter()
            .position(|sp| self.name_at(sp).eq_ignore_ascii_case(name))
        {
            Some(i) => {
                let old = self.name_at(&self.spans[i]).to_string();
                self.push(&old, value);
                if let Some(last) = self.spans.pop() {
                    self.spans[i] = last;
                }
            }
            None => self.push(name, value),
        }
    }

    /// Removes a field, returning its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self
            .spans
            .iter()
            .position(|sp| self.name_at(sp).eq_ignore_ascii_case(name))?;
        let v = self.value_at(&self.spans[i]).to_string();
        self.spans.remove(i);
        Some(v)
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

impl PartialEq for Stanza {
    fn eq(&self, other: &Self) -> bool {
        self.fields().eq(other.fields())
    }
}

impl Eq for Stanza {}

impl fmt::Debug for Stanza {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.fields()).finish()
    }
}

impl fmt::Display for Stanza {
    /// Writes the stanza in dpkg's layout, each field ending in `\n` (no trailing blank line).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.fields() {
            if value.is_empty() || value.starts_with('\n') {
                writeln!(f, "{name}:{value}")?;
            } else {
                writeln!(f, "{name}: {value}")?;
            }
        }
        Ok(())
    }
}

/// Splits deb822 text into stanzas. See the module documentation for the rules.
pub fn parse_stanzas(text: &str) -> Result<Vec<Stanza>, ControlError> {
    let mut out = Vec::new();
    for_each_stanza(text, |stanza| {
        out.push(stanza);
        Ok(())
    })?;
    Ok(out)
}

/// Like [`parse_stanzas`], handing each stanza to `each` as soon as it is complete (so a large
/// index is never held twice); stops at the first error, `each`'s included.
pub fn for_each_stanza(
    text: &str,
    mut each: impl FnMut(Stanza) -> Result<(), ControlError>,
) -> Result<(), ControlError> {
    let mut cur = Stanza::default();
    // A 64-bit filter of the field names seen in `cur`: the duplicate check scans the
    // stanza only when the filter says the name may have been seen.
    let mut seen: u64 = 0;
    for (idx, raw) in text.split('\n').enumerate() {
        let line_no = idx + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let bytes = line.as_bytes();
        let Some(&first) = bytes.first() else {
            if !cur.is_empty() {
                each(std::mem::take(&mut cur))?;
                seen = 0;
            }
            continue;
        };
        if first == b' ' || first == b'\t' {
            let rest = line.trim_end();
            if rest.is_empty() {
                if !cur.is_empty() {
                    each(std::mem::take(&mut cur))?;
                    seen = 0;
                }
                continue;
            }
            let Some(last) = cur.spans.last_mut() else {
                return Err(ControlError::ContinuationWithoutField { line: line_no });
            };
            // The last field's value ends the buffer: extend it in place.
            cur.buf.push('\n');
            cur.buf.push_str(rest);
            last[2] = u32::try_from(cur.buf.len()).unwrap_or(u32::MAX);
            continue;
        }
        if first == b'#' {
            continue;
        }
        let Some(colon) = bytes.iter().position(|&c| c == b':') else {
            if line.starts_with("-----BEGIN PGP") {
                return Err(ControlError::PgpArmored { line: line_no });
            }
            return Err(ControlError::MissingColon {
                line: line_no,
                text: line.to_string(),
            });
        };
        let name = &line[..colon];
        if name.is_empty() || name.bytes().any(|b| b == b' ' || b == b'\t') {
            if line.starts_with("-----BEGIN PGP") {
                return Err(ControlError::PgpArmored { line: line_no });
            }
            if name.is_empty() {
                return Err(ControlError::EmptyFieldName { line: line_no });
            }
            return Err(ControlError::MissingColon {
                line: line_no,
                text: line.to_string(),
            });
        }
        let nb = name.as_bytes();
        let bit = 1u64
            << ((nb.len() * 7
                + usize::from(nb[0].to_ascii_lowercase())
                + usize::from(nb[nb.len() - 1].to_ascii_lowercase()) * 3)
                % 64);
        let maybe_dup = seen & bit != 0;
        seen |= bit;
        if maybe_dup && cur.get(name).is_some() {
            return Err(ControlError::DuplicateField {
                line: line_no,
                name: name.to_string(),
            });
        }
        if cur.is_empty() {
            // Typical stanzas are a few hundred bytes; avoid regrowing from zero.
            cur.buf.reserve(1024);
        }
        let value = line[colon + 1..].trim_matches([' ', '\t']);
        cur.push(name, value);
    }
    if !cur.is_empty() {
        each(cur)?;
    }
    Ok(())
}

/// A version comparison operator in a relation.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (also the deprecated `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (also the deprecated `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    /// Whether `have OP want` holds.
    pub fn holds(self, have: &DebVersion, want: &DebVersion) -> bool {
        use std::cmp::Ordering::*;
        let c = have.cmp(want);
        match self {
            Op::Lt => c == Less,
            Op::Le => c != Greater,
            Op::Eq => c == Equal,
            Op::Ge => c != Less,
            Op::Gt => c == Greater,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One package relation: `name[:arch] [(op version)] [[arch list]]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Relation {
    pub name: String,
    /// `any`, `native` or an architecture name, without the colon.
    pub arch_qualifier: Option<String>,
    pub version: Option<(Op, DebVersion)>,
    /// `[amd64 !i386]` as written (`!` kept); empty when absent.
    pub arch_restriction: Vec<String>,
}

impl Relation {
    /// An unversioned, unqualified relation on `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Relation {
            name: name.into(),
            arch_qualifier: None,
            version: None,
            arch_restriction: Vec::new(),
        }
    }

    /// Whether a package (or provided) version meets the version constraint.
    /// An absent version (an unversioned Provides) meets only unversioned relations.
    pub fn version_matches(&self, have: Option<&DebVersion>) -> bool {
        match (&self.version, have) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some((op, want)), Some(have)) => op.holds(have, want),
        }
    }

    /// Whether the `[…]` restriction (if any) admits `arch`. Supports plain names, `any`,
    /// `linux-any` and `any-<cpu>`; a list of only negations admits everything not negated.
    pub fn applies_to_arch(&self, arch: &str) -> bool {
        if self.arch_restriction.is_empty() {
            return true;
        }
        let mut positive = false;
        let mut any_positive = false;
        for item in &self.arch_restriction {
            match item.strip_prefix('!') {
                Some(neg) => {
                    if arch_matches(neg, arch) {
                        return false;
                    }
                }
                None => {
                    any_positive = true;
                    positive |= arch_matches(item, arch);
                }
            }
        }
        positive || !any_positive
    }

    /// Parses one relation (no `,` or `|`).
    pub fn parse(input: &str) -> Result<Self, ControlError> {
        parse_one(input)
    }
}

/// Debian architecture wildcard matching, enough for binary indexes.
fn arch_matches(pattern: &str, arch: &str) -> bool {
    if pattern == arch || pattern == "any" {
        return true;
    }
    // Debian-on-Linux architecture names have no OS prefix (amd64, arm64, …).
    let (os, cpu) = arch.split_once('-').unwrap_or(("linux", arch));
    match pattern.split_once('-') {
        Some(("any", pcpu)) => pcpu == cpu,
        Some((pos, "any")) => pos == os,
        _ => false,
    }
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(q) = &self.arch_qualifier {
            write!(f, ":{q}")?;
        }
        if let Some((op, v)) = &self.version {
            write!(f, " ({op} {v})")?;
        }
        if !self.arch_restriction.is_empty() {
            write!(f, " [{}]", self.arch_restriction.join(" "))?;
        }
        Ok(())
    }
}

/// `a | b | c`: any one of them satisfies the dependency.
pub type Alternatives = Vec<Relation>;

/// Formats an or-group the way it is written in control files.
pub fn display_alternatives(alts: &[Relation]) -> String {
    alts.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Parses a `Depends`-style field into or-groups.
pub fn parse_relations(field: &str) -> Result<Vec<Alternatives>, ControlError> {
    let mut out = Vec::new();
    for group in field.split(',') {
        if group.trim().is_empty() {
            continue;
        }
        let mut alts = Vec::new();
        for alt in group.split('|') {
            alts.push(parse_one(alt)?);
        }
        out.push(alts);
    }
    Ok(out)
}

fn rel_err(input: &str, reason: impl Into<String>) -> ControlError {
    ControlError::Relation {
        input: input.trim().to_string(),
        reason: reason.into(),
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn parse_one(input: &str) -> Result<Relation, ControlError> {
    let b = input.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && is_ws(b[*i]) {
            *i += 1;
        }
    };
    skip_ws(&mut i);
    let start = i;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'+' | b'-' | b'.' | b'_'))
    {
        i += 1;
    }
    let name = &input[start..i];
    if name.is_empty() {
        return Err(rel_err(input, "missing package name"));
    }
    if !b[start].is_ascii_alphanumeric() {
        return Err(rel_err(
            input,
            format!("package name `{name}` must start with a letter or digit"),
        ));
    }
    let mut arch_qualifier = None;
    if i < b.len() && b[i] == b':' {
        i += 1;
        let qs = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-') {
            i += 1;
        }
        if qs == i {
            return Err(rel_err(input, "empty architecture qualifier after `:`"));
        }
        arch_qualifier = Some(input[qs..i].to_string());
    }
    skip_ws(&mut i);
    let mut version = None;
    if i < b.len() && b[i] == b'(' {
        let close = input[i..]
            .find(')')
            .map(|p| p + i)
            .ok_or_else(|| rel_err(input, "missing `)`"))?;
        let inner = input[i + 1..close].trim();
        let op_len = inner
            .bytes()
            .take_while(|c| matches!(c, b'<' | b'>' | b'='))
            .count();
        let op = match &inner[..op_len] {
            "<<" => Op::Lt,
            "<=" | "<" => Op::Le,
            "=" => Op::Eq,
            ">=" | ">" => Op::Ge,
            ">>" => Op::Gt,
            "" => return Err(rel_err(input, "missing comparison operator")),
            other => return Err(rel_err(input, format!("unknown operator `{other}`"))),
        };
        let vtext = inner[op_len..].trim();
        let v: DebVersion = vtext.parse().map_err(|source| ControlError::Version {
            context: input.trim().to_string(),
            source,
        })?;
        version = Some((op, v));
        i = close + 1;
        skip_ws(&mut i);
    }
    let mut arch_restriction = Vec::new();
    if i < b.len() && b[i] == b'[' {
        let close = input[i..]
            .find(']')
            .map(|p| p + i)
            .ok_or_else(|| rel_err(input, "missing `]`"))?;
        arch_restriction = input[i + 1..close]
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect();
        if arch_restriction.is_empty() {
            return Err(rel_err(input, "empty architecture list"));
        }
        i = close + 1;
        skip_ws(&mut i);
    }
    // Build profiles: any number of `<…>` groups, ignored for binary packages.
    while i < b.len() && b[i] == b'<' {
        let close = input[i..]
            .find('>')
            .map(|p| p + i)
            .ok_or_else(|| rel_err(input, "missing `>` after build profile"))?;
        i = close + 1;
        skip_ws(&mut i);
    }
    if i != b.len() {
        return Err(rel_err(
            input,
            format!("unexpected `{}`", input[i..].trim()),
        ));
    }
    Ok(Relation {
        name: name.to_string(),
        arch_qualifier,
        version,
        arch_restriction,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> DebVersion {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn rels(s: &str) -> Vec<Alternatives> {
        parse_relations(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn stanzas_basic_and_multiline() {
        let text = "Package: foo\nVersion: 1.0\nDescription: short\n long line\n .\n  indented  \n\n\n\
                    package: bar\r\nDepends:\n a,\n b\n";
        let st = parse_stanzas(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].get("package"), Some("foo"));
        assert_eq!(
            st[0].get("DESCRIPTION"),
            Some("short\n long line\n .\n  indented")
        );
        assert_eq!(st[1].get("Package"), Some("bar"));
        assert_eq!(st[1].get("depends"), Some("\n a,\n b"));
        assert_eq!(
            st[0].to_string(),
            "Package: foo\nVersion: 1.0\nDescription: short\n long line\n .\n  indented\n"
        );
        assert_eq!(st[1].to_string(), "package: bar\nDepends:\n a,\n b\n");
        assert_eq!(rels(st[1].get("depends").unwrap_or_default()).len(), 2);
    }

    #[test]
    fn stanzas_whitespace_separator_comments_and_set() {
        let text = "# comment\nA: 1\n \t\nB:2\n#x\nC:   3  \n";
        let mut st = parse_stanzas(text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(st.len(), 2);
        assert_eq!(st[1].get("b"), Some("2"));
        assert_eq!(st[1].get("c"), Some("3"));
        st[1].set("b", "4");
        st[1].set("D", "5");
        assert_eq!(st[1].remove("c"), Some("3".into()));
        assert_eq!(st[1].to_string(), "B: 4\nD: 5\n");
    }

    #[test]
    fn stanza_errors() {
        assert_eq!(
            parse_stanzas(" cont\n"),
            Err(ControlError::ContinuationWithoutField { line: 1 })
        );
        assert_eq!(
            parse_stanzas("A: 1\nB\n"),
            Err(ControlError::MissingColon {
                line: 2,
                text: "B".into()
            })
        );
        assert_eq!(
            parse_stanzas("A: 1\na: 2\n"),
            Err(ControlError::DuplicateField {
                line: 2,
                name: "a".into()
            })
        );
        assert_eq!(
            parse_stanzas(": x\n"),
            Err(ControlError::EmptyFieldName { line: 1 })
        );
        assert_eq!(
            parse_stanzas("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n"),
            Err(ControlError::PgpArmored { line: 1 })
        );
    }

    #[test]
    fn relations_simple() {
        let r = rels("libc6 (>= 2.34), libfoo1 | libbar1 (<< 2:1.0~), python3:any");
        assert_eq!(r.len(), 3);
        assert_eq!(r[0][0].name, "libc6");
        assert_eq!(r[0][0].version, Some((Op::Ge, v("2.34"))));
        assert_eq!(r[1].len(), 2);
        assert_eq!(r[1][1].version, Some((Op::Lt, v("2:1.0~"))));
        assert_eq!(r[2][0].arch_qualifier.as_deref(), Some("any"));
        assert_eq!(r[2][0].version, None);
    }

    #[test]
    fn relations_all_operators_and_deprecated() {
        let r = rels("a (<< 1), b (<= 1), c (= 1), d (>= 1), e (>> 1), f (< 1), g (> 1)");
        let ops: Vec<Op> = r
            .iter()
            .filter_map(|g| g[0].version.as_ref())
            .map(|x| x.0)
            .collect();
        assert_eq!(
            ops,
            [Op::Lt, Op::Le, Op::Eq, Op::Ge, Op::Gt, Op::Le, Op::Ge]
        );
    }

    #[test]
    fn relations_weird_spacing() {
        let r = rels("  a(>=1.0)  ,b\t(\t= 2 )|c  ,\n d [ amd64  !i386 ] , e:native(<<3)");
        assert_eq!(r.len(), 4);
        assert_eq!(r[0][0].version, Some((Op::Ge, v("1.0"))));
        assert_eq!(r[1][0].version, Some((Op::Eq, v("2"))));
        assert_eq!(r[1][1].name, "c");
        assert_eq!(r[2][0].arch_restriction, ["amd64", "!i386"]);
        assert_eq!(r[3][0].arch_qualifier.as_deref(), Some("native"));
        assert_eq!(r[3][0].version, Some((Op::Lt, v("3"))));
        // Trailing and doubled commas are skipped.
        assert_eq!(rels("a,,b,").len(), 2);
        assert!(rels("").is_empty());
        assert!(rels("  \n ").is_empty());
    }

    #[test]
    fn relations_arch_qualifiers_restrictions_profiles() {
        let r = rels(
            "gcc:amd64 [linux-any] <!cross>, dh-python <!nocheck> <stage1 !cross>, foo [!hurd-any !kfreebsd-any]",
        );
        assert_eq!(r[0][0].arch_qualifier.as_deref(), Some("amd64"));
        assert!(r[0][0].applies_to_arch("amd64"));
        assert!(!r[0][0].applies_to_arch("hurd-i386"));
        assert_eq!(r[1][0].name, "dh-python");
        assert!(r[1][0].arch_restriction.is_empty());
        assert!(r[2][0].applies_to_arch("amd64"));
        assert!(!r[2][0].applies_to_arch("hurd-i386"));
        let x = Relation::parse("x [i386 any-arm64]").unwrap_or_else(|e| panic!("{e}"));
        assert!(x.applies_to_arch("i386"));
        assert!(x.applies_to_arch("arm64"));
        assert!(!x.applies_to_arch("amd64"));
    }

    #[test]
    fn relations_display_roundtrip() {
        for s in [
            "a",
            "a:any",
            "a (>= 1:2.3-4)",
            "b:amd64 (<< 2) [amd64 !i386]",
        ] {
            let r = Relation::parse(s).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(r.to_string(), s);
        }
        let g = rels("a | b (= 1)");
        assert_eq!(display_alternatives(&g[0]), "a | b (= 1)");
    }

    #[test]
    fn relations_errors() {
        for bad in [
            "a (>= 1",
            "a (1.0)",
            "a (>=)",
            "a (=> 1)",
            "a (>= 1.0-)",
            "a | | b",
            "(>= 1)",
            "a b",
            "a:",
            "a [amd64",
            "a []",
            "a <nocheck",
            "-a",
        ] {
            assert!(parse_relations(bad).is_err(), "{bad:?} should fail");
        }
        let e = parse_relations("foo (>= 1.0-)").err();
        assert!(matches!(e, Some(ControlError::Version { .. })), "{e:?}");
    }

    #[test]
    fn version_matching() {
        let r = Relation::parse("a (>= 2)").unwrap_or_else(|e| panic!("{e}"));
        assert!(r.version_matches(Some(&v("2.0"))));
        assert!(!r.version_matches(Some(&v("1.9"))));
        assert!(!r.version_matches(None));
        assert!(Relation::new("a").version_matches(None));
    }
}
