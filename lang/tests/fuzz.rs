//! Robustness: random bytes, token soup and generated programs never make the parser, evaluator or
//! formatter panic or overflow the stack; generated programs format idempotently and keep their
//! meaning.

use himg_lang::{MemoryLoader, SourcePath, evaluate, format_source};
use proptest::prelude::*;

fn run(
    text: &str,
) -> (
    Result<himg_lang::Evaluated, himg_lang::Diagnostics>,
    Result<String, himg_lang::Diagnostics>,
) {
    let mut loader = MemoryLoader::new();
    loader.insert("main.himg", text.as_bytes().to_vec());
    loader.insert("lib.himg", "let x = 1\nimage \"l\" {}\n");
    loader.insert("build/hello", "bin");
    loader.insert("site/index.html", "x");
    let evaluated = evaluate(&SourcePath("main.himg".into()), &loader);
    if let Err(d) = &evaluated {
        let _ = d.render();
    }
    let formatted = format_source("main.himg", text);
    (evaluated, formatted)
}

/// Formatting is idempotent and does not change what a program means.
fn check_format(text: &str) -> Result<(), TestCaseError> {
    let (before, formatted) = run(text);
    let Ok(once) = formatted else { return Ok(()) };
    let twice = format_source("main.himg", &once).map_err(|d| d.render());
    prop_assert_eq!(
        twice.as_deref(),
        Ok(once.as_str()),
        "not idempotent for input:\n{}",
        text
    );
    let (after, _) = run(&once);
    match (before, after) {
        (Ok(a), Ok(b)) => prop_assert_eq!(
            a,
            b,
            "meaning changed for input:\n{}\nformatted:\n{}",
            text,
            once
        ),
        (Err(a), Err(b)) => prop_assert_eq!(
            a.codes(),
            b.codes(),
            "errors changed for input:\n{}\nformatted:\n{}",
            text,
            once
        ),
        (a, b) => prop_assert!(
            false,
            "outcome changed ({} -> {}) for input:\n{}\nformatted:\n{}",
            a.is_ok(),
            b.is_ok(),
            text,
            once
        ),
    }
    Ok(())
}

const TOKENS: &[&str] = &[
    "let",
    "image",
    "build",
    "import",
    "if",
    "then",
    "else",
    "in",
    "true",
    "false",
    "null",
    "x",
    "f",
    "images",
    "builds",
    "source",
    "outputs",
    "user",
    "copy",
    "file",
    "dir",
    "layer",
    "uid",
    "to",
    "mode",
    "cmd",
    "\"s\"",
    "\"/a\"",
    "\"${",
    "}",
    "\"",
    "\"\"\"",
    "{",
    "[",
    "]",
    "(",
    ")",
    ",",
    "=",
    "==",
    "!=",
    ".",
    "+",
    "//",
    "0o755",
    "755",
    "12",
    "0x1f",
    "# c\n",
    "\n",
    "\n\n",
    "\"lib.himg\"",
    "\"build/hello\"",
    "\\",
    "$",
    "\"\"\"\n  a\n  \"\"\"",
    "99999999999999999999",
    ";",
];

fn token_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|t| t.join(" "))
}

/// Small well-formed programs with varied layout: records and lists on one line or many, trailing
/// commas, comments, blank lines, `"""` strings, templates and operators.
fn program() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("1".to_owned()),
        Just("0o755".to_owned()),
        Just("true".to_owned()),
        Just("null".to_owned()),
        Just("\"text\"".to_owned()),
        Just("\"a ${v} b\"".to_owned()),
        Just("v".to_owned()),
        Just("\"\"\"\n    line one\n      two\n    \"\"\"".to_owned()),
    ];
    let expr = leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            (
                prop::collection::vec(inner.clone(), 0..4),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(items, multi, trailing)| { layout_list(&items, multi, trailing) }),
            (
                prop::collection::vec(inner.clone(), 0..4),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(values, multi, comment)| { layout_record(&values, multi, comment) }),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}] + [{b}]")),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| format!("{{ a = {a} }} // {{ b = {b} }}")),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| format!("if ({a}) == ({b}) then {a} else {b}")),
            inner.clone().prop_map(|a| format!("let w = {a} in [w, w]")),
            inner.clone().prop_map(|a| format!("id({a})")),
            inner.clone().prop_map(|a| format!("({a})")),
            inner.prop_map(|a| format!("{{ k = {a} }}.k")),
        ]
    });
    (prop::collection::vec(expr, 1..4), any::<bool>()).prop_map(|(exprs, image)| {
        let mut out = String::from("# generated\nlet v = \"v\"\nlet id(x) = x\n\n");
        for (i, e) in exprs.iter().enumerate() {
            out.push_str(&format!("let e{i} = {e} # note {i}\n"));
        }
        if image {
            out.push_str("\nimage \"gen\" {\n  cmd = [\"${e0 == e0}\"]\n  labels = { n = \"${id(1)}\" }\n}\n");
        }
        out
    })
}

fn layout_list(items: &[String], multi: bool, trailing: bool) -> String {
    if multi {
        let mut out = String::from("[\n");
        for item in items {
            out.push_str(&format!("    {item},\n"));
        }
        out.push_str("  ]");
        out
    } else {
        let mut out = format!("[{}", items.join(", "));
        if trailing && !items.is_empty() {
            out.push(',');
        }
        out.push(']');
        out
    }
}

