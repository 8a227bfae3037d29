//! Container calls as Docker answers them (names and IDs both accepted; created → running
//! → exited).

use std::time::Duration;

use super::state::label_matches;
use super::{FakeContainer, FakeEngine, OnStart};
use crate::engine::{
    ContainerCreate, ContainerDetails, ContainerSummary, EngineError, EngineOp, EngineResult,
    ExecOutcome, Health, RunState,
};

pub(super) async fn list_containers(
    engine: &FakeEngine,
    label_filters: &[String],
) -> EngineResult<Vec<ContainerSummary>> {
    let mut s = engine.lock();
    s.enter("list_containers", None)?;
    Ok(s.containers
        .iter()
        .filter(|c| {
            label_filters.is_empty()
                || label_filters
                    .iter()
                    .any(|f| label_matches(&c.spec.labels, f))
        })
        .map(FakeContainer::summary)
        .collect())
}

pub(super) async fn create_container(
    engine: &FakeEngine,
    spec: &ContainerCreate,
) -> EngineResult<String> {
    let mut s = engine.lock();
    s.enter("create_container", Some(&spec.name))?;
    let op = EngineOp::CreateContainer;
    if let Some(i) = s.containers.iter().position(|c| c.name == spec.name) {
        return Err(EngineError::Conflict {
            op,
            target: spec.name.clone(),
            message: format!(
                "Conflict. The container name \"/{}\" is already in use by container \"{}\". \
                 You have to remove (or rename) that container to be able to reuse that name.",
                spec.name, s.containers[i].id
            ),
        });
    }
    // What a create needs but lacks is a failure of the create, not a missing target.
    let failed = |message: String| EngineError::Failed {
        op,
        target: spec.name.clone(),
        message,
    };
    if !s.images.iter().any(|i| i.id == spec.image) {
        return Err(failed(format!("No such image: {}", spec.image)));
    }
    if let Some(missing) = spec.networks.iter().find(|n| !s.network_exists(&n.network)) {
        return Err(failed(format!("network {} not found", missing.network)));
    }
    if let Some(other) = spec
        .network_mode
        .as_deref()
        .and_then(|m| m.strip_prefix("container:"))
        .filter(|other| s.find(other).is_none())
    {
        return Err(failed(format!("No such container: {other}")));
    }
    let id = s.new_id('c');
    let created = s.tick();
    s.containers.push(FakeContainer {
        id: id.clone(),
        name: spec.name.clone(),
        spec: spec.clone(),
        state: RunState::Created,
        health: Health::None,
        exit_code: None,
        restart_count: 0,
        created,
        logs: String::new(),
        exec: None,
        started: None,
        detached: Vec::new(),
        unbound: false,
    });
    let i = s.containers.len() - 1;
    s.emit("create", i);
    Ok(id)
}

pub(super) async fn start_container(engine: &FakeEngine, id: &str) -> EngineResult<()> {
    let mut s = engine.lock();
    let shown = s.display(id);
    s.enter("start_container", Some(&shown))?;
    let i = s.container(EngineOp::StartContainer, id)?;
    let now = s.now;
    let state = s.containers[i].state;
    match state {
        RunState::Running => Err(EngineError::NotModified {
            op: EngineOp::StartContainer,
            target: id.into(),
        }),
        RunState::Paused | RunState::Removing => Err(EngineError::Conflict {
            op: EngineOp::StartContainer,
            target: id.into(),
            message: format!("container {} is {state:?}", s.containers[i].name),
        }),
        RunState::Created | RunState::Exited => {
            let start_health = s.start_health.unwrap_or(Health::Starting);
            let rule = s.start_rule(i);
            let c = &mut s.containers[i];
            c.state = RunState::Running;
            c.started = Some(now);
            c.exit_code = None;
            c.health = if c.has_healthcheck() {
                start_health
            } else {
                Health::None
            };
            s.emit("start", i);
            let c = &mut s.containers[i];
            match rule {
                OnStart::Runs => {}
                OnStart::Reports(health) => c.health = health,
                OnStart::Restarted(count) => c.restart_count = count,
                OnStart::Exits(code) => {
                    c.state = RunState::Exited;
                    c.exit_code = Some(code);
                    c.health = Health::None;
                    s.emit("die", i);
                }
            }
            Ok(())
        }
    }
}

