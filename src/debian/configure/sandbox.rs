//! Running the configure step: `preinst install` of each package in dependency order, then
//! `dpkg --configure -a` and the pending triggers, as apt does on a fresh install — inside
//! bubblewrap (new user, pid, network, IPC and UTS namespaces, no network, a clear environment,
//! `SOURCE_DATE_EPOCH`, services refused by `policy-rc.d`) under fakeroot, whose saved state gives
//! the owners the scripts set.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::ConfigureError;

/// The longest the scripts of one image may run.
const TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The most log kept from a run.
const LOG_LIMIT: u64 = 4 * 1024 * 1024;

/// The driver, run by the sandbox's `/bin/sh`, once for the tools (which apt would find installed)
/// and once for the image's packages. `/.himg/order` lists `INFO-NAME PACKAGE ARCH` per package
/// to configure, in dependency order; `/.himg/file-triggers` the file-trigger paths to activate;
/// `/.himg/fakeroot.load`, when present, the owners an earlier pass set. Man-page directories
/// exist for alternatives' slave links (dropped again with the docs).
pub const DRIVER: &str = r#"exec 2>&1
set -u
H=/.himg
if [ -e $H/fakeroot.load ]; then
  faked=$(/usr/bin/faked-tcp --load --save-file $H/fakeroot.state < $H/fakeroot.load)
else
  faked=$(/usr/bin/faked-tcp --save-file $H/fakeroot.state)
fi || { echo "himg: cannot start faked"; exit 90; }
export FAKEROOTKEY="${faked%:*}" FAKEROOTDONTTRYCHOWN=1
export LD_LIBRARY_PATH="$(cat $H/fakeroot-libdir)" LD_PRELOAD=libfakeroot-tcp.so
mkdir -p /var/lib/dpkg/updates /var/lib/dpkg/triggers /var/lib/dpkg/alternatives /var/lib/dpkg/info
[ -e /var/lib/dpkg/available ] || : > /var/lib/dpkg/available
[ -e /etc/passwd ] || cp /usr/share/base-passwd/passwd.master /etc/passwd
[ -e /etc/group ] || cp /usr/share/base-passwd/group.master /etc/group
for s in 1 2 3 4 5 6 7 8; do mkdir -p /usr/share/man/man$s; done
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
while read -r info pkg arch; do
  f=/var/lib/dpkg/info/$info.preinst
  [ -e "$f" ] || continue
  echo "himg: preinst $pkg"
  DPKG_MAINTSCRIPT_PACKAGE=$pkg DPKG_MAINTSCRIPT_ARCH=$arch DPKG_MAINTSCRIPT_NAME=preinst \
    DPKG_ADMINDIR=/var/lib/dpkg DPKG_ROOT= "$f" install </dev/null || echo "himg: preinst-failed $pkg $?"
done < $H/order
dpkg --force-depends --configure -a </dev/null
echo "himg: configure-exit $?"
while read -r p; do dpkg-trigger --no-await "$p"; done < $H/file-triggers
dpkg --force-depends --triggers-only -a </dev/null
echo "himg: triggers-exit $?"
while read -r name path; do
  update-alternatives --set "$name" "$path" </dev/null || echo "himg: alternative-failed $name"
done < $H/alternatives
rm -f /usr/sbin/policy-rc.d
unset LD_PRELOAD
kill "${faked#*:}"
while kill -0 "${faked#*:}" 2>/dev/null; do sleep 0.05; done
exit 0
"#;

/// Runs the driver over `root` with `work` (holding the driver's inputs) at `/.himg`; returns the
/// combined output.
pub fn run(root: &Path, work: &Path, epoch: u64) -> Result<String, ConfigureError> {
    let mut cmd = Command::new("bwrap");
    cmd.arg("--bind")
        .arg(root)
        .arg("/")
        .arg("--bind")
        .arg(work)
        .arg("/.himg")
        .args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"])
        .args(["--unshare-all", "--uid", "0", "--gid", "0"])
        .args([
            "--hostname",
            "localhost",
            "--die-with-parent",
            "--new-session",
        ])
        .arg("--clearenv");
    for (k, v) in [
        (
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        ),
        ("DEBIAN_FRONTEND", "noninteractive".into()),
        ("DEBCONF_NONINTERACTIVE_SEEN", "true".into()),
        ("DEBCONF_NOWARNINGS", "yes".into()),
        ("LC_ALL", "C".into()),
        ("TZ", "UTC".into()),
        ("HOME", "/root".into()),
        ("SOURCE_DATE_EPOCH", epoch.to_string()),
    ] {
        cmd.arg("--setenv").arg(k).arg(v);
    }
    cmd.args(["/bin/sh", "/.himg/driver.sh"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ConfigureError::NoSandbox
        } else {
            ConfigureError::io(Path::new("bwrap"), e)
        }
    })?;
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    use wait_timeout::ChildExt;
    let status = match child
        .wait_timeout(TIMEOUT)
        .map_err(|e| ConfigureError::io(Path::new("bwrap"), e))?
    {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ConfigureError::Timeout {
                minutes: TIMEOUT.as_secs() / 60,
            });
        }
    };
    let mut log = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if !status.success() {
        return Err(ConfigureError::Sandbox {
            status: status.code().unwrap_or(-1),
            output: tail(&String::from_utf8_lossy(&[log, err].concat()), 20),
        });
    }
    log.extend_from_slice(&err);
    Ok(String::from_utf8_lossy(&log).into_owned())
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let Some(mut pipe) = pipe else {
            return buf;
        };
        // Read to the end (a blocked writer would hang the sandbox), keep the first LOG_LIMIT.
        let mut chunk = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            if (buf.len() as u64) < LOG_LIMIT {
                buf.extend_from_slice(&chunk[..n]);
            }
        }
        buf
    })
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
