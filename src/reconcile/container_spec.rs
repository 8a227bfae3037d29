//! Turns a desired service into the engine-neutral [`ContainerCreate`] for one replica or job
//! run, with berth's and compose's labels and compose's names, and a project's network into
//! its [`NetworkCreate`].
//!
//! Pure. The planner calls it for every container it creates, so `berth plan` and the golden
//! tests see exactly what will be sent to the engine.

use std::collections::BTreeMap;

use crate::desired::model::{Condition, MountKind, Network, Project, Restart, Service};
use crate::engine::labels::{self, Role, compose};
use crate::engine::{
    ContainerCreate, HealthcheckSpec, IpamPoolSpec, IpamSpec, MountSpec, NetworkAttach,
    NetworkCreate, PortBinding,
};

/// The labels of a container of `svc` number `number`.
pub fn container_labels(
    project: &Project,
    svc: &Service,
    number: u32,
    role: Role,
) -> BTreeMap<String, String> {
    let mut l = svc.labels.clone();
    l.insert(labels::MANAGED.into(), "true".into());
    l.insert(labels::PROJECT.into(), project.name.clone());
    l.insert(labels::SERVICE.into(), svc.name.clone());
    l.insert(labels::SPEC_HASH.into(), svc.spec_hash.clone());
    l.insert(labels::ROLE.into(), role.as_str().into());
    l.insert(compose::PROJECT.into(), project.name.clone());
    l.insert(compose::SERVICE.into(), svc.name.clone());
    l.insert(compose::NUMBER.into(), number.to_string());
    l.insert(compose::ONEOFF.into(), "False".into());
    l.insert(compose::CONFIG_HASH.into(), svc.spec_hash.clone());
    let files: Vec<String> = project
        .files
        .iter()
        .map(|f| {
            project
                .dir
                .join(f.rsplit('/').next().unwrap_or(f))
                .display()
                .to_string()
        })
        .collect();
    l.insert(compose::CONFIG_FILES.into(), files.join(","));
    l.insert(
        compose::WORKING_DIR.into(),
        project.dir.display().to_string(),
    );
    let deps: Vec<String> = svc
        .depends_on
        .iter()
        .map(|(name, d)| {
            let cond = match d.condition {
                Condition::ServiceStarted => "service_started",
                Condition::ServiceHealthy => "service_healthy",
                Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
            };
            format!("{name}:{cond}:{}", d.restart)
        })
        .collect();
    l.insert(compose::DEPENDS_ON.into(), deps.join(","));
    l.insert(compose::IMAGE.into(), svc.image.clone().unwrap_or_default());
    l.extend(labels::version_labels());
    l
}

/// The name replica `number` of `svc` has once it runs: `container_name:` when set (then
/// there is one replica), else compose's `<project>-<service>-<n>`.
pub fn canonical_name(project: &Project, svc: &Service, number: u32) -> String {
    match &svc.container_name {
        Some(n) => n.clone(),
        None => labels::container_name(&project.name, &svc.name, number),
    }
}

