//! Evaluates one test: its command in the sandbox, its file checks against the image model (content
//! read from the extracted rootfs), its metadata checks against the image config.

use std::time::{Duration, Instant};

use himg_lang::{CommandTest, FileTest, MetadataTest, TestSpec};

use super::passwd;
use super::sandbox::{DEFAULT_PATH, Sandbox, SandboxCommand};
use super::{Failure, Outcome, Target};
use crate::image::{FileEntry, FileKind};

/// Runs every check of `test`; never fails (a sandbox that cannot start is a failed check).
pub fn run_test(target: &Target<'_>, test: &TestSpec) -> Outcome {
    let started = Instant::now();
    let mut failures = Vec::new();
    let (mut stdout, mut stderr) = (None, None);
    if let Some(cmd) = &test.command {
        match command(target, cmd, &mut failures) {
            Ok((out, err)) => {
                stdout = Some(out);
                stderr = Some(err);
            }
            Err(e) => failures.push(Failure {
                check: "command".into(),
                message: error_chain(&e),
                diff: None,
            }),
        }
    }
    for f in &test.files {
        file(target, f, &mut failures);
    }
    if let Some(m) = &test.metadata {
        metadata(target, m, &mut failures);
    }
    Outcome {
        image: target.image.to_owned(),
        test: test.name.clone(),
        passed: failures.is_empty(),
        cached: false,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        failures,
        stdout,
        stderr,
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// The image's environment with `extra` applied on top (same key: replaced in place).
pub fn environment(
    image_env: &[String],
    extra: &[(String, String)],
    home: Option<&str>,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = image_env
        .iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.clone(), String::new()),
        })
        .collect();
    let mut set = |k: &str, v: &str| match env.iter_mut().find(|(key, _)| key == k) {
        Some(slot) => slot.1 = v.to_owned(),
        None => env.push((k.to_owned(), v.to_owned())),
    };
    for (k, v) in extra {
        set(k, v);
    }
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    if let Some(home) = home
        && !env.iter().any(|(k, _)| k == "HOME")
    {
        env.push(("HOME".into(), home.to_owned()));
    }
    env
}

/// Builds the sandbox command of a test (or of `himg run`): user, env and workdir from the image,
/// overridden by the test.
pub fn sandbox_command(
    target: &Target<'_>,
    argv: Vec<String>,
    user: Option<&str>,
    env: &[(String, String)],
    workdir: Option<&str>,
    network: bool,
) -> Result<SandboxCommand, super::TestError> {
    let rc = &target.view.config.config;
    let user = user.or(rc.user.as_deref());
    let resolved = passwd::resolve(target.rootfs, user)?;
    Ok(SandboxCommand {
        argv,
        env: environment(&rc.env, env, resolved.home.as_deref()),
        uid: resolved.uid,
        gid: resolved.gid,
        workdir: workdir
            .or(rc.working_dir.as_deref())
            .filter(|w| !w.is_empty())
            .unwrap_or("/")
            .to_owned(),
        network,
        writable: Vec::new(),
    })
}

fn command(
    target: &Target<'_>,
    cmd: &CommandTest,
    failures: &mut Vec<Failure>,
) -> Result<(String, String), super::TestError> {
    let sandbox = Sandbox::new(target.rootfs)?;
    let sc = sandbox_command(
        target,
        cmd.run.clone(),
        cmd.user.as_deref(),
        &cmd.env,
        cmd.workdir.as_deref(),
        cmd.network,
    )?;
    let got = sandbox.run(
        &sc,
        cmd.stdin.as_deref().unwrap_or("").as_bytes(),
        Duration::from_secs(u64::from(cmd.timeout)),
    )?;
    let out = String::from_utf8_lossy(&got.stdout).into_owned();
    let err = String::from_utf8_lossy(&got.stderr).into_owned();
    if got.timed_out {
        failures.push(Failure {
            check: "timeout".into(),
            message: format!("killed after {} s", cmd.timeout),
            diff: None,
        });
        return Ok((out, err));
    }
    if got.exit_code != cmd.exit_code {
        failures.push(Failure {
            check: "exit code".into(),
            message: format!("expected {}, got {}", cmd.exit_code, got.exit_code),
            diff: None,
        });
    }
    for (stream, text, exact, contains, matches) in [
        (
            "stdout",
            &out,
            &cmd.stdout,
            &cmd.stdout_contains,
            &cmd.stdout_matches,
        ),
        (
            "stderr",
            &err,
            &cmd.stderr,
            &cmd.stderr_contains,
            &cmd.stderr_matches,
        ),
    ] {
        if let Some(expected) = exact
            && expected != text
        {
            failures.push(Failure {
                check: stream.into(),
                message: format!("{stream} differs from the expected text"),
                diff: Some(diff(expected, text)),
            });
        }
        text_checks(stream, text, contains, matches, failures);
    }
    Ok((out, err))
}

