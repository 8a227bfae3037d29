//! `volumes:`, `tmpfs:` and the file mounts (`configs:`, `secrets:`): short and long forms,
//! bind sources relative to the project directory.

use super::resolve;
use crate::desired::convert::Ctx;
use crate::desired::convert::read::Reader;
use crate::desired::model::*;
use crate::desired::node::{Node, Value};
use crate::desired::syntax::volumes;

pub(super) fn read_mounts(r: &mut Reader<'_>, n: &Node, what: &str, ctx: &Ctx<'_>) -> Vec<Mount> {
    let Some(items) = r.seq(n, what) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let mount = if item.as_map().is_some() {
            read_mount_long(r, item, what, ctx)
        } else {
            let Some(text) = r.string(item, what) else {
                continue;
            };
            match volumes::parse_volume_short(&text) {
                Ok(v) => Some(Mount {
                    kind: v.kind,
                    source: v.source.map(|s| {
                        if v.kind == MountKind::Bind {
                            bind_source(ctx, &s)
                        } else {
                            s
                        }
                    }),
                    target: v.target,
                    read_only: v.read_only,
                    options: v.options,
                }),
                Err(e) => {
                    r.invalid(item, "volume", &e);
                    None
                }
            }
        };
        if let Some(mut m) = mount {
            m.options.sort();
            out.push((m, item.loc.clone()));
        }
    }
    // Two mounts on one target: Docker refuses the container; say so here.
    for i in 0..out.len() {
        if out[..i].iter().any(|(m, _)| m.target == out[i].0.target) {
            r.error(
                &out[i].1,
                format!(
                    "two entries of {what} mount onto {}; each target may be used once",
                    out[i].0.target
                ),
            );
        }
    }
    out.into_iter().map(|(m, _)| m).collect()
}

pub(super) fn bind_source(ctx: &Ctx<'_>, s: &str) -> String {
    resolve(ctx.project_dir, s).to_string_lossy().into_owned()
}

pub(super) fn read_mount_long(
    r: &mut Reader<'_>,
    n: &Node,
    what: &str,
    ctx: &Ctx<'_>,
) -> Option<Mount> {
    let entries = r.map(n, what)?;
    r.check_keys(
        entries,
        what,
        &[
            "type",
            "source",
            "target",
            "read_only",
            "bind",
            "volume",
            "tmpfs",
            "consistency",
        ],
        &[],
    );
    let kind = match n
        .get("type")
        .and_then(|t| r.string(t, &format!("{what}.type")))
        .as_deref()
    {
        Some("bind") => MountKind::Bind,
        Some("volume") => MountKind::Volume,
        Some("tmpfs") => MountKind::Tmpfs,
        other => {
            let loc = n
                .get("type")
                .map(|t| t.loc.clone())
                .unwrap_or_else(|| n.loc.clone());
            r.error(
                &loc,
                format!(
                    "{what}: type {} is not supported: use bind, volume or tmpfs",
                    other.map_or("(missing)".to_string(), |o| format!("{o:?}"))
                ),
            );
            return None;
        }
    };
    let target = match n
        .get("target")
        .and_then(|t| r.string(t, &format!("{what}.target")))
    {
        Some(t) if t.starts_with('/') => t,
        Some(t) => {
            r.error(
                &n.get("target").map(|x| x.loc.clone()).unwrap_or_default(),
                format!("mount target {t:?} must be an absolute path inside the container"),
            );
            return None;
        }
        None => {
            r.error(
                &n.loc,
                format!("each long-syntax entry of {what} needs target:"),
            );
            return None;
        }
    };
    let source = n
        .get("source")
        .and_then(|s| r.string(s, &format!("{what}.source")));
    if kind == MountKind::Bind && source.is_none() {
        r.error(
            &n.loc,
            format!("a bind mount in {what} needs source: (the host path)"),
        );
    }
    let read_only = n
        .get("read_only")
        .and_then(|b| r.bool(b, &format!("{what}.read_only")))
        .unwrap_or(false);
    let mut options = Vec::new();
    if let Some(b) = n.get("bind") {
        if let Some(p) = b
            .get("propagation")
            .and_then(|p| r.string(p, &format!("{what}.bind.propagation")))
        {
            options.push(format!("propagation={p}"));
        }
        if let Some(s) = b
            .get("selinux")
            .and_then(|p| r.string(p, &format!("{what}.bind.selinux")))
        {
            options.push(format!("selinux={s}"));
        }
        if let Some(c) = b
            .get("create_host_path")
            .and_then(|p| r.bool(p, &format!("{what}.bind.create_host_path")))
        {
            options.push(format!("create_host_path={c}"));
        }
    }
    if let Some(v) = n.get("volume") {
        if v.get("nocopy")
            .and_then(|p| r.bool(p, &format!("{what}.volume.nocopy")))
            == Some(true)
        {
            options.push("nocopy".into());
        }
        if let Some(s) = v
            .get("subpath")
            .and_then(|p| r.string(p, &format!("{what}.volume.subpath")))
        {
            options.push(format!("subpath={s}"));
        }
    }
    if let Some(t) = n.get("tmpfs") {
        if let Some(size) = t.get("size")
            && let Value::Float(_) = size.value
        {
            r.error(
                &size.loc,
                format!("{what}.tmpfs.size must be a whole number of bytes or a size like 64m, found {}", size.shown()),
            );
        }
        if let Some(s) = t
            .get("size")
            .and_then(|p| r.size(p, &format!("{what}.tmpfs.size")))
        {
            options.push(format!("size={s}"));
        }
        if let Some(m) = t
            .get("mode")
            .and_then(|p| r.i64(p, &format!("{what}.tmpfs.mode")))
        {
            options.push(format!("mode={m:o}"));
        }
    }
    let source = match kind {
        MountKind::Bind => source.map(|s| bind_source(ctx, &s)),
        _ => source,
    };
    Some(Mount {
        kind,
        source,
        target,
        read_only,
        options,
    })
}

