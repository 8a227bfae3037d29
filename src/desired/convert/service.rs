//! One service: every Compose field berth honours, short and long syntaxes normalised.
//!
//! Pure (env files come through `Ctx::read_file`). Cross-service checks (unknown
//! dependencies, cycles, clashes) are `validate`'s job; this file only checks each field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::Ctx;
use super::policy;
use super::read::Reader;
use crate::desired::diag::{Diagnostics, Loc};
use crate::desired::model::*;
use crate::desired::node::{Key, Node, Value};
use crate::desired::syntax::{image_ref, names, ports, volumes};
use crate::desired::{context, envfile};

/// Keys berth reads.
const KNOWN: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "ports",
    "expose",
    "volumes",
    "networks",
    "network_mode",
    "depends_on",
    "healthcheck",
    "restart",
    "labels",
    "user",
    "working_dir",
    "hostname",
    "extra_hosts",
    "dns",
    "cap_add",
    "cap_drop",
    "privileged",
    "read_only",
    "tmpfs",
    "ulimits",
    "logging",
    "stop_grace_period",
    "stop_signal",
    "init",
    "platform",
    "runtime",
    "security_opt",
    "pull_policy",
    "shm_size",
    "sysctls",
    "secrets",
    "configs",
    "profiles",
    "container_name",
    "deploy",
    "links",
    "volumes_from",
    "mem_limit",
    "cpus",
    "pids_limit",
    "scale",
];

/// Compose keys berth does not apply yet; a warning says so.
const IGNORED: &[&str] = &[
    "annotations",
    "attach",
    "blkio_config",
    "cgroup",
    "cgroup_parent",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpuset",
    "credential_spec",
    "develop",
    "device_cgroup_rules",
    "devices",
    "dns_opt",
    "dns_search",
    "domainname",
    "external_links",
    "gpus",
    "group_add",
    "ipc",
    "isolation",
    "label_file",
    "mac_address",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "models",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "post_start",
    "pre_stop",
    "provider",
    "stdin_open",
    "storage_opt",
    "tty",
    "use_api_socket",
    "userns_mode",
    "uts",
];

