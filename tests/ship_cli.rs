//! CLI polish (issue 7): `berth --version` names the commit, `berth completions SHELL` prints
//! scripts the shells accept, `berth man` prints pages that groff renders without warnings,
//! and every command's `--help` shows examples. Shells and groff that are not installed are
//! skipped with a message.

use std::process::{Command, Output, Stdio};

fn berth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(args)
        .output()
        .expect("run berth")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// Every subcommand, as `berth help` lists them.
fn subcommands() -> Vec<String> {
    let help = stdout(&berth(&["--help"]));
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect()
}

/// Feeds `script` to `shell` with `args` (e.g. `-n`: parse only); None when the shell is
/// not installed.
fn check_with(shell: &str, args: &[&str], script: &str) -> Option<Output> {
    use std::io::Write;
    let mut child = Command::new(shell)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    Some(child.wait_with_output().unwrap())
}

#[test]
fn version_names_the_commit() {
    let v = stdout(&berth(&["--version"]));
    let v = v.trim();
    let commit = v
        .strip_prefix(concat!("berth ", env!("CARGO_PKG_VERSION"), " (commit "))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected --version: {v}"));
    if commit == "unknown" {
        eprintln!("built without git metadata: commit unknown");
        return;
    }
    assert!(
        commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{commit}"
    );
    // The commit exists in this checkout (when there is one and git is installed).
    if let Ok(o) = Command::new("git")
        .args(["-C", env!("CARGO_MANIFEST_DIR"), "cat-file", "-t", commit])
        .output()
        && o.status.success()
    {
        assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "commit");
    }
    // Subcommands carry the same version.
    assert_eq!(
        stdout(&berth(&["apply", "--version"])).trim(),
        format!("berth-apply {}", &v[6..])
    );
}

#[test]
fn completions_cover_every_command_and_parse() {
    let commands = subcommands();
    assert!(commands.len() >= 13, "{commands:?}");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = stdout(&berth(&["completions", shell]));
        for c in &commands {
            assert!(script.contains(c.as_str()), "{shell} completion lacks {c}");
        }
        assert!(
            script.contains("data-dir"),
            "{shell} completion lacks options"
        );
    }
    for (shell, args) in [
        ("bash", &["-n"][..]),
        ("zsh", &["-n"][..]),
        ("fish", &["--no-execute"][..]),
    ] {
        let script = stdout(&berth(&["completions", shell]));
        match check_with(shell, args, &script) {
            None => eprintln!("{shell} is not installed: its completion script is not parsed"),
            Some(o) => assert!(
                o.status.success(),
                "{shell} rejects the completion script: {}",
                String::from_utf8_lossy(&o.stderr)
            ),
        }
    }
    // In bash, the function is defined and completes subcommands.
    if let Some(o) = check_with(
        "bash",
        &[],
        &(stdout(&berth(&["completions", "bash"]))
            + "COMP_WORDS=(berth ro); COMP_CWORD=1; COMP_LINE='berth ro'; COMP_POINT=8\n\
               _berth berth ro berth; printf '%s\\n' \"${COMPREPLY[@]}\"\n"),
    ) {
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.lines().any(|l| l == "rollback"), "{out}");
    }
}

#[test]
fn man_pages_render_without_warnings() {
    let page = stdout(&berth(&["man"]));
    assert!(
        page.contains(".TH berth 1"),
        "{}",
        &page[..page.len().min(300)]
    );
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH SUBCOMMANDS",
        "Examples:",
    ] {
        assert!(page.contains(section), "berth(1) lacks {section}");
    }
    assert!(
        page.contains(env!("CARGO_PKG_VERSION")),
        "berth(1) lacks the version"
    );

    let dir = tempfile::tempdir().unwrap();
    let listed = stdout(&berth(&["man", "--dir", dir.path().to_str().unwrap()]));
    let mut pages = vec!["berth.1".to_string()];
    pages.extend(subcommands().iter().map(|c| format!("berth-{c}.1")));
    for p in &pages {
        let path = dir.path().join(p);
        assert!(path.is_file(), "{p} not written; listed:\n{listed}");
    }

    match Command::new("groff").arg("--version").output() {
        Err(_) => eprintln!("groff is not installed: pages are not rendered"),
        Ok(_) => {
            for p in &pages {
                let o = Command::new("groff")
                    .args(["-man", "-Tutf8", "-ww", "-z"])
                    .arg(dir.path().join(p))
                    .output()
                    .unwrap();
                assert!(
                    o.status.success() && o.stderr.is_empty(),
                    "groff warns about {p}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
    }
}

#[test]
fn every_command_help_has_examples() {
    let top = stdout(&berth(&["--help"]));
    assert!(top.contains("Examples:"), "{top}");
    assert!(top.contains("docs/getting-started.md"), "{top}");
    for c in subcommands() {
        let help = stdout(&berth(&[c.as_str(), "--help"]));
        assert!(
            help.contains("Examples:"),
            "berth {c} --help has no examples:\n{help}"
        );
        assert!(
            help.contains(&format!("berth {c}")),
            "berth {c} --help:\n{help}"
        );
    }
}
