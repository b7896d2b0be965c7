//! Builds: a `build "NAME" { … }` body → a validated [`BuildSpec`] (environment, sources, command,
//! environment variables, outputs, time limit, fixed-output hash), and the `path` that selects part
//! of a build's outputs (shared with `copy builds.X` in [`super::content`]).

use super::{Check, KeyKind, quoted};
use crate::codes;
use crate::diagnostic::Diag;
use crate::loader::EntryKind;
use crate::span::Span;
use crate::spec::*;
use crate::syntax::DeclKind;
use crate::value::{Field, Record, V, Value};

pub(crate) const BUILD_FIELDS: &[&str] = &[
    "environment",
    "source",
    "run",
    "env",
    "outputs",
    "timeout",
    "hash",
];
/// Fields of `source "path" { … }` (project files).
const FILES_SOURCE_FIELDS: &[&str] = &["source", "to", "include", "exclude"];
/// Fields of `source builds.X { … }` (another build's outputs).
const OUTPUT_SOURCE_FIELDS: &[&str] = &["source", "path", "to"];
/// Variables the sandbox sets itself.
const RESERVED_ENV: &[&str] = &["out", "SOURCE_DATE_EPOCH"];
/// The longest `timeout`, in seconds (a day).
const MAX_TIMEOUT: i64 = 86_400;

