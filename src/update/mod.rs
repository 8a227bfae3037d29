//! Image update automation (`x-berth.update`): find a newer image in the registry and write it
//! where the service's image is defined, so that the source stays the truth and the rollout
//! follows like any edit.
//!
//! - `spec` (pure): what a service asks for — policy, interval, maintenance window, minimum age.
//! - `choose` (pure): which tag (or digest) a policy picks among a registry's tags, and whether
//!   the window and minimum age let it through now.
//! - `rewrite` (pure): the edit of the exact byte span where the tag is written — a Compose
//!   `image:` value or the `.env` variable it is interpolated from — comments and formatting kept.
//! - `check` (IO through `registry`): one round of checks, one tag list per repository.
//! - `schedule` (pure): when `berth run` checks a service (interval, backoff on failed
//!   checks) and what it does with a finding (apply, skip, nothing).
//! - `auto` (IO): `berth run`'s background task that checks at each interval and applies.
//! - `registry` (IO): a Registry HTTP API v2 client (tags, manifests, digests; token and basic
//!   auth with credentials from [`crate::engine::auth`]).

pub mod auto;
pub mod check;
pub mod choose;
pub mod git;
pub mod registry;
pub mod rewrite;
pub mod schedule;
pub mod spec;
pub mod write;
