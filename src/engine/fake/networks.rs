//! Network and volume calls.

use super::FakeEngine;
use crate::engine::{
    EngineError, EngineOp, EngineResult, NetworkCreate, NetworkSummary, VolumeCreate, VolumeSummary,
};

pub(super) async fn list_networks(engine: &FakeEngine) -> EngineResult<Vec<NetworkSummary>> {
    let mut s = engine.lock();
    s.enter("list_networks", None)?;
    Ok(s.networks.iter().map(|(n, _)| n.clone()).collect())
}

pub(super) async fn list_volumes(engine: &FakeEngine) -> EngineResult<Vec<VolumeSummary>> {
    let mut s = engine.lock();
    s.enter("list_volumes", None)?;
    Ok(s.volumes.clone())
}

pub(super) async fn create_network(
    engine: &FakeEngine,
    spec: &NetworkCreate,
) -> EngineResult<String> {
    let mut s = engine.lock();
    s.enter("create_network", Some(&spec.name))?;
    if s.network_exists(&spec.name) {
        return Err(EngineError::Conflict {
            op: EngineOp::CreateNetwork,
            target: spec.name.clone(),
            message: format!("network with name {} already exists", spec.name),
        });
    }
    let id = s.new_id('n');
    s.networks.push((
        NetworkSummary {
            id: id.clone(),
            name: spec.name.clone(),
            labels: spec.labels.clone(),
        },
        spec.clone(),
    ));
    Ok(id)
}

pub(super) async fn create_volume(engine: &FakeEngine, spec: &VolumeCreate) -> EngineResult<()> {
    let mut s = engine.lock();
    s.enter("create_volume", Some(&spec.name))?;
    // Docker answers a create of an existing volume with that volume, not an error.
    if !s.volumes.iter().any(|v| v.name == spec.name) {
        s.volumes.push(VolumeSummary {
            name: spec.name.clone(),
            labels: spec.labels.clone(),
        });
    }
    Ok(())
}

pub(super) async fn connect_network(
    engine: &FakeEngine,
    id: &str,
    attach: &crate::engine::NetworkAttach,
) -> EngineResult<()> {
    let mut s = engine.lock();
    let shown = format!("{} to {}", s.display(id), attach.network);
    s.enter("connect_network", Some(&shown))?;
    let i = s.container(EngineOp::ConnectNetwork, id)?;
    if !s.network_exists(&attach.network) {
        return Err(EngineError::NotFound {
            op: EngineOp::ConnectNetwork,
            target: attach.network.clone(),
        });
    }
    let c = &mut s.containers[i];
    c.detached.retain(|n| *n != attach.network);
    if !c.spec.networks.iter().any(|n| n.network == attach.network) {
        c.spec.networks.push(attach.clone());
    }
    Ok(())
}

pub(super) async fn remove_network(engine: &FakeEngine, name: &str) -> EngineResult<()> {
    let mut s = engine.lock();
    s.enter("remove_network", Some(name))?;
    let Some(i) = s
        .networks
        .iter()
        .position(|(n, _)| n.name == name || n.id == name)
    else {
        return Err(EngineError::NotFound {
            op: EngineOp::RemoveNetwork,
            target: name.into(),
        });
    };
    let attached = s
        .containers
        .iter()
        .any(|c| c.networks().iter().any(|n| n == name));
    if attached {
        // Docker: 403 "error while removing network: network NAME has active endpoints".
        return Err(EngineError::Failed {
            op: EngineOp::RemoveNetwork,
            target: name.into(),
            message: format!("error while removing network: network {name} has active endpoints"),
        });
    }
    s.networks.remove(i);
    Ok(())
}

pub(super) async fn remove_volume(engine: &FakeEngine, name: &str) -> EngineResult<()> {
    let mut s = engine.lock();
    s.enter("remove_volume", Some(name))?;
    let Some(i) = s.volumes.iter().position(|v| v.name == name) else {
        return Err(EngineError::NotFound {
            op: EngineOp::RemoveVolume,
            target: name.into(),
        });
    };
    let used = s.containers.iter().any(|c| {
        c.spec
            .mounts
            .iter()
            .any(|m| m.kind == "volume" && m.source.as_deref() == Some(name))
    });
    if used {
        // Docker: 409 "remove NAME: volume is in use - [ID]".
        return Err(EngineError::Conflict {
            op: EngineOp::RemoveVolume,
            target: name.into(),
            message: format!("remove {name}: volume is in use"),
        });
    }
    s.volumes.remove(i);
    Ok(())
}