/// `contains` and `matches` on a text.
fn text_checks(
    what: &str,
    text: &str,
    contains: &[String],
    matches: &[String],
    failures: &mut Vec<Failure>,
) {
    for needle in contains {
        if !text.contains(needle.as_str()) {
            failures.push(Failure {
                check: format!("{what} contains"),
                message: format!("{what} does not contain {needle:?}"),
                diff: Some(excerpt(text)),
            });
        }
    }
    for pattern in matches {
        let found = regex::Regex::new(pattern).map(|r| r.is_match(text));
        if !matches!(found, Ok(true)) {
            failures.push(Failure {
                check: format!("{what} matches"),
                message: format!("{what} does not match /{pattern}/"),
                diff: Some(excerpt(text)),
            });
        }
    }
}

/// A unified diff of expected (`-`) against actual (`+`).
pub fn diff(expected: &str, actual: &str) -> String {
    similar::TextDiff::from_lines(expected, actual)
        .unified_diff()
        .context_radius(3)
        .header("expected", "actual")
        .to_string()
}

/// The actual text shown under a failed `contains`/`matches` (at most 40 lines).
fn excerpt(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::from("actual:\n");
    for line in lines.iter().take(40) {
        out.push_str("  | ");
        out.push_str(line);
        out.push('\n');
    }
    if lines.len() > 40 {
        out.push_str(&format!("  … {} more lines\n", lines.len() - 40));
    }
    if lines.is_empty() {
        out.push_str("  (empty)\n");
    }
    out
}

fn kind_name(kind: &FileKind) -> &'static str {
    match kind {
        FileKind::File => "file",
        FileKind::Dir => "dir",
        FileKind::Symlink { .. } => "symlink",
        FileKind::Hardlink { .. } => "hardlink",
        FileKind::CharDevice => "char device",
        FileKind::BlockDevice => "block device",
        FileKind::Fifo => "fifo",
    }
}

/// Resolves `path` in the image as the kernel would, inside the image's root: symlinks of the
/// directories on the way are followed, and of the last component too when `follow_last`. Returns
/// the key of the entry in [`ImageView::files`](crate::image::ImageView) (`""` for `/`), or `None`
/// when a component is missing or links loop.
pub fn resolve(view: &crate::image::ImageView, path: &str, follow_last: bool) -> Option<String> {
    crate::image::links::resolve(path, follow_last, view).map(|c| c.join("/"))
}

fn lookup<'v>(target: &'v Target<'_>, path: &str) -> Option<&'v FileEntry> {
    let key = resolve(target.view, path, false)?;
    target.view.files.get(&key)
}

fn file(target: &Target<'_>, t: &FileTest, failures: &mut Vec<Failure>) {
    let path = &t.path;
    let mut fail = |what: &str, message: String, diff: Option<String>| {
        failures.push(Failure {
            check: format!("file {path} {what}").trim_end().to_owned(),
            message,
            diff,
        });
    };
    let entry = if path == "/" {
        // The root is not an entry of the model; it is always a directory.
        Some(FileEntry::implicit_dir(0))
    } else {
        lookup(target, path).cloned()
    };
    let Some(entry) = entry else {
        if t.exists {
            fail("exists", format!("{path} does not exist"), None);
        }
        return;
    };
    if !t.exists {
        fail(
            "exists",
            format!("{path} exists ({}) but should not", kind_name(&entry.kind)),
            None,
        );
        return;
    }
    if let Some(kind) = &t.kind
        && kind != kind_name(&entry.kind)
    {
        fail(
            "type",
            format!("expected a {kind}, found a {}", kind_name(&entry.kind)),
            None,
        );
    }
    if let Some(mode) = t.mode
        && mode != entry.mode
    {
        fail(
            "mode",
            format!("expected 0o{mode:o}, found 0o{:o}", entry.mode),
            None,
        );
    }
    for (what, id, expected, found) in [
        ("owner", "uid", t.uid, entry.uid),
        ("group", "gid", t.gid, entry.gid),
    ] {
        if let Some(expected) = expected
            && expected != found
        {
            fail(
                what,
                format!("expected {id} {expected}, found {found}"),
                None,
            );
        }
    }
    if let Some(target_path) = &t.target {
        match &entry.kind {
            FileKind::Symlink { target: actual } if actual == target_path => {}
            FileKind::Symlink { target: actual } => fail(
                "target",
                format!("expected a link to {target_path:?}, found one to {actual:?}"),
                None,
            ),
            other => fail(
                "target",
                format!("expected a symlink, found a {}", kind_name(other)),
                None,
            ),
        }
    }
    if t.contains.is_empty() && t.matches.is_empty() {
        return;
    }
    // Content follows symlinks, like reading the file inside the image would.
    let followed = resolve(target.view, path, true)
        .and_then(|key| Some((target.view.files.get(&key)?.kind.clone(), key)));
    let content_path = match followed {
        Some((FileKind::File, key)) => key,
        Some((FileKind::Hardlink { target: other }, _)) => other,
        Some((other, _)) => {
            fail(
                "content",
                format!(
                    "content checks need a regular file, found a {}",
                    kind_name(&other)
                ),
                None,
            );
            return;
        }
        None => {
            fail(
                "content",
                "the symlink points to nothing in the image".into(),
                None,
            );
            return;
        }
    };
    match std::fs::read(target.rootfs.join(content_path)) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            text_checks(
                &format!("file {path}"),
                &text,
                &t.contains,
                &t.matches,
                failures,
            );
        }
        Err(e) => fail("content", format!("cannot read the content: {e}"), None),
    }
}

