//! One service: every Compose field berth honours, short and long syntaxes normalised.
//!
//! Pure (env files come through `Ctx::read_file`). Cross-service checks (unknown
//! dependencies, cycles, clashes) are `validate`'s job; this folder only checks each field.
//! This file holds the service's keys and `convert_service`, which reads them in order; each
//! field group has its file: `build`, `environment` (env files and values), `publish` (ports, expose), `mounts`
//! (volumes, tmpfs, configs and secrets), `relations` (networks, dependencies) and `runtime`
//! (healthcheck, restart, ulimits, logging, pull policy, extra hosts).

use std::path::{Path, PathBuf};

use super::Ctx;
use super::policy;
use super::read::Reader;
use crate::desired::context;
use crate::desired::diag::Diagnostics;
use crate::desired::model::*;
use crate::desired::node::{Key, Node};
use crate::desired::syntax::{image_ref, names};

mod build;
mod environment;
mod mounts;
mod publish;
mod relations;
mod runtime;

use build::read_build;
use environment::read_environment;
use mounts::{read_file_mounts, read_mounts};
use publish::read_ports;
use relations::{add_implicit_edges, read_depends, read_networks};
use runtime::{
    check_pull_policy, read_extra_hosts, read_healthcheck, read_logging, read_pull_policy,
    read_restart, read_ulimits,
};

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
                    format!("build context {}: {}", b.context, crate::errors::chain(&e)),
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
    let pull_policy = at("pull_policy")
        .and_then(|n| {
            let policy = read_pull_policy(&mut r, n, &what("pull_policy"))?;
            check_pull_policy(&mut r, n, policy, build.is_some(), &what("pull_policy"));
            Some(policy)
        })
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
        image.as_deref(),
    );
    super::placement::refuse_in_service(&mut r, node.get("x-berth"), &name);
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
