//! Fleet benchmark (`cargo bench --bench fleet`, issue 10/11): a generated workspace of one golden
//! base and 50 products (python, nodejs, nginx and java images — packages of a signed fixture
//! repository on 127.0.0.1 — each with its own small files), handled as one workspace:
//!
//! 1. cold build of all 51 images;
//! 2. no-op build of all (target < 1 s);
//! 3. one base package moves: `himg update DIR` then `himg build DIR` (target < 10 % of cold; only
//!    that package's layers, dpkg layers, configs and manifests are rebuilt);
//! 4. bytes pushed to Debian's docker-registry on 127.0.0.1 after the update, against the first push
//!    (target: only the changed layers);
//! 5. `himg update DIR --check` of all 50 against one file's (target < 3x), and one file locked
//!    again from scratch.
//!
//! Wall time and peak memory (max RSS of the himg process) of each, as a table. Environment:
//! `HIMG` (the binary; default: this build's release binary), `HIMG_FLEET_PRODUCTS` (default 50),
//! `HIMG_FLEET_KEEP` (keep the work directory, to profile a step by hand), `HIMG_FLEET_PERF=FILE`
//! (also record a `perf` profile of the rebuild after the update, in a copy of the store).

#[allow(dead_code)]
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use support::{Compression, Deb, DebBuilder, RepoBuilder, TestKey, serve};

/// The packages of the fixture repository (`add(name, version, depends, files, bytes per file)`).
fn packages(base_version: &str) -> Vec<Deb> {
    let mut debs = Vec::new();
    let mut add = |name: &str,
                   version: &str,
                   depends: &str,
                   files: usize,
                   size: usize,
                   compression: Compression| {
        let mut b = DebBuilder::new(name, version, "amd64").data_compression(compression);
        if !depends.is_empty() {
            b = b.depends(depends);
        }
        for i in 0..files {
            // Like real packages: half the files compress well (text), half hardly (binaries).
            let mut data = format!("{name} {version} file {i}\n").into_bytes();
            let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ ((i as u64) << 32) ^ name.len() as u64;
            data.extend((0..size).map(|j| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 2 == 0 {
                    b"abcdefghij klmnopqrst\n"[(x % 22) as usize]
                } else {
                    (x >> (j % 8)) as u8
                }
            }));
            b = b.file(&format!("./usr/lib/{name}/f{i:03}"), &data, 0o644);
        }
        b = b.file(&format!("./usr/bin/{name}"), b"#!/bin/sh\necho hi\n", 0o755);
        debs.push(b.build().expect("deb"));
    };
    // The golden base: a C library and CA certificates; `libfx` is the package that moves.
    add("libfx", base_version, "", 40, 150_000, Compression::Xz);
    add("cacerts-fx", "1.0", "", 10, 20_000, Compression::Xz);
    // The runtimes the products use, about the installed size of Debian's (python3 ~25 MB,
    // nodejs ~60 MB, nginx ~4 MB, a headless JRE ~120 MB). zstd-compressed, which only makes the
    // cold build cheaper than xz would (a conservative ratio) and the fixture quicker to write.
    add(
        "python3-fx",
        "3.13",
        "libfx",
        250,
        100_000,
        Compression::Zstd,
    );
    add(
        "nodejs-fx",
        "20.1",
        "libfx",
        300,
        200_000,
        Compression::Zstd,
    );
    add("nginx-fx", "1.26", "libfx", 40, 100_000, Compression::Zstd);
    add(
        "java-fx",
        "21.0",
        "libfx, cacerts-fx",
        400,
        300_000,
        Compression::Zstd,
    );
    debs
}

fn publish(dir: &Path, key: &TestKey, base_version: &str) {
    let _ = std::fs::remove_dir_all(dir);
    let mut repo = RepoBuilder::new();
    repo.sign_with(key);
    let suite = repo.suite("trixie");
    for deb in packages(base_version) {
        suite.add("main", &deb);
    }
    suite.extra_stanzas = filler_stanzas(index_packages());
    repo.write(dir).expect("repository");
}

/// How many packages the fixture index lists besides the fleet's own (`HIMG_FLEET_INDEX`, default
/// 60,000: about Debian main's count, so that parsing the index costs what it costs for real).
fn index_packages() -> usize {
    std::env::var("HIMG_FLEET_INDEX")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60_000)
}

/// `n` Packages stanzas shaped like Debian's (dependencies, provides, a description), for packages
/// the fleet never installs.
fn filler_stanzas(n: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        if i > 0 {
            text.push('\n');
        }
        let depends = if i % 3 == 0 {
            String::new()
        } else {
            format!(
                "Depends: filler-{:05} (>= 1.0), filler-{:05} | filler-virtual-{}\n",
                i / 2,
                i / 3,
                i % 97
            )
        };
        let provides = if i % 11 == 0 {
            format!("Provides: filler-virtual-{}\n", i % 97)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "Package: filler-{i:05}\nVersion: 1.{}-{}\nArchitecture: amd64\nMaintainer: Fleet Bench <bench@example.invalid>\nInstalled-Size: {}\n{depends}{provides}Section: misc\nPriority: optional\nFilename: pool/main/f/filler-{i:05}.deb\nSize: {}\nSHA256: {:064x}\nDescription: filler package {i}\n one of the packages an archive lists that this fleet never installs,\n so that an index costs what a real one costs to parse.\n",
            i % 17,
            i % 5 + 1,
            100 + i % 4000,
            1000 + i,
            i
        ));
    }
    text
}

