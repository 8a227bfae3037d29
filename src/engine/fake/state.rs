//! The fake engine's state under its lock: the clock, IDs, fault injection, name lookups and
//! the event stream.

use std::collections::BTreeMap;

use tokio::sync::mpsc;

use super::{OnStart, Started, State};
use crate::engine::{EngineError, EngineEvent, EngineOp, EngineResult, ImageSummary};
use crate::util::time::Civil;

impl State {
    /// What the container at `i` does now that it started: the most specific matching rule.
    pub(super) fn start_rule(&self, i: usize) -> OnStart {
        let c = &self.containers[i];
        let rank = |which: &Started| match which {
            Started::Label(l) => label_matches(&c.spec.labels, l).then_some(0),
            Started::Name(n) => (*n == c.name).then_some(1),
            Started::Image(id) => (*id == c.spec.image).then_some(2),
        };
        self.on_start
            .iter()
            .filter_map(|(which, what)| rank(which).map(|r| (r, *what)))
            .min_by_key(|(r, _)| *r)
            .map_or(OnStart::Runs, |(_, what)| what)
    }

    pub(super) fn tick(&mut self) -> i64 {
        self.now += 1;
        self.now
    }

    pub(super) fn new_id(&mut self, kind: char) -> String {
        self.next_id += 1;
        format!("{kind}{:063}", self.next_id)
    }

    /// Logs the call and returns the injected fault for it, if any.
    pub(super) fn enter(&mut self, op: &str, target: Option<&str>) -> EngineResult<()> {
        let line = match target {
            Some(t) => format!("{op} {t}"),
            None => op.to_owned(),
        };
        let fault = self
            .faults
            .iter()
            .position(|(prefix, _)| line.starts_with(prefix.as_str()))
            .map(|i| self.faults.remove(i).1);
        self.calls.push(line);
        match fault {
            Some(f) => Err(f.error(op, target.unwrap_or_default())),
            None => Ok(()),
        }
    }

    /// Index of the container `key` names: its ID, its name, or a unique ID prefix.
    pub(super) fn find(&self, key: &str) -> Option<usize> {
        let key = key.trim_start_matches('/');
        if let Some(i) = self
            .containers
            .iter()
            .position(|c| c.id == key || c.name == key)
        {
            return Some(i);
        }
        let mut prefixed = self
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| !key.is_empty() && c.id.starts_with(key));
        match (prefixed.next(), prefixed.next()) {
            (Some((i, _)), None) => Some(i),
            _ => None,
        }
    }

    /// The name to log for a container argument: its current name when known.
    pub(super) fn display(&self, key: &str) -> String {
        self.find(key)
            .map_or_else(|| key.to_owned(), |i| self.containers[i].name.clone())
    }

    pub(super) fn container(&self, op: EngineOp, key: &str) -> EngineResult<usize> {
        self.find(key).ok_or_else(|| EngineError::NotFound {
            op,
            target: key.into(),
        })
    }

    pub(super) fn network_exists(&self, key: &str) -> bool {
        self.networks
            .iter()
            .any(|(n, _)| n.name == key || n.id == key)
            || matches!(key, "bridge" | "host" | "none")
    }

    pub(super) fn emit(&mut self, action: &str, i: usize) {
        self.emit_with(action, i, None);
    }

    /// Records a container event (attributes: its labels, `name`, `image`, plus `extra`) and
    /// sends it to the subscribers whose label it carries.
    pub(super) fn emit_with(&mut self, action: &str, i: usize, extra: Option<(&str, String)>) {
        let time = self.tick();
        let c = &self.containers[i];
        let mut attributes = c.spec.labels.clone();
        attributes.insert("name".into(), c.name.clone());
        attributes.insert("image".into(), c.spec.image.clone());
        if let Some((k, v)) = extra {
            attributes.insert(k.into(), v);
        }
        let event = EngineEvent {
            kind: "container".into(),
            action: action.into(),
            id: c.id.clone(),
            attributes,
            time,
        };
        self.subscribers.retain(|s| {
            if !label_matches(&event.attributes, &s.label) {
                return !s.tx.is_closed();
            }
            // A full channel loses the event, as a slow reader of Docker's stream would.
            !matches!(
                s.tx.try_send(Ok(event.clone())),
                Err(mpsc::error::TrySendError::Closed(_))
            )
        });
        self.events.push(event);
    }
}

/// The fake's clock (unix seconds) as RFC 3339 UTC (`2023-11-14T22:13:20Z`).
pub(super) fn rfc3339(secs: i64) -> String {
    let c = Civil::from_unix(u64::try_from(secs).unwrap_or(0));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// `key=value` matches that label; a bare `key` matches any value.
pub(super) fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

pub(super) fn add_local_image(s: &mut State, reference: &str, id: &str) {
    let is_digest = reference.contains('@');
    if let Some(image) = s.images.iter_mut().find(|i| i.id == id) {
        let refs = if is_digest {
            &mut image.digests
        } else {
            &mut image.tags
        };
        if !refs.iter().any(|r| r == reference) {
            refs.push(reference.to_owned());
        }
    } else {
        s.images.push(ImageSummary {
            id: id.to_owned(),
            tags: (!is_digest)
                .then(|| reference.to_owned())
                .into_iter()
                .collect(),
            digests: is_digest
                .then(|| reference.to_owned())
                .into_iter()
                .collect(),
        });
    }
    // A tag names one image: moving it takes it off the previous one.
    for image in s.images.iter_mut().filter(|i| i.id != id) {
        image.tags.retain(|t| t != reference);
    }
}
