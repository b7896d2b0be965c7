//! Running one build: a scratch directory under the store (`work/` with the sources, `out/` for
//! the outputs, the log beside them), the command under bubblewrap in the environment's root
//! filesystem with a fixed environment, its time limit, then the outputs captured and the
//! scratch directory removed.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use himg_lang::{BUILD_OUTDIR, BUILD_WORKDIR};
use himg_store::{B3Digest, Node, ObjectRef, Sha256Digest, Store};
use wait_timeout::ChildExt;

use super::capture::capture;
use super::workdir::{clamp_times, lookup, place_node, place_tree};
use super::{BuildError, environment_root, io_err};
use crate::testing::sandbox::{CA_BUNDLE, DEFAULT_PATH, Sandbox, SandboxCommand};

/// The directory under the store that holds running builds' scratch directories.
pub const SCRATCH_DIR: &str = "builds";

/// Lines of the log a failed build shows.
const TAIL_LINES: usize = 25;

/// One source placed into the work directory before the command runs.
#[derive(Debug, Clone)]
pub struct Placement {
    /// A tree in the store (a `copy` of project files, or another build's outputs).
    pub content: ObjectRef,
    /// The tree holds one file that lands at `to` itself (a single-file `source`).
    pub single_file: bool,
    /// Only this path of the tree (another build's output, or below one).
    pub path: Option<String>,
    /// Relative to the work directory; `.` is the work directory itself.
    pub to: String,
}

/// Everything one build run needs.
#[derive(Debug, Clone)]
pub struct BuildRequest<'a> {
    /// The build's name, for messages.
    pub name: &'a str,
    /// The manifest of the environment image, in the store's OCI blobs.
    pub environment: Sha256Digest,
    pub sources: Vec<Placement>,
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    pub outputs: &'a [String],
    pub timeout: u32,
    /// `SOURCE_DATE_EPOCH` of the build.
    pub epoch: u64,
    /// A fixed-output build: network allowed, outputs must hash to this.
    pub hash: Option<&'a str>,
    /// Where the log of a failed build is kept.
    pub failed_log: PathBuf,
}

/// What a successful build produced.
#[derive(Debug, Clone)]
pub struct Produced {
    /// The outputs' tree.
    pub tree: B3Digest,
    /// Total bytes of the outputs' files.
    pub size: u64,
    /// The build log (standard output and error, interleaved, then himg's own last line).
    pub log: B3Digest,
    /// How long the command itself ran.
    pub command_time: Duration,
}

/// The `hash = …` form of an output tree: what a fixed-output build declares.
pub fn hash_of(tree: &B3Digest) -> String {
    format!("blake3:{}", tree.to_hex())
}

