//! `himg completions SHELL` and `himg man`: generated from the command-line definitions, so every
//! command is there. Bash scripts are checked by `bash -n`; the others by what they must contain
//! (no shell is required that the test machine may lack, and nothing is skipped).

mod common;

use std::process::{Command, Output};

fn himg(args: &[&str]) -> Output {
    let out = Command::new(common::himg_bin())
        .args(args)
        .output()
        .expect("run himg");
    common::assert_success(&out, &format!("himg {}", args.join(" ")));
    out
}

fn completions(shell: &str) -> String {
    String::from_utf8(himg(&["completions", shell]).stdout).expect("UTF-8 script")
}

/// The top-level commands, as `himg --help` lists them.
fn commands() -> Vec<String> {
    let help = String::from_utf8(himg(&["--help"]).stdout).expect("UTF-8 help");
    let list = help
        .split("Commands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("a Commands: section");
    let names: Vec<String> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|n| n != "help")
        .collect();
    assert!(names.len() >= 20, "{names:?}");
    assert!(names.iter().any(|n| n == "completions") && names.iter().any(|n| n == "man"));
    names
}

#[test]
fn bash_completion_parses_and_knows_the_commands() {
    let script = completions("bash");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("himg.bash");
    std::fs::write(&path, &script).expect("write");
    let status = Command::new("bash")
        .arg("-n")
        .arg(&path)
        .status()
        .expect("run bash");
    assert!(status.success(), "bash -n rejects the completion script");
    assert!(script.contains("complete -F _himg"), "no `complete` line");
    for command in commands() {
        let case = format!("himg,{command})");
        assert!(script.contains(&case), "bash completion lacks {case}");
    }
    assert!(script.contains("himg__subcmd__store__subcmd__verify"));
}

/// What the bash completion offers for the words `line` (the last one being completed).
fn bash_complete(script: &str, line: &[&str]) -> String {
    let words: Vec<String> = line.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source /dev/stdin <<'EOS'\n{script}\nEOS\nCOMP_WORDS=({words}); COMP_CWORD={cword}; \
         _himg himg '{cur}' '{prev}'; echo \"${{COMPREPLY[@]}}\"",
        words = words.join(" "),
        cword = line.len() - 1,
        cur = line[line.len() - 1],
        prev = line[line.len() - 2],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(program)
        .output()
        .expect("run bash");
    common::assert_success(&out, "bash completion");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn bash_completion_completes_commands_flags_and_values() {
    let script = completions("bash");
    assert_eq!(bash_complete(&script, &["himg", "bu"]), "build");
    assert_eq!(
        bash_complete(&script, &["himg", "build", "--for"]),
        "--format"
    );
    assert_eq!(
        bash_complete(&script, &["himg", "build", "--format", ""]),
        "oci oci-archive docker-archive"
    );
    assert_eq!(bash_complete(&script, &["himg", "completions", "z"]), "zsh");
}

#[test]
fn zsh_completion_defines_the_commands() {
    let script = completions("zsh");
    assert!(script.starts_with("#compdef himg"), "{}", &script[..80]);
    assert!(script.contains("_himg_commands()"));
    for command in commands() {
        let entry = format!("'{command}:");
        assert!(script.contains(&entry), "zsh completion lacks {entry}");
    }
    for flag in ["--image=", "--out=", "--json", "--insecure"] {
        assert!(script.contains(flag), "zsh completion lacks {flag}");
    }
}

#[test]
fn fish_completion_completes_the_commands_and_their_flags() {
    let script = completions("fish");
    for command in commands() {
        let entry = format!("-f -a \"{command}\"");
        assert!(script.contains(&entry), "fish completion lacks {entry}");
    }
    assert!(script.contains("__fish_himg_using_subcommand build\" -l image"));
    assert!(script.contains("__fish_himg_using_subcommand push\" -l json"));
    assert!(script.contains("-l format") && script.contains("oci-archive"));
}

#[test]
fn elvish_and_powershell_completions_generate() {
    assert!(completions("elvish").contains("cand build"));
    assert!(completions("powershell").contains("'push'"));
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let out = Command::new(common::himg_bin())
        .args(["completions", "tcsh"])
        .output()
        .expect("run himg");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_prints_himg_1_naming_every_command() {
    let page = String::from_utf8(himg(&["man"]).stdout).expect("UTF-8 page");
    let th = page
        .lines()
        .find(|l| l.starts_with(".TH"))
        .expect(".TH line");
    assert!(th.starts_with(".TH himg 1"), "{th}");
    assert!(page.contains(".SH NAME") && page.contains(".SH SYNOPSIS"));
    for command in commands() {
        let reference = format!("himg\\-{}(1)", command.replace('-', "\\-"));
        assert!(
            page.contains(&reference),
            "himg.1 does not name {reference}"
        );
    }
}

#[test]
fn man_out_writes_one_page_per_command() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("man1");
    himg(&["man", "--out", out.to_str().expect("UTF-8 path")]);
    let mut expected = vec!["himg.1".to_owned(), "himg-store-verify.1".to_owned()];
    expected.extend(commands().iter().map(|c| format!("himg-{c}.1")));
    for name in expected {
        let page =
            std::fs::read_to_string(out.join(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let stem = name.trim_end_matches(".1");
        let th = format!(".TH {stem} 1");
        assert!(page.lines().any(|l| l.starts_with(&th)), "{name}: no {th}");
        assert!(page.contains("himg 0."), "{name}: the footer names himg");
    }
    assert!(!out.join("himg-help.1").exists());
}
