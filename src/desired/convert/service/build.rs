//! `build:`: the short and long forms, the context directory (inside the desired-state root,
//! symlinks resolved) and the keys berth reads but does not act on.

use std::path::PathBuf;

use super::{normalize, resolve};
use crate::desired::convert::Ctx;
use crate::desired::convert::read::Reader;
use crate::desired::model::*;
use crate::desired::node::{Node, Value};

/// Keys of `build:` (long form).
pub(super) const BUILD_KNOWN: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "args",
    "target",
    "labels",
    "network",
    "extra_hosts",
    "shm_size",
];

/// Keys of `build:` that berth reads but does not act on.
pub(super) const BUILD_IGNORED: &[&str] = &[
    "cache_from",
    "cache_to",
    "no_cache",
    "pull",
    "platforms",
    "tags",
    "ssh",
    "secrets",
    "isolation",
    "privileged",
    "ulimits",
    "additional_contexts",
    "entitlements",
    "provenance",
    "sbom",
];

pub(super) fn read_build(r: &mut Reader<'_>, n: &Node, what: &str, ctx: &Ctx<'_>) -> Option<Build> {
    let (context, context_node) = match &n.value {
        Value::Map(entries) => {
            r.check_keys(entries, what, BUILD_KNOWN, BUILD_IGNORED);
            if let Some(ssh) = n.get("ssh")
                && ssh.is_null()
            {
                r.error(
                    &ssh.loc,
                    format!("{what}.ssh needs a value: a list like [default] or a mapping"),
                );
            }
            match n.get("context") {
                Some(c) => (r.string(c, &format!("{what}.context"))?, c),
                None => (".".to_string(), n),
            }
        }
        _ => (r.string(n, what)?, n),
    };
    let context_dir = build_context_dir(r, context_node, &context, ctx)?;
    let get = |k: &str| n.get(k).filter(|_| matches!(n.value, Value::Map(_)));
    let args = get("args")
        .map(|a| {
            r.key_values(a, &format!("{what}.args"), &['='])
                .into_iter()
                .filter_map(|(k, (v, _))| {
                    let v = v.or_else(|| (ctx.lookup)(&k))?;
                    Some((k, v))
                })
                .collect()
        })
        .unwrap_or_default();
    let dockerfile = get("dockerfile").and_then(|d| r.string(d, &format!("{what}.dockerfile")));
    let mut dockerfile_inline =
        get("dockerfile_inline").and_then(|d| r.string(d, &format!("{what}.dockerfile_inline")));
    if let (Some(d), Some(df), Some(root)) = (get("dockerfile"), &dockerfile, ctx.root) {
        let full = normalize(&context_dir.join(df));
        // Through symlinks too: the engine could not read such a file, and berth must not.
        let resolved = full.canonicalize().ok();
        if !full.starts_with(root) || resolved.as_ref().is_some_and(|p| !p.starts_with(root)) {
            r.error(
                &d.loc,
                format!("{what}.dockerfile {df:?} is outside the desired-state root"),
            );
        } else if let Some(path) = resolved.filter(|p| !p.starts_with(&context_dir))
            && dockerfile_inline.is_none()
        {
            // The engine sees only the context; a Dockerfile beside it (compose allows that)
            // is sent by its text, as `dockerfile_inline` is.
            match std::fs::read_to_string(&path) {
                Ok(text) => dockerfile_inline = Some(text),
                Err(e) => r.error(
                    &d.loc,
                    format!("failed to read {what}.dockerfile {df:?}: {e}"),
                ),
            }
        }
    }
    Some(Build {
        context,
        context_dir,
        dockerfile,
        dockerfile_inline,
        args,
        target: get("target").and_then(|d| r.string(d, &format!("{what}.target"))),
        labels: get("labels")
            .map(|d| r.string_map(d, &format!("{what}.labels")))
            .unwrap_or_default(),
        network: get("network").and_then(|d| r.string(d, &format!("{what}.network"))),
        extra_hosts: get("extra_hosts")
            .map(|d| {
                r.key_values(d, &format!("{what}.extra_hosts"), &['=', ':'])
                    .into_iter()
                    .map(|(h, (ip, _))| (h, ip.unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default(),
        shm_size: get("shm_size").and_then(|d| r.size(d, &format!("{what}.shm_size"))),
        content_hash: String::new(),
        parts: Default::default(),
    })
}

/// The build context's directory where it is read: relative to the project directory,
/// symlinks resolved, inside the desired-state root. Remote contexts are refused.
pub(super) fn build_context_dir(
    r: &mut Reader<'_>,
    n: &Node,
    context: &str,
    ctx: &Ctx<'_>,
) -> Option<PathBuf> {
    if context.contains("://") || context.starts_with("git@") {
        r.error(
            &n.loc,
            format!(
                "build context {context:?} is remote: berth builds only from the desired-state \
                 repository, so that a revision is what the repository holds"
            ),
        );
        return None;
    }
    let lexical = resolve(ctx.read_dir, context);
    let Ok(dir) = lexical.canonicalize() else {
        if ctx.root.is_none() {
            // An inline document has no files to build from; keep the path as written.
            return Some(lexical);
        }
        r.error(
            &n.loc,
            format!("build context {} not found", (ctx.display_path)(&lexical)),
        );
        return None;
    };
    if let Some(root) = ctx.root
        && !dir.starts_with(root)
    {
        r.error(
            &n.loc,
            format!(
                "build context {context:?} resolves to {}, outside the desired-state root {}: \
                 a build may only read files the repository holds",
                dir.display(),
                root.display()
            ),
        );
        return None;
    }
    if !dir.is_dir() {
        r.error(
            &n.loc,
            format!("build context {context:?} is not a directory"),
        );
        return None;
    }
    Some(dir)
}