impl Check<'_> {
    pub(super) fn build(&mut self, name: &str, body: &Record, span: Span) -> Option<BuildSpec> {
        const WHAT: &str = "a build";
        self.unknown_fields(body, BUILD_FIELDS, WHAT, false);
        let get = |key: &str| body.fields.get(key);
        let environment = self
            .required(body, span, "environment", WHAT)
            .and_then(|f| self.environment(f));
        let sources = get("source").map_or(Some(Vec::new()), |f| self.build_sources(f));
        let run = self
            .required(body, span, "run", WHAT)
            .and_then(|f| self.run(f));
        let env = get("env")
            .map(|f| self.build_env(f))
            .unwrap_or(Some(Vec::new()));
        let outputs = self
            .required(body, span, "outputs", WHAT)
            .and_then(|f| self.outputs(f));
        let timeout = get("timeout").map_or(Some(DEFAULT_BUILD_TIMEOUT), |f| {
            self.int_in(f, "timeout", 1, MAX_TIMEOUT)
        });
        // `None`: no `hash`; `Some(None)`: an invalid one.
        let hash = get("hash").map(|f| self.hash(f));
        Some(BuildSpec {
            name: name.to_owned(),
            declared_in: self.cx.declared_in.clone(),
            environment: Box::new(environment?),
            sources: sources?,
            run: run?,
            env: env?,
            outputs: outputs?,
            timeout: timeout?,
            hash: hash.map_or(Some(None), |h| h.map(Some))?,
        })
    }

    fn environment(&mut self, field: &Field) -> Option<ImageSpec> {
        if let V::Image(image) = &field.value.kind {
            let span = field.value.span;
            return self
                .embed(DeclKind::Image, &image.declared_in, &image.name, span)
                .then(|| (**image).clone());
        }
        let help = if matches!(field.value.kind, V::Str(_)) {
            "a build runs in an image declared with `image`: declare one (it may extend a registry image with `from = \"…\"`) and write `environment = images.NAME`"
        } else {
            "images declared earlier are values: `environment = images.toolchain` or `environment = lib.images.toolchain`"
        };
        self.push(
            Diag::new(
                codes::NOT_AN_IMAGE,
                field.value.span,
                format!(
                    "`environment` must be an image, found {}",
                    field.value.type_name()
                ),
            )
            .label("expected an image")
            .help(help),
        );
        None
    }

    /// `source` blocks; `None` when one of them is invalid.
    fn build_sources(&mut self, field: &Field) -> Option<Vec<BuildSource>> {
        let mut out = Some(Vec::new());
        for value in self.records(field, "source") {
            let V::Record(record) = &value.kind else {
                continue;
            };
            let made = match record.fields.get("source").map(|f| &f.value) {
                Some(Value {
                    kind: V::Build(build),
                    span,
                }) => self.output_source(record, build, *span),
                _ => self.files_source(record, value.span),
            };
            match (made, &mut out) {
                (Some(source), Some(sources)) => sources.push(source),
                _ => out = None,
            }
        }
        out
    }

    /// `source builds.X { path = "…", to = "…" }`.
    fn output_source(
        &mut self,
        record: &Record,
        build: &BuildSpec,
        span: Span,
    ) -> Option<BuildSource> {
        let had_globs = self.refuse_globs(record, build);
        let record = without_globs(record);
        self.unknown_fields(
            &record,
            OUTPUT_SOURCE_FIELDS,
            "a `source builds.…` block",
            false,
        );
        let path = match record.fields.get("path") {
            Some(f) => Some(self.output_path(f, build)?),
            None => None,
        };
        let to = match record.fields.get("to") {
            Some(f) => self.work_path(f, "to", "`to`")?,
            None => ".".to_owned(),
        };
        if had_globs || !self.embed(DeclKind::Build, &build.declared_in, &build.name, span) {
            return None;
        }
        Some(BuildSource::Output {
            build: Box::new(build.clone()),
            path,
            to,
        })
    }

    /// `source "path" { to, include, exclude }`: project files, checked like a copy source.
    fn files_source(&mut self, record: &Record, span: Span) -> Option<BuildSource> {
        const WHAT: &str = "a `source` block";
        self.unknown_fields(record, FILES_SOURCE_FIELDS, WHAT, false);
        let source = self.required(record, span, "source", WHAT).and_then(|f| {
            self.project_file(f, "source", "build source", |declaring| {
                format!("build sources are relative to the directory of `{declaring}`, which keeps builds hermetic")
            })
        });
        let to = record
            .fields
            .get("to")
            .map(|f| self.work_path(f, "to", "`to`"));
        let include = self.globs(record.fields.get("include"), "include");
        let exclude = self.globs(record.fields.get("exclude"), "exclude");
        let (_, source, kind) = source?;
        let (include, exclude) = (include?, exclude?);
        let is_dir = kind == EntryKind::Dir;
        if !is_dir {
            for (key, globs) in [("include", &include), ("exclude", &exclude)] {
                if !globs.is_empty() {
                    let at = record.fields.get(key).map_or(span, |f| f.key_span);
                    self.push(
                        Diag::new(
                            codes::FILE_SOURCE_MISUSE,
                            at,
                            format!(
                                "`{key}` needs a directory, but build source `{source}` is a file"
                            ),
                        )
                        .label(format!("`{source}` is a file"))
                        .help(format!(
                            "remove `{key}`, or name the directory that contains the file"
                        )),
                    );
                    return None;
                }
            }
        }
        let to = match to {
            Some(to) => to?,
            None if is_dir => ".".to_owned(),
            None => source.as_str().rsplit('/').next().unwrap_or(".").to_owned(),
        };
        if !is_dir && to == "." {
            let at = record.fields.get("to").map_or(span, |f| f.value.span);
            let file_name = source.as_str().rsplit('/').next().unwrap_or("");
            self.push(
                Diag::new(
                    codes::BAD_BUILD_PATH,
                    at,
                    format!("build source `{source}` is a file and cannot replace the work directory"),
                )
                .label("this is the work directory itself")
                .help(format!(
                    "a file source lands exactly at `to`: write `to = \"{file_name}\"`, or leave `to` out"
                )),
            );
            return None;
        }
        Some(BuildSource::Files {
            source,
            source_is_dir: is_dir,
            to,
            include,
            exclude,
        })
    }

    /// `include`/`exclude` make no sense on a build's outputs: they are declared exactly. Whether
    /// there were any.
    pub(super) fn refuse_globs(&mut self, record: &Record, build: &BuildSpec) -> bool {
        let mut found = false;
        for key in ["include", "exclude"] {
            if let Some(f) = record.fields.get(key) {
                found = true;
                self.push(
                    Diag::new(
                        codes::BUILD_OUTPUT_MISUSE,
                        f.key_span,
                        format!("`{key}` cannot filter the outputs of build `{}`", build.name),
                    )
                    .label("only for project files")
                    .help(format!(
                        "select one output (or a path below one) with `path = \"…\"`; the outputs of `{}` are {}",
                        build.name,
                        quoted(&build.outputs)
                    )),
                );
            }
        }
        found
    }

    /// `path = "…"` into the outputs of `build`: a declared output or a path below one.
    pub(super) fn output_path(&mut self, field: &Field, build: &BuildSpec) -> Option<String> {
        let path = self.work_path(field, "path", "`path`")?;
        let declared = build.outputs.iter().any(|output| {
            path == *output
                || path
                    .strip_prefix(output.as_str())
                    .is_some_and(|rest| rest.starts_with('/'))
        });
        if declared {
            return Some(path);
        }
        self.push(
            Diag::new(
                codes::UNKNOWN_OUTPUT,
                field.value.span,
                format!("build `{}` has no output `{path}`", build.name),
            )
            .label("not a declared output")
            .help(format!(
                "the outputs of `{}` are {}; `path` names one of them or a path below one",
                build.name,
                quoted(&build.outputs)
            )),
        );
        None
    }

    /// A path relative to the build's work or output directory, normalised (`.` for the directory
    /// itself); absolute paths and `..` above the directory are refused.
    /// `noun` names the path in messages ("`to`", "an output").
    fn work_path(&mut self, field: &Field, name: &str, noun: &str) -> Option<String> {
        let text = self.string(field, name)?;
        relative_in_build(&text).map_err(|problem| {
            self.push(
                Diag::new(
                    codes::BAD_BUILD_PATH,
                    field.value.span,
                    format!("{noun} must be a relative path inside the build, found `{text}`"),
                )
                .label(problem)
                .help(format!(
                    "paths of a build are relative to its work directory `{BUILD_WORKDIR}` (sources) or its output directory `{BUILD_OUTDIR}` (outputs)"
                )),
            );
        })
        .ok()
    }

    /// `run = "script"` (run by `/bin/sh -euc`) or `run = [argv…]`.
    fn run(&mut self, field: &Field) -> Option<Vec<String>> {
        let argv = match &field.value.kind {
            V::Str(script) => {
                if script.trim().is_empty() {
                    self.push(empty_list(field, "run", "an empty script"));
                    return None;
                }
                if !self.config_text(script, field.value.span, "run", super::TextRule::Argument) {
                    return None;
                }
                vec!["/bin/sh".to_owned(), "-euc".to_owned(), script.to_string()]
            }
            V::List(list) if list.items.is_empty() => {
                self.push(empty_list(field, "run", "an empty command"));
                return None;
            }
            V::List(_) => self.arguments(field, "run")?,
            _ => {
                self.mismatch(
                    field,
                    "run",
                    "a string or a list of strings",
                    Some(
                        "write `run = \"make\"` (a shell script) or `run = [\"make\", \"-j2\"]`"
                            .into(),
                    ),
                );
                return None;
            }
        };
        Some(argv)
    }

    /// `env = { KEY = "value" }` like an image's, without the variables the sandbox sets.
    fn build_env(&mut self, field: &Field) -> Option<Vec<(String, String)>> {
        let mut ok = true;
        if let V::Record(record) = &field.value.kind {
            for (key, f) in &record.fields {
                if RESERVED_ENV.contains(&key.as_str()) {
                    ok = false;
                    self.push(
                        Diag::new(
                            codes::BAD_KEY,
                            f.key_span,
                            format!("`{key}` cannot be set in a build's `env`"),
                        )
                        .label("set by the sandbox")
                        .help(format!(
                            "`out` is always `{BUILD_OUTDIR}` and `SOURCE_DATE_EPOCH` is the build's fixed epoch; use another name"
                        )),
                    );
                }
            }
        }
        let env = self.string_record(field, "env", KeyKind::Env)?;
        ok.then_some(env)
    }

    /// `outputs = ["bin/app", …]`: non-empty, normalised, none twice or below another; sorted.
    fn outputs(&mut self, field: &Field) -> Option<Vec<String>> {
        let items = self.list_of(field, "outputs")?;
        if items.is_empty() {
            self.push(empty_list(field, "outputs", "no outputs"));
            return None;
        }
        let mut outputs: Vec<(String, Span)> = Vec::new();
        let mut ok = true;
        for item in &items {
            let f = Field {
                key_span: field.key_span,
                value: item.clone(),
            };
            match self.work_path(&f, "each item of `outputs`", "an output") {
                Some(path) if path == "." => {
                    ok = false;
                    self.push(
                        Diag::new(
                            codes::BAD_BUILD_PATH,
                            item.span,
                            "an output must name a path below the output directory",
                        )
                        .label("this is the output directory itself")
                        .help(format!(
                            "write the command's results below `$out` ({BUILD_OUTDIR}) and list them, e.g. `outputs = [\"bin\"]`"
                        )),
                    );
                }
                Some(path) => outputs.push((path, item.span)),
                None => ok = false,
            }
        }
        ok &= self.check_outputs_disjoint(&outputs);
        if !ok {
            return None;
        }
        let mut paths: Vec<String> = outputs.into_iter().map(|(p, _)| p).collect();
        paths.sort();
        Some(paths)
    }

    fn check_outputs_disjoint(&mut self, outputs: &[(String, Span)]) -> bool {
        let mut ok = true;
        for (i, (path, span)) in outputs.iter().enumerate() {
            for (other, other_span) in &outputs[..i] {
                let below =
                    |a: &str, b: &str| a.strip_prefix(b).is_some_and(|rest| rest.starts_with('/'));
                let message = if path == other {
                    format!("output `{path}` is listed twice")
                } else if below(path, other) {
                    format!("output `{path}` lies below output `{other}`")
                } else if below(other, path) {
                    format!("output `{other}` lies below output `{path}`")
                } else {
                    continue;
                };
                ok = false;
                self.push(
                    Diag::new(codes::OVERLAPPING_OUTPUTS, *span, message)
                        .label("overlaps another output")
                        .secondary(*other_span, "the other output")
                        .help("an output is captured with everything below it: list each path once, and only the outermost"),
                );
                break;
            }
        }
        ok
    }

    /// `hash = "blake3:HEX"`: the form is checked here, the value when the build runs.
    fn hash(&mut self, field: &Field) -> Option<String> {
        let text = self.string(field, "hash")?;
        let valid = text.strip_prefix("blake3:").is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        });
        if valid {
            return Some(text);
        }
        self.push(
            Diag::new(
                codes::BAD_HASH,
                field.value.span,
                format!("invalid build hash `{text}`"),
            )
            .label("expected `blake3:` and 64 lowercase hex digits")
            .help("a fixed-output build declares the blake3 hash of its outputs; build it once without `hash` and copy the hash it reports"),
        );
        None
    }
}

