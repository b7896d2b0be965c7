//! Live (issue 7/11): the configure step runs the packages' maintainer scripts at build time and the
//! image keeps only their effects — nginx-light gets base-passwd's `www-data`, its default site link
//! and its log files owned as apt leaves them, declared accounts are merged over the packages', no
//! configure tool (shell, dpkg) is shipped, the record `himg inspect --scripts` reads is in the image,
//! a pinned alternative that no package registers is refused, and two stores give one digest.
//! These tests need the host's Debian mirror and bubblewrap, and fail without them.

mod common;

use common::{Project, assert_success, image, require_tool};
use himg::image::{FileKind, ImageSource, ImageView};

const NGINX: &str = r#"let d = import "debian.himg"

image "web" {
  repositories = d.repositories
  packages = ["nginx-light"]
  group "app" { gid = 1000 }
  user "app" { uid = 1000, gid = 1000, home = "/home/app" }
}
"#;

fn view(layout: &std::path::Path) -> (ImageSource, ImageView) {
    let source = ImageSource::open(layout).expect("open layout");
    let view = source
        .images()
        .expect("images")
        .into_iter()
        .next()
        .expect("one image");
    (source, view)
}

fn text(source: &ImageSource, view: &ImageView, path: &str) -> String {
    let bytes = source
        .read_file(view, path)
        .expect("read")
        .unwrap_or_else(|| panic!("{path} is in the image"));
    String::from_utf8(bytes).expect("utf-8")
}

#[test]
fn nginx_runs_its_scripts_at_build_time_and_ships_only_their_effects() {
    require_tool("bwrap");
    let project = Project::new();
    std::fs::write(project.path("examples/web.himg"), NGINX).expect("write");
    let o = project.himg(&["lock", "examples/web.himg"]);
    assert_success(&o, "himg lock (needs the host's Debian mirror)");
    let report = project.build("examples/web.himg", "web");
    let digest = image(&report, "web")["digest"].clone();
    let configure = &report["configure"][0];
    assert_eq!(configure["failed"], serde_json::Value::Null, "{configure}");
    let ran: Vec<&str> = configure["ran"]
        .as_array()
        .expect("ran")
        .iter()
        .filter_map(|p| p["package"].as_str())
        .collect();
    assert!(ran.contains(&"nginx-common"), "{ran:?}");
    // Ran, so not reported as not run.
    let not_run = report["scripts_not_run"].to_string();
    assert!(!not_run.contains("nginx-common"), "{not_run}");

    let (source, view) = view(&project.path("web"));
    let passwd = text(&source, &view, "etc/passwd");
    assert!(passwd.contains("www-data:"), "{passwd}");
    assert!(passwd.contains("app:x:1000:1000:"), "{passwd}");
    assert!(passwd.starts_with("root:"), "{passwd}");
    let group = text(&source, &view, "etc/group");
    assert!(
        group.contains("\nadm:") && group.contains("app:x:1000:"),
        "{group}"
    );
    match &view.files["etc/nginx/sites-enabled/default"].kind {
        FileKind::Symlink { target } => assert_eq!(target, "/etc/nginx/sites-available/default"),
        other => panic!("sites-enabled/default is {other:?}"),
    }
    let access = &view.files["var/log/nginx/access.log"];
    assert_eq!((access.uid, access.gid, access.mode), (33, 4, 0o640));
    assert!(
        view.files
            .contains_key("var/www/html/index.nginx-debian.html")
    );
    // The configure tools and the sandbox's own files are never shipped.
    for absent in [
        "usr/bin/dash",
        "usr/bin/sh",
        "usr/bin/dpkg",
        "usr/sbin/adduser",
        "usr/bin/faked-tcp",
        "usr/sbin/policy-rc.d",
        "var/log/dpkg.log",
        "etc/rc2.d/S01nginx",
        ".himg",
    ] {
        assert!(!view.files.contains_key(absent), "{absent} is in the image");
    }
    let status = text(&source, &view, "var/lib/dpkg/status");
    assert!(status.contains("Package: nginx-common\n"), "dpkg status");
    assert!(
        !status.contains("Package: dash\n"),
        "a tool in the dpkg status"
    );

    // The record `himg inspect --scripts` reads.
    let o = project.himg(&["inspect", "--scripts", "--json", "web"]);
    assert_success(&o, "himg inspect --scripts");
    let record: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let effects = record["effects"].to_string();
    assert!(
        effects.contains("/etc/nginx/sites-enabled/default"),
        "{record}"
    );
    assert!(
        record["dropped"].to_string().contains("service enablement"),
        "{record}"
    );
    let o = project.himg(&["inspect", "--scripts", "web"]);
    assert_success(&o, "himg inspect --scripts");
    let human = String::from_utf8_lossy(&o.stdout);
    assert!(
        human.contains("nginx-common") && human.contains("Not kept"),
        "{human}"
    );

    // A second store: the same digest.
    let other = project.path("store2");
    let o = project.himg_in(
        project.dir.path(),
        &other,
        &[
            "build",
            "examples/web.himg",
            "--locked",
            "--out",
            "web2",
            "--json",
        ],
    );
    assert_success(&o, "himg build in a second store");
    let again: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(image(&again, "web")["digest"], digest);
}

#[test]
fn a_pinned_alternative_no_package_registers_is_refused() {
    require_tool("bwrap");
    let project = Project::new();
    let file = NGINX.replace(
        "packages = [\"nginx-light\"]",
        "packages = [\"nginx-light\"]\n  alternatives = { awk = \"/usr/bin/gawk\" }",
    );
    std::fs::write(project.path("examples/web.himg"), file).expect("write");
    let o = project.himg(&["build", "examples/web.himg", "--out", "web"]);
    assert!(!o.status.success(), "the build succeeded");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`alternatives` pins `awk` to `/usr/bin/gawk`"),
        "{err}"
    );
}

#[test]
fn accounts_of_a_derived_image_merge_over_its_base_s_package_accounts() {
    require_tool("bwrap");
    let project = Project::new();
    let file = r#"let d = import "debian.himg"

image "web" {
  repositories = d.repositories
  packages = ["nginx-light"]
}

image "app" {
  from = images.web
  group "app" { gid = 1000 }
  user "app" { uid = 1000, gid = 1000, home = "/home/app" }
  run_as = "app"
}
"#;
    std::fs::write(project.path("examples/web.himg"), file).expect("write");
    let report = project.build("examples/web.himg", "out");
    let source = ImageSource::open(&project.path("out")).expect("open layout");
    let app = source
        .images()
        .expect("images")
        .into_iter()
        .find(|v| v.name.as_deref() == Some("app"))
        .expect("image app");
    let passwd = text(&source, &app, "etc/passwd");
    assert!(passwd.contains("www-data:"), "{passwd}");
    assert!(passwd.contains("app:x:1000:1000:"), "{passwd}");
    assert!(app.files.contains_key("home/app"), "home directory");
    // One more layer than the base: the merged accounts (the home directory's layer too).
    let web_layers = image(&report, "web")["layers"]
        .as_array()
        .map_or(0, Vec::len);
    let app_layers = image(&report, "app")["layers"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(
        app_layers > web_layers && app_layers <= web_layers + 2,
        "{web_layers} → {app_layers}"
    );
}