/// Runs the build described by `req`.
pub fn run_build(store: &Store, req: &BuildRequest<'_>) -> Result<Produced, BuildError> {
    let rootfs = environment_root(store, &req.environment)?;
    let sandbox = Sandbox::new(&rootfs).map_err(|e| BuildError::Sandbox(e.to_string()))?;
    let scratch_root = store.root().join(SCRATCH_DIR);
    std::fs::create_dir_all(&scratch_root).map_err(io_err(&scratch_root))?;
    let scratch = tempfile::Builder::new()
        .prefix("build-")
        .tempdir_in(&scratch_root)
        .map_err(io_err(&scratch_root))?;
    let _guard = crate::interrupt::guard(scratch.path());
    let work = scratch.path().join("work");
    let out = scratch.path().join("out");
    for dir in [&work, &out] {
        std::fs::create_dir(dir).map_err(io_err(dir))?;
    }
    for placement in &req.sources {
        place(store, placement, &work)?;
    }
    // Every placed file and directory dated at the epoch: tools that record times see the same ones
    // on every machine (a build that must look newer, as an incremental compiler's edit, touches).
    clamp_times(&work, req.epoch)?;
    let log_path = scratch.path().join("log");
    let mut log = std::fs::File::options()
        .create_new(true)
        .read(true)
        .write(true)
        .open(&log_path)
        .map_err(io_err(&log_path))?;
    let cmd = SandboxCommand {
        argv: req.argv.to_vec(),
        env: environment(req),
        uid: 0,
        gid: 0,
        workdir: BUILD_WORKDIR.into(),
        network: req.hash.is_some(),
        writable: vec![
            (work.clone(), BUILD_WORKDIR.into()),
            (out.clone(), BUILD_OUTDIR.into()),
        ],
    };
    let mut command = sandbox
        .command(&cmd, false)
        .map_err(|e| BuildError::Sandbox(e.to_string()))?;
    let stderr = log.try_clone().map_err(io_err(&log_path))?;
    let stdout = log.try_clone().map_err(io_err(&log_path))?;
    command.stdin(Stdio::null()).stdout(stdout).stderr(stderr);
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| BuildError::Sandbox(e.to_string()))?;
    let status = child
        .wait_timeout(Duration::from_secs(u64::from(req.timeout)))
        .map_err(|e| BuildError::Sandbox(e.to_string()))?;
    let command_time = started.elapsed();
    let code = match status {
        Some(status) => exit_code(status),
        None => {
            // Killing bwrap kills the sandbox's pid 1, and with it every process inside.
            let _ = child.kill();
            let _ = child.wait();
            let tail = finish_log(
                &mut log,
                &log_path,
                "killed after the timeout",
                command_time,
            )?;
            let kept = keep_failed_log(&log_path, &req.failed_log)?;
            return Err(BuildError::TimedOut {
                seconds: req.timeout,
                log: kept,
                tail,
            });
        }
    };
    let tail = finish_log(
        &mut log,
        &log_path,
        &format!("exit code {code}"),
        command_time,
    )?;
    if code != 0 {
        let kept = keep_failed_log(&log_path, &req.failed_log)?;
        return Err(BuildError::Failed {
            code,
            log: kept,
            tail,
            offline: req.hash.is_none(),
        });
    }
    // A command that succeeded but left wrong outputs is a failed build too: its log is kept.
    let captured = capture(store, &out, req.outputs).and_then(|captured| match req.hash {
        Some(declared) if hash_of(&captured.tree) != declared => Err(BuildError::HashMismatch {
            declared: declared.to_owned(),
            got: hash_of(&captured.tree),
        }),
        _ => Ok(captured),
    });
    let captured = match captured {
        Ok(captured) => captured,
        Err(e) => {
            keep_failed_log(&log_path, &req.failed_log)?;
            return Err(e);
        }
    };
    let (log_blob, _) = store.put_blob_from_path(&log_path)?;
    Ok(Produced {
        tree: captured.tree,
        size: captured.size,
        log: log_blob,
        command_time,
    })
}

/// Host variables a fixed-output build (a fetch) receives: proxies, and where the language tools
/// fetch from. A fetch's output is checked against its declared hash, so how it was fetched
/// cannot change what enters the store; the project never names a registry host.
pub const FETCH_PASSTHROUGH: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "GOPROXY",
    "GOSUMDB",
    "CARGO_REGISTRIES_CRATES_IO_PROTOCOL",
    "npm_config_registry",
];

/// The variables by which language tools are told where the trusted authorities are (a fetch's are
/// the host's, bound at [`CA_BUNDLE`]): OpenSSL, curl, cargo, pip and requests, git, Node.
pub const CA_VARIABLES: &[&str] = &[
    "SSL_CERT_FILE",
    "CURL_CA_BUNDLE",
    "CARGO_HTTP_CAINFO",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "NODE_EXTRA_CA_CERTS",
];

