//! One project at a time (`berth prune PROJECT`): the planner's `--prune` path narrowed to
//! that project — its containers, then the networks (and, when asked, the volumes) berth
//! created for it, then the pins and built images its records hold — a typed refusal for a
//! project that is still desired, and the preview shown before anything is removed.
//!
//! Pure like the rest of the planner: `crate::prune` observes, asks, executes and loops.

use std::fmt;

use super::{Plan, PlanOptions, Records, Step, plan_with};
use crate::desired::model::DesiredState;
use crate::reconcile::action::Action;
use crate::reconcile::observed::{Inventory, ObservedState};

/// What `berth prune` was told.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Prune the project even though it is still in the desired state (`--force`).
    pub force: bool,
    /// Remove the volumes berth created for it too, with their data (`--volumes`).
    pub volumes: bool,
}

/// Why a project is not pruned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PruneRefusal {
    /// The project is in the desired state: berth would deploy it again.
    #[error(
        "refusing to prune {project}: it is still in the desired state, so the next apply or run deploys it again; remove it from the desired state first (or --force)"
    )]
    Desired {
        /// The project.
        project: String,
    },
}

/// Refuses `project` when it is desired and `opts` does not force it.
pub fn check(
    project: &str,
    desired: &DesiredState,
    opts: PruneOptions,
) -> Result<(), PruneRefusal> {
    if desired.projects.contains_key(project) && !opts.force {
        return Err(PruneRefusal::Desired {
            project: project.to_string(),
        });
    }
    Ok(())
}

/// Plans one round of removing `project`: the steps `apply --prune` would take for it if it
/// were not desired, for nothing else, plus its volumes with `opts.volumes`. An empty plan
/// means nothing of it is left on the engine (its records may remain; the caller forgets
/// them). Needs the inventory to plan networks and volumes.
pub fn prune_project(
    project: &str,
    desired: &DesiredState,
    observed: &ObservedState,
    records: &Records,
    opts: PruneOptions,
    now: u64,
) -> Result<Plan, PruneRefusal> {
    check(project, desired, opts)?;
    // What the planner sees: only this project (nothing is desired, so all of it is an
    // orphan), and no other project's networks, volumes or records.
    let view = ObservedState {
        containers: observed
            .containers
            .iter()
            .filter(|c| c.identity.project == project)
            .cloned()
            .collect(),
        inventory: observed.inventory.as_ref().map(|inv| Inventory {
            managed_networks: inv
                .managed_networks
                .iter()
                .filter(|(_, p)| p.as_str() == project)
                .map(|(n, p)| (n.clone(), p.clone()))
                .collect(),
            managed_volumes: inv
                .managed_volumes
                .iter()
                .filter(|(_, p)| p.as_str() == project)
                .map(|(n, p)| (n.clone(), p.clone()))
                .collect(),
            ..inv.clone()
        }),
        ..ObservedState::default()
    };
    let mine: Records = records
        .iter()
        .filter(|((p, _), _)| p == project)
        .map(|(k, r)| (k.clone(), r.clone()))
        .collect();
    let mut plan = plan_with(
        &DesiredState::default(),
        &view,
        &mine,
        PlanOptions { prune: true },
        now,
    );
    // A container berth did not create may still mount them: the volumes stay with it.
    let foreign = view.containers.iter().any(|c| !c.identity.managed);
    if let (true, false, Some(inv)) = (opts.volumes, foreign, &view.inventory) {
        for name in inv.managed_volumes.keys() {
            // The executor removes volumes last, after this plan's container removals.
            plan.steps.push(Step {
                project: project.to_string(),
                service: None,
                action: Action::RemoveVolume { name: name.clone() },
                cause: "volume of a pruned project (--volumes)".into(),
            });
        }
    }
    Ok(plan)
}

/// What `berth prune` will remove, shown before it removes anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preview {
    /// The project.
    pub project: String,
    /// Container names (replicas, kept old ones, pin holders).
    pub containers: Vec<String>,
    /// Network names.
    pub networks: Vec<String>,
    /// Volume names removed (`--volumes`).
    pub volumes: Vec<String>,
    /// Volume names berth created for the project and keeps.
    pub kept_volumes: Vec<String>,
    /// Image pins and built images (`repo:tag`) its records hold.
    pub images: Vec<String>,
    /// Services whose records are forgotten.
    pub records: Vec<String>,
}

impl Preview {
    /// Nothing of the project is there.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty()
            && self.networks.is_empty()
            && self.volumes.is_empty()
            && self.images.is_empty()
            && self.records.is_empty()
    }
}

/// The preview of removing `project`, from the first round's `plan` (see [`prune_project`]),
/// what is observed and the records.
pub fn preview(project: &str, plan: &Plan, observed: &ObservedState, records: &Records) -> Preview {
    let mut p = Preview {
        project: project.to_string(),
        ..Preview::default()
    };
    for s in &plan.steps {
        match &s.action {
            Action::Remove { name, .. } => p.containers.push(name.clone()),
            Action::RemoveNetwork { name } => p.networks.push(name.clone()),
            Action::RemoveVolume { name } => p.volumes.push(name.clone()),
            Action::Unpin { reference } | Action::RemoveImage { reference } => {
                p.images.push(reference.clone())
            }
            _ => {}
        }
    }
    if let Some(inv) = &observed.inventory {
        p.kept_volumes = inv
            .managed_volumes
            .iter()
            .filter(|(n, proj)| proj.as_str() == project && !p.volumes.contains(n))
            .map(|(n, _)| n.clone())
            .collect();
    }
    for ((proj, svc), rec) in records {
        if proj != project {
            continue;
        }
        p.records.push(svc.clone());
        for r in &rec.revisions {
            let built =
                crate::desired::hash::is_built_reference(&r.image_ref).then_some(&r.image_ref);
            for image in r.pin.iter().chain(built) {
                if !p.images.contains(image) {
                    p.images.push(image.clone());
                }
            }
        }
    }
    for v in [
        &mut p.containers,
        &mut p.networks,
        &mut p.volumes,
        &mut p.images,
    ] {
        v.sort();
        v.dedup();
    }
    p
}

impl fmt::Display for Preview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "berth prune {} removes:", self.project)?;
        let rows: [(&str, &[String]); 5] = [
            ("containers", &self.containers),
            ("networks", &self.networks),
            ("volumes", &self.volumes),
            ("images", &self.images),
            ("records", &self.records),
        ];
        for (what, names) in rows {
            if !names.is_empty() {
                writeln!(f, "  {what:<11}{}", names.join(", "))?;
            }
        }
        if !self.kept_volumes.is_empty() {
            writeln!(
                f,
                "  kept       volumes {} (--volumes removes them and their data)",
                self.kept_volumes.join(", ")
            )?;
        }
        Ok(())
    }
}
