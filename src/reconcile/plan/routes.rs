//! The planner's proxy routes of services that are gone: a listener in the routes file whose
//! service is no longer desired is released (its port freed), as that service's containers
//! are removed; one of a removed project only with `--prune` (without it, the project's
//! containers keep running, and so do their routes).
//!
//! Pure, part of the planner. The routes of desired services are `rollout::handoff`'s.

use std::collections::BTreeSet;

use super::{Action, Planner};
use crate::desired::model::DesiredState;

impl Planner<'_> {
    /// Releases the listeners of services that are not desired any more.
    pub(super) fn release_routes(&mut self, desired: &DesiredState, prune: bool) {
        let mut gone = BTreeSet::new();
        for l in &self.observed.routes.listeners {
            let Some((project, service)) = l
                .name
                .rsplit_once(':')
                .and_then(|(scope, _)| scope.split_once('/'))
            else {
                continue;
            };
            let released = match desired.projects.get(project) {
                Some(p) => !p.services.contains_key(service),
                None => prune,
            };
            if released {
                gone.insert((project.to_string(), service.to_string()));
            }
        }
        for (project, service) in gone {
            self.step(
                &project,
                Some(&service),
                Action::Route {
                    project: project.clone(),
                    service: service.clone(),
                    listeners: Vec::new(),
                },
                "the service is no longer desired: berth's proxy releases its ports",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::desired::model::HandoffMode;
    use crate::desired::{LoadOptions, load_inline};
    use crate::proxy::routes::{Listener, Routes};
    use crate::reconcile::observed::ObservedState;
    use crate::reconcile::plan::{PlanOptions, Records, plan};

    fn listener(name: &str, port: u16) -> Listener {
        Listener {
            name: name.into(),
            bind: ([127, 0, 0, 1], port).into(),
            mode: HandoffMode::Http,
            proxy_protocol: false,
            drain_timeout_ms: 1000,
            backends: Vec::new(),
        }
    }

    #[test]
    fn the_routes_of_a_removed_service_are_released_and_a_removed_project_s_only_with_prune() {
        let l = load_inline(
            "name: shop\nservices:\n  api: {image: app:1}\n",
            &LoadOptions::default(),
        );
        let desired = l.state.unwrap_or_else(|| panic!("{}", l.diagnostics));
        let observed = ObservedState {
            routes: Routes {
                listeners: vec![
                    listener("shop/web:8080", 8080),
                    listener("blog/web:8081", 8081),
                ],
                ..Routes::default()
            },
            ..ObservedState::default()
        };
        let routes = |prune| -> Vec<String> {
            plan(
                &desired,
                &observed,
                &Records::new(),
                PlanOptions { prune },
                1,
            )
            .steps
            .iter()
            .filter(|s| matches!(s.action, super::Action::Route { .. }))
            .map(|s| format!("{}  {}", s.action, s.cause))
            .collect()
        };
        let released = "the service is no longer desired: berth's proxy releases its ports";
        assert_eq!(
            routes(false),
            [format!("route shop/web: release its ports  {released}")]
        );
        assert_eq!(
            routes(true),
            [
                format!("route blog/web: release its ports  {released}"),
                format!("route shop/web: release its ports  {released}"),
            ]
        );
    }
}
