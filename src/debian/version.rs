//! Debian package versions: `[epoch:]upstream[-revision]`, ordered exactly like dpkg.
//!
//! The comparison is a hand-written port of the algorithm in dpkg's `lib/dpkg/version.c`
//! (`verrevcmp`): strings are compared as alternating runs of non-digits and digits; in
//! non-digit runs `~` sorts before everything (even the end of the string), letters sort
//! before non-letters; digit runs compare numerically (so leading zeros do not matter).
//! It is about forty lines, has no dependencies and is checked against dpkg itself by a
//! property test over the host's real Packages files, so the `debversion` crate (which
//! brings its own parser, error type and optional extras) buys nothing here.
//!
//! Parsing follows dpkg's `parseversion`: the epoch is everything before the first `:`,
//! the revision everything after the last `-`. Errors that dpkg treats as errors are errors
//! here; an upstream part that does not start with a digit is only a warning in dpkg, so it
//! is accepted (and kept verbatim). Characters dpkg merely warns about (anything outside
//! `[A-Za-z0-9.+~:-]` in the upstream part, `[A-Za-z0-9.+~]` in the revision) are rejected:
//! no real archive uses them and they would only hide typos in a user's pin.
//!
//! `Eq`, `Ord` and `Hash` all follow dpkg semantics: `1.0`, `0:1.0`, `1.00` and `1.0-0`
//! are the same version. `Display` prints the string as it was written.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Why a version string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("version string is empty")]
    Empty,
    #[error("version `{0}` contains whitespace")]
    Whitespace(String),
    #[error("version `{0}` has an empty epoch before `:`")]
    EmptyEpoch(String),
    #[error("version `{0}` has an epoch that is not a number")]
    BadEpoch(String),
    #[error("version `{0}` has an epoch that is too large")]
    EpochTooLarge(String),
    #[error("version `{0}` has nothing after the epoch")]
    EmptyUpstream(String),
    #[error("version `{0}` has an empty revision after `-`")]
    EmptyRevision(String),
    #[error("version `{version}` has an invalid character `{ch}` in its upstream part")]
    BadUpstreamChar { version: String, ch: char },
    #[error("version `{version}` has an invalid character `{ch}` in its revision")]
    BadRevisionChar { version: String, ch: char },
}

/// A Debian version. See the module documentation for the ordering.
#[derive(Clone)]
pub struct DebVersion {
    epoch: u32,
    upstream: String,
    revision: String,
    /// Whether the epoch was written out (`0:1.0`), so `Display` gives back the original.
    explicit_epoch: bool,
}

impl DebVersion {
    /// The epoch (0 when absent).
    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// The upstream version (between the epoch and the last hyphen).
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    /// The Debian revision (after the last hyphen); empty when absent.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// Compares with dpkg's rules (the same as `Ord::cmp`).
    pub fn compare(&self, other: &Self) -> Ordering {
        self.epoch
            .cmp(&other.epoch)
            .then_with(|| verrevcmp(&self.upstream, &other.upstream))
            .then_with(|| verrevcmp(&self.revision, &other.revision))
    }
}