const RUNTIMES: [&str; 4] = ["python3-fx", "nodejs-fx", "nginx-fx", "java-fx"];

fn write_workspace(ws: &Path, url: &str, key: &TestKey, products: usize) {
    std::fs::create_dir_all(ws.join("products")).expect("mkdir");
    std::fs::write(ws.join("fixture.gpg"), key.public_keyring()).expect("keyring");
    std::fs::write(
        ws.join("base.himg"),
        format!(
            "let repositories = [{{ name = \"fixture\", url = \"{url}\", suites = [\"trixie\"], components = [\"main\"], keyring = \"fixture.gpg\" }}]\n\nimage \"base\" {{\n  repositories = repositories\n  packages = [\"libfx\", \"cacerts-fx\"]\n  group \"app\" {{ gid = 10001 }}\n  user \"app\" {{ uid = 10001, gid = 10001 }}\n  run_as = \"app\"\n}}\n"
        ),
    )
    .expect("base");
    for i in 0..products {
        let runtime = RUNTIMES[i % RUNTIMES.len()];
        let name = format!("p{i:02}");
        let files = ws.join("products").join(&name);
        std::fs::create_dir_all(&files).expect("mkdir");
        for j in 0..5 {
            std::fs::write(
                files.join(format!("app{j}.txt")),
                format!("{name} {j}\n").repeat(200),
            )
            .expect("file");
        }
        std::fs::write(
            ws.join(format!("products/{name}.himg")),
            format!(
                "let b = import \"../base.himg\"\n\nimage \"{name}\" {{\n  from = b.images.base\n  repositories = b.repositories\n  packages = [\"{runtime}\"]\n  layer \"app\" {{\n    copy \"{name}\" {{ to = \"/srv/{name}\" }}\n  }}\n}}\n"
            ),
        )
        .expect("product");
    }
}

struct Measured {
    wall: Duration,
    max_rss_kb: u64,
    output: Output,
}

/// Runs `himg ARGS` under `/usr/bin/time` for its peak memory.
fn himg(himg: &Path, dir: &Path, store: &Path, args: &[&str]) -> Measured {
    let rss = dir.join(".rss");
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss)
        .arg(himg)
        .args(args)
        .current_dir(dir)
        .env("HIMG_STORE", store)
        .env("HIMG_CONFIG_DIR", dir.join("config"))
        .env_remove("HIMG_SUBSTITUTERS")
        .output()
        .expect("run himg under /usr/bin/time");
    let wall = started.elapsed();
    if !output.status.success() && output.status.code() != Some(10) {
        panic!(
            "himg {args:?} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let max_rss_kb = std::fs::read_to_string(&rss)
        .ok()
        .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()))
        .unwrap_or(0);
    Measured {
        wall,
        max_rss_kb,
        output,
    }
}

fn json(m: &Measured) -> serde_json::Value {
    serde_json::from_slice(&m.output.stdout).unwrap_or_default()
}

fn bytes_uploaded(push: &serde_json::Value) -> u64 {
    push["pushed"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["bytes_uploaded"].as_u64().unwrap_or(0))
        .sum()
}

fn row(what: &str, m: &Measured, note: &str) {
    println!(
        "{:<44} {:>10.2} s {:>9} MB  {}",
        what,
        m.wall.as_secs_f64(),
        m.max_rss_kb / 1024,
        note
    );
}

fn himg_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("HIMG") {
        return PathBuf::from(p);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet"])
        .current_dir(root)
        .status()
        .expect("cargo build");
    assert!(status.success());
    root.join("target/release/himg")
}