/// The container to create for `svc` number `number`, running image `image_id`.
pub fn container_create(
    project: &Project,
    svc: &Service,
    number: u32,
    role: Role,
    image_id: &str,
) -> ContainerCreate {
    let name = canonical_name(project, svc, number);
    let mut env: Vec<String> = svc
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={}", v.value))
        .collect();
    env.sort();
    // A port handed to berth's proxy (`x-berth.handoff`) is bound by the proxy, not by the
    // container: the container only exposes its target port (reached on its network address).
    let handed_off = |p: &crate::desired::model::Port| {
        svc.berth.handoff.as_ref().is_some_and(|h| {
            h.ports
                .iter()
                .any(|hp| Some(hp.published) == p.published && hp.target == p.target)
        })
    };
    let ports: Vec<PortBinding> = svc
        .ports
        .iter()
        .filter(|p| !handed_off(p))
        .map(|p| PortBinding {
            target: p.target,
            protocol: format!("{:?}", p.protocol).to_lowercase(),
            host_ip: p.host_ip.clone(),
            published: p.published,
            published_end: p.published_end,
        })
        .collect();
    let mut exposed: Vec<String> = svc
        .ports
        .iter()
        .map(|p| {
            let proto = format!("{:?}", p.protocol).to_lowercase();
            format!("{}/{proto}", p.target)
        })
        .collect();
    for e in &svc.expose {
        exposed.push(if e.contains('/') {
            e.clone()
        } else {
            format!("{e}/tcp")
        });
    }
    exposed.sort();
    exposed.dedup();
    let mut mounts: Vec<MountSpec> = svc
        .volumes
        .iter()
        .map(|m| MountSpec {
            kind: match m.kind {
                MountKind::Bind => "bind",
                MountKind::Volume => "volume",
                MountKind::Tmpfs => "tmpfs",
            }
            .into(),
            source: match (m.kind, &m.source) {
                (MountKind::Volume, Some(s)) => Some(
                    project
                        .volumes
                        .get(s)
                        .map_or_else(|| s.clone(), |v| v.name.clone()),
                ),
                (_, s) => s.clone(),
            },
            target: m.target.clone(),
            read_only: m.read_only,
            options: m.options.clone(),
        })
        .collect();
    for (mount, objects) in svc
        .secrets
        .iter()
        .map(|m| (m, &project.secrets))
        .chain(svc.configs.iter().map(|m| (m, &project.configs)))
    {
        if let Some(file) = objects.get(&mount.source).and_then(|o| o.file.as_ref()) {
            mounts.push(MountSpec {
                kind: "bind".into(),
                source: Some(file.display().to_string()),
                target: mount.target.clone(),
                read_only: true,
                options: Vec::new(),
            });
        }
    }
    let (networks, network_mode) = match svc.network_mode.as_deref() {
        Some(mode) => {
            let resolved = match mode.strip_prefix("service:") {
                Some(other) => format!(
                    "container:{}",
                    labels::container_name(&project.name, other, 1)
                ),
                None => mode.to_string(),
            };
            (Vec::new(), Some(resolved))
        }
        None => {
            let joined: Vec<(&String, Option<&crate::desired::model::ServiceNetwork>)> =
                if svc.networks.is_empty() {
                    project
                        .networks
                        .get_key_value("default")
                        .map(|(k, _)| (k, None))
                        .into_iter()
                        .collect()
                } else {
                    svc.networks.iter().map(|(k, n)| (k, Some(n))).collect()
                };
            let attach = joined
                .into_iter()
                .map(|(key, sn)| {
                    let mut aliases = vec![svc.name.clone()];
                    if let Some(sn) = sn {
                        aliases.extend(sn.aliases.iter().cloned());
                    }
                    NetworkAttach {
                        network: project
                            .networks
                            .get(key)
                            .map_or_else(|| key.clone(), |n| n.name.clone()),
                        aliases,
                        ipv4_address: sn.and_then(|s| s.ipv4_address.clone()),
                        ipv6_address: sn.and_then(|s| s.ipv6_address.clone()),
                    }
                })
                .collect();
            (attach, None)
        }
    };
    let (restart, restart_max) = match (role, svc.restart) {
        // An on-failure job is retried by the engine until it exits 0, as with compose; the
        // job runner waits while it restarts and sees it exited only when done or out of tries.
        (Role::Job, Restart::OnFailure { max }) => ("on-failure", max),
        (Role::Job | Role::Smoke | Role::PreDeploy, _) | (_, Restart::No) => ("no", None),
        (_, Restart::Always) => ("always", None),
        (_, Restart::UnlessStopped) => ("unless-stopped", None),
        (_, Restart::OnFailure { max }) => ("on-failure", max),
    };
    ContainerCreate {
        name,
        image: image_id.to_string(),
        command: svc.command.clone(),
        entrypoint: svc.entrypoint.clone(),
        env,
        labels: container_labels(project, svc, number, role),
        user: svc.user.clone(),
        working_dir: svc.working_dir.clone(),
        hostname: svc.hostname.clone(),
        exposed,
        ports,
        mounts,
        networks,
        network_mode,
        restart: restart.into(),
        restart_max,
        healthcheck: svc.healthcheck.as_ref().map(|h| HealthcheckSpec {
            test: h.test.clone(),
            interval: h.interval,
            timeout: h.timeout,
            retries: h.retries,
            start_period: h.start_period,
            start_interval: h.start_interval,
        }),
        extra_hosts: svc
            .extra_hosts
            .iter()
            .map(|(h, ip)| format!("{h}:{ip}"))
            .collect(),
        dns: svc.dns.clone(),
        cap_add: svc.cap_add.clone(),
        cap_drop: svc.cap_drop.clone(),
        privileged: svc.privileged,
        read_only: svc.read_only,
        tmpfs: svc.tmpfs.clone(),
        ulimits: svc
            .ulimits
            .iter()
            .map(|(k, u)| (k.clone(), (u.soft, u.hard)))
            .collect(),
        log_driver: svc.logging.as_ref().and_then(|l| l.driver.clone()),
        log_options: svc
            .logging
            .as_ref()
            .map(|l| l.options.clone())
            .unwrap_or_default(),
        stop_signal: svc.stop_signal.clone(),
        stop_timeout: svc.stop_grace_period.map(|d| d.as_secs() as i64),
        init: svc.init,
        shm_size: svc.shm_size.map(|s| s as i64),
        sysctls: svc.sysctls.clone(),
        nano_cpus: svc.limits.cpus.map(|c| (c * 1e9) as i64),
        memory: svc.limits.memory.map(|m| m as i64),
        pids_limit: svc.limits.pids,
        platform: svc.platform.clone(),
        runtime: svc.runtime.clone(),
        security_opt: svc.security_opt.clone(),
    }
}