/// Converts the service `name` (its key `key`, its body `node`). `defaults` is the
/// project-level `x-berth` block. `job`, `spec_hash` and implicit edges' targets are
/// completed later by the project converter and `validate`.
pub fn convert_service(
    key: &Key,
    node: &Node,
    defaults: Option<&Node>,
    ctx: &Ctx<'_>,
    diags: &mut Diagnostics,
) -> Option<Service> {
    let mut r = Reader { diags };
    let name = key.name.clone();
    if let Err(e) = names::check_service_name(&name) {
        r.error(&key.loc, e);
    }
    let entries = r.map(node, &format!("service {name:?}"))?;
    r.check_keys(entries, &format!("services.{name}"), KNOWN, IGNORED);
    let at = |k: &str| node.get(k);
    let what = |k: &str| format!("services.{name}.{k}");

    let image = at("image").and_then(|n| {
        let s = r.string(n, &what("image"))?;
        check_image(&mut r, n, &s);
        Some(s)
    });
    let build = at("build").and_then(|n| {
        let mut b = read_build(&mut r, n, &what("build"), ctx)?;
        if ctx.root.is_some() {
            match context::build_hash(&b, image.as_deref()) {
                Ok((h, parts)) => {
                    b.content_hash = h;
                    b.parts = parts;
                }
                Err(e) => r.error(
                    &n.loc,
                    format!("build context {}: {}", b.context, chain(&e)),
                ),
            }
        }
        Some(b)
    });
    // A `build:` that was refused has its own error; "no image" would only mislead.
    if image.is_none() && at("build").is_none() {
        r.error(
            &key.loc,
            format!("service {name:?} has no image: set image: to what it runs"),
        );
    }

    let command = at("command").and_then(|n| r.command(n, &what("command")));
    let entrypoint = at("entrypoint").and_then(|n| r.command(n, &what("entrypoint")));
    let environment = read_environment(&mut r, node, &name, ctx);
    let ports = at("ports")
        .map(|n| read_ports(&mut r, n, &what("ports")))
        .unwrap_or_default();
    let expose = at("expose")
        .map(|n| r.strings(n, &what("expose")))
        .unwrap_or_default();
    let mounts = at("volumes")
        .map(|n| read_mounts(&mut r, n, &what("volumes"), ctx))
        .unwrap_or_default();
    let network_mode = at("network_mode").and_then(|n| r.string(n, &what("network_mode")));
    let networks = at("networks")
        .map(|n| read_networks(&mut r, n, &what("networks")))
        .unwrap_or_default();
    if network_mode.is_some() && at("networks").is_some() {
        r.error(
            &at("network_mode")
                .map(|n| n.loc.clone())
                .unwrap_or_default(),
            format!("service {name:?} sets both network_mode and networks; use one of them"),
        );
    }
    let mut depends_on = at("depends_on")
        .map(|n| read_depends(&mut r, n, &what("depends_on")))
        .unwrap_or_default();
    add_implicit_edges(
        &mut r,
        node,
        &name,
        network_mode.as_deref(),
        &mut depends_on,
    );
    let healthcheck =
        at("healthcheck").and_then(|n| read_healthcheck(&mut r, n, &what("healthcheck")));
    let restart_node = at("restart");
    let restart = restart_node.and_then(|n| read_restart(&mut r, n, &what("restart")));
    let labels = at("labels")
        .map(|n| r.string_map(n, &what("labels")))
        .unwrap_or_default();
    let user = at("user").and_then(|n| r.string(n, &what("user")));
    let working_dir = at("working_dir").and_then(|n| r.string(n, &what("working_dir")));
    let hostname = at("hostname").and_then(|n| r.string(n, &what("hostname")));
    let extra_hosts = at("extra_hosts")
        .map(|n| read_extra_hosts(&mut r, n, &what("extra_hosts")))
        .unwrap_or_default();
    let dns = at("dns")
        .map(|n| r.strings(n, &what("dns")))
        .unwrap_or_default();
    let cap_add = at("cap_add")
        .map(|n| r.strings(n, &what("cap_add")))
        .unwrap_or_default();
    let cap_drop = at("cap_drop")
        .map(|n| r.strings(n, &what("cap_drop")))
        .unwrap_or_default();
    let privileged = at("privileged")
        .and_then(|n| r.bool(n, &what("privileged")))
        .unwrap_or(false);
    let read_only = at("read_only")
        .and_then(|n| r.bool(n, &what("read_only")))
        .unwrap_or(false);
    let tmpfs = at("tmpfs")
        .map(|n| r.strings(n, &what("tmpfs")))
        .unwrap_or_default();
    let ulimits = at("ulimits")
        .map(|n| read_ulimits(&mut r, n, &what("ulimits")))
        .unwrap_or_default();
    let logging = at("logging").and_then(|n| read_logging(&mut r, n, &what("logging")));
    let stop_grace_period =
        at("stop_grace_period").and_then(|n| r.duration(n, &what("stop_grace_period")));
    let stop_signal = at("stop_signal").and_then(|n| {
        let s = r.string(n, &what("stop_signal"))?;
        if !valid_signal(&s) {
            r.error(&n.loc, format!("invalid stop_signal {}: use a signal name like SIGTERM or SIGQUIT, or a number", n.shown()));
        }
        Some(s)
    });
    // compose-go reads `init` as a YAML 1.1 boolean too (`yes`, `on`).
    if let Some(d) = at("develop") {
        check_develop(&mut r, d, &what("develop"));
    }
    let init = at("init").and_then(|n| match n.as_str() {
        Some("yes" | "on" | "y" | "Y" | "Yes" | "YES" | "On" | "ON") => Some(true),
        Some("no" | "off" | "n" | "N" | "No" | "NO" | "Off" | "OFF") => Some(false),
        _ => r.bool(n, &what("init")),
    });
    let platform = at("platform").and_then(|n| r.string(n, &what("platform")));
    let runtime = at("runtime").and_then(|n| r.string(n, &what("runtime")));
    let security_opt = at("security_opt")
        .map(|n| r.strings(n, &what("security_opt")))
        .unwrap_or_default();
    for key in NOT_YET_APPLIED {
        if let Some(n) = at(key) {
            r.warning(&n.loc, not_yet_applied(&what(key)));
        }
    }
    let pull_policy = at("pull_policy")
        .and_then(|n| read_pull_policy(&mut r, n, &what("pull_policy")))
        .unwrap_or_default();
    let shm_size = at("shm_size").and_then(|n| r.size(n, &what("shm_size")));
    let sysctls = at("sysctls")
        .map(|n| r.string_map(n, &what("sysctls")))
        .unwrap_or_default();
    let secrets = at("secrets")
        .map(|n| read_file_mounts(&mut r, n, &what("secrets"), "/run/secrets/"))
        .unwrap_or_default();
    let configs = at("configs")
        .map(|n| read_file_mounts(&mut r, n, &what("configs"), "/"))
        .unwrap_or_default();
    let profiles = at("profiles")
        .map(|n| r.strings(n, &what("profiles")))
        .unwrap_or_default();
    let container_name = at("container_name").and_then(|n| {
        let s = r.string(n, &what("container_name"))?;
        if let Err(e) = names::check_container_name(&s) {
            r.error(&n.loc, e);
        }
        Some(s)
    });

    let deploy = policy::read_deploy(&mut r, node, &name);
    let mut limits = deploy.limits;
    if let Some(n) = at("mem_limit") {
        limits.memory = limits.memory.or_else(|| r.size(n, &what("mem_limit")));
    }
    if let Some(n) = at("cpus") {
        limits.cpus = limits.cpus.or_else(|| r.f64(n, &what("cpus")));
    }
    if let Some(n) = at("pids_limit") {
        limits.pids = limits.pids.or_else(|| r.i64(n, &what("pids_limit")));
    }
    let replicas = match (deploy.replicas, at("scale")) {
        (Some(n), _) => n,
        (None, Some(n)) => r.u32(n, &what("scale")).unwrap_or(1),
        (None, None) => 1,
    };
    let mut berth = policy::read_berth(
        &mut r,
        defaults,
        node.get("x-berth"),
        &name,
        &key.loc,
        &deploy.update,
    );
    berth.policy.handoff = super::handoff::read(
        &mut r,
        node.get("x-berth"),
        &super::handoff::ServiceFacts {
            name: &name,
            ports: &ports,
            stop_grace_period,
            container_name: container_name.as_deref(),
        },
    );
    let rollout = RolloutPolicy {
        update: deploy.update.policy,
        min_ready: berth.min_ready,
        progress_deadline: berth.progress_deadline,
    };

    let field_locs = entries
        .iter()
        .map(|(k, v)| (k.name.clone(), v.loc.clone()))
        .collect();
    Some(Service {
        name,
        loc: key.loc.clone(),
        field_locs,
        image,
        build,
        command,
        entrypoint,
        environment,
        ports,
        expose,
        volumes: mounts,
        networks,
        network_mode,
        depends_on,
        healthcheck,
        restart: restart.or(deploy.restart).unwrap_or(Restart::No),
        labels,
        user,
        working_dir,
        hostname,
        extra_hosts,
        dns,
        cap_add,
        cap_drop,
        privileged,
        read_only,
        tmpfs,
        ulimits,
        logging,
        stop_grace_period,
        stop_signal,
        init,
        platform,
        runtime,
        security_opt,
        pull_policy,
        shm_size,
        sysctls,
        secrets,
        configs,
        profiles,
        container_name,
        replicas,
        limits,
        rollout,
        rollback: deploy.rollback,
        berth: berth.policy,
        job: false,
        spec_hash: String::new(),
    })
}