fn main() {
    let products: usize = std::env::var("HIMG_FLEET_PRODUCTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let bin = himg_binary();
    let work = tempfile::tempdir().expect("tempdir");
    let dir = work.path();
    let key = TestKey::generate("fleet archive");
    publish(&dir.join("repo"), &key, "1.0");
    let server = serve(&dir.join("repo")).expect("serve");
    let ws = dir.join("fleet");
    write_workspace(&ws, &server.base_url, &key, products);
    let store = dir.join("store");

    let registry = Command::new("/usr/bin/docker-registry")
        .arg("serve")
        .arg(write_registry_config(dir))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let mut registry = match registry {
        Ok(r) => Some(r),
        Err(e) => {
            println!("(no docker-registry: {e}; the push rows are left out)");
            None
        }
    };
    std::thread::sleep(Duration::from_millis(500));
    let prefix = format!("127.0.0.1:{REGISTRY_PORT}/fleet");

    println!(
        "fleet of 1 base + {products} products ({} runtimes), fixture repository on {}",
        RUNTIMES.len(),
        server.base_url
    );
    println!("{:<44} {:>12} {:>12}  note", "step", "wall", "peak RSS");
    let lock = himg(&bin, dir, &store, &["lock", "fleet"]);
    row("lock all (one session)", &lock, "");
    let one = himg(
        &bin,
        dir,
        &store,
        &[
            "update",
            "fleet/products/p00.himg",
            "--check",
            "--project-root",
            "fleet",
        ],
    );
    let all = himg(&bin, dir, &store, &["update", "fleet", "--check"]);
    row("update --check, one file", &one, "");
    row(
        &format!("update --check, all {products}"),
        &all,
        &format!(
            "{:.2}x one file (target < 3x)",
            all.wall.as_secs_f64() / one.wall.as_secs_f64()
        ),
    );
    // One file locked again from scratch (its lock removed): what one file's re-lock costs.
    let _ = std::fs::remove_file(ws.join("products/p00.himg.lock"));
    let relock = himg(
        &bin,
        dir,
        &store,
        &["lock", "fleet/products/p00.himg", "--project-root", "fleet"],
    );
    row("lock one file (its lock removed)", &relock, "");
    let build = [
        "build",
        "fleet",
        "--locked",
        "--out",
        "out",
        "--no-sbom",
        "--no-policy",
        "--json",
    ];
    let cold = himg(&bin, dir, &store, &build);
    row(
        "cold build, all",
        &cold,
        &format!("{} derivations built", json(&cold)["built"]),
    );
    let noop = himg(&bin, dir, &store, &build);
    row(
        "no-op build, all",
        &noop,
        &format!("target < 1 s; {} built", json(&noop)["built"]),
    );
    let push = ["push", "fleet", prefix.as_str(), "--json"];
    let first_push = registry.as_ref().map(|_| himg(&bin, dir, &store, &push));
    if let Some(p) = &first_push {
        row(
            "first push, all",
            p,
            &format!("{} bytes uploaded", bytes_uploaded(&json(p))),
        );
    }

    // One package of the golden base moves.
    publish(&dir.join("repo"), &key, "1.1");
    let update = himg(&bin, dir, &store, &["update", "fleet"]);
    row("update after libfx 1.0 -> 1.1", &update, "");
    if let Ok(perf) = std::env::var("HIMG_FLEET_PERF") {
        // A profile of the rebuild, in a copy of the store (the measured run below is untouched).
        let copy = dir.join("store-perf");
        let _ = Command::new("cp").arg("-a").arg(&store).arg(&copy).status();
        let _ = Command::new("cp")
            .arg("-a")
            .arg(dir.join("fleet"))
            .arg(dir.join("fleet-perf"))
            .status();
        let _ = Command::new("perf")
            .args(["record", "-g", "-o", &perf])
            .arg(&bin)
            .args([
                "build",
                "fleet-perf",
                "--locked",
                "--out",
                "out-perf",
                "--no-sbom",
                "--no-policy",
            ])
            .current_dir(dir)
            .env("HIMG_STORE", &copy)
            .env("HIMG_CONFIG_DIR", dir.join("config"))
            .output();
    }
    let rebuild = himg(&bin, dir, &store, &build);
    let report = json(&rebuild);
    let by_kind = report["files"].as_array().into_iter().flatten().fold(
        std::collections::BTreeMap::<String, u64>::new(),
        |mut acc, f| {
            for (k, v) in f["report"]["built_by_kind"]
                .as_object()
                .into_iter()
                .flatten()
            {
                *acc.entry(k.clone()).or_default() += v.as_u64().unwrap_or(0);
            }
            acc
        },
    );
    let ratio = (update.wall + rebuild.wall).as_secs_f64() / cold.wall.as_secs_f64();
    row(
        "rebuild after the update, all",
        &rebuild,
        &format!(
            "update + rebuild = {:.1} % of cold (target < 10 %)",
            ratio * 100.0
        ),
    );
    println!("  rebuilt by kind: {by_kind:?}");
    if let (Some(first), Some(_)) = (&first_push, &registry) {
        let second = himg(&bin, dir, &store, &push);
        let (a, b) = (bytes_uploaded(&json(first)), bytes_uploaded(&json(&second)));
        row(
            "push after the update, all",
            &second,
            &format!(
                "{b} bytes uploaded ({:.1} % of the first push's {a})",
                100.0 * b as f64 / a.max(1) as f64
            ),
        );
    }
    if let Some(r) = registry.as_mut() {
        let _ = r.kill();
        let _ = r.wait();
    }
    if std::env::var_os("HIMG_FLEET_KEEP").is_some() {
        println!("kept: {}", work.keep().display());
    }
}

const REGISTRY_PORT: u16 = 45123;

/// A docker-registry configuration: filesystem storage under `dir`, listening on 127.0.0.1.
fn write_registry_config(dir: &Path) -> PathBuf {
    let path = dir.join("registry.yml");
    std::fs::write(
        &path,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{REGISTRY_PORT}\n",
            dir.join("registry").display()
        ),
    )
    .expect("registry config");
    path
}
