//! Container calls (list, create, start, stop, remove, rename, logs, inspect, exec) and the
//! translation of Docker's container answers into engine-neutral summaries and details.

use std::collections::HashMap;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, ContainerSummaryHealthStatusEnum,
    ContainerSummaryStateEnum, HealthStatusEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder, StartContainerOptions, StopContainerOptionsBuilder,
    WaitContainerOptionsBuilder,
};
use bollard::{ClientVersion, Docker};
use futures_util::StreamExt;

use super::create_body::create_body;
use super::{DockerEngine, btree, whole_seconds};
use crate::engine::{
    Attachments, ContainerCreate, ContainerDetails, ContainerSummary, EXEC_OUTPUT_LIMIT,
    EngineError, EngineOp, EngineResult, ExecOutcome, Health, RunState,
};

impl DockerEngine {
    /// Stop for engines before API 1.42, whose stop call takes no signal: kill with `signal`,
    /// wait up to `grace` for the exit, then SIGKILL and wait for that.
    pub(super) async fn stop_with_kill(
        &self,
        docker: &Docker,
        id: &str,
        grace: Duration,
        signal: &str,
    ) -> EngineResult<()> {
        let kill = |sig: &str| {
            let options = KillContainerOptionsBuilder::new().signal(sig).build();
            let docker = docker.clone();
            async move { docker.kill_container(id, Some(options)).await }
        };
        match self
            .call(EngineOp::KillContainer, id, self.timeout, kill(signal))
            .await
        {
            Err(EngineError::Conflict { message, .. }) if message.contains("is not running") => {
                return Ok(());
            }
            other => other?,
        }
        if self.wait_not_running(docker, id, grace).await? {
            return Ok(());
        }
        match self
            .call(EngineOp::KillContainer, id, self.timeout, kill("SIGKILL"))
            .await
        {
            Err(EngineError::Conflict { message, .. }) if message.contains("is not running") => {
                return Ok(());
            }
            other => other?,
        }
        if self.wait_not_running(docker, id, self.timeout).await? {
            Ok(())
        } else {
            Err(EngineError::Timeout {
                op: EngineOp::StopContainer,
                target: id.to_owned(),
                after: grace + self.timeout,
            })
        }
    }

