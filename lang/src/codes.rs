//! The table of stable diagnostic codes (`H0001` …), each with a one-line meaning, and [`explain`].
//!
//! Codes are never reused or renumbered: a retired code stays in the table with its meaning.

macro_rules! codes {
    ($($name:ident = $code:literal : $meaning:literal,)*) => {
        $(pub(crate) const $name: &str = $code;)*
        /// Every diagnostic code with its one-line meaning, in code order.
        pub const CODES: &[(&str, &str)] = &[$(($code, $meaning),)*];
    };
}

codes! {
    UNEXPECTED_CHAR = "H0001": "a character that cannot start any token",
    UNTERMINATED_STRING = "H0002": "a string literal is not closed (`\"` strings end at the end of their line)",
    UNTERMINATED_INTERPOLATION = "H0003": "an interpolation `${` has no closing `}`",
    BAD_ESCAPE = "H0004": "an unknown or malformed escape sequence in a string",
    BAD_NUMBER = "H0005": "a malformed integer literal",
    INT_TOO_LARGE = "H0006": "an integer literal larger than 9223372036854775807",
    UNEXPECTED_TOKEN = "H0007": "the parser expected something else at this point",
    UNCLOSED_DELIMITER = "H0008": "a `{`, `[` or `(` without its closing partner",
    TOO_DEEP = "H0009": "nesting deeper than the parser's or evaluator's limit",
    NOT_UTF8 = "H0010": "a source file is not valid UTF-8",
    KEYWORD_AS_NAME = "H0011": "a keyword used where a name is expected",
    UNKNOWN_FIELD = "H0012": "a field that the image schema does not know",
    MISSING_FIELD = "H0013": "a required field is not set",
    TYPE_MISMATCH = "H0014": "a value of the wrong type for where it is used",
    UNKNOWN_VARIABLE = "H0015": "a name that is not in scope",
    DUPLICATE_KEY = "H0016": "the same key twice in one record, or a name defined twice",
    NO_SUCH_FIELD = "H0017": "`a.b` where the record `a` has no field `b`",
    NOT_A_FUNCTION = "H0018": "calling a value that is not a function",
    WRONG_ARITY = "H0019": "a function called with the wrong number of arguments",
    BAD_OPERANDS = "H0020": "an operator applied to values it does not work on",
    BAD_INTERPOLATION = "H0021": "interpolating a value that has no text form (list, record, null, function, image, build)",
    BAD_CONDITION = "H0022": "an `if` condition that is not a boolean",
    INT_OVERFLOW = "H0023": "integer addition overflowed",
    RECURSION_LIMIT = "H0024": "function calls nested too deeply (runaway recursion?)",
    INCOMPARABLE = "H0025": "`==` or `!=` on functions",
    IMPORT_NOT_FOUND = "H0026": "an imported (or the entry) file does not exist",
    IMPORT_CYCLE = "H0027": "files import each other in a cycle",
    ABSOLUTE_IMPORT = "H0028": "an import of an absolute path (evaluation is hermetic)",
    DYNAMIC_IMPORT = "H0029": "an import path containing interpolation",
    IO_ERROR = "H0030": "the loader failed to read a file",
    DUPLICATE_IMAGE = "H0031": "two images with the same name in one file",
    IMAGE_NOT_RECORD = "H0032": "an image or build body that is not a record",
    BAD_IMAGE_NAME = "H0033": "an image or build name that is empty or has characters outside `A-Za-z0-9._-`",
    NOT_SUPPORTED = "H0034": "a reserved feature that is not supported yet",
    DECIMAL_MODE = "H0035": "a file mode written in decimal (`755`) instead of octal (`0o755`)",
    MODE_TOO_LARGE = "H0036": "a file mode above `0o7777`",
    RELATIVE_PATH = "H0037": "a path inside the image that is not absolute",
    PATH_ESCAPES = "H0038": "a path inside the image whose `..` climbs above `/`",
    DUPLICATE_DEST = "H0039": "two items claim the same path in one image, or an item lies below a file",
    ABSOLUTE_SOURCE = "H0040": "an absolute copy source (sources are relative to the declaring file)",
    MISSING_SOURCE = "H0041": "a copy source that does not exist",
    UNKNOWN_USER = "H0042": "a user name that no `user` block of the image or its bases declares",
    UNKNOWN_GROUP = "H0043": "a group name that no `group` block of the image or its bases declares",
    BAD_PORT = "H0044": "a port that is not 1-65535 with an optional `/tcp`, `/udp` or `/sctp`",
    BAD_SIGNAL = "H0045": "a stop signal that is not a known `SIG...` name or a number 1-64",
    OUT_OF_RANGE = "H0046": "a number outside its allowed range",
    BAD_COMPRESSION = "H0047": "a compression other than `gzip` or `zstd`",
    BAD_RUN_AS = "H0048": "a `run_as` that is not `name`, `uid`, `uid:gid` or `name:group`",
    DUPLICATE_USER = "H0049": "two users with the same name or uid",
    DUPLICATE_GROUP = "H0050": "two groups with the same name or gid",
    BAD_GLOB = "H0051": "a malformed include/exclude glob",
    BAD_ARCHITECTURE = "H0052": "an unknown, repeated or missing architecture",
    BAD_ACCOUNT_NAME = "H0053": "a user or group name that is not a valid account name",
    FIELD_CONFLICT = "H0054": "two fields that set the same thing",
    FILE_SOURCE_MISUSE = "H0055": "a directory-only option on a `copy` whose source is a file",
    BAD_KEY = "H0056": "an invalid environment variable, label or annotation key",
    NOT_AN_IMAGE = "H0057": "`from` or a build's `environment` given something other than an image",
    DUPLICATE_LAYER = "H0058": "two layers with the same name in one image",
    BAD_PATH = "H0059": "an empty path, one containing a NUL byte, or a glob where an exact path is required",
    BAD_VALUE = "H0060": "a string value not allowed in this field",
    IMAGE_FIELD_ACCESS = "H0061": "field access on an image or build value (images and builds are opaque)",
    RESERVED_NAME = "H0062": "a `let` that would shadow the builtin `images` or `builds`",
    BAD_PACKAGE = "H0063": "a malformed Debian package name, version constraint or exclusion",
    NO_REPOSITORY = "H0064": "`packages` without any repository to install them from",
    BAD_REPOSITORY_URL = "H0065": "a repository URL that is not mirror://, http(s):// or file://, or that holds credentials",
    BAD_BASE_REFERENCE = "H0066": "a registry base image not pinned by digest (`HOST/REPO@sha256:…`)",
    BAD_REGEX = "H0070": "a regular expression in a `test` block that does not compile",
    EMPTY_TEST = "H0071": "a `test` block that checks nothing (no `run`, `file` or `metadata`)",
    DUPLICATE_TEST = "H0072": "two tests with the same name in one image",
    EXPECTATION_WITHOUT_RUN = "H0073": "a command expectation (`stdout`, `exit_code`, …) in a test without `run`",
    UNKNOWN_RULE = "H0080": "an unknown policy baseline or rule name",
    BAD_DATE = "H0081": "a waiver `until` that is not a calendar date `YYYY-MM-DD`",
    BAD_SIZE = "H0082": "a `max_size` that is not a positive number of bytes or a number with B, KB, MB, GB, KiB, MiB or GiB",
    BAD_WAIVER = "H0083": "a waiver with an empty reason, or with both a `path` and a `package`",
    BAD_SEVERITY = "H0084": "an unknown severity in `max_vulnerabilities`",
    BAD_VEX = "H0090": "a `vex` file that is not a `.json` file, or is listed twice",
    OUTSIDE_PROJECT = "H0100": "an import, copy source, keyring or VEX file outside the project root (by `..` or through a symlink)",
    NOT_REGULAR = "H0101": "an import or project file that is a FIFO, socket or device (or an import of a directory)",
    VALUE_TOO_LARGE = "H0102": "a string or list larger than the evaluator's limit",
    STEP_LIMIT = "H0103": "evaluation took more steps than the evaluator's limit",
    TOO_MANY_PARAMS = "H0104": "a function with more parameters than the limit",
    BAD_CONFIG_STRING = "H0105": "a config string (env, label, annotation, command) with NUL or control characters",
    NOT_HIMG_IMPORT = "H0106": "an import of a file whose name does not end in `.himg`",
    DUPLICATE_BUILD = "H0110": "two builds with the same name in one file",
    BAD_BUILD_PATH = "H0111": "a build output or `source` destination that is empty, absolute or climbs out with `..`",
    OVERLAPPING_OUTPUTS = "H0112": "a build output listed twice, or lying below another output",
    UNKNOWN_OUTPUT = "H0113": "a `path` into a build's outputs that is not a declared output or below one",
    BAD_HASH = "H0114": "a build `hash` that is not `blake3:` followed by 64 lowercase hex digits",
    BUILD_OUTPUT_MISUSE = "H0115": "`include` or `exclude` on a `copy` or `source` of a build's outputs",
    EMPTY_BUILD_LIST = "H0116": "a build whose `run` or `outputs` is empty",
    SPEC_TOO_LARGE = "H0117": "an image or build that embeds more images and builds (counting repeats) than the evaluator's limit",
    BAD_PUBLISH = "H0118": "a `publish` repository that is not `HOST/REPOSITORY[:TAG]` (lower case, no digest)",
}

/// The one-line meaning of a diagnostic code (`"H0012"`), or `None` for an unknown code.
pub fn explain(code: &str) -> Option<&'static str> {
    CODES
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(code))
        .map(|(_, meaning)| *meaning)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sorted_unique_and_explained() {
        // Strictly increasing `H` + 4 digits; ranges handed out to parallel work may leave gaps.
        for pair in CODES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} before {}", pair[0].0, pair[1].0);
        }
        for (code, meaning) in CODES {
            assert!(code.len() == 5 && code.starts_with('H'));
            assert!(code[1..].chars().all(|c| c.is_ascii_digit()));
            assert!(!meaning.is_empty());
        }
        assert_eq!(explain("H0012"), Some(CODES[11].1));
        assert_eq!(explain("h0001"), Some(CODES[0].1));
        assert_eq!(explain("H9999"), None);
    }
}
