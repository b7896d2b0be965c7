//! The credential sources Docker and podman users have, end to end: `himg push` and `himg pull`
//! against a real `docker-registry` with Basic auth, the credentials coming from a scripted
//! `docker-credential-himgtest` helper (`credHelpers`, `credsStore`) in a `DOCKER_CONFIG`
//! directory, or from a containers `auth.json` under `XDG_RUNTIME_DIR`.
#![allow(clippy::unwrap_used)]

mod common;

use common::registry::Registry;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const USER: &str = "himg";
const PASSWORD: &str = "s3cret-pw";

/// A registry asking for `USER`/`PASSWORD`, a built image, and a home of their own.
struct Setup {
    reg: Registry,
    project: common::Project,
    scratch: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let scratch = tempfile::tempdir().unwrap();
        let out = Command::new("htpasswd")
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .expect("htpasswd (apache2-utils) is installed");
        assert!(out.status.success());
        let htpasswd = scratch.path().join("htpasswd");
        std::fs::write(&htpasswd, &out.stdout).unwrap();
        let reg = Registry::start_with(Some(&htpasswd));
        let project = common::Project::new();
        project.build("examples/prebuilt.himg", "out");
        std::fs::create_dir_all(scratch.path().join("home")).unwrap();
        Setup {
            reg,
            project,
            scratch,
        }
    }

    fn dir(&self, rel: &str) -> PathBuf {
        let d = self.scratch.path().join(rel);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn target(&self, repo: &str) -> String {
        format!("{}/{repo}:1", self.reg.host())
    }

    /// `himg ARGS` with no credentials in its environment but `vars`, and the helper directory
    /// first on PATH.
    fn himg(&self, vars: &[(&str, &Path)], args: &[&str]) -> Output {
        let path = std::env::join_paths(std::iter::once(self.dir("bin")).chain(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
        ))
        .unwrap();
        let mut cmd = Command::new(common::himg_bin());
        cmd.current_dir(self.project.dir.path())
            .env("HIMG_STORE", &self.project.store)
            .env("HOME", self.dir("home"))
            .env("PATH", path)
            .env_remove("SOURCE_DATE_EPOCH");
        for var in [
            "REGISTRY_AUTH_FILE",
            "DOCKER_CONFIG",
            "XDG_RUNTIME_DIR",
            "XDG_CONFIG_HOME",
            "HIMG_REGISTRY_USER",
            "HIMG_REGISTRY_PASSWORD",
        ] {
            cmd.env_remove(var);
        }
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.args(args).output().expect("run himg")
    }

    /// Installs `docker-credential-himgtest`: it logs `get SERVER` to `helper.log` and answers
    /// with the registry's user and password for the registry, "credentials not found" otherwise.
    fn install_helper(&self) {
        use std::os::unix::fs::PermissionsExt as _;
        let script = format!(
            "#!/bin/sh\nread -r server\necho \"$1 $server\" >> '{log}'\nif [ \"$server\" = '{host}' ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'\n  exit 1\nfi\n",
            log = self.helper_log().display(),
            host = self.reg.host(),
        );
        let path = self.dir("bin").join("docker-credential-himgtest");
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn helper_log(&self) -> PathBuf {
        self.scratch.path().join("helper.log")
    }

    fn helper_calls(&self) -> String {
        std::fs::read_to_string(self.helper_log()).unwrap_or_default()
    }

    /// A `DOCKER_CONFIG` directory whose `config.json` is `json`.
    fn docker_config(&self, json: &serde_json::Value) -> PathBuf {
        let dir = self.dir("docker-config");
        std::fs::write(dir.join("config.json"), serde_json::to_vec(json).unwrap()).unwrap();
        dir
    }

    /// Pushes `out` to `repo` and pulls it back, asserting both succeed.
    fn push_and_pull(&self, vars: &[(&str, &Path)], repo: &str) {
        let target = self.target(repo);
        let push = self.himg(vars, &["push", "out", &target]);
        common::assert_success(&push, "push with credentials");
        let pulled = format!("pulled-{}", repo.replace('/', "-"));
        let pull = self.himg(vars, &["pull", &target, "--out", &pulled]);
        common::assert_success(&pull, "pull with credentials");
        assert!(self.project.path(&pulled).join("index.json").is_file());
        let all = [push.stdout, push.stderr, pull.stdout, pull.stderr].concat();
        assert!(!String::from_utf8_lossy(&all).contains(PASSWORD));
    }

    /// Asserts that pushing to `repo` with `vars` is refused as unauthorized.
    fn assert_push_refused(&self, vars: &[(&str, &Path)], repo: &str) -> String {
        let o = self.himg(vars, &["push", "out", &self.target(repo)]);
        assert!(
            !o.status.success(),
            "the push is refused without credentials"
        );
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            stderr.contains("unauthorized") && stderr.contains(&self.reg.host()),
            "{stderr}"
        );
        stderr
    }
}