/// Sort weight of one byte in a non-digit run (dpkg's `order()`); `None` is the end.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`: compares upstream parts or revisions.
fn verrevcmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0usize, 0usize);
    while i < a.len() || j < b.len() {
        // Non-digit run.
        while (i < a.len() && !a[i].is_ascii_digit()) || (j < b.len() && !b[j].is_ascii_digit()) {
            let ac = order(a.get(i).copied());
            let bc = order(b.get(j).copied());
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        // Digit run: skip leading zeros, then the longer number wins, else the first difference.
        while i < a.len() && a[i] == b'0' {
            i += 1;
        }
        while j < b.len() && b[j] == b'0' {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while i < a.len() && a[i].is_ascii_digit() && j < b.len() && b[j].is_ascii_digit() {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if i < a.len() && a[i].is_ascii_digit() {
            return Ordering::Greater;
        }
        if j < b.len() && b[j].is_ascii_digit() {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// Feeds a canonical form of `s` to the hasher: two strings hash alike whenever
/// `verrevcmp` calls them equal (leading zeros dropped, trailing empty/zero runs dropped).
fn hash_part<H: Hasher>(s: &str, state: &mut H) {
    let b = s.as_bytes();
    let mut runs: Vec<(&[u8], &[u8])> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && !b[i].is_ascii_digit() {
            i += 1;
        }
        let text = &b[start..i];
        while i < b.len() && b[i] == b'0' {
            i += 1;
        }
        let dstart = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        runs.push((text, &b[dstart..i]));
    }
    while runs
        .last()
        .is_some_and(|(t, d)| t.is_empty() && d.is_empty())
    {
        runs.pop();
    }
    runs.len().hash(state);
    for (t, d) in runs {
        t.hash(state);
        d.hash(state);
    }
}

impl FromStr for DebVersion {
    type Err = VersionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // dpkg strips surrounding whitespace but refuses embedded whitespace.
        let t = s.trim();
        if t.is_empty() {
            return Err(VersionError::Empty);
        }
        if t.chars().any(char::is_whitespace) {
            return Err(VersionError::Whitespace(t.to_string()));
        }
        let (epoch, explicit_epoch, rest) = match t.split_once(':') {
            Some((e, rest)) => {
                if e.is_empty() {
                    return Err(VersionError::EmptyEpoch(t.to_string()));
                }
                if !e.bytes().all(|c| c.is_ascii_digit()) {
                    return Err(VersionError::BadEpoch(t.to_string()));
                }
                let n: u32 = e
                    .parse()
                    .map_err(|_| VersionError::EpochTooLarge(t.to_string()))?;
                if n > i32::MAX as u32 {
                    return Err(VersionError::EpochTooLarge(t.to_string()));
                }
                if rest.is_empty() {
                    return Err(VersionError::EmptyUpstream(t.to_string()));
                }
                (n, true, rest)
            }
            None => (0, false, t),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((u, r)) => {
                if r.is_empty() {
                    return Err(VersionError::EmptyRevision(t.to_string()));
                }
                (u, r)
            }
            None => (rest, ""),
        };
        if upstream.is_empty() {
            return Err(VersionError::EmptyUpstream(t.to_string()));
        }
        if let Some(ch) = upstream
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || ".-+~:".contains(c)))
        {
            return Err(VersionError::BadUpstreamChar {
                version: t.to_string(),
                ch,
            });
        }
        if let Some(ch) = revision
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || ".+~".contains(c)))
        {
            return Err(VersionError::BadRevisionChar {
                version: t.to_string(),
                ch,
            });
        }
        Ok(DebVersion {
            epoch,
            upstream: upstream.to_string(),
            revision: revision.to_string(),
            explicit_epoch,
        })
    }
}

impl TryFrom<&str> for DebVersion {
    type Error = VersionError;
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for DebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.explicit_epoch || self.epoch != 0 {
            write!(f, "{}:", self.epoch)?;
        }
        f.write_str(&self.upstream)?;
        if !self.revision.is_empty() {
            write!(f, "-{}", self.revision)?;
        }
        Ok(())
    }
}

impl fmt::Debug for DebVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DebVersion({self})")
    }
}

impl PartialEq for DebVersion {
    fn eq(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Equal
    }
}

impl Eq for DebVersion {}

impl PartialOrd for DebVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for DebVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        self.compare(other)
    }
}

impl Hash for DebVersion {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.epoch.hash(state);
        hash_part(&self.upstream, state);
        hash_part(&self.revision, state);
    }
}

