//! Docker credential helpers: `docker-credential-NAME get`, found on `PATH`, told the server URL on
//! stdin, answering `{"ServerURL","Username","Secret"}` on stdout; output and time are bounded.

use super::credentials::Login;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use wait_timeout::ChildExt;

/// The most a helper may print on stdout (or stderr).
pub(super) const MAX_OUTPUT: u64 = 1 << 20;
/// How long a helper may take.
pub(super) const TIMEOUT: Duration = Duration::from_secs(30);
/// What a helper says (and exits non-zero) when it has nothing for the server.
const NOT_FOUND: &str = "credentials not found";
/// The `Username` that marks `Secret` as an identity token.
const IDENTITY_TOKEN_USER: &str = "<token>";
/// The program name prefix Docker uses.
pub(super) const PREFIX: &str = "docker-credential-";

/// A credential helper could not give an answer. Never carries the secret.
#[derive(Debug, thiserror::Error)]
#[error("credential helper {PREFIX}{helper} for {host}: {reason}")]
pub struct HelperError {
    /// The helper's name (after `docker-credential-`).
    pub helper: String,
    /// The registry host asked about.
    pub host: String,
    /// What went wrong.
    pub reason: String,
}

/// What a helper printed and how it ended.
struct Answer {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Whether `name` may name a helper: letters, digits, `-`, `_` and `.`, starting with a letter or
/// digit (no `/`, no spaces, nothing a shell or a path would read differently).
pub(super) fn is_valid_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Asks helper `helper` for the credentials of `host`, telling it `server_url`; `path` is the
/// `PATH` to find it on. `Ok(None)` when the helper has none ("credentials not found").
pub(super) fn get(
    helper: &str,
    host: &str,
    server_url: &str,
    path: Option<&str>,
) -> Result<Option<Login>, HelperError> {
    let fail = |reason: String| HelperError {
        helper: helper.to_owned(),
        host: host.to_owned(),
        reason,
    };
    if !is_valid_name(helper) {
        return Err(fail(
            "not a helper name (letters, digits, `-`, `_`, `.` only)".into(),
        ));
    }
    let program = find_on_path(&format!("{PREFIX}{helper}"), path)
        .ok_or_else(|| fail(format!("`{PREFIX}{helper}` is not on PATH")))?;
    let answer = run(&program, server_url, TIMEOUT).map_err(fail)?;
    interpret(&answer).map_err(fail)
}

/// The first executable file called `program` in the directories of `path`.
fn find_on_path(program: &str, path: Option<&str>) -> Option<PathBuf> {
    std::env::split_paths(path?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `program get` with `server_url` on stdin, within `timeout` and [`MAX_OUTPUT`].
fn run(program: &Path, server_url: &str, timeout: Duration) -> Result<Answer, String> {
    let mut child =
        spawn(program).map_err(|e| format!("could not start {}: {e}", program.display()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its stdin is judged by its answer, not by this write.
        let _ = stdin.write_all(server_url.as_bytes());
    }
    let stdout = read_bounded(child.stdout.take());
    let stderr = read_bounded(child.stderr.take());
    let status = match child.wait_timeout(timeout) {
        Ok(Some(status)) => status,
        Ok(None) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("gave no answer within {} ms", timeout.as_millis()));
        }
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("could not wait for it: {e}"));
        }
    };
    let collect = |rx: mpsc::Receiver<Vec<u8>>, what: &str| {
        rx.recv_timeout(Duration::from_secs(5))
            .map_err(|_| format!("exited but kept its {what} open"))
    };
    let stdout = collect(stdout, "stdout")?;
    let stderr = collect(stderr, "stderr")?;
    if stdout.len() as u64 > MAX_OUTPUT || stderr.len() as u64 > MAX_OUTPUT {
        return Err(format!("printed more than {MAX_OUTPUT} bytes"));
    }
    Ok(Answer {
        status,
        stdout,
        stderr,
    })
}