/// The network create for the project's network `key`: driver, options, `ipam:`,
/// `enable_ipv6`, `attachable`, and compose's labels.
pub fn network_create(project: &Project, key: &str, n: &Network) -> NetworkCreate {
    NetworkCreate {
        name: n.name.clone(),
        driver: n.driver.clone(),
        driver_opts: n.driver_opts.clone(),
        internal: n.internal,
        labels: labels::object_labels(&project.name, compose::NETWORK, key, &n.labels),
        ipam: n.ipam.as_ref().map(|i| IpamSpec {
            driver: i.driver.clone(),
            pools: i
                .config
                .iter()
                .map(|p| IpamPoolSpec {
                    subnet: p.subnet.clone(),
                    ip_range: p.ip_range.clone(),
                    gateway: p.gateway.clone(),
                    aux_addresses: p.aux_addresses.clone(),
                })
                .collect(),
            options: i.options.clone(),
        }),
        enable_ipv6: n.enable_ipv6,
        attachable: n.attachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::{LoadOptions, load_inline};

    fn project(yaml: &str) -> Project {
        let l = load_inline(yaml, &LoadOptions::default());
        let state = l.state.unwrap_or_else(|| panic!("{}", l.diagnostics));
        state.projects.into_values().next().unwrap()
    }

    #[test]
    fn platform_runtime_security_opt_ranges_and_static_addresses_are_sent() {
        let p = project(
            "services:\n  web:\n    image: app:1\n    platform: linux/arm64\n    runtime: runc\n    \
             security_opt: ['no-new-privileges:true']\n    ports: ['8000-8010:80']\n    \
             networks:\n      back: {ipv4_address: 172.28.0.10}\n\
             networks:\n  back:\n    enable_ipv6: true\n    attachable: true\n    ipam:\n      \
             driver: default\n      config: [{subnet: 172.28.0.0/16, gateway: 172.28.0.1}]\n",
        );
        let web = &p.services["web"];
        let c = container_create(&p, web, 1, Role::Replica, "sha256:x");
        assert_eq!(c.platform.as_deref(), Some("linux/arm64"));
        assert_eq!(c.runtime.as_deref(), Some("runc"));
        assert_eq!(c.security_opt, ["no-new-privileges:true"]);
        assert_eq!(
            (
                c.ports[0].published,
                c.ports[0].published_end,
                c.ports[0].target
            ),
            (Some(8000), Some(8010), 80)
        );
        assert_eq!(c.networks[0].ipv4_address.as_deref(), Some("172.28.0.10"));
        let n = network_create(&p, "back", &p.networks["back"]);
        assert!(n.enable_ipv6 && n.attachable);
        let ipam = n.ipam.unwrap();
        assert_eq!(ipam.driver.as_deref(), Some("default"));
        assert_eq!(ipam.pools[0].subnet.as_deref(), Some("172.28.0.0/16"));
        assert_eq!(ipam.pools[0].gateway.as_deref(), Some("172.28.0.1"));
    }

    #[test]
    fn a_network_without_ipam_leaves_addressing_to_the_engine() {
        let p = project("services:\n  web: {image: app:1}\n");
        let n = network_create(&p, "default", &p.networks["default"]);
        assert_eq!(n.ipam, None);
        assert!(!n.enable_ipv6 && !n.attachable);
    }
}
