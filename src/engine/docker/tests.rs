//! Unit tests of the bollard translation (pure: no engine needed).

use bollard::models::{MountBindOptionsPropagationEnum, MountType};

use super::containers::{exit_code_from_status, health_from_status};
use super::create_body::*;
use super::images::*;
use super::networks::*;
use super::*;
use crate::engine::{Health, IpamSpec, MountSpec, PortBinding};

const V141: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};

fn mount(kind: &str, source: Option<&str>, target: &str, options: &[&str]) -> MountSpec {
    MountSpec {
        kind: kind.into(),
        source: source.map(str::to_owned),
        target: target.into(),
        read_only: false,
        options: options.iter().map(|o| o.to_string()).collect(),
    }
}

#[test]
fn health_and_exit_code_come_from_the_status_text() {
    assert_eq!(
        health_from_status("Up 3 minutes (healthy)"),
        Health::Healthy
    );
    assert_eq!(
        health_from_status("Up 3 minutes (unhealthy)"),
        Health::Unhealthy
    );
    assert_eq!(
        health_from_status("Up 2 seconds (health: starting)"),
        Health::Starting
    );
    assert_eq!(health_from_status("Up 3 minutes"), Health::None);
    assert_eq!(
        exit_code_from_status("Exited (137) 2 seconds ago"),
        Some(137)
    );
    assert_eq!(
        exit_code_from_status("Exited (0) About a minute ago"),
        Some(0)
    );
    assert_eq!(exit_code_from_status("Up 3 minutes"), None);
    assert_eq!(exit_code_from_status("Created"), None);
}

#[test]
fn endpoints_are_unix_or_plain_tcp() {
    let e = DockerEngine::connect(Some("unix:///run/x.sock")).unwrap();
    assert_eq!(e.endpoint(), "unix:///run/x.sock");
    let e = DockerEngine::connect(Some("tcp://10.0.0.1:2375")).unwrap();
    assert_eq!(e.endpoint(), "tcp://10.0.0.1:2375");
    let err = DockerEngine::connect(Some("ssh://me@host")).unwrap_err();
    assert!(err.to_string().contains("unsupported endpoint"), "{err}");
}

#[test]
fn untagged_references_pull_latest_only() {
    assert_eq!(pull_reference("busybox"), "busybox:latest");
    assert_eq!(
        pull_reference("localhost:5000/app"),
        "localhost:5000/app:latest"
    );
    assert_eq!(
        pull_reference("localhost:5000/app:1"),
        "localhost:5000/app:1"
    );
    assert_eq!(pull_reference("app@sha256:ab"), "app@sha256:ab");
}

#[test]
fn binds_that_may_create_their_host_path_use_the_binds_list() {
    let mut ro = mount("bind", Some("/srv/conf"), "/conf", &["rshared", "z"]);
    ro.read_only = true;
    let (binds, mounts) = host_mounts(
        &[
            ro,
            mount("bind", Some("/srv/data"), "/data", &[]),
            mount(
                "bind",
                Some("/srv/strict"),
                "/strict",
                &["create_host_path=false", "propagation=rslave"],
            ),
        ],
        V141,
    )
    .unwrap();
    assert_eq!(binds, ["/srv/conf:/conf:ro,rshared,z", "/srv/data:/data"]);
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].typ, Some(MountType::BIND));
    assert_eq!(
        mounts[0].bind_options.as_ref().unwrap().propagation,
        Some(MountBindOptionsPropagationEnum::RSLAVE)
    );
}

#[test]
fn volume_and_tmpfs_options_are_translated() {
    let (binds, mounts) = host_mounts(
        &[
            mount("volume", Some("shop_db"), "/var/lib/db", &["nocopy"]),
            mount("volume", None, "/cache", &[]),
            mount("tmpfs", None, "/run", &["mode=1777", "size=65536"]),
        ],
        V141,
    )
    .unwrap();
    assert!(binds.is_empty());
    assert_eq!(
        mounts[0].volume_options.as_ref().unwrap().no_copy,
        Some(true)
    );
    assert_eq!(mounts[1].source, None);
    let tmpfs = mounts[2].tmpfs_options.as_ref().unwrap();
    assert_eq!((tmpfs.size_bytes, tmpfs.mode), (Some(65536), Some(0o1777)));
}

#[test]
fn volume_subpath_is_refused_by_engines_that_would_ignore_it() {
    let err = host_mounts(&[mount("volume", Some("v"), "/x", &["subpath=sub"])], V141).unwrap_err();
    assert!(err.contains("API 1.45"), "{err}");
}

#[test]
fn several_bindings_of_one_port_share_its_key() {
    let map = port_bindings(&[
        PortBinding {
            target: 80,
            protocol: "tcp".into(),
            host_ip: Some("127.0.0.1".into()),
            published: Some(8080),
            published_end: None,
        },
        PortBinding {
            target: 80,
            protocol: "tcp".into(),
            host_ip: None,
            published: None,
            published_end: None,
        },
    ]);
    let bindings = map["80/tcp"].as_ref().unwrap();
    assert_eq!(bindings.len(), 2);
    assert_eq!(bindings[0].host_port.as_deref(), Some("8080"));
    assert_eq!(bindings[1].host_port, None);
}

#[test]
fn a_host_port_range_onto_one_target_is_sent_as_a_range() {
    let map = port_bindings(&[PortBinding {
        target: 80,
        protocol: "tcp".into(),
        host_ip: None,
        published: Some(8000),
        published_end: Some(8010),
    }]);
    let bindings = map["80/tcp"].as_ref().unwrap();
    assert_eq!(bindings[0].host_port.as_deref(), Some("8000-8010"));
}

#[test]
fn runtime_and_security_options_reach_the_host_config() {
    let spec = ContainerCreate {
        runtime: Some("runc".into()),
        security_opt: vec!["no-new-privileges:true".into()],
        ..ContainerCreate::default()
    };
    let host = create_body(&spec, V141).unwrap().host_config.unwrap();
    assert_eq!(host.runtime.as_deref(), Some("runc"));
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges:true".to_string()])
    );
}

#[test]
fn ipam_pools_are_sent_with_their_aux_addresses() {
    let body = ipam(&IpamSpec {
        driver: Some("default".into()),
        pools: vec![crate::engine::IpamPoolSpec {
            subnet: Some("172.28.0.0/16".into()),
            ip_range: Some("172.28.5.0/24".into()),
            gateway: Some("172.28.5.254".into()),
            aux_addresses: BTreeMap::from([("host1".into(), "172.28.1.5".into())]),
        }],
        options: BTreeMap::new(),
    });
    let pool = &body.config.unwrap()[0];
    assert_eq!(pool.subnet.as_deref(), Some("172.28.0.0/16"));
    assert_eq!(pool.gateway.as_deref(), Some("172.28.5.254"));
    assert_eq!(
        pool.auxiliary_addresses.as_ref().unwrap()["host1"],
        "172.28.1.5"
    );
    assert_eq!(body.options, None);
}

#[test]
fn grace_periods_round_up_to_whole_seconds() {
    assert_eq!(whole_seconds(Duration::from_millis(1500)), 2);
    assert_eq!(whole_seconds(Duration::from_secs(10)), 10);
    assert_eq!(whole_seconds(Duration::ZERO), 0);
}
