//! A container's effective configuration as the engine reports it (inspect of the container
//! and of its image), for deciding whether a container docker compose made is what berth would
//! create (`reconcile::adopt`).
//!
//! Pure translation: the types here are engine-neutral; [`from_inspect`] turns Docker's inspect
//! answers into them (the Docker engine calls it, the fake engine fills the types itself). The
//! container's part reuses [`ContainerCreate`] (what a create would have to send to make it);
//! the image's part holds the defaults Docker fills in when a create leaves a field out.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::models::{ContainerInspectResponse, HealthConfig, ImageInspect};

use super::{ContainerCreate, HealthcheckSpec, MountSpec, NetworkAttach, PortBinding};

/// What a container runs with, and what its image would have given it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EffectiveConfig {
    /// The container as created: `image` is its image ID, `network_mode` as the engine
    /// reports it (`default`, a network name, `host` …), mounts with volume names as sources.
    pub container: ContainerCreate,
    /// Its image's defaults.
    pub image: ImageDefaults,
}

/// The defaults an image gives a container whose create leaves them out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// `ENV` as `KEY=VALUE`.
    pub env: Vec<String>,
    /// `LABEL`s.
    pub labels: BTreeMap<String, String>,
    /// `USER`.
    pub user: Option<String>,
    /// `WORKDIR`.
    pub working_dir: Option<String>,
    /// `HEALTHCHECK`.
    pub healthcheck: Option<HealthcheckSpec>,
    /// `VOLUME`s (paths in the container): Docker gives each an anonymous volume.
    pub volumes: Vec<String>,
    /// `EXPOSE`d ports (`80/tcp`).
    pub exposed: Vec<String>,
    /// `STOPSIGNAL`.
    pub stop_signal: Option<String>,
}

/// Docker's inspect answers → the effective configuration.
pub fn from_inspect(c: ContainerInspectResponse, image: Option<ImageInspect>) -> EffectiveConfig {
    let config = c.config.unwrap_or_default();
    let host = c.host_config.unwrap_or_default();
    let mut ports: Vec<PortBinding> = Vec::new();
    for (key, bindings) in host.port_bindings.unwrap_or_default() {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(target) = port.parse::<u16>() else {
            continue;
        };
        for b in bindings.unwrap_or_default() {
            let (first, last) = match b.host_port.as_deref().unwrap_or("").split_once('-') {
                Some((a, z)) => (a.parse().ok(), z.parse().ok()),
                None => (b.host_port.as_deref().and_then(|p| p.parse().ok()), None),
            };
            ports.push(PortBinding {
                target,
                protocol: proto.to_string(),
                host_ip: b.host_ip.filter(|ip| !ip.is_empty()),
                published: first,
                published_end: last,
            });
        }
    }
    ports.sort();
    let mounts = c
        .mounts
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            let kind = m.typ.unwrap_or_default();
            MountSpec {
                source: if kind == "volume" { m.name } else { m.source },
                kind,
                target: m.destination.unwrap_or_default(),
                read_only: m.rw == Some(false),
                options: Vec::new(),
            }
        })
        .collect();
    let networks = c
        .network_settings
        .and_then(|s| s.networks)
        .unwrap_or_default()
        .into_iter()
        .map(|(network, e)| {
            let ipam = e.ipam_config.unwrap_or_default();
            NetworkAttach {
                network,
                aliases: e.aliases.unwrap_or_default(),
                ipv4_address: ipam.ipv4_address.filter(|a| !a.is_empty()),
                ipv6_address: ipam.ipv6_address.filter(|a| !a.is_empty()),
            }
        })
        .collect();
    let restart = host.restart_policy.unwrap_or_default();
    let mut tmpfs: Vec<String> = host
        .tmpfs
        .unwrap_or_default()
        .into_iter()
        .map(|(path, opts)| {
            if opts.is_empty() {
                path
            } else {
                format!("{path}:{opts}")
            }
        })
        .collect();
    tmpfs.sort();
    let log = host.log_config.unwrap_or_default();
    let container = ContainerCreate {
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
        image: c.image.unwrap_or_default(),
        command: config.cmd,
        entrypoint: config.entrypoint,
        env: config.env.unwrap_or_default(),
        labels: config.labels.unwrap_or_default().into_iter().collect(),
        user: config.user.filter(|u| !u.is_empty()),
        working_dir: config.working_dir.filter(|w| !w.is_empty()),
        hostname: config.hostname,
        exposed: config.exposed_ports.unwrap_or_default(),
        ports,
        mounts,
        networks,
        network_mode: host.network_mode,
        restart: match restart.name.map(|n| n.to_string()) {
            Some(n) if !n.is_empty() => n,
            _ => "no".into(),
        },
        restart_max: restart
            .maximum_retry_count
            .filter(|n| *n > 0)
            .and_then(|n| u32::try_from(n).ok()),
        healthcheck: config.healthcheck.and_then(healthcheck),
        extra_hosts: host.extra_hosts.unwrap_or_default(),
        dns: host.dns.unwrap_or_default(),
        cap_add: host.cap_add.unwrap_or_default(),
        cap_drop: host.cap_drop.unwrap_or_default(),
        privileged: host.privileged.unwrap_or(false),
        read_only: host.readonly_rootfs.unwrap_or(false),
        tmpfs,
        ulimits: host
            .ulimits
            .unwrap_or_default()
            .into_iter()
            .filter_map(|u| Some((u.name?, (u.soft.unwrap_or(0), u.hard.unwrap_or(0)))))
            .collect(),
        log_driver: log.typ,
        log_options: log.config.unwrap_or_default().into_iter().collect(),
        stop_signal: config.stop_signal,
        stop_timeout: config.stop_timeout,
        init: host.init,
        shm_size: host.shm_size,
        sysctls: host.sysctls.unwrap_or_default().into_iter().collect(),
        nano_cpus: host.nano_cpus.filter(|n| *n != 0),
        memory: host.memory.filter(|n| *n != 0),
        pids_limit: host.pids_limit.filter(|n| *n > 0),
        platform: None,
        runtime: host.runtime,
        security_opt: host.security_opt.unwrap_or_default(),
    };
    let image = image.and_then(|i| i.config).unwrap_or_default();
    EffectiveConfig {
        container,
        image: ImageDefaults {
            cmd: image.cmd,
            entrypoint: image.entrypoint,
            env: image.env.unwrap_or_default(),
            labels: image.labels.unwrap_or_default().into_iter().collect(),
            user: image.user.filter(|u| !u.is_empty()),
            working_dir: image.working_dir.filter(|w| !w.is_empty()),
            healthcheck: image.healthcheck.and_then(healthcheck),
            volumes: image.volumes.unwrap_or_default(),
            exposed: image.exposed_ports.unwrap_or_default(),
            stop_signal: image.stop_signal,
        },
    }
}

/// Docker's healthcheck (durations in nanoseconds, 0 = default) as berth's spec.
fn healthcheck(h: HealthConfig) -> Option<HealthcheckSpec> {
    let test = h.test.filter(|t| !t.is_empty())?;
    let d = |ns: Option<i64>| {
        ns.filter(|n| *n > 0)
            .map(|n| Duration::from_nanos(n.unsigned_abs()))
    };
    Some(HealthcheckSpec {
        test,
        interval: d(h.interval),
        timeout: d(h.timeout),
        retries: h
            .retries
            .filter(|r| *r > 0)
            .and_then(|r| u32::try_from(r).ok()),
        start_period: d(h.start_period),
        start_interval: d(h.start_interval),
    })
}
