//! The sandbox: one command in an image's root filesystem under bubblewrap (`bwrap`), with new user,
//! mount, pid, ipc, uts (and, unless asked otherwise, network) namespaces, the rootfs read-only, a
//! minimal `/proc` and `/dev`, a tmpfs `/tmp`, the image's user, and a timeout.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

use super::TestError;

/// The PATH a command gets when the image sets none (the one container runtimes use).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Top-level entries the sandbox mounts itself, whatever the image holds there.
const OWN_MOUNTS: &[&str] = &["proc", "dev", "tmp"];

/// What to run and how.
#[derive(Debug, Clone)]
pub struct SandboxCommand {
    pub argv: Vec<String>,
    /// The complete environment, in order (later entries win).
    pub env: Vec<(String, String)>,
    pub uid: u32,
    pub gid: u32,
    /// Absolute path inside the image.
    pub workdir: String,
    /// Share the host's network namespace.
    pub network: bool,
    /// Host directories bound writable at absolute paths inside (a build's work and output
    /// directories); everything else stays read-only.
    pub writable: Vec<(PathBuf, String)>,
}

/// What a command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    /// The exit code; `128 + N` when killed by signal N.
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The sandbox was killed after the timeout.
    pub timed_out: bool,
    pub duration: Duration,
}

/// A root filesystem directory to run commands in.
#[derive(Debug, Clone)]
pub struct Sandbox {
    rootfs: PathBuf,
}

/// Where Debian's tools look for the trusted certificate authorities, in the sandbox as on the host.
pub const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The host's bundle of trusted authorities: `$SSL_CERT_FILE` when it names a file, else
/// [`CA_BUNDLE`] when the host has it.
pub fn host_ca_bundle() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .or_else(|| Some(PathBuf::from(CA_BUNDLE)).filter(|p| p.is_file()))
}

impl Sandbox {
    /// Checks that `bwrap` is available.
    pub fn new(rootfs: &Path) -> Result<Sandbox, TestError> {
        let found = Command::new("bwrap")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(found, Ok(s) if s.success()) {
            return Err(TestError::NoBwrap);
        }
        Ok(Sandbox {
            rootfs: rootfs.to_path_buf(),
        })
    }

    /// The `bwrap` invocation for `cmd`. `interactive` keeps the terminal's session (for `himg run`).
    pub fn command(&self, cmd: &SandboxCommand, interactive: bool) -> Result<Command, TestError> {
        let mut c = Command::new("bwrap");
        c.args([
            "--unshare-user",
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--hostname",
            "himg-sandbox",
        ]);
        if !cmd.network {
            c.arg("--unshare-net");
        }
        if !interactive {
            // No controlling terminal to inject input into.
            c.arg("--new-session");
        }
        c.arg("--uid").arg(cmd.uid.to_string());
        c.arg("--gid").arg(cmd.gid.to_string());
        // An empty root, the image's top-level entries bound read-only into it, then the root itself
        // made read-only: nothing in the rootfs directory is changed, nothing is writable but /tmp.
        c.args(["--tmpfs", "/"]);
        let entries = std::fs::read_dir(&self.rootfs).map_err(|e| TestError::Io {
            path: self.rootfs.clone(),
            source: e,
        })?;
        let mut names: Vec<(String, PathBuf)> = entries
            .filter_map(Result::ok)
            .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
            .collect();
        names.sort();
        for (name, path) in names {
            if OWN_MOUNTS.contains(&name.as_str()) {
                continue;
            }
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let dest = format!("/{name}");
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&path).map_err(|e| TestError::Io {
                    path: path.clone(),
                    source: e,
                })?;
                c.arg("--symlink").arg(target).arg(&dest);
            } else if meta.is_dir() || meta.is_file() {
                c.arg("--ro-bind").arg(&path).arg(&dest);
            }
        }
        c.args([
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chmod", "1777", "/tmp",
        ]);
        // With the network, names resolve as on the host (over the image's own file).
        let resolv = self.rootfs.join("etc/resolv.conf");
        if cmd.network
            && std::fs::symlink_metadata(&resolv).is_ok_and(|m| m.is_file())
            && Path::new("/etc/resolv.conf").exists()
        {
            c.args(["--ro-bind", "/etc/resolv.conf", "/etc/resolv.conf"]);
        }
        // ... and TLS is trusted as on the host (whose bundle may hold a proxy's own authority):
        // what a fetch downloads is checked by its declared hash, not by who served it.
        if cmd.network
            && std::fs::symlink_metadata(self.rootfs.join(CA_BUNDLE.trim_start_matches('/')))
                .is_ok_and(|m| m.is_file())
            && let Some(host) = host_ca_bundle()
        {
            c.arg("--ro-bind").arg(host).arg(CA_BUNDLE);
        }
        for (host, inside) in &cmd.writable {
            c.arg("--bind").arg(host).arg(inside);
        }
        c.args(["--remount-ro", "/"]);
        c.arg("--chdir").arg(&cmd.workdir);
        c.arg("--clearenv");
        for (k, v) in &cmd.env {
            c.arg("--setenv").arg(k).arg(v);
        }
        c.arg("--");
        c.args(&cmd.argv);
        c.env_clear();
        Ok(c)
    }

    /// Runs `cmd` with `stdin`, capturing its output; kills the sandbox after `timeout`.
    pub fn run(
        &self,
        cmd: &SandboxCommand,
        stdin: &[u8],
        timeout: Duration,
    ) -> Result<Captured, TestError> {
        let started = Instant::now();
        let mut child = self
            .command(cmd, false)?
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(TestError::Spawn)?;
        let input = stdin.to_vec();
        let writer = child.stdin.take().map(|mut pipe| {
            std::thread::spawn(move || {
                // The command may exit without reading: a broken pipe is not an error.
                let _ = pipe.write_all(&input);
            })
        });
        let out = child.stdout.take().map(reader);
        let err = child.stderr.take().map(reader);
        let status = match child.wait_timeout(timeout).map_err(TestError::Spawn)? {
            Some(status) => Some(status),
            None => {
                // Killing bwrap kills the sandbox's pid 1, and with it every process inside.
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        };
        if let Some(w) = writer {
            let _ = w.join();
        }
        let stdout = out.and_then(|h| h.join().ok()).unwrap_or_default();
        let stderr = err.and_then(|h| h.join().ok()).unwrap_or_default();
        Ok(Captured {
            exit_code: status.map_or(137, code_of),
            stdout,
            stderr,
            timed_out: status.is_none(),
            duration: started.elapsed(),
        })
    }

    /// Runs `cmd` attached to the terminal (`himg run`); returns its exit code.
    pub fn run_interactive(&self, cmd: &SandboxCommand) -> Result<i32, TestError> {
        let status = self
            .command(cmd, true)?
            .status()
            .map_err(TestError::Spawn)?;
        Ok(code_of(status))
    }
}

