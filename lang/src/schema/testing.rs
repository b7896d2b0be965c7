//! Image tests: `test "NAME" { run = [...], stdout = "...", file "/p" { … }, metadata { … } }` blocks.
//! Only checked here (types, paths, regular expressions); `himg test` runs them. Tests are not part of
//! the image: the composer never reads them.

use super::accounts::{AccountKind, Accounts};
use super::{Check, KeyKind, MAX_ID};
use crate::codes;
use crate::diagnostic::Diag;
use crate::span::Span;
use crate::spec::*;
use crate::suggest::did_you_mean;
use crate::value::{Field, Record, V, Value};

/// Fields of a `test` block.
pub(crate) const TEST_FIELDS: &[&str] = &[
    "name",
    "run",
    "env",
    "user",
    "workdir",
    "stdin",
    "exit_code",
    "stdout",
    "stderr",
    "stdout_contains",
    "stderr_contains",
    "stdout_matches",
    "stderr_matches",
    "timeout",
    "network",
    "file",
    "metadata",
];

/// The fields that only make sense with `run`.
const COMMAND_ONLY: &[&str] = &[
    "env",
    "user",
    "workdir",
    "stdin",
    "exit_code",
    "stdout",
    "stderr",
    "stdout_contains",
    "stderr_contains",
    "stdout_matches",
    "stderr_matches",
    "timeout",
    "network",
];

/// Fields of a `file` block inside a test.
const FILE_TEST_FIELDS: &[&str] = &[
    "path", "exists", "type", "mode", "owner", "group", "contains", "matches", "target",
];

/// Fields of a `metadata` block inside a test.
const METADATA_FIELDS: &[&str] = &[
    "user",
    "entrypoint",
    "cmd",
    "env",
    "labels",
    "ports",
    "workdir",
];

/// Default seconds before a test command is killed.
const DEFAULT_TIMEOUT: u32 = 60;