fn layout_record(values: &[String], multi: bool, comment: bool) -> String {
    if multi {
        let mut out = String::from("{\n");
        for (i, value) in values.iter().enumerate() {
            if comment {
                out.push_str(&format!("  # field {i}\n\n"));
            }
            out.push_str(&format!("  f{i} = {value}\n"));
        }
        out.push('}');
        out
    } else {
        let fields: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| format!("f{i} = {v}"))
            .collect();
        format!("{{ {} }}", fields.join(" "))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let _ = run(&text);
        let mut loader = MemoryLoader::new();
        loader.insert("main.himg", bytes);
        let _ = evaluate(&SourcePath("main.himg".into()), &loader);
    }

    #[test]
    fn token_soup_never_panics_and_formats_consistently(text in token_soup()) {
        check_format(&text)?;
    }

    #[test]
    fn generated_programs_format_idempotently(text in program()) {
        let (evaluated, _) = run(&text);
        prop_assert!(evaluated.is_ok(), "generated program fails:\n{}\n{}", text, evaluated.err().map(|d| d.render()).unwrap_or_default());
        check_format(&text)?;
    }
}

#[test]
fn deep_nesting_is_a_diagnostic_not_a_stack_overflow() {
    let n = 10_000;
    let cases = [
        format!("let x = {}", "[".repeat(n)),
        format!("let x = {}{}", "[".repeat(n), "]".repeat(n)),
        format!("let x = {}", "{ a = ".repeat(n)),
        format!("let x = {}1{}", "(".repeat(n), ")".repeat(n)),
        format!("let x = {}x{}", "\"${".repeat(n), "}\"".repeat(n)),
        format!("let x = {}1", "if true then 1 else ".repeat(n)),
        format!("let x = {}1", "let a = 1 in ".repeat(n)),
        format!("let x = 1{}", " + 1".repeat(n)),
        format!("let x = f{}", "(1)".repeat(n)),
        format!("image \"x\" {{ {} }}", "layer { ".repeat(n)),
    ];
    for text in &cases {
        let (evaluated, formatted) = run(text);
        let codes = evaluated.err().map(|d| d.codes()).unwrap_or_default();
        assert!(
            codes == ["H0009"] || codes == ["H0008"],
            "{}…: {codes:?}",
            &text[..40]
        );
        assert!(formatted.is_err());
    }
}

#[test]
fn long_flat_inputs_are_fine() {
    let n = 5_000;
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!("let a{i} = [{}]\n", i));
    }
    text.push_str(&format!("let last = a{}\n", n - 1));
    let (evaluated, formatted) = run(&text);
    assert!(evaluated.is_ok());
    assert_eq!(formatted.ok().as_deref(), Some(text.as_str()));
    // A value nested one level per statement is cut off by the value depth limit.
    let mut chain = String::from("let v0 = []\n");
    for i in 1..1_000 {
        chain.push_str(&format!("let v{i} = [v{}]\n", i - 1));
    }
    let (evaluated, _) = run(&chain);
    assert_eq!(evaluated.err().map(|d| d.codes()), Some(vec!["H0009"]));
    // So is a long chain of images extending each other.
    let mut images = String::from("image \"i0\" {}\n");
    for i in 1..200 {
        images.push_str(&format!("image \"i{i}\" {{ from = images.i{} }}\n", i - 1));
    }
    let (evaluated, _) = run(&images);
    assert_eq!(evaluated.err().map(|d| d.codes()), Some(vec!["H0009"]));
}

/// Depth limits keep parsing, evaluation and formatting within a 2 MiB stack (the default for spawned
/// threads) even in unoptimised builds, including the worst combination: a maximally nested file
/// imported from inside deep recursion.
#[test]
fn limits_fit_in_a_two_mebibyte_stack() {
    let worker = std::thread::Builder::new().stack_size(2 << 20).spawn(|| {
        let nested = |n: usize| format!("let x = {}1{}\n", "[".repeat(n), "]".repeat(n));
        let mut loader = MemoryLoader::new();
        loader.insert("deep.himg", nested(99));
        loader.insert(
            "main.himg",
            "let f(n) = if n == 95 then import \"deep.himg\" else f(n + 1)\nlet x = f(0)\n",
        );
        let main = evaluate(&SourcePath("main.himg".into()), &loader)
            .err()
            .map(|d| d.codes());
        let mut out = vec![main.unwrap_or_default()];
        for text in [
            "let f(n) = f(n + 1)\nlet x = f(1)\n".to_owned(),
            nested(99),
            nested(100),
        ] {
            let (evaluated, formatted) = run(&text);
            out.push(evaluated.err().map(|d| d.codes()).unwrap_or_default());
            out.push(formatted.err().map(|d| d.codes()).unwrap_or_default());
        }
        out
    });
    let codes = worker.ok().and_then(|w| w.join().ok());
    let none: Vec<&str> = Vec::new();
    assert_eq!(
        codes,
        Some(vec![
            vec!["H0024"],
            vec!["H0024"],
            none.clone(),
            none.clone(),
            none,
            vec!["H0009"],
            vec!["H0009"]
        ])
    );
}
