//! Acceptance 5: kill -9 at random moments of a build (24 trials) leaves a store that `himg store verify`
//! finds consistent, and the next build gives the right digest; two concurrent builds of overlapping
//! images on one store both succeed with the right digests.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Project, assert_success, himg_bin, image};

/// A small deterministic PRNG (xorshift), seeded per run and printed, so a failure can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A project with enough content (≈24 MB in 384 files over 3 layers) that a build takes a while.
fn big_project(rng: &mut Rng) -> Project {
    let project = Project::new();
    for layer in 0..3 {
        let dir = project.path(&format!("data/l{layer}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        for i in 0..128 {
            let mut bytes = vec![0u8; 64 * 1024];
            for chunk in bytes.chunks_mut(8) {
                chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
            }
            std::fs::write(dir.join(format!("f{i:03}.bin")), bytes).expect("write");
        }
    }
    std::fs::write(
        project.path("big.himg"),
        r#"
image "big" {
  layer "l0" { copy "data/l0" { to = "/data/l0" } }
  layer "l1" { copy "data/l1" { to = "/data/l1" } }
  layer "l2" { copy "data/l2" { to = "/data/l2" } }
  file "/etc/motd" { text = "big" }
}
"#,
    )
    .expect("write himg");
    project
}

fn build_cmd(project: &Project, store: &std::path::Path, epoch: u64, out: &str) -> Command {
    let mut cmd = Command::new(himg_bin());
    cmd.current_dir(project.path(""))
        .env("HIMG_STORE", store)
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .args(["build", "big.himg", "--out", out, "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn verify(project: &Project, store: &std::path::Path) {
    let out = project.himg_in(&project.path(""), store, &["store", "verify"]);
    assert_success(&out, "himg store verify");
}

#[test]
fn kill_9_at_random_moments_leaves_a_consistent_store() {
    let seed = std::env::var("HIMG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(0x9e37_79b9_7f4a_7c15)
        });
    eprintln!("crash test seed: HIMG_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let project = big_project(&mut rng);
    let store = project.path("crash-store");

    // Calibrate: how long does a build that changes one file take here (what each trial does)? A
    // cold build is much slower, so delays drawn from it would let most trials finish first.
    let cal_store = project.path("calibrate-store");
    let out = build_cmd(&project, &cal_store, 1, "cal-out")
        .output()
        .expect("calibrate");
    assert_success(&out, "calibration build");
    std::fs::write(project.path("data/l0/f000.bin"), "calibration").expect("write");
    let t = Instant::now();
    let out = build_cmd(&project, &cal_store, 2, "cal-out")
        .output()
        .expect("calibrate");
    assert_success(&out, "incremental calibration build");
    let warm = t.elapsed().as_millis().max(50) as u64;

    let trials = 24;
    let mut killed = 0;
    for trial in 0..trials {
        // Each trial changes one file and the epoch, so layers, config and manifest must be rebuilt.
        let f = project.path(&format!("data/l{}/f000.bin", trial % 3));
        std::fs::write(&f, format!("trial {trial} {}", rng.next())).expect("write");
        let epoch = 1000 + trial as u64;
        let mut child = build_cmd(&project, &store, epoch, "out")
            .spawn()
            .expect("spawn");
        let delay = rng.next() % (warm + warm / 2);
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().expect("try_wait").is_none() {
            child.kill().expect("kill -9");
            killed += 1;
        }
        let _ = child.wait();
        verify(&project, &store);
    }
    eprintln!("{killed} of {trials} builds were killed mid-way");
    assert!(
        killed >= trials / 3,
        "too few builds were interrupted ({killed}); the test proves nothing"
    );

    // The next build completes and gives the digest a fresh store gives.
    let epoch = 5000;
    let out = build_cmd(&project, &store, epoch, "out")
        .output()
        .expect("build");
    assert_success(&out, "build after crashes");
    let after: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let out = build_cmd(&project, &project.path("fresh-store"), epoch, "fresh-out")
        .output()
        .expect("build fresh");
    assert_success(&out, "fresh build");
    let fresh: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        image(&after, "big")["digest"],
        image(&fresh, "big")["digest"]
    );
    verify(&project, &store);
}

#[test]
fn concurrent_builds_of_overlapping_images_share_one_store() {
    let project = Project::new();
    let store = project.path("shared-store");
    let spawn = |file: &str, out: &str| {
        Command::new(himg_bin())
            .current_dir(project.path(""))
            .env("HIMG_STORE", &store)
            .args([
                "build",
                file,
                "--project-root",
                "examples",
                "--out",
                out,
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn")
    };
    // Round 1: the product image and its base at once; round 2: the same image twice at once.
    for (a, b) in [
        ("examples/golden/app.himg", "examples/golden/platform.himg"),
        ("examples/prebuilt.himg", "examples/prebuilt.himg"),
    ] {
        let c1 = spawn(a, "out-1");
        let c2 = spawn(b, "out-2");
        let o1 = c1.wait_with_output().expect("wait 1");
        let o2 = c2.wait_with_output().expect("wait 2");
        assert_success(&o1, a);
        assert_success(&o2, b);
        for (file, output) in [(a, &o1), (b, &o2)] {
            let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
            let fresh = project.himg_in(
                &project.path(""),
                &project.path(&format!("fresh-{}", file.replace('/', "_"))),
                &[
                    "build",
                    file,
                    "--project-root",
                    "examples",
                    "--out",
                    "fresh-out",
                    "--json",
                ],
            );
            assert_success(&fresh, "fresh build");
            let fresh: serde_json::Value = serde_json::from_slice(&fresh.stdout).expect("json");
            assert_eq!(
                report["images"][0]["digest"], fresh["images"][0]["digest"],
                "{file}"
            );
        }
    }
    verify(&project, &store);
}
