//! Observes the engine: one container list call, and the network/volume/image lists only
//! when the plan has something to create.
//!
//! IO (engine calls), no decisions: what to do with what is seen is `plan`'s job.

use super::drift;
use super::observed::{Feedback, ObservedState};
use super::plan::{Plan, PlanOptions, Records, plan};
use crate::desired::DesiredState;
use crate::engine::labels::compose;
use crate::engine::{Engine, EngineError, EngineResult};

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

/// Observes and plans one round: containers first (each replica compared with its revision's
/// recorded spec, see [`drift`]); when that plan creates anything, the
/// inventory is listed and the round planned again with it; when a readiness gate needs the
/// restart counts of its candidates, they are inspected and the round planned again. A no-op
/// round is one engine call. `feedback` carries the prober's verdicts and the previous
/// round's step errors; `now` is unix seconds.
pub async fn observe_and_plan<E: Engine>(
    engine: &E,
    desired: &DesiredState,
    records: &Records,
    opts: PlanOptions,
    now: u64,
    feedback: &Feedback,
) -> EngineResult<(ObservedState, Plan)> {
    let mut observed = observe_containers(engine).await?;
    observed.probes = feedback.probes.clone();
    observed.step_errors = feedback.step_errors.clone();
    observed.build_failures = feedback.build_failures.clone();
    observed.drift = drift::survey(&observed, records);
    let mut p = plan(desired, &observed, records, opts, now);
    for _ in 0..2 {
        let mut again = false;
        if p.creates_anything() && observed.inventory.is_none() {
            observed = add_inventory(engine, observed).await?;
            again = true;
        }
        let missing: Vec<String> = p
            .inspect
            .iter()
            .filter(|id| !observed.restart_counts.contains_key(*id))
            .cloned()
            .collect();
        for id in missing {
            match engine.inspect_container(&id).await {
                Ok(d) => {
                    observed.restart_counts.insert(id, d.restart_count);
                    again = true;
                }
                // Gone since the list: the next round sees that.
                Err(EngineError::NotFound { .. }) => {
                    observed.restart_counts.insert(id, 0);
                }
                Err(e) => return Err(e),
            }
        }
        if !again {
            break;
        }
        p = plan(desired, &observed, records, opts, now);
    }
    Ok((observed, p))
}
