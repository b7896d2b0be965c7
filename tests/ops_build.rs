//! The build use-case called as a library (`himg::ops`), without the command line: same digests as
//! `himg build`, a no-op rebuild, two stores agreeing, a temporary layout for readers, and the
//! refusal of an unknown image.

mod common;

use common::{Project, image};
use himg::ops::build::{BuildOptions, build, materialize};
use himg::ops::{Error, Session};
use himg::printer::{ColorChoice, Printer};

fn quiet() -> Printer {
    Printer::new(true, ColorChoice::Never)
}

#[test]
fn ops_build_gives_the_command_lines_digest_and_a_no_op_rebuild() {
    let project = Project::new();
    let printer = quiet();
    // ANCHOR: build
    let session = Session::new(&printer).with_store(Some(project.store.clone()));
    let file = project.path("examples/prebuilt.himg");

    let first = build(&session, &BuildOptions::new(&file, project.path("ops-out"))).expect("build");
    // ANCHOR_END: build
    assert!(first.summary.built() > 0);
    let digest = first.images[0].top.digest.to_string();
    assert_eq!(first.json()["images"][0]["digest"], digest.as_str());
    assert_eq!(first.analysed.len(), first.images[0].per_arch.len());
    assert!(project.path("ops-out/index.json").is_file());
    drop(first);

    let again =
        build(&session, &BuildOptions::new(&file, project.path("ops-out"))).expect("rebuild");
    assert_eq!(again.summary.built(), 0);
    assert_eq!(again.summary.substituted(), 0);
    assert_eq!(again.images[0].top.digest.to_string(), digest);
    drop(again);

    // The binary, on the same store, agrees.
    let cli = project.build("examples/prebuilt.himg", "cli-out");
    assert_eq!(image(&cli, "hello")["digest"], digest.as_str());
    assert_eq!(cli["built"], 0, "{cli}");
}

#[test]
fn two_stores_give_the_same_digests_through_ops() {
    let project = Project::new();
    let printer = quiet();
    let file = project.path("examples/prebuilt.himg");
    let digests: Vec<String> = ["store-a", "store-b"]
        .iter()
        .map(|store| {
            let session = Session::new(&printer).with_store(Some(project.path(store)));
            let mut opts = BuildOptions::new(&file, project.path(&format!("{store}-out")));
            opts.analyse = false;
            let built = build(&session, &opts).expect("build");
            assert!(built.analysed.is_empty());
            built.images[0].top.digest.to_string()
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
}

#[test]
fn materialize_leaves_a_readable_layout_and_unknown_images_are_refused() {
    let project = Project::new();
    let printer = quiet();
    let session = Session::new(&printer).with_store(Some(project.store.clone()));
    let file = project.path("examples/prebuilt.himg");

    let m = materialize(&session, &file, &["hello".to_owned()], false).expect("materialize");
    let source = himg::image::ImageSource::open(&m.layout()).expect("open layout");
    let views = source.images().expect("images");
    assert!(!views.is_empty());
    assert!(views.iter().all(|v| v.name.as_deref() == Some("hello")));

    let err = materialize(&session, &file, &["nope".to_owned()], false)
        .err()
        .expect("an unknown image is refused");
    match err {
        Error::NoSuchImage {
            name, available, ..
        } => {
            assert_eq!(name, "nope");
            assert!(available.contains(&"hello".to_owned()));
        }
        other => panic!("unexpected error: {other}"),
    }
}
