//! A Debian `docker-registry` (distribution 2.x) on 127.0.0.1 for end-to-end tests: its own
//! storage in a temp dir, its log in `registry.log`, deletes enabled, killed on drop.
//!
//! The binary is required: a test that starts a registry fails when it is missing.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `docker-registry` package installs the registry.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A running registry on 127.0.0.1, killed on drop.
pub struct Registry {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// An open registry.
    pub fn start() -> Registry {
        Registry::start_with(None)
    }

    /// A registry that asks for the users of `htpasswd` (Basic auth) when given.
    pub fn start_with(htpasswd: Option<&Path>) -> Registry {
        assert!(
            Path::new(REGISTRY_BIN).exists(),
            "{REGISTRY_BIN} is missing: apt-get install docker-registry (bash tests/run.sh installs it)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let mut config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        if let Some(h) = htpasswd {
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: himg-test\n    path: {}\n",
                h.display()
            ));
        }
        let cfg = dir.path().join("config.yml");
        std::fs::write(&cfg, config).expect("write registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log");
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::from(log.try_clone().expect("log fd")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn docker-registry");
        let reg = Registry { child, port, dir };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let start = Instant::now();
        while agent
            .get(&format!("http://127.0.0.1:{port}/v2/"))
            .call()
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "registry did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        reg
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// How many log lines mention `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default();
        log.lines().filter(|l| l.contains(needle)).count()
    }

    /// Kills the registry now (requests fail from here on).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}
