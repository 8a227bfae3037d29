//! Observes the engine: one container list call, and the network/volume/image lists only
//! when the plan has something to create.
//!
//! IO (engine calls), no decisions: what to do with what is seen is `plan`'s job.

use super::observed::ObservedState;
use super::plan::{Plan, PlanOptions, Records, plan};
use crate::desired::DesiredState;
use crate::engine::labels::compose;
use crate::engine::{Engine, EngineResult};

/// Every container with a compose project label: berth's own (it writes compose's labels too)
/// and those `docker compose` made, for take-over. One call.
pub async fn observe_containers<E: Engine>(engine: &E) -> EngineResult<ObservedState> {
    let containers = engine
        .list_containers(&[compose::PROJECT.to_string()])
        .await?;
    Ok(ObservedState::from_lists(containers))
}

/// Adds networks, volumes and images (three calls).
pub async fn add_inventory<E: Engine>(
    engine: &E,
    observed: ObservedState,
) -> EngineResult<ObservedState> {
    let networks = engine.list_networks().await?;
    let volumes = engine.list_volumes().await?;
    let images = engine.list_images().await?;
    Ok(observed.with_inventory(networks, volumes, images))
}

/// Observes and plans one round: containers first; when that plan creates anything, the
/// inventory is listed and the round planned again with it. A no-op round is one engine call.
pub async fn observe_and_plan<E: Engine>(
    engine: &E,
    desired: &DesiredState,
    records: &Records,
    opts: PlanOptions,
) -> EngineResult<(ObservedState, Plan)> {
    let observed = observe_containers(engine).await?;
    let first = plan(desired, &observed, records, opts);
    if !first.creates_anything() {
        return Ok((observed, first));
    }
    let observed = add_inventory(engine, observed).await?;
    let p = plan(desired, &observed, records, opts);
    Ok((observed, p))
}
