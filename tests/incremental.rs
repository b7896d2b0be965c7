//! Acceptance 2 and 3: a second build rebuilds nothing; one changed file rebuilds exactly its layer (plus
//! config and manifest); a comment-only edit rebuilds nothing; early cutoff stops rebuilds whose output
//! did not change.

mod common;

use common::{Project, assert_success, image, layer_digests};

#[test]
fn second_build_is_a_no_op_with_the_same_digest() {
    let project = Project::new();
    let first = project.build("examples/prebuilt.himg", "out");
    assert!(first["built"].as_u64().unwrap_or(0) > 0, "{first}");
    let second = project.build("examples/prebuilt.himg", "out");
    assert_eq!(second["built"], 0, "{second}");
    assert_eq!(second["substituted"], 0);
    assert_eq!(
        image(&first, "hello")["digest"],
        image(&second, "hello")["digest"]
    );
    assert!(
        image(&second, "hello")["layers"]
            .as_array()
            .expect("layers")
            .iter()
            .all(|l| l["built"] == false)
    );
}

#[test]
fn one_changed_file_rebuilds_exactly_its_layer() {
    let project = Project::new();
    let before = project.build("examples/prebuilt.himg", "out");
    let before_layers = layer_digests(image(&before, "hello"));

    // Change a file of the `site` layer.
    std::fs::write(
        project.path("examples/hello/site/about.html"),
        "<p>changed</p>\n",
    )
    .expect("write");
    let after = project.build("examples/prebuilt.himg", "out");
    let after_layers = layer_digests(image(&after, "hello"));
    assert_eq!(before_layers.len(), after_layers.len());
    let changed: Vec<usize> = (0..before_layers.len())
        .filter(|&i| before_layers[i] != after_layers[i])
        .collect();
    // Layers: accounts, app, site, contents → only `site` (index 2) changes.
    assert_eq!(
        changed,
        vec![2],
        "before {before_layers:?} after {after_layers:?}"
    );
    let built_layers: Vec<bool> = image(&after, "hello")["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["built"] == true)
        .collect();
    assert_eq!(built_layers, vec![false, false, true, false]);
    // copy node + layer + config + manifest.
    assert_eq!(after["built"], 4, "{after}");
    assert_ne!(
        image(&before, "hello")["digest"],
        image(&after, "hello")["digest"]
    );

    // A file the include globs leave out changes nothing at all.
    std::fs::write(
        project.path("examples/hello/site/notes.txt"),
        "other notes\n",
    )
    .expect("write");
    let excluded = project.build("examples/prebuilt.himg", "out");
    assert_eq!(excluded["built"], 0, "{excluded}");
}

#[test]
fn comment_only_edit_rebuilds_nothing() {
    let project = Project::new();
    let before = project.build("examples/prebuilt.himg", "out");
    let file = project.path("examples/prebuilt.himg");
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, format!("# a new comment\n{text}\n# and another\n")).expect("write");
    let after = project.build("examples/prebuilt.himg", "out");
    assert_eq!(after["built"], 0, "{after}");
    assert_eq!(
        image(&before, "hello")["digest"],
        image(&after, "hello")["digest"]
    );
}

#[test]
fn touching_a_file_without_changing_it_rebuilds_nothing() {
    let project = Project::new();
    project.build("examples/prebuilt.himg", "out");
    // Rewrite the same bytes: new mtime, same content. The stat cache misses, the hash matches.
    let f = project.path("examples/hello/site/index.html");
    let bytes = std::fs::read(&f).expect("read");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&f, bytes).expect("write");
    let after = project.build("examples/prebuilt.himg", "out");
    assert_eq!(after["built"], 0, "{after}");
}

#[test]
fn golden_base_layers_are_reused_by_the_product_image() {
    let project = Project::new();
    let base = project.build("examples/golden/platform.himg", "base-out");
    // The product copies from `examples/hello/`: its project is `examples/`.
    let out = project.himg(&[
        "build",
        "examples/golden/app.himg",
        "--project-root",
        "examples",
        "--out",
        "app-out",
        "--json",
    ]);
    assert_success(&out, "build app");
    let app: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let base_layers = layer_digests(image(&base, "platform"));
    let app_layers = layer_digests(image(&app, "app"));
    assert!(app_layers.len() > base_layers.len());
    assert_eq!(
        &app_layers[..base_layers.len()],
        &base_layers[..],
        "base layers reused as they are"
    );
    // The base was already in the store: its layers were not built again.
    let built: Vec<bool> = image(&app, "app")["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .map(|l| l["built"] == true)
        .collect();
    assert!(built[..base_layers.len()].iter().all(|b| !b), "{built:?}");
}

#[test]
fn early_cutoff_stops_when_a_rebuilt_layer_is_unchanged() {
    let project = Project::new();
    let write = |first: &str, second: &str| {
        std::fs::write(
            project.path("cutoff.himg"),
            format!("image \"cutoff\" {{\n  layer \"etc\" {{\n    {first}\n    {second}\n  }}\n  file \"/other\" {{ text = \"x\" }}\n}}\n"),
        )
        .expect("write");
    };
    let a = r#"file "/etc/a" { text = "a" }"#;
    let b = r#"file "/etc/b" { text = "b" }"#;
    write(a, b);
    let before = project.build("cutoff.himg", "out");
    // Swapping two items changes the layer derivation's key, but the layer's bytes are the same
    // (entries are sorted): the layer is re-derived, and config and manifest are cut off.
    write(b, a);
    let after = project.build("cutoff.himg", "out");
    assert_eq!(after["built"], 1, "{after}");
    assert_eq!(
        image(&before, "cutoff")["digest"],
        image(&after, "cutoff")["digest"]
    );
    // And the same edit again is now found directly under its key.
    let again = project.build("cutoff.himg", "out");
    assert_eq!(again["built"], 0, "{again}");
}
