//! The shipped documentation holds together (issue 7): every relative link in README.md,
//! docs/, examples/ and deploy/ points at a file that exists, and every `#anchor` at a
//! heading of that file (GitHub's slug rules); the guides the README promises are there and
//! linked from it; the test tiers the README describes are the ones `Cargo.toml` declares.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The Markdown files that ship.
fn markdown_files() -> Vec<PathBuf> {
    let root = Path::new(ROOT);
    let mut files = vec![root.join("README.md")];
    for dir in ["docs", "deploy", "examples"] {
        walk(&root.join(dir), &mut files);
    }
    files.sort();
    files
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
}

/// `](target)` links outside code blocks and inline code.
fn links(text: &str) -> Vec<String> {
    let mut v = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Drop inline code spans, which may hold `](` by accident.
        let mut plain = String::new();
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if !in_code {
                plain.push(c);
            }
        }
        let mut rest = plain.as_str();
        while let Some(i) = rest.find("](") {
            let after = &rest[i + 2..];
            let Some(end) = after.find(')') else { break };
            v.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    v
}

/// GitHub's anchor for a heading.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut fenced = false;
    let mut set = BTreeSet::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced && line.starts_with('#') {
            set.insert(slug(line.trim_start_matches('#')));
        }
    }
    set
}

#[test]
fn every_relative_link_resolves() {
    let mut broken = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for link in links(&text) {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = match link.split_once('#') {
                Some((p, a)) => (p, Some(a)),
                None => (link.as_str(), None),
            };
            let target = if path.is_empty() {
                file.clone()
            } else {
                file.parent().unwrap().join(path)
            };
            if !target.exists() {
                broken.push(format!("{}: {link}: no such file", file.display()));
                continue;
            }
            if let Some(a) = anchor
                && target.is_file()
                && target.extension().is_some_and(|x| x == "md")
            {
                let heads = anchors(&std::fs::read_to_string(&target).unwrap());
                if !heads.contains(a) {
                    broken.push(format!("{}: {link}: no heading #{a}", file.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_guides_exist_and_the_readme_links_them() {
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).unwrap();
    for doc in [
        "docs/getting-started.md",
        "docs/migrating.md",
        "docs/concepts.md",
        "docs/format.md",
        "docs/rollouts.md",
        "docs/operations.md",
        "docs/security.md",
        "docs/troubleshooting.md",
        "docs/comparison.md",
        "deploy/README.md",
        "examples/README.md",
    ] {
        assert!(Path::new(ROOT).join(doc).is_file(), "{doc} is missing");
        assert!(
            readme.contains(&format!("]({doc}")),
            "README.md does not link {doc}"
        );
    }
    // The two commands stay up front: before the first second-level section ends.
    let first = readme
        .find("scripts/quickstart")
        .expect("README: scripts/quickstart");
    let test = readme.find("scripts/test").expect("README: scripts/test");
    assert!(
        first < 6_000 && test < 6_000,
        "the two commands moved down the README"
    );
}

#[test]
fn slugs_follow_github() {
    assert_eq!(
        slug(" Notifications: `berth run --notify URL`"),
        "notifications-berth-run---notify-url"
    );
    assert_eq!(
        slug(" 4. The same stack from git"),
        "4-the-same-stack-from-git"
    );
    assert_eq!(slug(" Limits (known)"), "limits-known");
}

/// `[[test]]` targets declared `test = false` in Cargo.toml: the engine tier.
fn engine_tier_targets() -> BTreeSet<String> {
    let manifest = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    manifest
        .split("[[")
        .filter_map(|table| table.strip_prefix("test]]"))
        .filter(|t| t.lines().any(|l| l.replace(' ', "") == "test=false"))
        .filter_map(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("name = "))
                .map(|n| n.trim_matches('"').to_string())
        })
        .collect()
}

#[test]
fn every_docker_test_file_is_in_the_engine_tier_and_only_those() {
    let files: BTreeSet<String> = std::fs::read_dir(Path::new(ROOT).join("tests"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".rs").map(str::to_string))
        .filter(|n| n.ends_with("_docker"))
        .collect();
    assert!(files.len() >= 10, "{files:?}");
    // A `*_docker` file missing here would run in plain `cargo test` and fail there without an
    // engine; any other name here would drop out of both tiers' commands.
    assert_eq!(engine_tier_targets(), files);
}
