//! `env_file:` and `environment:`: files first, then the inline values on top; values that
//! came from an interpolated secret are marked so outputs mask them.

use std::collections::BTreeMap;

use super::resolve;
use crate::desired::convert::Ctx;
use crate::desired::convert::read::Reader;
use crate::desired::diag::Loc;
use crate::desired::envfile;
use crate::desired::model::*;
use crate::desired::node::{Node, Value};

/// `env_file` first, then `environment` on top; keys without value come from the lookup.
pub(super) fn read_environment(
    r: &mut Reader<'_>,
    node: &Node,
    name: &str,
    ctx: &Ctx<'_>,
) -> BTreeMap<String, EnvValue> {
    let mut env = BTreeMap::new();
    if let Some(n) = node.get("env_file") {
        for (path, required, loc) in env_file_entries(r, n, &format!("services.{name}.env_file")) {
            let full = resolve(ctx.project_dir, &path);
            if !full.exists() {
                if required {
                    r.error(
                        &loc,
                        format!(
                            "env file {} not found (set required: false if it is optional)",
                            (ctx.display_path)(&full)
                        ),
                    );
                }
                continue;
            }
            let file_loc = Loc::file((ctx.display_path)(&full));
            let Some(text) = (ctx.read_file)(&full, &file_loc, r.diags) else {
                continue;
            };
            match envfile::parse(&text, ctx.lookup) {
                Ok(entries) => {
                    for e in entries {
                        env.insert(
                            e.key,
                            EnvValue {
                                value: e.value,
                                secret: true,
                            },
                        );
                    }
                }
                Err(errs) => {
                    for e in errs {
                        r.error(&Loc::new(file_loc.file.clone(), e.line, e.col), e.message);
                    }
                }
            }
        }
    }
    if let Some(n) = node.get("environment") {
        for (k, (v, loc)) in r.key_values(n, &format!("services.{name}.environment"), &['=']) {
            // compose refuses `- DEBUG = true`: the name would be "DEBUG " (with the space).
            if n.as_seq().is_some() && k.contains(char::is_whitespace) {
                r.error(
                    &loc,
                    format!(
                        "invalid environment entry: variable name {k:?} contains whitespace; write NAME=value without spaces around ="
                    ),
                );
                continue;
            }
            let value = match v {
                Some(v) => Some(EnvValue {
                    value: v,
                    secret: false,
                }),
                // `KEY` alone takes the value from the environment berth runs in.
                None => (ctx.lookup)(&k).map(|v| EnvValue {
                    value: v,
                    secret: true,
                }),
            };
            match value {
                Some(v) => {
                    env.insert(k, v);
                }
                None => {
                    env.remove(&k);
                }
            }
        }
        // An interpolated value may carry a secret from .env or --env-dir: never print it.
        mark_interpolated_secret(n, &mut env);
    }
    env
}

pub(super) fn mark_interpolated_secret(n: &Node, env: &mut BTreeMap<String, EnvValue>) {
    let interpolated = |v: &Node| matches!(v.value, Value::Str { raw: Some(_), .. });
    match &n.value {
        Value::Map(m) => {
            for (k, v) in m {
                if interpolated(v)
                    && let Some(e) = env.get_mut(&k.name)
                {
                    e.secret = true;
                }
            }
        }
        Value::Seq(items) => {
            for v in items.iter().filter(|v| interpolated(v)) {
                if let Some(k) = v.as_str().map(|t| t.split('=').next().unwrap_or(t))
                    && let Some(e) = env.get_mut(k)
                {
                    e.secret = true;
                }
            }
        }
        _ => {}
    }
}

pub(super) fn env_file_entries(
    r: &mut Reader<'_>,
    n: &Node,
    what: &str,
) -> Vec<(String, bool, Loc)> {
    let items: Vec<&Node> = match &n.value {
        Value::Seq(s) => s.iter().collect(),
        _ => vec![n],
    };
    let mut out = Vec::new();
    for item in items {
        if item.as_map().is_some() {
            let Some(p) = item
                .get("path")
                .and_then(|p| r.string(p, &format!("{what}.path")))
            else {
                r.error(&item.loc, format!("each entry of {what} needs a path"));
                continue;
            };
            let required = item
                .get("required")
                .and_then(|q| r.bool(q, &format!("{what}.required")))
                .unwrap_or(true);
            if let Some(f) = item.get("format") {
                r.warning(&f.loc, format!("{what}.format is ignored; berth reads env files in compose's default format"));
            }
            out.push((p, required, item.loc.clone()));
        } else if let Some(p) = r.string(item, what) {
            out.push((p, true, item.loc.clone()));
        }
    }
    out
}