impl Check<'_> {
    /// Every `test` block of an image.
    pub(super) fn tests(&mut self, field: &Field, accounts: &Accounts) -> Vec<TestSpec> {
        let mut out: Vec<TestSpec> = Vec::new();
        let mut spans: Vec<Span> = Vec::new();
        for value in self.records(field, "test") {
            let V::Record(record) = &value.kind else {
                continue;
            };
            let Some((test, name_span)) = self.test(record, value.span, accounts) else {
                continue;
            };
            if let Some(i) = out.iter().position(|t| t.name == test.name) {
                self.push(
                    Diag::new(
                        codes::DUPLICATE_TEST,
                        name_span,
                        format!("test `{}` is declared twice", test.name),
                    )
                    .label("second declaration")
                    .secondary(spans[i], "first declared here")
                    .help("give each test of an image its own name"),
                );
                continue;
            }
            spans.push(name_span);
            out.push(test);
        }
        out
    }

    fn test(
        &mut self,
        record: &Record,
        span: Span,
        accounts: &Accounts,
    ) -> Option<(TestSpec, Span)> {
        self.unknown_fields(record, TEST_FIELDS, "a `test` block", false);
        let name_field = self.required(record, span, "name", "a `test` block")?;
        let name = self.string(name_field, "name");
        if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            self.push(
                Diag::new(
                    codes::BAD_VALUE,
                    name_field.value.span,
                    "a test name cannot be empty",
                )
                .label("empty name"),
            );
        }
        let get = |key: &str| record.fields.get(key);
        let command = match get("run") {
            Some(run) => self.command_test(run, record),
            None => {
                for key in COMMAND_ONLY {
                    if let Some(f) = get(key) {
                        self.push(
                            Diag::new(
                                codes::EXPECTATION_WITHOUT_RUN,
                                f.key_span,
                                format!("`{key}` needs a command to run"),
                            )
                            .label("this test has no `run`")
                            .help("add `run = [\"program\", \"arg\", …]`, or move this into a test that has one"),
                        );
                    }
                }
                None
            }
        };
        let files = match get("file") {
            Some(f) => self
                .records(f, "file")
                .into_iter()
                .filter_map(|v| match &v.kind {
                    V::Record(r) => self.file_test(r, v.span, accounts),
                    _ => None,
                })
                .collect(),
            None => Vec::new(),
        };
        let metadata = get("metadata").and_then(|f| self.metadata_test(f));
        if get("run").is_none() && get("file").is_none() && get("metadata").is_none() {
            self.push(
                Diag::new(
                    codes::EMPTY_TEST,
                    name_field.value.span,
                    format!("test `{}` checks nothing", name.as_deref().unwrap_or("?")),
                )
                .label("no `run`, `file` or `metadata`")
                .help("add `run = [...]` with expectations, `file \"/path\" { … }` or `metadata { … }`"),
            );
        }
        let name = name?;
        Some((
            TestSpec {
                name,
                command,
                files,
                metadata,
            },
            name_field.value.span,
        ))
    }

    fn command_test(&mut self, run: &Field, record: &Record) -> Option<CommandTest> {
        let get = |key: &str| record.fields.get(key);
        let argv = self.string_list(run, "run");
        if argv.as_ref().is_some_and(Vec::is_empty) {
            self.push(
                Diag::new(codes::BAD_VALUE, run.value.span, "`run` cannot be empty")
                    .label("no program")
                    .help("write `run = [\"program\", \"arg\", …]`"),
            );
        }
        let env = match get("env") {
            Some(f) => self
                .string_record(f, "env", KeyKind::Env)
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let user = get("user").and_then(|f| self.test_user(f));
        let workdir = get("workdir").and_then(|f| self.abs_path(f, "workdir"));
        let stdin = get("stdin").and_then(|f| self.string(f, "stdin"));
        let exit_code = get("exit_code")
            .and_then(|f| self.int_in(f, "exit_code", 0, 255))
            .map_or(0, |n| n as i32);
        let stdout = get("stdout").and_then(|f| self.string(f, "stdout"));
        let stderr = get("stderr").and_then(|f| self.string(f, "stderr"));
        let stdout_contains = self.strings_or_one(get("stdout_contains"), "stdout_contains");
        let stderr_contains = self.strings_or_one(get("stderr_contains"), "stderr_contains");
        let stdout_matches = self.regexes(get("stdout_matches"), "stdout_matches");
        let stderr_matches = self.regexes(get("stderr_matches"), "stderr_matches");
        let timeout = get("timeout")
            .and_then(|f| self.int_in(f, "timeout", 1, 86_400))
            .unwrap_or(DEFAULT_TIMEOUT);
        let network = get("network")
            .and_then(|f| self.bool(f, "network"))
            .unwrap_or(false);
        let run = argv.filter(|a| !a.is_empty())?;
        Some(CommandTest {
            run,
            env,
            user,
            workdir,
            stdin,
            exit_code,
            stdout,
            stderr,
            stdout_contains,
            stderr_contains,
            stdout_matches,
            stderr_matches,
            timeout,
            network,
        })
    }

    /// `user = "name"`, `"uid"`, `"uid:gid"` or an integer uid. Names are resolved in the image's
    /// `/etc/passwd` when the test runs (packages may create users the `.himg` file does not declare).
    fn test_user(&mut self, field: &Field) -> Option<String> {
        match &field.value.kind {
            V::Int(_) => self.int_in(field, "user", 0, MAX_ID).map(|n| n.to_string()),
            V::Str(s) if s.is_empty() || s.split(':').count() > 2 || s.ends_with(':') => {
                self.push(
                    Diag::new(
                        codes::BAD_VALUE,
                        field.value.span,
                        format!("bad test user `{s}`"),
                    )
                    .label("expected `name`, `uid`, `uid:gid` or `name:group`"),
                );
                None
            }
            V::Str(s) => Some(s.to_string()),
            _ => {
                self.mismatch(field, "user", "a user name or uid", None);
                None
            }
        }
    }

    /// A string or a list of strings (`stdout_contains = "x"` or `["x", "y"]`).
    fn strings_or_one(&mut self, field: Option<&Field>, name: &str) -> Vec<String> {
        let Some(field) = field else {
            return Vec::new();
        };
        match &field.value.kind {
            V::Str(s) => vec![s.to_string()],
            V::List(_) => self.string_list(field, name).unwrap_or_default(),
            _ => {
                self.mismatch(field, name, "a string or a list of strings", None);
                Vec::new()
            }
        }
    }

    /// Regular expressions, each compiled now so a typo points at its string.
    fn regexes(&mut self, field: Option<&Field>, name: &str) -> Vec<String> {
        let Some(field) = field else {
            return Vec::new();
        };
        let items: Vec<Value> = match &field.value.kind {
            V::List(list) => list.items.clone(),
            _ => vec![field.value.clone()],
        };
        let mut out = Vec::new();
        for item in items {
            let f = Field {
                key_span: field.key_span,
                value: item,
            };
            let Some(pattern) = self.string(&f, name) else {
                continue;
            };
            if let Err(e) = regex::Regex::new(&pattern) {
                let detail = e.to_string();
                let last = detail.lines().last().unwrap_or_default().trim().to_owned();
                self.push(
                    Diag::new(
                        codes::BAD_REGEX,
                        f.value.span,
                        format!("`{name}` is not a valid regular expression"),
                    )
                    .label(last.trim_start_matches("error: ").to_owned())
                    .help("the syntax is Rust's `regex` crate (like RE2); escape literal characters with `\\\\`"),
                );
                continue;
            }
            out.push(pattern);
        }
        out
    }

    fn file_test(&mut self, record: &Record, span: Span, accounts: &Accounts) -> Option<FileTest> {
        self.unknown_fields(record, FILE_TEST_FIELDS, "a `file` check", false);
        let get = |key: &str| record.fields.get(key);
        let path = self
            .required(record, span, "path", "a `file` check")
            .and_then(|f| self.abs_path(f, "path"));
        let exists = get("exists")
            .and_then(|f| self.bool(f, "exists"))
            .unwrap_or(true);
        let kind = get("type").and_then(|f| {
            let s = self.string(f, "type")?;
            if ["file", "dir", "symlink"].contains(&s.as_str()) {
                return Some(s);
            }
            let help = did_you_mean(&s, ["file", "dir", "symlink"])
                .unwrap_or_else(|| "write `file`, `dir` or `symlink`".into());
            self.push(
                Diag::new(
                    codes::BAD_VALUE,
                    f.value.span,
                    format!("unknown file type `{s}`"),
                )
                .label("not `file`, `dir` or `symlink`")
                .help(help),
            );
            None
        });
        let mode = get("mode").and_then(|f| self.mode(f));
        let uid = get("owner").and_then(|f| self.test_id(f, "owner", accounts));
        let gid = get("group").and_then(|f| self.test_id(f, "group", accounts));
        let contains = self.strings_or_one(get("contains"), "contains");
        let matches = self.regexes(get("matches"), "matches");
        let target = get("target").and_then(|f| self.string(f, "target"));
        if !exists {
            for key in [
                "type", "mode", "owner", "group", "contains", "matches", "target",
            ] {
                if let Some(f) = get(key) {
                    self.push(
                        Diag::new(
                            codes::FIELD_CONFLICT,
                            f.key_span,
                            format!("`{key}` checks a path that `exists = false` says is absent"),
                        )
                        .label("cannot hold for an absent path")
                        .help(format!("remove `{key}` or `exists = false`")),
                    );
                }
            }
        }
        Some(FileTest {
            path: path?,
            exists,
            kind,
            mode,
            uid,
            gid,
            contains,
            matches,
            target,
        })
    }

    /// `owner` / `group` of a file check: an id, or a name declared by the image or its bases.
    fn test_id(&mut self, field: &Field, name: &str, accounts: &Accounts) -> Option<u32> {
        match &field.value.kind {
            V::Int(_) => self.int_in(field, name, 0, MAX_ID),
            V::Str(s) if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) => {
                let f = Field {
                    key_span: field.key_span,
                    value: Value {
                        kind: V::Int(s.parse().unwrap_or(i64::MAX)),
                        span: field.value.span,
                    },
                };
                self.int_in(&f, name, 0, MAX_ID)
            }
            V::Str(s) => {
                let kind = if name == "owner" {
                    AccountKind::User
                } else {
                    AccountKind::Group
                };
                let (found, what) = (accounts.find(kind, s).map(|ids| ids.0), kind.noun());
                if found.is_none() {
                    let help = did_you_mean(s, accounts.names(kind)).unwrap_or_else(|| {
                        format!("name a {what} declared in this image or its bases, or give a numeric id")
                    });
                    self.push(
                        Diag::new(
                            kind.unknown_code(),
                            field.value.span,
                            format!("unknown {what} `{s}`"),
                        )
                        .label(format!("no such {what} in this image or its bases"))
                        .help(help),
                    );
                }
                found
            }
            _ => {
                self.mismatch(field, name, "a name or a numeric id", None);
                None
            }
        }
    }

    fn metadata_test(&mut self, field: &Field) -> Option<MetadataTest> {
        let record = match &field.value.kind {
            V::List(list) if list.items.len() == 1 => match &list.items[0].kind {
                V::Record(r) => r.clone(),
                _ => {
                    self.mismatch(field, "metadata", "a record", None);
                    return None;
                }
            },
            V::Record(r) => r.clone(),
            V::List(list) if list.items.len() > 1 => {
                self.push(
                    Diag::new(
                        codes::DUPLICATE_KEY,
                        list.items[1].span,
                        "a test has at most one `metadata` block",
                    )
                    .label("second `metadata` block")
                    .help("merge the expectations into one block"),
                );
                return None;
            }
            _ => {
                self.mismatch(field, "metadata", "a record", None);
                return None;
            }
        };
        self.unknown_fields(&record, METADATA_FIELDS, "a `metadata` check", false);
        let get = |key: &str| record.fields.get(key);
        let mut m = MetadataTest {
            user: get("user").and_then(|f| self.string(f, "user")),
            entrypoint: get("entrypoint").and_then(|f| self.string_list(f, "entrypoint")),
            cmd: get("cmd").and_then(|f| self.string_list(f, "cmd")),
            workdir: get("workdir").and_then(|f| self.abs_path(f, "workdir")),
            ports: get("ports").map(|f| self.ports(f)),
            ..MetadataTest::default()
        };
        if let Some(f) = get("env") {
            m.env = self
                .string_record(f, "env", KeyKind::Env)
                .unwrap_or_default();
        }
        if let Some(f) = get("labels") {
            m.labels = self
                .string_record(f, "labels", KeyKind::Label)
                .unwrap_or_default()
                .into_iter()
                .collect();
        }
        Some(m)
    }
}