    /// Waits until the container is not running; `false` when `limit` passed first.
    pub(super) async fn wait_not_running(
        &self,
        docker: &Docker,
        id: &str,
        limit: Duration,
    ) -> EngineResult<bool> {
        let options = WaitContainerOptionsBuilder::new()
            .condition("not-running")
            .build();
        let wait = async {
            match docker.wait_container(id, Some(options)).next().await {
                // A non-zero exit comes back as an error; it is an exit all the same.
                None | Some(Ok(_)) | Some(Err(BollardError::DockerContainerWaitError { .. })) => {
                    Ok(())
                }
                Some(Err(e)) => Err(e),
            }
        };
        match self.call(EngineOp::WaitContainer, id, limit, wait).await {
            Ok(()) | Err(EngineError::NotFound { .. }) => Ok(true),
            Err(EngineError::Timeout { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

pub(super) async fn list_containers(
    engine: &DockerEngine,
    label_filters: &[String],
) -> EngineResult<Vec<ContainerSummary>> {
    let docker = engine.client(EngineOp::ListContainers).await?;
    // Docker ANDs label filters; the trait wants any of them: one call per filter, merged.
    let per_call: Vec<Option<&String>> = if label_filters.is_empty() {
        vec![None]
    } else {
        label_filters.iter().map(Some).collect()
    };
    let mut out: Vec<ContainerSummary> = Vec::new();
    for filter in per_call {
        let mut options = ListContainersOptionsBuilder::new().all(true);
        if let Some(f) = filter {
            options = options.filters(&HashMap::from([("label", vec![f.as_str()])]));
        }
        let target = filter.map_or("(all)", String::as_str);
        let list = engine
            .call(
                EngineOp::ListContainers,
                target,
                engine.timeout,
                docker.list_containers(Some(options.build())),
            )
            .await?;
        for c in list {
            let c = container_summary(c);
            if !out.iter().any(|o| o.id == c.id) {
                out.push(c);
            }
        }
    }
    Ok(out)
}

pub(super) async fn create_container(
    engine: &DockerEngine,
    spec: &ContainerCreate,
) -> EngineResult<String> {
    let docker = engine.client(EngineOp::CreateContainer).await?;
    let body = create_body(spec, engine.api_version()).map_err(|message| EngineError::Failed {
        op: EngineOp::CreateContainer,
        target: spec.name.clone(),
        message,
    })?;
    let mut options = CreateContainerOptionsBuilder::new().name(&spec.name);
    if let Some(platform) = &spec.platform {
        options = options.platform(platform);
    }
    let options = options.build();
    let created = engine
        .call(
            EngineOp::CreateContainer,
            &spec.name,
            engine.timeout,
            docker.create_container(Some(options), body),
        )
        .await?;
    let id = created.id;
    for n in spec.networks.iter().skip(1) {
        let connected = engine.join_network(&docker, &id, &spec.name, n).await;
        if let Err(e) = connected {
            // A container missing a network must not look like a finished create: take
            // it away again (it never ran) and report why.
            let options = RemoveContainerOptionsBuilder::new().force(true).build();
            let _ = engine
                .call(
                    EngineOp::RemoveContainer,
                    &spec.name,
                    engine.timeout,
                    docker.remove_container(&id, Some(options)),
                )
                .await;
            return Err(e);
        }
    }
    Ok(id)
}

pub(super) async fn start_container(engine: &DockerEngine, id: &str) -> EngineResult<()> {
    let docker = engine.client(EngineOp::StartContainer).await?;
    engine
        .call(
            EngineOp::StartContainer,
            id,
            engine.timeout,
            docker.start_container(id, None::<StartContainerOptions>),
        )
        .await
}

pub(super) async fn stop_container(
    engine: &DockerEngine,
    id: &str,
    grace: Duration,
    signal: Option<&str>,
) -> EngineResult<()> {
    let docker = engine.client(EngineOp::StopContainer).await?;
    let stop_signal_api = ClientVersion {
        major_version: 1,
        minor_version: 42,
    };
    match signal {
        Some(signal) if docker.client_version() < stop_signal_api => {
            engine.stop_with_kill(&docker, id, grace, signal).await
        }
        _ => {
            let mut options = StopContainerOptionsBuilder::new().t(whole_seconds(grace));
            if let Some(signal) = signal {
                options = options.signal(signal);
            }
            engine
                .call(
                    EngineOp::StopContainer,
                    id,
                    grace + engine.timeout,
                    docker.stop_container(id, Some(options.build())),
                )
                .await
        }
    }
}

pub(super) async fn remove_container(engine: &DockerEngine, id: &str) -> EngineResult<()> {
    let docker = engine.client(EngineOp::RemoveContainer).await?;
    let options = RemoveContainerOptionsBuilder::new()
        .force(false)
        .v(false)
        .build();
    engine
        .call(
            EngineOp::RemoveContainer,
            id,
            engine.timeout,
            docker.remove_container(id, Some(options)),
        )
        .await
}

pub(super) async fn rename_container(
    engine: &DockerEngine,
    id: &str,
    new_name: &str,
) -> EngineResult<()> {
    let docker = engine.client(EngineOp::RenameContainer).await?;
    let options = RenameContainerOptionsBuilder::new().name(new_name).build();
    engine
        .call(
            EngineOp::RenameContainer,
            id,
            engine.timeout,
            docker.rename_container(id, options),
        )
        .await
}

pub(super) async fn logs_tail(
    engine: &DockerEngine,
    id: &str,
    lines: usize,
) -> EngineResult<String> {
    let docker = engine.client(EngineOp::ReadLogs).await?;
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let read = async {
        let mut out = Vec::new();
        let mut stream = docker.logs(id, Some(options));
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(chunk?.as_ref());
        }
        Ok(String::from_utf8_lossy(&out).into_owned())
    };
    engine
        .call(EngineOp::ReadLogs, id, engine.timeout, read)
        .await
}

pub(super) async fn inspect_container(
    engine: &DockerEngine,
    id: &str,
) -> EngineResult<ContainerDetails> {
    let docker = engine.client(EngineOp::InspectContainer).await?;
    let inspected = engine
        .call(
            EngineOp::InspectContainer,
            id,
            engine.timeout,
            docker.inspect_container(id, None::<InspectContainerOptions>),
        )
        .await?;
    Ok(container_details(inspected))
}

/// The container's effective configuration: inspect of the container and of its image (the
/// image may be gone, pruned while the container runs: its defaults are then unknown).
pub(super) async fn container_config(
    engine: &DockerEngine,
    id: &str,
) -> EngineResult<crate::engine::effective::EffectiveConfig> {
    let docker = engine.client(EngineOp::InspectContainer).await?;
    let op = EngineOp::InspectContainer;
    let c = engine
        .call(
            op,
            id,
            engine.timeout,
            docker.inspect_container(id, None::<InspectContainerOptions>),
        )
        .await?;
    let image = match c.image.clone() {
        Some(i) => engine
            .call(op, &i, engine.timeout, docker.inspect_image(&i))
            .await
            .ok(),
        None => None,
    };
    Ok(crate::engine::effective::from_inspect(c, image))
}

/// Three API calls under one deadline (`timeout`): create the exec, start it attached and
/// read its output to the end, then inspect it for the exit code (polled briefly: the
/// stream can end a moment before Docker records the exit).
pub(super) async fn exec(
    engine: &DockerEngine,
    id: &str,
    cmd: &[String],
    timeout: Duration,
) -> EngineResult<ExecOutcome> {
    let docker = engine.client(EngineOp::ExecInContainer).await?;
    let run = async {
        let config = CreateExecOptions {
            cmd: Some(cmd.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..CreateExecOptions::default()
        };
        let exec_id = docker.create_exec(id, config).await?.id;
        let mut tail: Vec<u8> = Vec::new();
        let start = StartExecOptions {
            detach: false,
            ..StartExecOptions::default()
        };
        if let StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&exec_id, Some(start)).await?
        {
            while let Some(chunk) = output.next().await {
                tail.extend_from_slice(chunk?.as_ref());
                if tail.len() > 2 * EXEC_OUTPUT_LIMIT {
                    tail.drain(..tail.len() - EXEC_OUTPUT_LIMIT);
                }
            }
        }
        loop {
            let inspected = docker.inspect_exec(&exec_id).await?;
            if inspected.running != Some(true) {
                return Ok(ExecOutcome {
                    exit_code: inspected.exit_code.unwrap_or(-1),
                    output: crate::engine::output_tail(&tail, EXEC_OUTPUT_LIMIT),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    engine
        .call(EngineOp::ExecInContainer, id, timeout, run)
        .await
}

/// Health from the list call's status text (`Up 3 minutes (healthy)`).
pub(super) fn health_from_status(status: &str) -> Health {
    if status.contains("(unhealthy)") {
        Health::Unhealthy
    } else if status.contains("(healthy)") {
        Health::Healthy
    } else if status.contains("(health: starting)") {
        Health::Starting
    } else {
        Health::None
    }
}

/// Exit code from the list call's status text (`Exited (137) 2 seconds ago`).
pub(super) fn exit_code_from_status(status: &str) -> Option<i64> {
    let rest = status.strip_prefix("Exited (")?;
    rest[..rest.find(')')?].parse().ok()
}

pub(super) fn run_state(state: Option<ContainerSummaryStateEnum>) -> RunState {
    match state {
        Some(ContainerSummaryStateEnum::CREATED) => RunState::Created,
        Some(
            ContainerSummaryStateEnum::RUNNING
            | ContainerSummaryStateEnum::RESTARTING
            | ContainerSummaryStateEnum::STOPPING,
        ) => RunState::Running,
        Some(ContainerSummaryStateEnum::PAUSED) => RunState::Paused,
        Some(ContainerSummaryStateEnum::REMOVING) => RunState::Removing,
        Some(
            ContainerSummaryStateEnum::EXITED
            | ContainerSummaryStateEnum::DEAD
            | ContainerSummaryStateEnum::EMPTY,
        )
        | None => RunState::Exited,
    }
}

pub(super) fn container_summary(c: bollard::models::ContainerSummary) -> ContainerSummary {
    let status = c.status.unwrap_or_default();
    // Newer engines (API 1.52+) report health as a field; older ones only in the status text.
    let health = match c.health.and_then(|h| h.status) {
        Some(ContainerSummaryHealthStatusEnum::STARTING) => Health::Starting,
        Some(ContainerSummaryHealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(ContainerSummaryHealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        _ => health_from_status(&status),
    };
    // Links add names like `/other/alias`; the container's own name has no inner '/'.
    let names = c.names.unwrap_or_default();
    let name = names
        .iter()
        .map(|n| n.trim_start_matches('/'))
        .find(|n| !n.contains('/'))
        .or_else(|| names.first().map(|n| n.trim_start_matches('/')))
        .unwrap_or_default()
        .to_owned();
    let endpoints = c
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default();
    let mut networks: Vec<String> = endpoints.keys().cloned().collect();
    networks.sort();
    let running = c.state == Some(ContainerSummaryStateEnum::RUNNING);
    let addresses = endpoints
        .into_iter()
        .filter(|_| running)
        .filter_map(|(name, e)| Some((name, e.ip_address?.parse().ok()?)))
        .collect();
    // Docker binds published ports at start and lists them only while the container runs
    // (not while it restarts): before that, nothing can be said about them.
    let ports = running.then(|| {
        let mut ports: Vec<(u16, String, u16)> = c
            .ports
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| {
                let proto = p.typ.map_or_else(|| "tcp".to_owned(), |t| t.to_string());
                Some((p.private_port, proto, p.public_port?))
            })
            .collect();
        ports.sort();
        ports.dedup();
        ports
    });
    let mounts = c
        .mounts
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| {
            let kind = m.typ?.to_string();
            Some((kind, m.destination?))
        })
        .collect();
    ContainerSummary {
        id: c.id.unwrap_or_default(),
        name,
        image_id: c.image_id.unwrap_or_default(),
        labels: btree(c.labels),
        state: run_state(c.state),
        health,
        exit_code: exit_code_from_status(&status),
        networks,
        created: c.created.unwrap_or_default(),
        actual: Some(Attachments {
            ports,
            mounts,
            addresses,
        }),
    }
}

pub(super) fn inspect_state(state: Option<ContainerStateStatusEnum>) -> RunState {
    match state {
        Some(ContainerStateStatusEnum::CREATED) => RunState::Created,
        Some(
            ContainerStateStatusEnum::RUNNING
            | ContainerStateStatusEnum::RESTARTING
            | ContainerStateStatusEnum::STOPPING,
        ) => RunState::Running,
        Some(ContainerStateStatusEnum::PAUSED) => RunState::Paused,
        Some(ContainerStateStatusEnum::REMOVING) => RunState::Removing,
        Some(
            ContainerStateStatusEnum::EXITED
            | ContainerStateStatusEnum::DEAD
            | ContainerStateStatusEnum::EMPTY,
        )
        | None => RunState::Exited,
    }
}

/// Docker's "never" for a time (`0001-01-01T00:00:00Z`).
pub(super) const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

pub(super) fn container_details(c: ContainerInspectResponse) -> ContainerDetails {
    let state = c.state.unwrap_or_default();
    let run_state = inspect_state(state.status);
    let health = match state.health.and_then(|h| h.status) {
        Some(HealthStatusEnum::STARTING) => Health::Starting,
        Some(HealthStatusEnum::HEALTHY) => Health::Healthy,
        Some(HealthStatusEnum::UNHEALTHY) => Health::Unhealthy,
        _ => Health::None,
    };
    let settings = c.network_settings.unwrap_or_default();
    let ip_addresses = settings
        .networks
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, endpoint)| {
            endpoint
                .ip_address
                .filter(|ip| !ip.is_empty())
                .map(|ip| (name, ip))
        })
        .collect();
    let mut ports: Vec<(u16, String, Option<String>, u16)> = Vec::new();
    for (key, bindings) in settings.ports.unwrap_or_default() {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        for b in bindings.unwrap_or_default() {
            let Some(host_port) = b.host_port.and_then(|p| p.parse::<u16>().ok()) else {
                continue;
            };
            let host_ip = b.host_ip.filter(|ip| !ip.is_empty());
            ports.push((port, proto.to_owned(), host_ip, host_port));
        }
    }
    ports.sort();
    ContainerDetails {
        restart_count: c.restart_count.unwrap_or(0).max(0) as u32,
        id: c.id.unwrap_or_default(),
        name: c
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        state: run_state,
        health,
        exit_code: (run_state == RunState::Exited)
            .then_some(state.exit_code)
            .flatten(),
        started_at: state.started_at.filter(|t| !t.is_empty() && t != ZERO_TIME),
        network_mode: c
            .host_config
            .and_then(|h| h.network_mode)
            .unwrap_or_default(),
        ip_addresses,
        ports,
        image_id: c.image.unwrap_or_default(),
    }
}
