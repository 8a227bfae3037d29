//! The engine contract (`support/contract.rs`) against the in-memory engine, which every
//! fake-engine test relies on behaving like Docker. The same checks run against Docker in
//! `engine_contract_docker.rs` (the engine tier).

mod support {
    pub mod contract;
}

use berth::engine::fake::FakeEngine;
use support::contract::{self, Harness};

/// A fresh in-memory engine that has one image.
struct Fake {
    engine: FakeEngine,
}

const IMAGE: &str = "sha256:c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0";

impl Fake {
    fn new() -> Fake {
        let engine = FakeEngine::new();
        engine.add_image("contract:1", IMAGE);
        Fake { engine }
    }
}

impl Harness for Fake {
    type E = FakeEngine;
    fn engine(&self) -> &FakeEngine {
        &self.engine
    }
    fn prefix(&self) -> &str {
        "contract"
    }
    fn label(&self) -> (String, String) {
        ("contract.scope".into(), "fake".into())
    }
    fn image(&self) -> String {
        IMAGE.into()
    }
    fn since(&self) -> i64 {
        0
    }
    fn created(&self, _kind: &str, _name: &str) {}
    fn tagged(&self, _reference: &str) {}
}

contract::suite!(Fake::new());