/// `record` without its `include` and `exclude` fields (already reported).
pub(super) fn without_globs(record: &Record) -> Record {
    let mut record = record.clone();
    record.fields.shift_remove("include");
    record.fields.shift_remove("exclude");
    record
}

fn empty_list(field: &Field, name: &str, found: &str) -> Diag {
    Diag::new(
        codes::EMPTY_BUILD_LIST,
        field.value.span,
        format!("`{name}` of a build cannot be empty"),
    )
    .label(found.to_owned())
    .help(match name {
        "run" => "give the command the build runs: `run = \"make\"` or `run = [\"make\"]`",
        _ => "list what the command writes below `$out`: `outputs = [\"bin/app\"]`",
    })
}

/// Normalises a path relative to a build directory; the error says why it is refused.
pub(super) fn relative_in_build(text: &str) -> Result<String, &'static str> {
    if text.is_empty() {
        return Err("empty path");
    }
    if text.contains('\0') {
        return Err("contains a NUL byte");
    }
    if text.starts_with('/') {
        return Err("absolute path");
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err("`..` climbs out of the directory");
                }
            }
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        Ok(".".to_owned())
    } else {
        Ok(parts.join("/"))
    }
}

/// Whether `value` is a build (for `copy` and `source`, whose label may be one).
pub(super) fn as_build(value: &Value) -> Option<&BuildSpec> {
    match &value.kind {
        V::Build(build) => Some(build),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::relative_in_build;
    use crate::spec::{BuildSource, ContentItem, SourcePath};
    use crate::{Evaluated, MemoryLoader, evaluate};

    fn eval(text: &str) -> Result<Evaluated, Vec<&'static str>> {
        let mut loader = MemoryLoader::new();
        loader.insert("main.himg", text);
        loader.insert("src/a.c", "int a;\n");
        evaluate(&SourcePath("main.himg".into()), &loader).map_err(|d| d.codes())
    }

    const ENV: &str = "image \"env\" {}\n";

    #[test]
    fn output_paths_select_declared_outputs_or_below() {
        let build =
            "build \"b\" { environment = images.env, run = \"true\", outputs = [\"bin\"] }\n";
        let copy = |path: &str| {
            format!(
                "{ENV}{build}image \"i\" {{ copy builds.b {{ path = \"{path}\", to = \"/x\" }} }}\n"
            )
        };
        assert!(eval(&copy("bin")).is_ok());
        assert!(eval(&copy("./bin/tool")).is_ok());
        assert_eq!(eval(&copy("binary")).err(), Some(vec!["H0113"]));
        assert_eq!(eval(&copy("bin/../lib")).err(), Some(vec!["H0113"]));
        assert_eq!(eval(&copy("../bin")).err(), Some(vec!["H0111"]));
        let Ok(evaluated) = eval(&copy("bin//tool")) else {
            panic!("valid copy refused")
        };
        let ContentItem::BuildOutput { path, .. } = &evaluated.images[1].layers[0].items[0] else {
            panic!("expected a build output item")
        };
        assert_eq!(path.as_deref(), Some("bin/tool"));
    }

    #[test]
    fn run_strings_become_shell_scripts_and_defaults_apply() {
        let text = format!(
            "{ENV}build \"b\" {{ environment = images.env, run = \"make\", outputs = [\"z\", \"a/b\"], source \"src/a.c\" {{}}, source \"src\" {{ to = \"lib/\" }} }}\n"
        );
        let Ok(evaluated) = eval(&text) else {
            panic!("valid build refused")
        };
        let build = &evaluated.builds[0];
        assert_eq!(build.run, ["/bin/sh", "-euc", "make"]);
        assert_eq!(build.outputs, ["a/b", "z"]);
        assert_eq!(build.timeout, crate::spec::DEFAULT_BUILD_TIMEOUT);
        assert_eq!(build.hash, None);
        let tos: Vec<&str> = build
            .sources
            .iter()
            .map(|s| match s {
                BuildSource::Files { to, .. } | BuildSource::Output { to, .. } => to.as_str(),
            })
            .collect();
        assert_eq!(tos, ["a.c", "lib"]);
    }

    #[test]
    fn hashes_must_be_blake3_lowercase_hex() {
        let with = |hash: &str| {
            format!(
                "{ENV}build \"f\" {{ environment = images.env, run = \"true\", outputs = [\"a\"], hash = \"{hash}\" }}\n"
            )
        };
        let hex = "0123456789abcdef".repeat(4);
        assert!(eval(&with(&format!("blake3:{hex}"))).is_ok());
        assert_eq!(
            eval(&with(&format!("blake3:{}", hex.to_uppercase()))).err(),
            Some(vec!["H0114"])
        );
        assert_eq!(
            eval(&with(&format!("blake3:{}", &hex[1..]))).err(),
            Some(vec!["H0114"])
        );
        assert_eq!(eval(&with(&hex)).err(), Some(vec!["H0114"]));
    }

    #[test]
    fn build_paths_are_normalised_and_confined() {
        assert_eq!(relative_in_build("bin//app"), Ok("bin/app".to_owned()));
        assert_eq!(relative_in_build("./a/../b"), Ok("b".to_owned()));
        assert_eq!(relative_in_build("."), Ok(".".to_owned()));
        assert!(relative_in_build("/abs").is_err());
        assert!(relative_in_build("a/../..").is_err());
        assert!(relative_in_build("").is_err());
        assert!(relative_in_build("a\0b").is_err());
    }
}
