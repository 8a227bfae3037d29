//! `DockerEngine` where no engine answers: a missing socket and a closed TCP port are both
//! `Unreachable`, naming the endpoint and the operation — what the controller's error policy
//! and the `docker_api_errors_total{op}` metric go by. Needs no engine (first tier); the
//! engine's own answers are in `engine_docker.rs` and `engine_contract_docker.rs`.

use berth::engine::docker::DockerEngine;
use berth::engine::{Engine, EngineError};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_missing_socket_is_unreachable() {
    let engine = DockerEngine::connect(Some("unix:///nonexistent.sock")).unwrap();
    let err = engine.info().await.unwrap_err();
    assert!(
        matches!(&err, EngineError::Unreachable { endpoint, .. } if endpoint == "unix:///nonexistent.sock"),
        "{err:?}"
    );
    let err = engine.list_containers(&[]).await.unwrap_err();
    assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.op().as_str(), "list containers");
}

#[tokio::test]
async fn a_closed_tcp_port_is_unreachable() {
    let port = free_port();
    let engine = DockerEngine::connect(Some(&format!("tcp://127.0.0.1:{port}"))).unwrap();
    let err = engine.info().await.unwrap_err();
    assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
}