/// The sandbox's fixed variables, then the build's own (which the language keeps off `out` and
/// `SOURCE_DATE_EPOCH`); a fetch also gets the host's [`FETCH_PASSTHROUGH`] variables.
fn environment(req: &BuildRequest<'_>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("PATH", DEFAULT_PATH),
        ("HOME", "/tmp"),
        ("TMPDIR", "/tmp"),
        ("TZ", "UTC"),
        ("LANG", "C.UTF-8"),
        ("LC_ALL", "C.UTF-8"),
        ("out", BUILD_OUTDIR),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    env.push(("SOURCE_DATE_EPOCH".into(), req.epoch.to_string()));
    if req.hash.is_some() {
        for name in FETCH_PASSTHROUGH {
            if let Ok(value) = std::env::var(name) {
                env.push(((*name).to_owned(), value));
            }
        }
        // The bundle the sandbox binds from the host, named for the tools that carry their own.
        for name in CA_VARIABLES {
            env.push(((*name).to_owned(), CA_BUNDLE.to_owned()));
        }
    }
    for (k, v) in req.env {
        env.retain(|(key, _)| key != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// Places one source under the work directory.
fn place(store: &Store, placement: &Placement, work: &Path) -> Result<(), BuildError> {
    let ObjectRef::Tree(root) = &placement.content else {
        return Err(BuildError::Source {
            path: placement.to.clone(),
            problem: "is not a directory tree in the store".into(),
        });
    };
    let tree = store.get_tree(root)?;
    let dest = if placement.to == "." {
        work.to_path_buf()
    } else {
        work.join(&placement.to)
    };
    let node = match (&placement.path, placement.single_file) {
        (Some(path), _) => lookup(store, &tree, path)?.ok_or_else(|| BuildError::Source {
            path: path.clone(),
            problem: "is not among the outputs of the build it names".into(),
        })?,
        (None, true) => match tree.entries.first() {
            Some(entry) => entry.node.clone(),
            None => return Ok(()),
        },
        (None, false) => return place_tree(store, &tree, &dest),
    };
    match &node {
        Node::Dir { .. } => place_node(store, &node, &dest),
        // A single file placed at the work directory itself keeps its own name.
        _ if placement.to == "." => {
            let name = placement
                .path
                .as_deref()
                .and_then(|p| p.rsplit('/').next())
                .or_else(|| tree.entries.first().map(|e| e.name.as_str()))
                .unwrap_or("source");
            place_node(store, &node, &work.join(name))
        }
        _ => place_node(store, &node, &dest),
    }
}

/// Appends himg's last line to the log and returns the log's last lines.
fn finish_log(
    log: &mut std::fs::File,
    path: &Path,
    ended: &str,
    took: Duration,
) -> Result<String, BuildError> {
    writeln!(
        log,
        "himg: the build command ended ({ended}) after {:.3} s",
        took.as_secs_f64()
    )
    .map_err(io_err(path))?;
    log.flush().map_err(io_err(path))?;
    // The tail: the last 64 KiB are enough for the last lines.
    let len = log.metadata().map_err(io_err(path))?.len();
    log.seek(std::io::SeekFrom::Start(len.saturating_sub(64 * 1024)))
        .map_err(io_err(path))?;
    let mut bytes = Vec::new();
    log.read_to_end(&mut bytes).map_err(io_err(path))?;
    Ok(tail(&String::from_utf8_lossy(&bytes), TAIL_LINES))
}

/// The last `n` lines of `text`.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Copies a failed build's log to where `himg log` finds it.
fn keep_failed_log(log: &Path, dest: &Path) -> Result<PathBuf, BuildError> {
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    std::fs::copy(log, dest).map_err(io_err(dest))?;
    Ok(dest.to_path_buf())
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Removes every scratch directory under `<store_root>/builds/` (call only while no build runs):
/// what a build killed with SIGKILL left. With `dry_run`, only counts.
pub fn sweep_scratch(
    store_root: &Path,
    dry_run: bool,
) -> std::io::Result<crate::digest_cache::Collected> {
    let dir = store_root.join(SCRATCH_DIR);
    let mut out = crate::digest_cache::Collected::default();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let path = entry?.path();
        out.entries += 1;
        if !dry_run {
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(out)
}
