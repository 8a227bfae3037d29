//! The fleet: several hosts, each running its own berth on the same repository, coordinated
//! only through each other's status API (docs/fleet.md).
//!
//! Where each project lands is decided at load time (`desired::hosts`, `desired::placement`);
//! this module is what happens after: `peer` is the typed vocabulary of what a peer reports,
//! `report` turns a peer's `/api/v1/status` into it (pure), `wave` decides whether this host may start a project's new revision now
//! (pure, takes `now`), `overview` is `berth fleet status`'s view of every host (pure), and
//! `peers` fetches the peers' status over HTTP (IO, for the
//! controller). Nothing here elects a leader or keeps state of its own: a host that cannot
//! read a peer waits.

pub mod overview;
pub mod peer;
pub mod peers;
pub mod report;
pub mod wave;