#[test]
fn a_cred_helper_named_for_the_registry_logs_in() {
    let s = Setup::new();
    s.install_helper();
    let empty = s.dir("empty-docker-config");
    let stderr = s.assert_push_refused(&[("DOCKER_CONFIG", &empty)], "helper/app");
    assert!(stderr.contains("docker login"), "{stderr}");
    assert_eq!(s.helper_calls(), "", "no helper is configured");

    let config = s.docker_config(&serde_json::json!({
        "credHelpers": {s.reg.host(): "himgtest", "other.example": "himgtest"}
    }));
    s.push_and_pull(&[("DOCKER_CONFIG", &config)], "helper/app");
    let calls = s.helper_calls();
    assert!(
        calls.lines().all(|l| l == format!("get {}", s.reg.host())) && !calls.is_empty(),
        "only the contacted registry is asked about: {calls}"
    );
}

#[test]
fn a_creds_store_answers_for_every_registry() {
    let s = Setup::new();
    s.install_helper();
    let config = s.docker_config(&serde_json::json!({"credsStore": "himgtest", "auths": {}}));
    s.push_and_pull(&[("DOCKER_CONFIG", &config)], "store/app");
    assert!(s.helper_calls().contains(&format!("get {}", s.reg.host())));
}

#[test]
fn a_failing_helper_is_named_with_the_host() {
    let s = Setup::new();
    let bin = s.dir("bin");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let path = bin.join("docker-credential-himgtest");
        std::fs::write(&path, "#!/bin/sh\necho 'the keychain is locked'\nexit 2\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let config = s.docker_config(&serde_json::json!({"credHelpers": {s.reg.host(): "himgtest"}}));
    let o = s.himg(
        &[("DOCKER_CONFIG", &config)],
        &["push", "out", &s.target("fail/app")],
    );
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("docker-credential-himgtest")
            && stderr.contains(&s.reg.host())
            && stderr.contains("the keychain is locked"),
        "{stderr}"
    );
}

#[test]
fn a_containers_auth_file_in_the_runtime_dir_logs_in() {
    use base64::Engine as _;
    let s = Setup::new();
    let runtime = s.dir("run");
    s.assert_push_refused(&[("XDG_RUNTIME_DIR", &runtime)], "podman/app");

    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let json = serde_json::json!({"auths": {s.reg.host(): {"auth": auth}}});
    let file = s.dir("run/containers").join("auth.json");
    std::fs::write(&file, serde_json::to_vec(&json).unwrap()).unwrap();
    // A Docker config with a wrong password loses to the containers auth file.
    let wrong = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:wrong"));
    let docker = s.docker_config(&serde_json::json!({"auths": {s.reg.host(): {"auth": wrong}}}));
    s.push_and_pull(
        &[("XDG_RUNTIME_DIR", &runtime), ("DOCKER_CONFIG", &docker)],
        "podman/app",
    );
}