pub(super) async fn stop_container(
    engine: &FakeEngine,
    id: &str,
    _grace: Duration,
    _signal: Option<&str>,
) -> EngineResult<()> {
    let mut s = engine.lock();
    let shown = s.display(id);
    s.enter("stop_container", Some(&shown))?;
    let i = s.container(EngineOp::StopContainer, id)?;
    if s.containers[i].state != RunState::Running {
        return Err(EngineError::NotModified {
            op: EngineOp::StopContainer,
            target: id.into(),
        });
    }
    let c = &mut s.containers[i];
    c.state = RunState::Exited;
    c.exit_code = Some(0);
    c.health = Health::None;
    s.emit("kill", i);
    s.emit("die", i);
    s.emit("stop", i);
    Ok(())
}

pub(super) async fn remove_container(engine: &FakeEngine, id: &str) -> EngineResult<()> {
    let mut s = engine.lock();
    let shown = s.display(id);
    s.enter("remove_container", Some(&shown))?;
    let i = s.container(EngineOp::RemoveContainer, id)?;
    if s.containers[i].state == RunState::Running {
        return Err(EngineError::Conflict {
            op: EngineOp::RemoveContainer,
            target: id.into(),
            message: format!(
                "You cannot remove a running container {}. Stop the container before \
                 attempting removal or force remove",
                s.containers[i].id
            ),
        });
    }
    s.emit("destroy", i);
    s.containers.remove(i);
    Ok(())
}

pub(super) async fn rename_container(
    engine: &FakeEngine,
    id: &str,
    new_name: &str,
) -> EngineResult<()> {
    let mut s = engine.lock();
    let shown = format!("{} {new_name}", s.display(id));
    s.enter("rename_container", Some(&shown))?;
    let i = s.container(EngineOp::RenameContainer, id)?;
    if let Some(j) = s.containers.iter().position(|c| c.name == new_name) {
        return Err(EngineError::Conflict {
            op: EngineOp::RenameContainer,
            target: id.into(),
            message: format!(
                "Conflict. The container name \"/{new_name}\" is already in use by container \"{}\".",
                s.containers[j].id
            ),
        });
    }
    let old = std::mem::replace(&mut s.containers[i].name, new_name.to_owned());
    s.emit_with("rename", i, Some(("oldName", format!("/{old}"))));
    Ok(())
}

pub(super) async fn logs_tail(engine: &FakeEngine, id: &str, lines: usize) -> EngineResult<String> {
    let mut s = engine.lock();
    let shown = s.display(id);
    s.enter("logs_tail", Some(&shown))?;
    let i = s.container(EngineOp::ReadLogs, id)?;
    let logs = &s.containers[i].logs;
    let all: Vec<&str> = logs.lines().collect();
    let tail = &all[all.len().saturating_sub(lines)..];
    Ok(tail.iter().map(|l| format!("{l}\n")).collect())
}

pub(super) async fn inspect_container(
    engine: &FakeEngine,
    id: &str,
) -> EngineResult<ContainerDetails> {
    let mut s = engine.lock();
    let shown = s.display(id);
    s.enter("inspect_container", Some(&shown))?;
    let i = s.container(EngineOp::InspectContainer, id)?;
    Ok(s.containers[i].details())
}

pub(super) async fn container_config(
    engine: &FakeEngine,
    id: &str,
) -> EngineResult<crate::engine::effective::EffectiveConfig> {
    let mut s = engine.lock();
    let shown = s.display(id);
    s.enter("container_config", Some(&shown))?;
    let i = s.container(EngineOp::InspectContainer, id)?;
    Ok(s.containers[i].effective())
}

pub(super) async fn exec(
    engine: &FakeEngine,
    id: &str,
    cmd: &[String],
    _timeout: Duration,
) -> EngineResult<ExecOutcome> {
    let mut s = engine.lock();
    let shown = format!("{} {}", s.display(id), cmd.join(" "));
    s.enter("exec", Some(&shown))?;
    let i = s.container(EngineOp::ExecInContainer, id)?;
    let c = &s.containers[i];
    if c.state != RunState::Running {
        return Err(EngineError::Conflict {
            op: EngineOp::ExecInContainer,
            target: id.into(),
            message: format!("Container {} is not running", c.id),
        });
    }
    Ok(c.exec.clone().unwrap_or(ExecOutcome {
        exit_code: 0,
        output: String::new(),
    }))
}
