//! Rebuild benchmark (`cargo bench --bench rebuild`): an image of 2,000 files / ~200 MB of local content,
//! built cold, then as a no-op, then with one file changed. Prints the three times and their ratios, and
//! — when a Docker engine answers — the same three builds with `docker build` (BuildKit, `FROM scratch`)
//! side by side as the baseline (BuildKit when `docker buildx` is installed, else the legacy builder).
//!
//! Targets (issue 1/5): no-op under 50 ms and under 1% of cold; one-file change under 10% of cold.
//! Environment: `HIMG_BENCH_FILES` (default 2000), `HIMG_BENCH_MB` (default 200), `HIMG_BENCH_RUNS`
//! (repetitions of the warm measurements, median reported; default 5).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

const LAYERS: usize = 10;

fn make_project(dir: &Path, files: u64, total_mb: u64) {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let avg = total_mb * 1024 * 1024 / files;
    for i in 0..files {
        let layer = i as usize % LAYERS;
        let sub = dir.join(format!("content/l{layer}/d{}", (i / 50) % 8));
        std::fs::create_dir_all(&sub).expect("mkdir");
        // Sizes between 0.25× and 1.75× the average; half text-like (compressible), half random.
        let size = (avg / 4 + rng.next() % (avg * 3 / 2)) as usize;
        let mut bytes = vec![0u8; size];
        if i % 2 == 0 {
            for chunk in bytes.chunks_mut(8) {
                let v = rng.next().to_le_bytes();
                chunk.copy_from_slice(&v[..chunk.len()]);
            }
        } else {
            for (j, b) in bytes.iter_mut().enumerate() {
                *b = b"himg reproducible layers\n"[(j + i as usize) % 25];
            }
        }
        std::fs::write(sub.join(format!("f{i:05}.dat")), bytes).expect("write");
    }
    let mut himg = String::from("image \"bench\" {\n");
    for l in 0..LAYERS {
        himg.push_str(&format!(
            "  layer \"l{l}\" {{\n    copy \"content/l{l}\" {{ to = \"/srv/l{l}\" }}\n  }}\n"
        ));
    }
    himg.push_str("}\n");
    std::fs::write(dir.join("bench.himg"), himg).expect("write himg");
    let mut dockerfile = String::from("FROM scratch\n");
    for l in 0..LAYERS {
        dockerfile.push_str(&format!("COPY content/l{l} /srv/l{l}\n"));
    }
    std::fs::write(dir.join("Dockerfile"), dockerfile).expect("write Dockerfile");
}

fn time(mut cmd: Command) -> Duration {
    let t = Instant::now();
    let out = cmd.output().expect("spawn");
    let elapsed = t.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Row {
    tool: &'static str,
    cold: Duration,
    noop: Duration,
    change: Duration,
}

fn main() {
    let files = env_num("HIMG_BENCH_FILES", 2000);
    let mb = env_num("HIMG_BENCH_MB", 200);
    let runs = env_num("HIMG_BENCH_RUNS", 5).max(1);
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    make_project(&dir, files, mb);
    let changed_file = dir.join("content/l3/d0/f00003.dat");
    let himg = PathBuf::from(env!("CARGO_BIN_EXE_himg"));
    let store = dir.join("store");

    let himg_build = || {
        let mut c = Command::new(&himg);
        c.current_dir(&dir).env("HIMG_STORE", &store).args([
            "build",
            "bench.himg",
            "--out",
            "out",
            "--quiet",
        ]);
        c
    };
    let cold = time(himg_build());
    let noop = median((0..runs).map(|_| time(himg_build())).collect());
    let mut changes = Vec::new();
    for r in 0..runs {
        std::fs::write(&changed_file, format!("changed {r}\n")).expect("change");
        changes.push(time(himg_build()));
    }
    let mut rows = vec![Row {
        tool: "himg",
        cold,
        noop,
        change: median(changes),
    }];

    let docker_ok = Command::new("docker")
        .arg("info")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    let buildkit = Command::new("docker")
        .args(["buildx", "version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if docker_ok {
        let tag = format!("himg-bench-{}", std::process::id());
        let docker_build = |no_cache: bool| {
            let mut c = Command::new("docker");
            c.current_dir(&dir)
                .env("DOCKER_BUILDKIT", if buildkit { "1" } else { "0" })
                .args(["build", "-q", "-t", &tag]);
            if no_cache {
                c.arg("--no-cache");
            }
            c.arg(".");
            c
        };
        let cold = time(docker_build(true));
        let noop = median((0..runs).map(|_| time(docker_build(false))).collect());
        let mut changes = Vec::new();
        for r in 0..runs {
            std::fs::write(&changed_file, format!("docker changed {r}\n")).expect("change");
            changes.push(time(docker_build(false)));
        }
        rows.push(Row {
            tool: if buildkit {
                "docker buildkit"
            } else {
                "docker (legacy)"
            },
            cold,
            noop,
            change: median(changes),
        });
        let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    }

    println!(
        "rebuild benchmark: {files} files, ~{mb} MB, {LAYERS} layers, median of {runs} warm runs"
    );
    println!(
        "{:<14} {:>10} {:>10} {:>12} {:>10} {:>12}",
        "tool", "cold ms", "no-op ms", "1-change ms", "no-op %", "1-change %"
    );
    for r in &rows {
        println!(
            "{:<14} {:>10.1} {:>10.1} {:>12.1} {:>9.2}% {:>11.2}%",
            r.tool,
            ms(r.cold),
            ms(r.noop),
            ms(r.change),
            100.0 * ms(r.noop) / ms(r.cold),
            100.0 * ms(r.change) / ms(r.cold)
        );
    }
    if rows.len() == 2 {
        println!(
            "himg vs docker build: cold {:.2}×, no-op {:.2}×, 1-change {:.2}× (docker time / himg time)",
            ms(rows[1].cold) / ms(rows[0].cold),
            ms(rows[1].noop) / ms(rows[0].noop),
            ms(rows[1].change) / ms(rows[0].change)
        );
    } else {
        println!("(no Docker engine answered: baseline skipped)");
    }
    let h = &rows[0];
    let ok_noop = ms(h.noop) < 50.0 && h.noop.as_secs_f64() < 0.01 * h.cold.as_secs_f64();
    let ok_change = h.change.as_secs_f64() < 0.10 * h.cold.as_secs_f64();
    println!(
        "targets: no-op < 50 ms and < 1% of cold: {}; 1-change < 10% of cold: {}",
        if ok_noop { "met" } else { "MISSED" },
        if ok_change { "met" } else { "MISSED" }
    );
}
