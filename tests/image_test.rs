//! `himg test` and `himg run` end to end (issue 4, acceptance 4): the hello example passes its tests, a
//! failing test shows a diff and exits 6, JUnit XML parses, the sandbox has no network and a read-only
//! rootfs, results are cached, and test blocks never change an image.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::{Project, assert_success, require_tool};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A static probe: `probe write PATH` creates a file, `probe connect PORT` opens a TCP connection to
/// 127.0.0.1; each prints what happened and exits 0 or 1.
const PROBE_C: &str = r#"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "write") == 0) {
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) { fprintf(stderr, "%s\n", strerror(errno)); return 1; }
        puts("written");
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "connect") == 0) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {0};
        a.sin_family = AF_INET;
        a.sin_port = htons(atoi(argv[2]));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
            fprintf(stderr, "%s\n", strerror(errno));
            return 1;
        }
        puts("connected");
        return 0;
    }
    return 2;
}
"#;

fn require_sandbox() {
    require_tool("bwrap");
}

#[test]
fn hello_example_passes_its_tests_then_uses_the_cache() {
    require_sandbox();
    let project = Project::new();
    let junit = project.path("report.xml");
    let first = project.himg(&[
        "test",
        "examples/prebuilt.himg",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_success(&first, "himg test");
    let err = stderr(&first);
    assert!(err.contains("Pass hello › greets ("), "{err}");
    assert!(
        err.contains("4 tests: 4 passed (0 cached), 0 failed"),
        "{err}"
    );

    // The JUnit report parses and lists every case, in declaration order.
    let names = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as ET\n\
             root = ET.parse(sys.argv[1]).getroot()\n\
             assert root.tag == 'testsuites' and root.get('failures') == '0'\n\
             for c in root.iter('testcase'): print(c.get('classname') + '/' + c.get('name'))",
        )
        .arg(&junit)
        .output()
        .unwrap();
    assert_success(&names, "parse the JUnit report");
    assert_eq!(
        stdout(&names),
        "hello/greets\nhello/greets as root with another greeting\nhello/layout\nhello/config\n"
    );

    let second = project.himg(&["test", "examples/prebuilt.himg", "--json"]);
    assert_success(&second, "himg test (cached)");
    assert!(
        stderr(&second).contains("4 passed (4 cached)"),
        "{}",
        stderr(&second)
    );
    assert!(stderr(&second).contains("Pass hello › greets (cached)"));
    let report: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(report["cached"], 4);
    assert_eq!(report["tests"][0]["cached"], true);

    let third = project.himg(&["test", "examples/prebuilt.himg", "--no-cache"]);
    assert_success(&third, "himg test --no-cache");
    assert!(
        stderr(&third).contains("4 passed (0 cached)"),
        "{}",
        stderr(&third)
    );

    // The results live with their image: `store gc` keeps them while the image is rooted and
    // drops them once the image is collected.
    let gc = |dry: bool| {
        let mut args = vec!["store", "gc", "--json"];
        if dry {
            args.push("--dry-run");
        }
        let o = project.himg(&args);
        assert_success(&o, "store gc");
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    assert_eq!(gc(false)["cache_entries_removed"], 0);
    let o = project.himg(&["store", "roots", "--json"]);
    assert_success(&o, "store roots");
    let roots: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for root in roots.as_array().unwrap() {
        let name = root["name"].as_str().unwrap();
        assert_success(
            &project.himg(&["store", "roots", "--remove", name]),
            "remove root",
        );
    }
    assert_eq!(gc(false)["cache_entries_removed"], 4);
    let left = std::fs::read_dir(project.store.join("tests"))
        .unwrap()
        .count();
    assert_eq!(left, 0, "test results of a collected image remain");
    let again = project.himg(&["test", "examples/prebuilt.himg"]);
    assert_success(&again, "himg test after gc");
    assert!(
        stderr(&again).contains("4 passed (0 cached)"),
        "{}",
        stderr(&again)
    );
}

#[test]
fn a_failing_test_shows_a_diff_and_exits_6() {
    require_sandbox();
    let project = Project::new();
    let file = project.path("examples/prebuilt.himg");
    let text = std::fs::read_to_string(&file).unwrap();
    let broken = text.replacen(
        "      hello from himg\n      uid=",
        "      hello from himg!\n      uid=",
        1,
    );
    assert_ne!(text, broken);
    std::fs::write(&file, broken).unwrap();
    let junit = project.path("report.xml");
    let out = project.himg(&[
        "test",
        "examples/prebuilt.himg",
        "--junit",
        junit.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(6), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("Fail hello › greets\n"), "{err}");
    assert!(err.contains("-hello from himg!\n"), "{err}");
    assert!(err.contains("+hello from himg\n"), "{err}");
    assert!(err.contains("1 of 4 tests failed"), "{err}");
    let check = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, xml.etree.ElementTree as ET\n\
             root = ET.parse(sys.argv[1]).getroot()\n\
             f = [c.get('name') for c in root.iter('testcase') if c.find('failure') is not None]\n\
             assert f == ['greets'], f\n\
             assert 'hello from himg!' in root.find('.//failure').text",
        )
        .arg(&junit)
        .output()
        .unwrap();
    assert_success(&check, "failure in the JUnit report");

    // The failure was not cached: it fails again.
    let again = project.himg(&["test", "examples/prebuilt.himg"]);
    assert_eq!(again.status.code(), Some(6));
    assert!(stderr(&again).contains("3 passed (3 cached), 1 failed"));
}

#[test]
fn the_sandbox_has_no_network_and_a_read_only_rootfs() {
    require_sandbox();
    require_tool("gcc");
    let project = Project::new();
    let dir = project.path("probe");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("probe.c"), PROBE_C).unwrap();
    let status = Command::new("gcc")
        .args(["-static", "-Os", "-o"])
        .arg(dir.join("probe"))
        .arg(dir.join("probe.c"))
        .status()
        .unwrap();
    assert!(status.success());
    // A listener on the host's loopback: reachable only with `network = true`.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let himg = format!(
        r#"image "probe" {{
  run_as = "1000:1000"
  copy "probe" {{ to = "/usr/bin/probe", mode = 0o755 }}

  test "rootfs is read-only" {{
    run = ["/usr/bin/probe", "write", "/usr/bin/new"]
    exit_code = 1
    stderr = "Read-only file system\n"
  }}
  test "the root is read-only too" {{
    run = ["/usr/bin/probe", "write", "/new"]
    exit_code = 1
    stderr = "Read-only file system\n"
  }}
  test "tmp is writable" {{
    run = ["probe", "write", "/tmp/new"]
    stdout = "written\n"
  }}
  test "no network" {{
    run = ["probe", "connect", "{port}"]
    exit_code = 1
    stderr = "Connection refused\n"
  }}
  test "network when asked" {{
    run = ["probe", "connect", "{port}"]
    network = true
    stdout = "connected\n"
  }}
}}
"#
    );
    std::fs::write(dir.join("probe.himg"), himg).unwrap();
    let out = project.himg(&["test", "probe/probe.himg"]);
    assert_success(&out, "himg test probe.himg");
    assert!(
        stderr(&out).contains("5 tests: 5 passed"),
        "{}",
        stderr(&out)
    );

    // `himg run` runs a command in the same sandbox and passes its exit code through.
    let run = project.himg(&[
        "run",
        "probe/probe.himg",
        "--",
        "probe",
        "write",
        "/usr/bin/x",
    ]);
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    assert!(stderr(&run).contains("Read-only file system"));
    let run = project.himg(&[
        "run",
        "probe/probe.himg",
        "--network",
        "--",
        "probe",
        "connect",
        &port.to_string(),
    ]);
    assert_success(&run, "himg run --network");
    assert_eq!(stdout(&run), "connected\n");
    drop(listener);
}

#[test]
fn test_blocks_do_not_change_the_image() {
    let project = Project::new();
    let with = project.path("examples/prebuilt.himg");
    let text = std::fs::read_to_string(&with).unwrap();
    let cut = text
        .find("  # `himg test examples/prebuilt.himg`")
        .expect("prebuilt.himg has tests");
    let without_dir = project.path("plain/examples");
    common::copy_dir(&project.path("examples"), &without_dir);
    std::fs::write(
        without_dir.join("prebuilt.himg"),
        format!("{}}}\n", &text[..cut]),
    )
    .unwrap();

    let graph = |file: &str| {
        let o = project.himg(&["graph", file, "--json"]);
        assert_success(&o, "himg graph");
        stdout(&o)
    };
    assert_eq!(
        graph("examples/prebuilt.himg"),
        graph("plain/examples/prebuilt.himg")
    );
    let a = project.build("examples/prebuilt.himg", "out-with");
    let b = project.build("plain/examples/prebuilt.himg", "out-without");
    assert_eq!(
        common::image(&a, "hello")["digest"],
        common::image(&b, "hello")["digest"]
    );
    // The second build found everything in the store: nothing about the image differs.
    assert_eq!(b["built"], 0);
}