fn metadata(target: &Target<'_>, m: &MetadataTest, failures: &mut Vec<Failure>) {
    let rc = &target.view.config.config;
    let mut fail = |what: &str, expected: String, actual: String| {
        failures.push(Failure {
            check: format!("metadata {what}"),
            message: format!("expected {expected}, found {actual}"),
            diff: None,
        });
    };
    let show = |v: &Option<String>| match v {
        Some(s) => format!("{s:?}"),
        None => "unset".to_owned(),
    };
    if let Some(user) = &m.user
        && rc.user.as_deref().unwrap_or("") != user
    {
        fail("user", format!("{user:?}"), show(&rc.user));
    }
    if let Some(dir) = &m.workdir
        && rc.working_dir.as_deref().unwrap_or("") != dir
    {
        fail("workdir", format!("{dir:?}"), show(&rc.working_dir));
    }
    if let Some(ep) = &m.entrypoint
        && *ep != rc.entrypoint
    {
        fail(
            "entrypoint",
            format!("{ep:?}"),
            format!("{:?}", rc.entrypoint),
        );
    }
    if let Some(cmd) = &m.cmd
        && *cmd != rc.cmd
    {
        fail("cmd", format!("{cmd:?}"), format!("{:?}", rc.cmd));
    }
    for (k, v) in &m.env {
        let prefix = format!("{k}=");
        let actual = rc
            .env
            .iter()
            .rev()
            .find_map(|kv| kv.strip_prefix(&prefix))
            .map(str::to_owned);
        if actual.as_deref() != Some(v.as_str()) {
            fail(&format!("env {k}"), format!("{v:?}"), show(&actual));
        }
    }
    for (k, v) in &m.labels {
        let actual = rc.labels.get(k).cloned();
        if actual.as_deref() != Some(v.as_str()) {
            fail(&format!("label {k}"), format!("{v:?}"), show(&actual));
        }
    }
    if let Some(ports) = &m.ports {
        let actual: Vec<String> = rc.exposed_ports.iter().cloned().collect();
        if *ports != actual {
            fail("ports", format!("{ports:?}"), format!("{actual:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::image::ImageView;

    fn view() -> ImageView {
        let mut config: crate::oci::ImageConfig = serde_json::from_value(serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "User": "1234",
                "Env": ["PATH=/usr/bin:/bin", "GREETING=hi"],
                "Entrypoint": ["/bin/sh", "-c"],
                "WorkingDir": "/tmp",
                "Labels": {"team": "platform"},
                "ExposedPorts": {"8080/tcp": {}}
            },
            "rootfs": {"type": "layers", "diff_ids": []}
        }))
        .unwrap();
        config.config.cmd = vec!["echo".into()];
        let entry = |kind, mode, uid| FileEntry {
            kind,
            mode,
            uid,
            gid: uid,
            size: 0,
            sha256: None,
            facts: None,
            layer: 0,
        };
        let mut files = BTreeMap::new();
        files.insert("etc".into(), entry(FileKind::Dir, 0o755, 0));
        files.insert("etc/passwd".into(), entry(FileKind::File, 0o644, 0));
        files.insert(
            "bin".into(),
            entry(
                FileKind::Symlink {
                    target: "usr/bin".into(),
                },
                0o777,
                0,
            ),
        );
        ImageView {
            name: Some("t".into()),
            digest: "sha256:00".into(),
            annotations: BTreeMap::new(),
            config,
            layers: Vec::new(),
            files,
            packages: Vec::new(),
        }
    }

    fn test(src: &str) -> TestSpec {
        let text = format!("image \"t\" {{\n{src}\n}}\n");
        let mut loader = himg_lang::MemoryLoader::new();
        loader.insert("t.himg", text);
        let evaluated =
            himg_lang::evaluate(&himg_lang::SourcePath("t.himg".into()), &loader).unwrap();
        evaluated.images[0].tests[0].clone()
    }

    /// The host's root stands in for the extracted rootfs (its /etc/passwd has no uid 1234).
    fn outcome(src: &str) -> Outcome {
        let view = view();
        let target = Target {
            image: "t",
            view: &view,
            rootfs: std::path::Path::new("/"),
        };
        run_test(&target, &test(src))
    }

    #[test]
    fn command_checks_pass_and_fail_with_a_diff() {
        let ok = outcome(
            r#"test "ok" {
              run = ["/bin/sh", "-c", "echo $GREETING $X; pwd; id -u; echo oops >&2; exit 2"]
              env = { X = "there" }
              exit_code = 2
              stdout = "hi there\n/tmp\n1234\n"
              stderr_contains = "oops"
              stdout_matches = "^hi"
            }"#,
        );
        assert!(ok.passed, "{ok:?}");
        let bad = outcome(
            r#"test "bad" {
              run = ["/bin/sh", "-c", "printf 'a\nb\nc\n'"]
              stdout = "a\nB\nc\n"
              stdout_contains = ["zzz"]
              stdout_matches = ["^q"]
              exit_code = 1
            }"#,
        );
        assert!(!bad.passed);
        let checks: Vec<&str> = bad.failures.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(
            checks,
            ["exit code", "stdout", "stdout contains", "stdout matches"]
        );
        let diff = bad.failures[1].diff.as_deref().unwrap();
        assert!(diff.contains("-B\n") && diff.contains("+b\n"), "{diff}");
    }

    #[test]
    fn resolves_symlinks_inside_the_image() {
        let mut v = view();
        let entry = |kind| FileEntry {
            kind,
            mode: 0o777,
            uid: 0,
            gid: 0,
            size: 0,
            sha256: None,
            facts: None,
            layer: 0,
        };
        v.files.insert("usr".into(), entry(FileKind::Dir));
        v.files.insert("usr/bin".into(), entry(FileKind::Dir));
        v.files.insert("usr/bin/sh".into(), entry(FileKind::File));
        v.files.insert(
            "etc/sh".into(),
            entry(FileKind::Symlink {
                target: "../bin/sh".into(),
            }),
        );
        v.files.insert(
            "loop".into(),
            entry(FileKind::Symlink {
                target: "/loop".into(),
            }),
        );
        assert_eq!(resolve(&v, "/bin/sh", false).as_deref(), Some("usr/bin/sh"));
        assert_eq!(resolve(&v, "/etc/sh", false).as_deref(), Some("etc/sh"));
        assert_eq!(resolve(&v, "/etc/sh", true).as_deref(), Some("usr/bin/sh"));
        assert_eq!(resolve(&v, "/", true).as_deref(), Some(""));
        assert_eq!(resolve(&v, "/loop", true), None);
        assert_eq!(resolve(&v, "/nope/x", true), None);
    }

    #[test]
    fn user_workdir_and_stdin_overrides() {
        let ok = outcome(
            r#"test "root" {
              run = ["/bin/sh", "-c", "id -u; pwd; cat"]
              user = "root"
              workdir = "/etc"
              stdin = "in"
              stdout = "0\n/etc\nin"
            }"#,
        );
        assert!(ok.passed, "{ok:?}");
    }

    #[test]
    fn file_and_metadata_checks() {
        let ok = outcome(
            r#"test "files" {
              file "/etc/passwd" { type = "file", mode = 0o644, owner = 0, group = "root", contains = "root:" }
              file "/bin" { type = "symlink", target = "usr/bin" }
              file "/nope" { exists = false }
              metadata {
                user = "1234"
                entrypoint = ["/bin/sh", "-c"]
                cmd = ["echo"]
                env = { GREETING = "hi" }
                labels = { team = "platform" }
                ports = [8080]
                workdir = "/tmp"
              }
            }"#,
        );
        assert!(ok.passed, "{ok:?}");
        let bad = outcome(
            r#"test "files" {
              file "/etc/passwd" { type = "dir", mode = 0o600, owner = 1, matches = "^nobody-here$" }
              file "/bin" { target = "/usr/bin" }
              file "/etc" { exists = false }
              file "/missing" {}
              metadata { user = "root", env = { GREETING = "ho" }, ports = [] }
            }"#,
        );
        let checks: Vec<&str> = bad.failures.iter().map(|f| f.check.as_str()).collect();
        assert_eq!(
            checks,
            [
                "file /etc/passwd type",
                "file /etc/passwd mode",
                "file /etc/passwd owner",
                "file /etc/passwd matches",
                "file /bin target",
                "file /etc exists",
                "file /missing exists",
                "metadata user",
                "metadata env GREETING",
                "metadata ports"
            ]
        );
    }
}