pub(super) fn read_file_mounts(
    r: &mut Reader<'_>,
    n: &Node,
    what: &str,
    default_dir: &str,
) -> Vec<FileMount> {
    let mut out = Vec::new();
    for item in r.seq(n, what).unwrap_or_default() {
        if item.as_map().is_some() {
            let Some(source) = item
                .get("source")
                .and_then(|s| r.string(s, &format!("{what}.source")))
            else {
                r.error(
                    &item.loc,
                    format!("each long-syntax entry of {what} needs source:"),
                );
                continue;
            };
            let target = item
                .get("target")
                .and_then(|t| r.string(t, &format!("{what}.target")));
            let target = match target {
                Some(t) if t.starts_with('/') => t,
                Some(t) => format!("{default_dir}{t}"),
                None => format!("{default_dir}{source}"),
            };
            let mode = item
                .get("mode")
                .and_then(|m| file_mode(r, m, &format!("{what}.mode")));
            out.push(FileMount {
                target,
                uid: item
                    .get("uid")
                    .and_then(|u| r.string(u, &format!("{what}.uid"))),
                gid: item
                    .get("gid")
                    .and_then(|u| r.string(u, &format!("{what}.gid"))),
                mode,
                source,
            });
        } else if let Some(source) = r.string(item, what) {
            out.push(FileMount {
                target: format!("{default_dir}{source}"),
                source,
                uid: None,
                gid: None,
                mode: None,
            });
        }
    }
    out
}

/// File modes as compose reads them: a number is the mode itself (`0440` in YAML is octal,
/// so it means r--r-----), a string is octal digits (`"0440"`, `"440"`).
pub(super) fn file_mode(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<u32> {
    let mode = match &n.value {
        Value::Int(i) => u32::try_from(*i).ok(),
        Value::Str { text, .. } => u32::from_str_radix(text.trim(), 8).ok(),
        _ => None,
    };
    match mode {
        Some(m) if m <= 0o7777 => Some(m),
        _ => {
            r.error(
                &n.loc,
                format!(
                    "invalid {what} {}: use an octal file mode such as \"0440\"",
                    n.shown()
                ),
            );
            None
        }
    }
}
