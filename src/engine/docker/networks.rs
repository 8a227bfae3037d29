//! Network and volume calls: list, create (with IPAM and the duplicate-name check), connect,
//! remove.

use bollard::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest,
    NetworkCreateRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{ListNetworksOptions, ListVolumesOptions, RemoveVolumeOptions};
use bollard::{BollardRequest, Docker};

use super::{DockerEngine, btree, hash, non_empty};
use crate::engine::{
    EngineError, EngineOp, EngineResult, IpamSpec, NetworkCreate, NetworkSummary, VolumeCreate,
    VolumeSummary,
};

impl DockerEngine {
    /// `POST /networks/{network}/connect` for container `id` (`name` for errors).
    pub(super) async fn join_network(
        &self,
        docker: &Docker,
        id: &str,
        name: &str,
        n: &crate::engine::NetworkAttach,
    ) -> EngineResult<()> {
        let request = NetworkConnectRequest {
            container: id.to_owned(),
            endpoint_config: Some(endpoint_settings(n)),
        };
        let target = format!("{name} to {}", n.network);
        self.call(
            EngineOp::ConnectNetwork,
            &target,
            self.timeout,
            docker.connect_network(&n.network, request),
        )
        .await
    }
}

pub(super) async fn list_networks(engine: &DockerEngine) -> EngineResult<Vec<NetworkSummary>> {
    let docker = engine.client(EngineOp::ListNetworks).await?;
    let list = engine
        .call(
            EngineOp::ListNetworks,
            "(all)",
            engine.timeout,
            docker.list_networks(None::<ListNetworksOptions>),
        )
        .await?;
    Ok(list
        .into_iter()
        .map(|n| NetworkSummary {
            id: n.id.unwrap_or_default(),
            name: n.name.unwrap_or_default(),
            labels: btree(n.labels),
        })
        .collect())
}

pub(super) async fn list_volumes(engine: &DockerEngine) -> EngineResult<Vec<VolumeSummary>> {
    let docker = engine.client(EngineOp::ListVolumes).await?;
    let list = engine
        .call(
            EngineOp::ListVolumes,
            "(all)",
            engine.timeout,
            docker.list_volumes(None::<ListVolumesOptions>),
        )
        .await?;
    Ok(list
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| VolumeSummary {
            name: v.name,
            labels: v.labels.into_iter().collect(),
        })
        .collect())
}

pub(super) async fn create_network(
    engine: &DockerEngine,
    spec: &NetworkCreate,
) -> EngineResult<String> {
    let docker = engine.client(EngineOp::CreateNetwork).await?;
    let request = NetworkCreateRequest {
        name: spec.name.clone(),
        driver: spec.driver.clone(),
        internal: spec.internal.then_some(true),
        options: (!spec.driver_opts.is_empty()).then(|| hash(&spec.driver_opts)),
        labels: Some(hash(&spec.labels)),
        ipam: spec.ipam.as_ref().map(ipam),
        enable_ipv6: spec.enable_ipv6.then_some(true),
        attachable: spec.attachable.then_some(true),
        ..NetworkCreateRequest::default()
    };
    // Engines before API 1.44 create a second network with a taken name unless asked not
    // to; bollard's model lost that field, so the body is sent with it added.
    let mut body = serde_json::to_value(&request).map_err(|e| EngineError::Failed {
        op: EngineOp::CreateNetwork,
        target: spec.name.clone(),
        message: e.to_string(),
    })?;
    body["CheckDuplicate"] = serde_json::Value::Bool(true);
    let body = body.to_string();
    let docker = docker.with_request_modifier(move |req: BollardRequest| {
        let (parts, _) = req.into_parts();
        BollardRequest::from_parts(parts, bollard::body_full(body.clone().into()))
    });
    let created = engine
        .call(
            EngineOp::CreateNetwork,
            &spec.name,
            engine.timeout,
            docker.create_network(request),
        )
        .await?;
    Ok(created.id)
}

pub(super) async fn create_volume(engine: &DockerEngine, spec: &VolumeCreate) -> EngineResult<()> {
    let docker = engine.client(EngineOp::CreateVolume).await?;
    let request = VolumeCreateRequest {
        name: Some(spec.name.clone()),
        driver: spec.driver.clone(),
        driver_opts: (!spec.driver_opts.is_empty()).then(|| hash(&spec.driver_opts)),
        labels: Some(hash(&spec.labels)),
        ..VolumeCreateRequest::default()
    };
    engine
        .call(
            EngineOp::CreateVolume,
            &spec.name,
            engine.timeout,
            docker.create_volume(request),
        )
        .await?;
    Ok(())
}

pub(super) async fn connect_network(
    engine: &DockerEngine,
    id: &str,
    attach: &crate::engine::NetworkAttach,
) -> EngineResult<()> {
    let docker = engine.client(EngineOp::ConnectNetwork).await?;
    engine.join_network(&docker, id, id, attach).await
}

pub(super) async fn remove_network(engine: &DockerEngine, name: &str) -> EngineResult<()> {
    let docker = engine.client(EngineOp::RemoveNetwork).await?;
    engine
        .call(
            EngineOp::RemoveNetwork,
            name,
            engine.timeout,
            docker.remove_network(name),
        )
        .await
}

pub(super) async fn remove_volume(engine: &DockerEngine, name: &str) -> EngineResult<()> {
    let docker = engine.client(EngineOp::RemoveVolume).await?;
    engine
        .call(
            EngineOp::RemoveVolume,
            name,
            engine.timeout,
            docker.remove_volume(name, None::<RemoveVolumeOptions>),
        )
        .await
}

/// A network's `ipam:` as the create body's `IPAM`.
pub(super) fn ipam(spec: &IpamSpec) -> Ipam {
    Ipam {
        driver: spec.driver.clone(),
        config: Some(
            spec.pools
                .iter()
                .map(|p| IpamConfig {
                    subnet: p.subnet.clone(),
                    ip_range: p.ip_range.clone(),
                    gateway: p.gateway.clone(),
                    auxiliary_addresses: (!p.aux_addresses.is_empty())
                        .then(|| hash(&p.aux_addresses)),
                })
                .collect(),
        ),
        options: (!spec.options.is_empty()).then(|| hash(&spec.options)),
    }
}

pub(super) fn endpoint_settings(n: &crate::engine::NetworkAttach) -> EndpointSettings {
    EndpointSettings {
        aliases: non_empty(n.aliases.clone()),
        ipam_config: (n.ipv4_address.is_some() || n.ipv6_address.is_some()).then(|| {
            EndpointIpamConfig {
                ipv4_address: n.ipv4_address.clone(),
                ipv6_address: n.ipv6_address.clone(),
                ..EndpointIpamConfig::default()
            }
        }),
        ..EndpointSettings::default()
    }
}
