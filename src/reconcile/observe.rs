//! Observes the engine: the container list (one call), then what the round's [`Scope`] asks
//! for — the network/volume/image lists, the restart counts of gated containers.
//!
//! IO (engine calls), no decisions: what to observe is `scope`'s (pure) decision, what to do
//! with what is seen is `plan`'s; `round` calls both.

use super::observed::ObservedState;
use super::scope::Scope;
use crate::engine::labels::compose;
use crate::engine::{Engine, EngineError, EngineResult};

/// Every container with a compose project label: berth's own (it writes compose's labels too)
/// and those `docker compose` made, for take-over. One call.
pub async fn containers<E: Engine>(engine: &E) -> EngineResult<ObservedState> {
    let containers = engine
        .list_containers(&[compose::PROJECT.to_string()])
        .await?;
    Ok(ObservedState::from_lists(containers))
}

/// Adds what `scope` asks for: networks, volumes and images (three calls), and the restart
/// count of each container to inspect (one call each). A no-op round's scope is empty.
pub async fn complete<E: Engine>(
    engine: &E,
    observed: &mut ObservedState,
    scope: &Scope,
) -> EngineResult<()> {
    if scope.inventory && observed.inventory.is_none() {
        let networks = engine.list_networks().await?;
        let volumes = engine.list_volumes().await?;
        let images = engine.list_images().await?;
        *observed = std::mem::take(observed).with_inventory(networks, volumes, images);
    }
    for id in &scope.configs {
        if observed.configs.contains_key(id) {
            continue;
        }
        match engine.container_config(id).await {
            Ok(c) => {
                observed.configs.insert(id.clone(), c);
            }
            // Gone since the list: the next round sees that (nothing is adopted meanwhile).
            Err(EngineError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    for id in &scope.inspect {
        if observed.restart_counts.contains_key(id) {
            continue;
        }
        match engine.inspect_container(id).await {
            Ok(d) => {
                observed.restart_counts.insert(id.clone(), d.restart_count);
            }
            // Gone since the list: the next round sees that.
            Err(EngineError::NotFound { .. }) => {
                observed.restart_counts.insert(id.clone(), 0);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