/// Starts `program get`, retrying a few times while the file is busy (`ETXTBSY`: another thread
/// of this process forked while the helper file was still open for writing).
fn spawn(program: &Path) -> std::io::Result<std::process::Child> {
    const ETXTBSY: i32 = 26;
    let mut tries = 0;
    loop {
        let started = Command::new(program)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        match started {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && tries < 5 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Reads at most one byte more than [`MAX_OUTPUT`] from `pipe` on a thread; closing the pipe
/// after that makes a helper that goes on writing stop.
fn read_bounded(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(pipe) = pipe {
            let _ = pipe.take(MAX_OUTPUT + 1).read_to_end(&mut buf);
        }
        let _ = tx.send(buf);
    });
    rx
}

/// What a finished helper's answer means.
fn interpret(answer: &Answer) -> Result<Option<Login>, String> {
    if !answer.status.success() {
        let said = failure_text(answer);
        if said.to_ascii_lowercase().contains(NOT_FOUND) {
            return Ok(None);
        }
        return Err(format!("{}: {said}", answer.status));
    }
    parse_answer(&answer.stdout)
}

/// The first line a failed helper printed (stdout first, as Docker's helpers report there),
/// shortened to 200 characters.
fn failure_text(answer: &Answer) -> String {
    let out = String::from_utf8_lossy(&answer.stdout);
    let err = String::from_utf8_lossy(&answer.stderr);
    let text = [out.trim(), err.trim()]
        .into_iter()
        .find(|t| !t.is_empty())
        .unwrap_or("no message");
    text.lines()
        .next()
        .unwrap_or(text)
        .chars()
        .take(200)
        .collect()
}

/// Parses `{"ServerURL","Username","Secret"}`; an empty answer means no credentials. The error
/// never quotes the output, which may hold the secret.
pub(super) fn parse_answer(stdout: &[u8]) -> Result<Option<Login>, String> {
    #[derive(serde::Deserialize)]
    struct Reply {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    let reply: Reply = serde_json::from_slice(stdout).map_err(|_| {
        "the answer is not the JSON {\"ServerURL\",\"Username\",\"Secret\"}".to_owned()
    })?;
    Ok(match (reply.username.as_str(), reply.secret) {
        (_, secret) if secret.is_empty() => None,
        (IDENTITY_TOKEN_USER, secret) => Some(Login::IdentityToken(secret)),
        (user, secret) => Some(Login::Password {
            user: user.to_owned(),
            password: secret,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_names_are_plain() {
        for ok in ["pass", "ecr-login", "desktop.exe", "acr_env", "gcloud2"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/b",
            "-x",
            ".x",
            "a b",
            "a;b",
            "é",
            &"x".repeat(65),
        ] {
            assert!(!is_valid_name(bad), "{bad}");
        }
        let err = get("../evil", "h.example", "h.example", Some("/bin")).unwrap_err();
        assert!(err.to_string().contains("h.example"), "{err}");
    }

    #[test]
    fn answers_are_parsed_without_quoting_the_secret() {
        let login = parse_answer(br#"{"ServerURL":"h","Username":"u","Secret":"s"}"#);
        assert_eq!(
            login,
            Ok(Some(Login::Password {
                user: "u".into(),
                password: "s".into()
            }))
        );
        let token = parse_answer(br#"{"ServerURL":"h","Username":"<token>","Secret":"t"}"#);
        assert_eq!(token, Ok(Some(Login::IdentityToken("t".into()))));
        assert_eq!(
            parse_answer(br#"{"ServerURL":"h","Username":"","Secret":""}"#),
            Ok(None)
        );
        let err = parse_answer(b"not json hunter2").unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
    }

    fn script(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join("docker-credential-script");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    #[test]
    fn output_and_time_are_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chatty = script(dir.path(), "exec yes");
        let err = run(&chatty, "h", TIMEOUT).err().expect("too much output");
        assert!(err.contains("more than"), "{err}");
        let slow = script(dir.path(), "exec sleep 10");
        let started = std::time::Instant::now();
        let err = run(&slow, "h", Duration::from_millis(300))
            .err()
            .expect("too slow");
        assert!(err.contains("no answer within"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_missing_helper_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().display().to_string();
        let err = get("nosuch", "h.example", "h.example", Some(&path)).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("docker-credential-nosuch") && msg.contains("h.example"),
            "{msg}"
        );
    }
}
