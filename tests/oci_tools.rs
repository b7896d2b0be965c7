//! Acceptance 1: the built layout passes oci-image-tool, skopeo and umoci; the unpacked rootfs holds exactly
//! the declared files, modes and owners; runc runs the static program as the declared user.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

use common::{Project, image, require_tool, run_tool};

fn unpack(project: &Project, layout: &str, name: &str, bundle: &str) -> std::path::PathBuf {
    require_tool("umoci");
    let bundle_path = project.path(bundle);
    let mut cmd = Command::new("umoci");
    cmd.arg("unpack");
    if !nix_is_root() {
        cmd.arg("--rootless");
    }
    cmd.arg("--image")
        .arg(format!("{}:{name}", project.path(layout).display()))
        .arg(&bundle_path);
    run_tool(&mut cmd);
    bundle_path
}

fn nix_is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

#[test]
fn hello_layout_passes_real_validators_and_runs() {
    let project = Project::new();
    let report = project.build("examples/prebuilt.himg", "out");
    let hello = image(&report, "hello");
    let digest = hello["digest"].as_str().expect("digest");
    assert!(digest.starts_with("sha256:"));

    let layout = project.path("out");
    require_tool("oci-image-tool");
    run_tool(
        Command::new("oci-image-tool")
            .args(["validate", "--type", "image"])
            .arg(&layout)
            .args(["--ref", "name=hello"]),
    );

    require_tool("skopeo");
    let inspect = run_tool(
        Command::new("skopeo")
            .arg("inspect")
            .arg(format!("oci:{}:hello", layout.display())),
    );
    let inspect: serde_json::Value = serde_json::from_str(&inspect).expect("skopeo json");
    assert_eq!(
        inspect["Digest"], digest,
        "skopeo sees the digest we reported"
    );
    assert_eq!(inspect["Architecture"], "amd64");
    let config = run_tool(
        Command::new("skopeo")
            .args(["inspect", "--config"])
            .arg(format!("oci:{}:hello", layout.display())),
    );
    let config: serde_json::Value = serde_json::from_str(&config).expect("config json");
    assert_eq!(config["config"]["User"], "app");
    assert_eq!(config["config"]["Entrypoint"][0], "/usr/local/bin/hello");
    assert_eq!(config["config"]["WorkingDir"], "/home/app");
    assert_eq!(config["created"], "1970-01-01T00:00:01Z");

    let bundle = unpack(&project, "out", "hello", "bundle");
    let rootfs = bundle.join("rootfs");
    let meta =
        |p: &str| std::fs::symlink_metadata(rootfs.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let check = |p: &str, mode: u32, uid: u32, gid: u32| {
        let m = meta(p);
        assert_eq!(m.permissions().mode() & 0o7777, mode, "mode of {p}");
        if nix_is_root() {
            assert_eq!((m.uid(), m.gid()), (uid, gid), "owner of {p}");
        }
    };
    check("usr/local/bin/hello", 0o755, 0, 0);
    check("etc/hello.conf", 0o644, 0, 0);
    check("etc/passwd", 0o644, 0, 0);
    check("etc/shadow", 0o640, 0, 0);
    check("var/lib/hello", 0o750, 10001, 10001);
    check("home/app", 0o700, 10001, 10001);
    check("srv/www/index.html", 0o644, 10001, 10001);
    assert!(meta("usr/bin/hello").file_type().is_symlink());
    assert_eq!(
        std::fs::read_link(rootfs.join("usr/bin/hello")).expect("readlink"),
        std::path::Path::new("/usr/local/bin/hello")
    );
    // Include/exclude: only HTML, no drafts, no notes.txt.
    assert!(rootfs.join("srv/www/about.html").exists());
    assert!(!rootfs.join("srv/www/drafts").exists());
    assert!(!rootfs.join("srv/www/notes.txt").exists());
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("passwd");
    assert!(
        passwd.contains("app:x:10001:10001:app:/home/app:/sbin/nologin\n"),
        "{passwd}"
    );

    // Exactly the declared files (and their parents), nothing else.
    let mut all: Vec<String> = walk(&rootfs);
    all.sort();
    let expected = [
        "etc",
        "etc/group",
        "etc/hello.conf",
        "etc/passwd",
        "etc/shadow",
        "home",
        "home/app",
        "srv",
        "srv/www",
        "srv/www/about.html",
        "srv/www/index.html",
        "usr",
        "usr/bin",
        "usr/bin/hello",
        "usr/local",
        "usr/local/bin",
        "usr/local/bin/hello",
        "var",
        "var/lib",
        "var/lib/hello",
    ];
    assert_eq!(all, expected);

    // runc runs the program from the image as the declared user.
    if nix_is_root() {
        require_tool("runc");
        let cfg_path = bundle.join("config.json");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cfg_path).expect("config.json")).expect("json");
        cfg["process"]["terminal"] = serde_json::json!(false);
        std::fs::write(&cfg_path, serde_json::to_vec(&cfg).expect("json")).expect("write");
        let id = format!("himg-test-{}", std::process::id());
        let out = run_tool(
            Command::new("runc")
                .arg("run")
                .arg("--bundle")
                .arg(&bundle)
                .arg(&id),
        );
        assert!(out.contains("hello from himg"), "{out}");
        assert!(out.contains("uid=10001 gid=10001"), "{out}");
        assert!(out.contains("conf: greeting = \"hi\""), "{out}");
    } else {
        require_tool("bwrap");
        let out = run_tool(
            Command::new("bwrap")
                .arg("--bind")
                .arg(&rootfs)
                .arg("/")
                .args(["--unshare-all", "--uid", "10001", "--gid", "10001"])
                .args([
                    "--setenv",
                    "GREETING",
                    "hello from himg",
                    "/usr/local/bin/hello",
                ]),
        );
        assert!(out.contains("uid=10001 gid=10001"), "{out}");
    }
}

fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).expect("read_dir") {
            let e = e.expect("entry");
            let rel = e
                .path()
                .strip_prefix(root)
                .expect("prefix")
                .to_string_lossy()
                .into_owned();
            if e.file_type().expect("type").is_dir() {
                stack.push(e.path());
            }
            out.push(rel);
        }
    }
    out
}

#[test]
fn multi_arch_index_and_archives_are_accepted() {
    let project = Project::new();
    std::fs::write(
        project.path("multi.himg"),
        r#"
image "multi" {
  architectures = ["amd64", "arm64"]
  file "/hello.txt" { text = "hi" }
}
"#,
    )
    .expect("write");
    let report = project.build("multi.himg", "out");
    let img = image(&report, "multi");
    assert_eq!(img["media_type"], "application/vnd.oci.image.index.v1+json");
    require_tool("skopeo");
    let raw = run_tool(
        Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:multi", project.path("out").display())),
    );
    let raw: serde_json::Value = serde_json::from_str(&raw).expect("json");
    let archs: Vec<&str> = raw["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    for arch in ["amd64", "arm64"] {
        run_tool(
            Command::new("skopeo")
                .args(["inspect", "--override-arch", arch])
                .arg(format!("oci:{}:multi", project.path("out").display())),
        );
    }
    require_tool("oci-image-tool");
    run_tool(
        Command::new("oci-image-tool")
            .args(["validate", "--type", "image"])
            .arg(project.path("out"))
            .args(["--ref", "name=multi"]),
    );

    // oci-archive and docker-archive of the hello image.
    let out = project.himg(&[
        "build",
        "examples/prebuilt.himg",
        "--format",
        "oci-archive",
        "--out",
        "hello.tar",
    ]);
    common::assert_success(&out, "build oci-archive");
    run_tool(Command::new("skopeo").arg("inspect").arg(format!(
        "oci-archive:{}:hello",
        project.path("hello.tar").display()
    )));
    let out = project.himg(&[
        "build",
        "examples/prebuilt.himg",
        "--format",
        "docker-archive",
        "--out",
        "hello-docker.tar",
    ]);
    common::assert_success(&out, "build docker-archive");
    let inspect = run_tool(Command::new("skopeo").arg("inspect").arg(format!(
        "docker-archive:{}",
        project.path("hello-docker.tar").display()
    )));
    assert!(inspect.contains("amd64"), "{inspect}");
}

#[test]
fn docker_loads_and_runs_the_docker_archive() {
    require_tool("docker");
    let info = Command::new("docker")
        .arg("info")
        .output()
        .expect("docker info");
    assert!(
        info.status.success(),
        "this machine runs a Docker engine, but `docker info` fails:\n{}",
        String::from_utf8_lossy(&info.stderr)
    );
    let project = Project::new();
    let out = project.himg(&[
        "build",
        "examples/prebuilt.himg",
        "--format",
        "docker-archive",
        "--out",
        "hello-docker.tar",
    ]);
    common::assert_success(&out, "build docker-archive");
    let loaded = run_tool(
        Command::new("docker")
            .args(["load", "-i"])
            .arg(project.path("hello-docker.tar")),
    );
    assert!(loaded.contains("hello:latest"), "{loaded}");
    let out = run_tool(Command::new("docker").args([
        "run",
        "--rm",
        "--network",
        "none",
        "hello:latest",
        "extra",
    ]));
    assert!(out.contains("hello from himg"), "{out}");
    assert!(out.contains("uid=10001 gid=10001"), "{out}");
    assert!(out.contains("arg: extra"), "{out}");
    let _ = Command::new("docker")
        .args(["rmi", "-f", "hello:latest"])
        .output();
}
