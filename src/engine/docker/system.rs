//! Engine-wide calls: version (`info`), the bounded readiness ping and the event stream.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptionsBuilder;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{DockerEngine, EVENT_CHANNEL, btree};
use crate::engine::{EngineError, EngineEvent, EngineInfo, EngineOp, EngineResult};

impl DockerEngine {
    /// Pings the engine under `limit` in all (connecting and negotiating the version
    /// included): readiness asks this so a frozen engine shows within seconds. Not counted
    /// in [`Self::calls_made`] nor logged per call (it runs every few seconds).
    pub async fn ping_within(&self, limit: Duration) -> EngineResult<()> {
        let ping = async {
            let docker = self.client(EngineOp::Ping).await?;
            docker
                .ping()
                .await
                .map(|_| ())
                .map_err(|e| self.classify(EngineOp::Ping, &self.endpoint, e))
        };
        tokio::time::timeout(limit, ping).await.unwrap_or_else(|_| {
            Err(EngineError::Timeout {
                op: EngineOp::Ping,
                target: self.endpoint.clone(),
                after: limit,
            })
        })
    }
}

pub(super) async fn info(engine: &DockerEngine) -> EngineResult<EngineInfo> {
    let docker = engine.client(EngineOp::Version).await?;
    let v = engine
        .call(
            EngineOp::Version,
            &engine.endpoint,
            engine.timeout,
            docker.version(),
        )
        .await?;
    Ok(EngineInfo {
        version: v.version.unwrap_or_default(),
        api_version: docker.client_version().to_string(),
        endpoint: engine.endpoint.clone(),
    })
}

pub(super) async fn events(
    engine: &DockerEngine,
    since: i64,
    label_filter: &str,
) -> EngineResult<mpsc::Receiver<EngineResult<EngineEvent>>> {
    let docker = engine.client(EngineOp::WatchEvents).await?;
    let options = EventsOptionsBuilder::new()
        .since(&since.to_string())
        .filters(&HashMap::from([
            ("type", vec!["container"]),
            ("label", vec![label_filter]),
        ]))
        .build();
    let (tx, rx) = mpsc::channel(EVENT_CHANNEL);
    let engine = engine.clone();
    let target = label_filter.to_owned();
    tokio::spawn(async move {
        let mut stream = docker.events(Some(options));
        tracing::debug!(op = "watch events", target = %target, "engine stream opened");
        while let Some(item) = stream.next().await {
            let forwarded = match item {
                Ok(event) => tx.send(Ok(engine_event(event))).await,
                Err(e) => {
                    let _ = tx
                        .send(Err(engine.classify(EngineOp::WatchEvents, &target, e)))
                        .await;
                    break;
                }
            };
            if forwarded.is_err() {
                break;
            }
        }
        tracing::debug!(op = "watch events", target = %target, "engine stream closed");
    });
    Ok(rx)
}

pub(super) fn engine_event(e: EventMessage) -> EngineEvent {
    let actor = e.actor.unwrap_or_default();
    EngineEvent {
        kind: e.typ.map(|t| t.to_string()).unwrap_or_default(),
        action: e.action.unwrap_or_default(),
        id: actor.id.unwrap_or_default(),
        attributes: btree(actor.attributes),
        time: e.time.unwrap_or_default(),
    }
}