impl serde::Serialize for DebVersion {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DebVersion {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Parsed from the text as it is, without copying it first (a parsed index holds one
        // or more versions per package).
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = DebVersion;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Debian version")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<DebVersion, E> {
                s.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::DefaultHasher;

    fn v(s: &str) -> DebVersion {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    /// apt's vectors put `:` into revisions, which dpkg only warns about (and we refuse):
    /// build those directly so the comparison itself is still exercised.
    fn lenient(s: &str) -> DebVersion {
        if let Ok(x) = s.parse() {
            return x;
        }
        let t = s.trim();
        let (epoch, rest) = match t.split_once(':') {
            Some((e, r)) => (e.parse().unwrap_or_else(|_| panic!("{s}")), r),
            None => (0, t),
        };
        let (upstream, revision) = rest.rsplit_once('-').unwrap_or((rest, ""));
        DebVersion {
            epoch,
            upstream: upstream.into(),
            revision: revision.into(),
            explicit_epoch: t.contains(':'),
        }
    }

    fn h(x: &DebVersion) -> u64 {
        let mut s = DefaultHasher::new();
        x.hash(&mut s);
        s.finish()
    }

    /// dpkg's `scripts/t/Dpkg_Version.t` triples: (a, b, expected sign of cmp(a, b)).
    const DPKG_VECTORS: &[(&str, &str, i32)] = &[
        ("1.0-1", "2.0-2", -1),
        ("2.2~rc-4", "2.2-1", -1),
        ("2.2-1", "2.2~rc-4", 1),
        ("1.0000-1", "1.0-1", 0),
        ("1", "0:1", 0),
        ("0", "0:0-0", 0),
        ("2:2.5", "1:7.5", 1),
        ("1:0foo", "0foo", 1),
        ("0:0foo", "0foo", 0),
        ("0foo", "0foo", 0),
        ("0foo-0", "0foo", 0),
        ("0foo", "0foo-0", 0),
        ("0foo", "0fo", 1),
        ("0foo-0", "0foo+", -1),
        ("0foo~1", "0foo", -1),
        ("0foo~foo+Bar", "0foo~foo+bar", -1),
        ("0foo~~", "0foo~", -1),
        ("1~", "1", -1),
        (
            "12345+that-really-is-some-ver-0",
            "12345+that-really-is-some-ver-10",
            -1,
        ),
        ("0foo-0", "0foo-01", -1),
        ("0foo.bar", "0foobar", 1),
        ("0foo.bar", "0foo1bar", 1),
        ("0foo.bar", "0foo0bar", 1),
        ("0foo1bar-1", "0foobar-1", -1),
        ("0foo2.0", "0foo2", 1),
        ("0foo2.0.0", "0foo2.10.0", -1),
        ("0foo2.0", "0foo2.0.0", -1),
        ("0foo2.0", "0foo2.10", -1),
        ("0foo2.1", "0foo2.10", -1),
        ("1.09", "1.9", 0),
        ("1.0.8+nmu1", "1.0.8", 1),
        ("3.11", "3.10+nmu1", 1),
        ("0.9j-20080306-4", "0.9i-20070324-2", 1),
        ("1.2.0~b7-1", "1.2.0~b6-1", 1),
        ("1.011-1", "1.06-2", 1),
        ("0.0.9+dfsg1-1", "0.0.8+dfsg1-3", 1),
        ("4.6.99+svn6582-1", "4.6.99+svn6496-1", 1),
        ("53", "52", 1),
        ("0.9.9~pre122-1", "0.9.9~pre111-1", 1),
        ("2:2.3.2-2+lenny2", "2:2.3.2-2", 1),
        ("1:3.8.1-1", "3.8.GA-1", 1),
        ("1.0.1+gpl-1", "1.0.1-2", 1),
        ("1a", "1000a", -1),
        ("1:2", "1:2", 0),
    ];

    /// apt's `test/libapt/versions.lst` (a representative selection, plus its "hard" cases).
    const APT_VECTORS: &[(&str, &str, i32)] = &[
        ("7.6p2-4", "7.6-0", 1),
        ("1.0.3-3", "1.0-1", 1),
        ("1.3", "1.2.2-2", 1),
        ("1.3", "1.2.2", 1),
        ("0-pre", "0-pre", 0),
        ("0-pre", "0-pree", -1),
        ("1.1.6r2-2", "1.1.6r-1", 1),
        ("2.6b2-1", "2.6b-2", 1),
        ("98.1p5-1", "98.1-pre2-b6-2", -1),
        ("0.4a6-2", "0.4-1", 1),
        ("1:3.0.5-2", "1:3.0.5.1", -1),
        ("1:0.4", "10.3", 1),
        ("1:1.25-4", "1:1.25-8", -1),
        ("0:1.18.36", "1.18.36", 0),
        ("1.18.36", "1.18.35", 1),
        ("0:1.18.36", "1.18.35", 1),
        ("9:1.18.36:5.4-20", "10:0.5.1-22", -1),
        ("9:1.18.36:5.4-20", "9:1.18.36:5.5-1", -1),
        ("9:1.18.36:5.4-20", " 9:1.18.37:4.3-22", -1),
        ("1.18.36-0.17.35-18", "1.18.36-19", 1),
        ("1:1.2.13-3", "1:1.2.13-3.1", -1),
        ("2.0.7pre1-4", "2.0.7r-1", -1),
        ("0:0-0-0", "0-0", 1),
        ("0:0:0-0", "0:0-0", 1),
        ("0:0:0:0-0", "0:0:0-0", 1),
        ("0:0:0-0-0", "0:0-0-0", 1),
        ("0:0:0-0:0", "0:0-0:0", 1),
        ("0:0-0-0:0", "0:0-0:0", 1),
        ("0:0:0-0-0-0", "0:0-0-0-0", 1),
        ("0:0:0-0:0-0", "0:0-0:0-0", 1),
        ("0:0-0:0-0-0", "0:0-0:0-0", 1),
        ("0:0-0-0:0-0", "0:0-0:0-0", -1),
        ("0:0-0-0-0:0", "0:0-0-0:0", 1),
        ("0:0-0:0-0:0", "0:0-0-0:0", 1),
        ("1.2.3", "1.2.3", 0),
        ("4.4.3-2", "4.4.3-2", 0),
        ("1:2ab:5", "1:2ab:5", 0),
        ("7:1-a:b-5", "7:1-a:b-5", 0),
        ("57:1.2.3abYZ+~-4-5", "57:1.2.3abYZ+~-4-5", 0),
        ("1.2.3", "0:1.2.3", 0),
        ("1.2.3", "1.2.3-0", 0),
        ("009", "9", 0),
        ("009ab5", "9ab5", 0),
        ("1.2.3", "1.2.3-1", -1),
        ("1.2.3", "1.2.4", -1),
        ("1.2.4", "1.2.3", 1),
        ("1.2.24", "1.2.3", 1),
        ("0.10.0", "0.8.7", 1),
        ("3.2", "2.3", 1),
        ("1.3.2a", "1.3.2", 1),
        ("0.5.0~git", "0.5.0~git2", -1),
        ("2a", "21", -1),
        ("1.3.2a", "1.3.2b", -1),
        ("1:1.2.3", "1.2.4", 1),
        ("1:1.2.3", "1:1.2.4", -1),
        ("1.2-5", "1.2-3", 1),
        ("5:2", "304-2", 1),
        ("5:2", "304:2", -1),
        ("25:2", "3:2", 1),
        ("1:2:123", "1:12:3", -1),
        ("5.10.0", "5.005", 1),
        ("3a9.8", "3.10.2", -1),
        ("3a9.8", "3~10", 1),
        ("1.4+OOo3.0.0~", "1.4+OOo3.0.0-4", -1),
        ("2.4.7-1", "2.4.7-z", -1),
        ("1.002-1+b2", "1.00", 1),
        // The brief's own examples.
        ("1.0~rc1", "1.0", -1),
        ("1.0~~", "1.0~", -1),
        ("1.0~~a", "1.0~", -1),
        ("1.0~", "1.0", -1),
        ("1.01", "1.1", 0),
        ("1.0+1", "1.0.1", -1),
        ("1.0a", "1.0+", -1),
        ("1.0a", "1.0.", -1),
        ("1.0", "1.0a", -1),
        ("1:1.0", "2.0", 1),
        ("2.30-1+b1", "2.30-1", 1),
    ];

    fn check(table: &[(&str, &str, i32)]) {
        for &(a, b, want) in table {
            let (va, vb) = (lenient(a), lenient(b));
            let got = match va.cmp(&vb) {
                Ordering::Less => -1,
                Ordering::Equal => 0,
                Ordering::Greater => 1,
            };
            assert_eq!(got, want, "cmp({a}, {b})");
            // Antisymmetry and Eq/Hash consistency on every vector.
            assert_eq!(vb.cmp(&va), va.cmp(&vb).reverse(), "cmp({b}, {a})");
            assert_eq!(va == vb, want == 0, "eq({a}, {b})");
            if want == 0 {
                assert_eq!(h(&va), h(&vb), "hash({a}) != hash({b})");
            }
        }
    }

    #[test]
    fn dpkg_vectors() {
        check(DPKG_VECTORS);
    }

    #[test]
    fn apt_vectors() {
        check(APT_VECTORS);
    }

    #[test]
    fn parts_and_display() {
        let x = v("2:1.2-3-4");
        assert_eq!((x.epoch(), x.upstream(), x.revision()), (2, "1.2-3", "4"));
        assert_eq!(x.to_string(), "2:1.2-3-4");
        assert_eq!(v("0:1.0").to_string(), "0:1.0");
        assert_eq!(v("1.0").to_string(), "1.0");
        assert_eq!(v(" 1.0 ").to_string(), "1.0");
        assert_eq!(v("1.0-0").revision(), "0");
        // Non-digit start is a dpkg warning only: accepted.
        assert_eq!(v("abc").upstream(), "abc");
    }

    #[test]
    fn invalid_versions() {
        for bad in [
            "",
            " ",
            "1.0-",
            ":1.0",
            "a:1.0",
            "1:",
            "-1",
            "1 0",
            "1.0_1",
            "1.0-a_b",
            "1:-1",
            "99999999999:1",
        ] {
            assert!(bad.parse::<DebVersion>().is_err(), "{bad:?} should fail");
        }
        assert_eq!(
            "1.0-".parse::<DebVersion>(),
            Err(VersionError::EmptyRevision("1.0-".into()))
        );
    }

    #[test]
    fn serde_as_string() {
        let x = v("1:2.3-4");
        let j = serde_json::to_string(&x).unwrap_or_default();
        assert_eq!(j, "\"1:2.3-4\"");
        let back: DebVersion = serde_json::from_str(&j).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.to_string(), "1:2.3-4");
        assert!(serde_json::from_str::<DebVersion>("\"1.0-\"").is_err());
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn version_strategy() -> impl Strategy<Value = String> {
            (
                prop::option::of(0u32..3),
                "[0-9][0-9a-z.+~]{0,6}",
                prop::option::of("[0-9a-z.+~]{1,4}"),
            )
                .prop_map(|(e, u, r)| {
                    let mut s = String::new();
                    if let Some(e) = e {
                        s.push_str(&format!("{e}:"));
                    }
                    s.push_str(&u);
                    if let Some(r) = r {
                        s.push('-');
                        s.push_str(&r);
                    }
                    s
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn total_order_and_hash(a in version_strategy(), b in version_strategy(), c in version_strategy()) {
                let (a, b, c) = (v(&a), v(&b), v(&c));
                prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
                if a <= b && b <= c {
                    prop_assert!(a <= c);
                }
                if a == b {
                    prop_assert_eq!(h(&a), h(&b));
                }
            }

            #[test]
            fn display_roundtrip(a in version_strategy()) {
                let x = v(&a);
                prop_assert_eq!(x.to_string(), a.clone());
                prop_assert_eq!(v(&x.to_string()).cmp(&x), Ordering::Equal);
            }
        }
    }
}