fn check_image(r: &mut Reader<'_>, n: &Node, s: &str) {
    match image_ref::parse_image_ref(s) {
        Err(e) => r.invalid(n, "image reference", &e),
        Ok(i) if i.is_latest_or_untagged() => r.warning(
            &n.loc,
            format!(
                "image {} is not pinned ({}): a revert needs a fixed tag or digest to go back to; \
                 use a version tag such as app:1.4.2",
                n.shown(),
                if i.tag.is_some() {
                    "tag latest"
                } else {
                    "no tag, so latest"
                }
            ),
        ),
        Ok(_) => {}
    }
}

/// Keys of `build:` (long form).
const BUILD_KNOWN: &[&str] = &[
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
const BUILD_IGNORED: &[&str] = &[
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

fn read_build(r: &mut Reader<'_>, n: &Node, what: &str, ctx: &Ctx<'_>) -> Option<Build> {
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
fn build_context_dir(
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

/// `env_file` first, then `environment` on top; keys without value come from the lookup.
fn read_environment(
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

fn mark_interpolated_secret(n: &Node, env: &mut BTreeMap<String, EnvValue>) {
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

fn env_file_entries(r: &mut Reader<'_>, n: &Node, what: &str) -> Vec<(String, bool, Loc)> {
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

/// Resolves `p` against `dir`; `~` is the user's home, as compose does.
pub(super) fn resolve(dir: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p
        .strip_prefix("~/")
        .or(if p == "~" { Some("") } else { None })
        && let Some(home) = std::env::var_os("HOME")
    {
        return PathBuf::from(home).join(rest);
    }
    let path = dir.join(p);
    normalize(&path)
}

/// Lexical `.`/`..` removal (the path may not exist yet, so no canonicalize).
pub(super) fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}

fn read_ports(r: &mut Reader<'_>, n: &Node, what: &str) -> Vec<Port> {
    let Some(items) = r.seq(n, what) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        if item.as_map().is_some() {
            if let Some(p) = read_port_long(r, item, what) {
                out.extend(p);
            }
            continue;
        }
        let Some(text) = r.string(item, what) else {
            continue;
        };
        match ports::parse_port_short(&text) {
            Ok(ps) => out.extend(ps.into_iter().map(|mut p| {
                p.loc = item.loc.clone();
                p
            })),
            Err(e) => r.invalid(item, "port", &e),
        }
    }
    out
}

fn read_port_long(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<Vec<Port>> {
    let entries = r.map(n, what)?;
    r.check_keys(
        entries,
        what,
        &[
            "target",
            "published",
            "host_ip",
            "protocol",
            "mode",
            "name",
            "app_protocol",
        ],
        &[],
    );
    let Some(t) = n.get("target") else {
        r.error(
            &n.loc,
            format!("each long-syntax entry of {what} needs target: (the container port)"),
        );
        return None;
    };
    let target_text = r.string(t, &format!("{what}.target"))?;
    let target = match ports::parse_port_number(&target_text) {
        Ok(p) => p,
        Err(e) => {
            r.invalid(t, "port", &e);
            return None;
        }
    };
    let protocol = match n
        .get("protocol")
        .and_then(|p| r.string(p, &format!("{what}.protocol")))
    {
        None => Protocol::Tcp,
        Some(p) => match ports::parse_protocol(&p) {
            Ok(p) => p,
            Err(e) => {
                r.error(
                    &n.get("protocol").map(|x| x.loc.clone()).unwrap_or_default(),
                    e,
                );
                Protocol::Tcp
            }
        },
    };
    let host_ip = n
        .get("host_ip")
        .and_then(|h| r.string(h, &format!("{what}.host_ip")));
    if let Some(m) = n
        .get("mode")
        .and_then(Node::scalar_text)
        .filter(|m| m != "host" && m != "ingress")
    {
        r.error(
            &n.get("mode").map(|x| x.loc.clone()).unwrap_or_default(),
            format!("invalid port mode {m:?}: use host or ingress"),
        );
    }
    let published: Vec<(Option<u16>, Option<u16>)> = match n.get("published") {
        None => vec![(None, None)],
        Some(p) => {
            let text = r.string(p, &format!("{what}.published"))?;
            // Reuse the short-syntax parser for `8080` and `8080-8081`.
            match ports::parse_port_short(&format!("{text}:{target}")) {
                Ok(ps) if ps.len() == 1 => vec![(ps[0].published, ps[0].published_end)],
                Ok(_) => {
                    r.error(&p.loc, format!("published {} is a range but target is one port; berth needs one host port per container port", p.shown()));
                    return None;
                }
                Err(e) => {
                    r.invalid(p, "published port", &e);
                    return None;
                }
            }
        }
    };
    Some(
        published
            .into_iter()
            .map(|(published, published_end)| Port {
                host_ip: host_ip.clone(),
                published,
                published_end,
                target,
                protocol,
                loc: n.loc.clone(),
            })
            .collect(),
    )
}

fn read_mounts(r: &mut Reader<'_>, n: &Node, what: &str, ctx: &Ctx<'_>) -> Vec<Mount> {
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

fn bind_source(ctx: &Ctx<'_>, s: &str) -> String {
    resolve(ctx.project_dir, s).to_string_lossy().into_owned()
}

fn read_mount_long(r: &mut Reader<'_>, n: &Node, what: &str, ctx: &Ctx<'_>) -> Option<Mount> {
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

fn read_networks(r: &mut Reader<'_>, n: &Node, what: &str) -> BTreeMap<String, ServiceNetwork> {
    let mut out = BTreeMap::new();
    match &n.value {
        Value::Seq(items) => {
            for item in items {
                if let Some(s) = r.string(item, what) {
                    out.insert(s, ServiceNetwork::default());
                }
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                let w = format!("{what}.{}", k.name);
                let mut sn = ServiceNetwork::default();
                if let Some(m) = r.map(v, &w) {
                    r.check_keys(
                        m,
                        &w,
                        &["aliases", "ipv4_address", "ipv6_address"],
                        &[
                            "priority",
                            "link_local_ips",
                            "mac_address",
                            "driver_opts",
                            "gw_priority",
                            "interface_name",
                        ],
                    );
                    sn.aliases = v
                        .get("aliases")
                        .map(|a| r.strings(a, &format!("{w}.aliases")))
                        .unwrap_or_default();
                    sn.ipv4_address = v
                        .get("ipv4_address")
                        .and_then(|a| r.string(a, &format!("{w}.ipv4_address")));
                    sn.ipv6_address = v
                        .get("ipv6_address")
                        .and_then(|a| r.string(a, &format!("{w}.ipv6_address")));
                }
                out.insert(k.name.clone(), sn);
            }
        }
        _ => r.error(
            &n.loc,
            format!(
                "{what} must be a list of network names or a mapping, found {}",
                n.kind()
            ),
        ),
    }
    out
}

fn read_depends(r: &mut Reader<'_>, n: &Node, what: &str) -> BTreeMap<String, Dependency> {
    let mut out = BTreeMap::new();
    let plain = |loc: &Loc| Dependency {
        condition: Condition::ServiceStarted,
        required: true,
        restart: false,
        implicit: false,
        loc: loc.clone(),
    };
    match &n.value {
        Value::Seq(items) => {
            for item in items {
                if let Some(s) = r.string(item, what) {
                    out.insert(s, plain(&item.loc));
                }
            }
        }
        Value::Map(entries) => {
            for (k, v) in entries {
                let w = format!("{what}.{}", k.name);
                let mut d = plain(&k.loc);
                if let Some(m) = r.map(v, &w) {
                    r.check_keys(m, &w, &["condition", "required", "restart"], &[]);
                    if let Some(c) = v.get("condition") {
                        match c.scalar_text().as_deref() {
                            Some("service_started") => d.condition = Condition::ServiceStarted,
                            Some("service_healthy") => d.condition = Condition::ServiceHealthy,
                            Some("service_completed_successfully") => d.condition = Condition::ServiceCompletedSuccessfully,
                            _ => r.error(&c.loc, format!("invalid condition {} in {w}: use service_started, service_healthy or service_completed_successfully", c.shown())),
                        }
                    }
                    if let Some(b) = v
                        .get("required")
                        .and_then(|b| r.bool(b, &format!("{w}.required")))
                    {
                        d.required = b;
                    }
                    if let Some(b) = v
                        .get("restart")
                        .and_then(|b| r.bool(b, &format!("{w}.restart")))
                    {
                        d.restart = b;
                    }
                }
                out.insert(k.name.clone(), d);
            }
        }
        _ => r.error(
            &n.loc,
            format!(
                "{what} must be a list of service names or a mapping, found {}",
                n.kind()
            ),
        ),
    }
    out
}

/// `links`, `volumes_from` and `network_mode: service:x` imply "start x first", as in compose.
fn add_implicit_edges(
    r: &mut Reader<'_>,
    node: &Node,
    name: &str,
    network_mode: Option<&str>,
    deps: &mut BTreeMap<String, Dependency>,
) {
    let mut add = |svc: &str, loc: &Loc| {
        deps.entry(svc.to_string()).or_insert(Dependency {
            condition: Condition::ServiceStarted,
            required: true,
            restart: false,
            implicit: true,
            loc: loc.clone(),
        });
    };
    if let Some(n) = node.get("links") {
        for item in r
            .seq(n, &format!("services.{name}.links"))
            .unwrap_or_default()
        {
            if let Some(s) = item.scalar_text() {
                add(s.split(':').next().unwrap_or(&s), &item.loc);
            }
        }
    }
    if let Some(n) = node.get("volumes_from") {
        for item in r
            .seq(n, &format!("services.{name}.volumes_from"))
            .unwrap_or_default()
        {
            if let Some(s) = item.scalar_text()
                && !s.starts_with("container:")
            {
                add(s.split(':').next().unwrap_or(&s), &item.loc);
            }
        }
    }
    if let (Some(svc), Some(n)) = (
        network_mode.and_then(|m| m.strip_prefix("service:")),
        node.get("network_mode"),
    ) {
        add(svc, &n.loc);
    }
}

fn read_healthcheck(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<Healthcheck> {
    let entries = r.map(n, what)?;
    r.check_keys(
        entries,
        what,
        &[
            "test",
            "interval",
            "timeout",
            "retries",
            "start_period",
            "start_interval",
            "disable",
        ],
        &[],
    );
    let disabled = n
        .get("disable")
        .and_then(|d| r.bool(d, &format!("{what}.disable")))
        .unwrap_or(false);
    let test = match n.get("test") {
        _ if disabled => vec!["NONE".to_string()],
        None => Vec::new(),
        Some(t) => match &t.value {
            Value::Seq(_) => {
                let v = r.strings(t, &format!("{what}.test"));
                match v.first().map(String::as_str) {
                    Some("NONE") | Some("CMD") | Some("CMD-SHELL") => {}
                    _ => r.error(t.as_seq().and_then(|s| s.first()).map_or(&t.loc, |f| &f.loc), format!("{what}.test must start with \"CMD\", \"CMD-SHELL\" or \"NONE\" (or be a string, run with the shell)")),
                }
                v
            }
            _ => match t.as_str() {
                Some(s) => vec!["CMD-SHELL".into(), s.to_string()],
                None => {
                    r.error(
                        &t.loc,
                        format!("{what}.test must be a string or a list, found {}", t.kind()),
                    );
                    Vec::new()
                }
            },
        },
    };
    Some(Healthcheck {
        test,
        interval: n
            .get("interval")
            .and_then(|d| r.duration(d, &format!("{what}.interval"))),
        timeout: n
            .get("timeout")
            .and_then(|d| r.duration(d, &format!("{what}.timeout"))),
        retries: n
            .get("retries")
            .and_then(|d| r.u32(d, &format!("{what}.retries"))),
        start_period: n
            .get("start_period")
            .and_then(|d| r.duration(d, &format!("{what}.start_period"))),
        start_interval: n
            .get("start_interval")
            .and_then(|d| r.duration(d, &format!("{what}.start_interval"))),
    })
}

fn read_restart(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<Restart> {
    let s = match &n.value {
        Value::Bool(false) => "no".to_string(),
        _ => r.string(n, what)?,
    };
    let parsed = match s.as_str() {
        "no" => Some(Restart::No),
        "always" => Some(Restart::Always),
        "unless-stopped" => Some(Restart::UnlessStopped),
        "on-failure" => Some(Restart::OnFailure { max: None }),
        other => other
            .strip_prefix("on-failure:")
            .and_then(|m| m.parse().ok())
            .map(|m| Restart::OnFailure { max: Some(m) }),
    };
    if parsed.is_none() {
        r.error(
            &n.loc,
            format!(
                "invalid restart policy {}: use \"no\", always, on-failure[:N] or unless-stopped",
                n.shown()
            ),
        );
    }
    parsed
}

fn read_ulimits(r: &mut Reader<'_>, n: &Node, what: &str) -> BTreeMap<String, Ulimit> {
    let mut out = BTreeMap::new();
    for (k, v) in r.map(n, what).unwrap_or_default() {
        let w = format!("{what}.{}", k.name);
        let lim = if v.as_map().is_some() {
            let soft = v.get("soft").and_then(|x| r.i64(x, &format!("{w}.soft")));
            let hard = v.get("hard").and_then(|x| r.i64(x, &format!("{w}.hard")));
            match (soft, hard) {
                (Some(soft), Some(hard)) => Some(Ulimit { soft, hard }),
                _ => {
                    r.error(&v.loc, format!("{w} needs both soft: and hard:"));
                    None
                }
            }
        } else {
            r.i64(v, &w).map(|x| Ulimit { soft: x, hard: x })
        };
        if let Some(l) = lim {
            out.insert(k.name.clone(), l);
        }
    }
    out
}

fn read_logging(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<Logging> {
    let entries = r.map(n, what)?;
    r.check_keys(entries, what, &["driver", "options"], &[]);
    Some(Logging {
        driver: n
            .get("driver")
            .and_then(|d| r.string(d, &format!("{what}.driver"))),
        options: n
            .get("options")
            .map(|o| r.string_map(o, &format!("{what}.options")))
            .unwrap_or_default(),
    })
}

fn read_file_mounts(r: &mut Reader<'_>, n: &Node, what: &str, default_dir: &str) -> Vec<FileMount> {
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

fn valid_signal(s: &str) -> bool {
    if s.parse::<u8>().is_ok_and(|n| (1..=64).contains(&n)) {
        return true;
    }
    const NAMES: &[&str] = &[
        "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
        "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
        "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS",
    ];
    let name = s.strip_prefix("SIG").unwrap_or(s);
    NAMES.contains(&name) || name.starts_with("RTMIN") || name.starts_with("RTMAX")
}

/// File modes as compose reads them: a number is the mode itself (`0440` in YAML is octal,
/// so it means r--r-----), a string is octal digits (`"0440"`, `"440"`).
fn file_mode(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<u32> {
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

/// An error and its sources, `: `-joined.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(&format!(": {c}"));
        cur = c.source();
    }
    s
}

/// compose's `every_<n>` durations: Go durations plus `d` (days) and `w` (weeks) units.
fn every(d: &str) -> Option<std::time::Duration> {
    let day = 24 * 3600;
    for (suffix, secs) in [("d", day), ("w", 7 * day)] {
        if let Some(n) = d.strip_suffix(suffix).and_then(|n| n.parse::<u64>().ok()) {
            return Some(std::time::Duration::from_secs(n.checked_mul(secs)?));
        }
    }
    crate::desired::syntax::units::parse_duration(d).ok()
}

/// `pull_policy`: compose's values, `if_not_present` as `missing`, `daily`/`weekly`/
/// `every_<duration>` as a maximum age.
fn read_pull_policy(r: &mut Reader<'_>, n: &Node, what: &str) -> Option<PullPolicy> {
    let s = r.string(n, what)?;
    let day = std::time::Duration::from_secs(24 * 3600);
    Some(match s.as_str() {
        "missing" | "if_not_present" => PullPolicy::Missing,
        "always" => PullPolicy::Always,
        "never" => PullPolicy::Never,
        "build" => PullPolicy::Build,
        "daily" => PullPolicy::Every(day),
        "weekly" => PullPolicy::Every(day * 7),
        other => match other.strip_prefix("every_").and_then(every) {
            Some(d) => PullPolicy::Every(d),
            None => {
                r.error(
                    &n.loc,
                    format!(
                        "invalid {what} {}: use always, never, missing, build, daily, weekly or every_<duration>",
                        n.shown()
                    ),
                );
                return None;
            }
        },
    })
}

/// `extra_hosts`: a list of `host=ip` / `host:ip`, or a mapping of a host to one address or
/// a list of them (compose's long syntax: one entry per address).
fn read_extra_hosts(r: &mut Reader<'_>, n: &Node, what: &str) -> Vec<(String, String)> {
    if let Some(m) = n.as_map() {
        let mut out = Vec::new();
        for (k, v) in m {
            match v.as_seq() {
                Some(items) => {
                    for i in items {
                        if let Some(ip) = r.string(i, &format!("{what}.{}", k.name)) {
                            out.push((k.name.clone(), ip));
                        }
                    }
                }
                None => {
                    if let Some(ip) = r.string(v, &format!("{what}.{}", k.name)) {
                        out.push((k.name.clone(), ip));
                    }
                }
            }
        }
        return out;
    }
    r.key_values(n, what, &['=', ':'])
        .into_iter()
        .map(|(h, (ip, _))| (h, ip.unwrap_or_default()))
        .collect()
}

/// `develop:` is for `docker compose watch`, which berth ignores; but a file compose refuses
/// must not deploy: each `watch` entry needs `path` and `action`.
fn check_develop(r: &mut Reader<'_>, n: &Node, what: &str) {
    let Some(items) = n.get("watch").and_then(Node::as_seq) else {
        return;
    };
    for w in items.iter().filter(|w| w.as_map().is_some()) {
        for key in ["path", "action"] {
            if w.get(key).is_none() {
                r.error(&w.loc, format!("each entry of {what}.watch needs {key}:"));
            }
        }
    }
}
/// Service fields the loader carries in the model but the executor does not send yet: each
/// gives a warning until it does (remove a key here when `container_spec`/the engine honour
/// it).
const NOT_YET_APPLIED: &[&str] = &["pull_policy"];

/// The warning for a field in the model that containers do not get yet.
pub(crate) fn not_yet_applied(what: &str) -> String {
    format!("{what} is read but not yet applied to containers by berth; what runs lacks it")
}
