//! The engine contract (`support/contract.rs`) against the real Docker engine: the same checks
//! the in-memory engine passes in `engine_contract.rs`. Engine tier: fails, saying why, when
//! no engine answers.
//!
//! Each check runs in its own [`Real`] harness: names start with `berthtest-c<pid>-<n>`, every
//! object carries `berthtest.scope=<that prefix>`, and the harness's `Drop` removes its
//! containers (by label and by name), networks, volumes and image tags through the docker CLI.

#[path = "support/images.rs"]
mod images;
mod support {
    pub mod contract;
    pub mod tier;
}

use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use berth::engine::docker::DockerEngine;
use support::contract::{self, Harness};

static NEXT: AtomicUsize = AtomicUsize::new(0);

struct Real {
    engine: DockerEngine,
    prefix: String,
    image: String,
    /// (kind, name) of networks and volumes; image tags as ("image", reference).
    created: Mutex<Vec<(String, String)>>,
}

impl Real {
    fn new() -> Real {
        support::tier::require_engine();
        Real {
            engine: DockerEngine::connect(None).expect("docker endpoint"),
            prefix: format!(
                "berthtest-c{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ),
            image: images::busybox(),
            created: Mutex::new(Vec::new()),
        }
    }
}

fn docker(args: &[&str]) -> String {
    Command::new("docker")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

impl Drop for Real {
    fn drop(&mut self) {
        let mut ids = docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=berthtest.scope={}", self.prefix),
        ]);
        ids += &docker(&["ps", "-aq", "--filter", &format!("name=^{}-", self.prefix)]);
        let mut ids: Vec<&str> = ids.split_whitespace().collect();
        ids.sort_unstable();
        ids.dedup();
        if !ids.is_empty() {
            docker(&[&["rm", "-f"], ids.as_slice()].concat());
        }
        let created = self.created.lock().unwrap_or_else(|e| e.into_inner());
        for (kind, name) in created.iter() {
            match kind.as_str() {
                // Without -f: only this tag goes; the image keeps its own.
                "image" => docker(&["image", "rm", name]),
                "volume" => docker(&["volume", "rm", "-f", name]),
                _ => docker(&[kind, "rm", name]),
            };
        }
    }
}

impl Harness for Real {
    type E = DockerEngine;
    fn engine(&self) -> &DockerEngine {
        &self.engine
    }
    fn prefix(&self) -> &str {
        &self.prefix
    }
    fn label(&self) -> (String, String) {
        ("berthtest.scope".into(), self.prefix.clone())
    }
    fn image(&self) -> String {
        self.image.clone()
    }
    fn since(&self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        i64::try_from(now).unwrap_or(i64::MAX) - 1
    }
    fn created(&self, kind: &str, name: &str) {
        self.created
            .lock()
            .unwrap()
            .push((kind.to_owned(), name.to_owned()));
    }
    fn tagged(&self, reference: &str) {
        self.created("image", reference);
    }
}

contract::suite!(Real::new());