/// Makes an extracted rootfs usable by an unprivileged sandbox: every entry owned by the calling user
/// (an extraction as root keeps the image's owners, which the sandbox's single mapped uid could not
/// access) and every directory owner-writable (so the tree can be deleted). The image's own owners
/// and modes stay in the image model, which file tests read.
pub fn own_tree(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let uid = rustix::process::geteuid().as_raw();
    let gid = rustix::process::getegid().as_raw();
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        {
            use std::os::unix::fs::MetadataExt;
            if meta.uid() != uid || meta.gid() != gid {
                std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
            }
        }
        if meta.is_dir() {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o700 != 0o700 {
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode | 0o700))?;
            }
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        } else if meta.is_file() {
            // chown cleared setuid/setgid; keep the rest of the mode as it was.
            let mode = meta.permissions().mode() & 0o777;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        buf
    })
}

fn code_of(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's own root stands in for an image: `/usr` (merged-/usr hosts) read-only.
    fn host() -> Sandbox {
        Sandbox::new(Path::new("/")).unwrap()
    }

    fn sh(script: &str) -> SandboxCommand {
        SandboxCommand {
            argv: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec![("PATH".into(), DEFAULT_PATH.into())],
            uid: 1234,
            gid: 1234,
            workdir: "/".into(),
            network: false,
            writable: Vec::new(),
        }
    }

    #[test]
    fn runs_as_the_given_user_with_a_read_only_root() {
        let got = host()
            .run(
                &sh("id -u; id -g; echo x > /tmp/ok && cat /tmp/ok; touch /usr/nope || echo ro; touch /nope || echo ro2"),
                b"",
                Duration::from_secs(30),
            )
            .unwrap();
        let out = String::from_utf8_lossy(&got.stdout);
        assert_eq!(out, "1234\n1234\nx\nro\nro2\n", "{got:?}");
        assert_eq!(got.exit_code, 0);
    }

    #[test]
    fn stdin_exit_code_env_and_pid_namespace() {
        let mut cmd = sh("cat; echo \"$A\" >&2; echo $$ >&2; exit 7");
        cmd.env.push(("A".into(), "b".into()));
        let got = host().run(&cmd, b"in", Duration::from_secs(30)).unwrap();
        assert_eq!(got.stdout, b"in");
        assert_eq!(String::from_utf8_lossy(&got.stderr), "b\n2\n");
        assert_eq!(got.exit_code, 7);
    }

    #[test]
    fn timeout_kills_the_whole_sandbox() {
        let started = Instant::now();
        let got = host()
            .run(
                &sh("sleep 100 & sleep 100"),
                b"",
                Duration::from_millis(500),
            )
            .unwrap();
        assert!(got.timed_out);
        assert!(started.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn no_network_unless_asked() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let script = format!(
            "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 5)' && echo connected"
        );
        let mut cmd = sh(&script);
        let got = host().run(&cmd, b"", Duration::from_secs(30)).unwrap();
        assert_ne!(got.exit_code, 0, "{got:?}");
        cmd.network = true;
        let got = host().run(&cmd, b"", Duration::from_secs(30)).unwrap();
        assert_eq!(got.stdout, b"connected\n", "{got:?}");
    }
}
