//! `x-berth.handoff` in the loader: the typed model for both spellings, the drain timeout's
//! defaults, and every bad setting as a positioned error (an invalid state changes nothing).

use std::time::Duration;

use berth::desired::model::*;
use berth::desired::{LoadOptions, load_inline};
use indoc::indoc;

fn diags(yaml: &str) -> String {
    load_inline(yaml, &LoadOptions::default())
        .diagnostics
        .to_string()
}

fn handoff(yaml: &str) -> Handoff {
    let l = load_inline(yaml, &LoadOptions::default());
    let state = l
        .state
        .unwrap_or_else(|| panic!("expected valid, got:\n{}", l.diagnostics));
    let mut p = state.projects.into_values().next().expect("one project");
    p.services
        .remove("web")
        .expect("web")
        .berth
        .handoff
        .expect("handoff")
}

#[test]
fn handoff_http_holds_every_published_port_and_drains_for_stop_grace_period() {
    let h = handoff(indoc! {r#"
        services:
          web:
            image: app:1
            ports: ["80:8080", "127.0.0.1:8443:8443"]
            stop_grace_period: 25s
            x-berth:
              handoff: http
    "#});
    assert_eq!(h.drain_timeout, Duration::from_secs(25));
    assert_eq!(
        h.ports,
        [
            HandoffPort {
                host_ip: None,
                published: 80,
                target: 8080,
                mode: HandoffMode::Http,
                proxy_protocol: false
            },
            HandoffPort {
                host_ip: Some("127.0.0.1".into()),
                published: 8443,
                target: 8443,
                mode: HandoffMode::Http,
                proxy_protocol: false
            },
        ]
    );
}

#[test]
fn the_mapping_form_sets_the_mode_per_port_and_proxy_protocol_for_tcp_ports() {
    let h = handoff(indoc! {r#"
        services:
          web:
            image: app:1
            ports: ["80:8080", "5432:5432"]
            x-berth:
              handoff:
                mode: http
                ports: { 5432: tcp }
                drain_timeout: 3s
                proxy_protocol: true
    "#});
    assert_eq!(h.drain_timeout, Duration::from_secs(3));
    let modes: Vec<_> = h
        .ports
        .iter()
        .map(|p| (p.published, p.mode, p.proxy_protocol))
        .collect();
    assert_eq!(
        modes,
        [
            (80, HandoffMode::Http, false),
            (5432, HandoffMode::Tcp, true)
        ]
    );
}

#[test]
fn the_drain_timeout_defaults_to_ten_seconds() {
    let h = handoff(
        "services:\n  web:\n    image: app:1\n    ports: [\"80:80\"]\n    x-berth: {handoff: tcp}\n",
    );
    assert_eq!(h.drain_timeout, Duration::from_secs(10));
}

#[test]
fn bad_handoff_settings_are_positioned_errors() {
    assert_eq!(
        diags(
            "services:\n  web:\n    image: app:1\n    ports: [\"80:80\"]\n    x-berth: {handoff: udp}\n"
        ),
        "compose.yaml:5:24: error: invalid services.web.x-berth.handoff \"udp\": use http or tcp\n"
    );
    assert_eq!(
        diags("services:\n  web:\n    image: app:1\n    x-berth: {handoff: http}\n"),
        "compose.yaml:4:15: error: services.web.x-berth.handoff is set but service \"web\" publishes no host port: add ports: [\"HOST:CONTAINER\"] or remove handoff\n"
    );
    assert_eq!(
        diags(indoc! {r#"
            services:
              web:
                image: app:1
                ports: ["80:80", "81:81"]
                x-berth:
                  handoff:
                    ports: { 80: http, 82: tcp }
                    drain_timeout: 0s
        "#}),
        indoc! {r#"
            compose.yaml:4:22: error: service "web" publishes host port 81, which services.web.x-berth.handoff does not cover: add it under handoff.ports or set handoff.mode (a port left to Docker cannot be bound twice)
            compose.yaml:7:28: error: services.web.x-berth.handoff.ports names host port 82, which service "web" does not publish (it publishes 80, 81)
            compose.yaml:8:24: error: services.web.x-berth.handoff.drain_timeout must be longer than 0s
        "#}
    );
}

#[test]
fn handoff_refuses_container_name_udp_and_proxy_protocol_on_http() {
    let d = diags(indoc! {r#"
        services:
          web:
            image: app:1
            container_name: web
            ports: ["80:80", "53:53/udp"]
            x-berth:
              handoff: { mode: http, proxy_protocol: true }
    "#});
    assert!(d.contains("compose.yaml:7:7: error: services.web.x-berth.handoff runs the service's new replica beside the old one, which container_name \"web\" cannot: remove container_name"), "{d}");
    assert!(
        d.contains("compose.yaml:5:22: error: services.web.x-berth.handoff: port 53 is not TCP"),
        "{d}"
    );
    assert!(d.contains("compose.yaml:7:46: error: services.web.x-berth.handoff.proxy_protocol applies to tcp ports only"), "{d}");
}

#[test]
fn handoff_is_not_a_project_default() {
    let d =
        diags("x-berth:\n  handoff: http\nservices:\n  web: {image: app:1, ports: [\"80:80\"]}\n");
    assert_eq!(
        d,
        "compose.yaml:2:3: error: x-berth.handoff cannot be a project default: set it in the x-berth of each service that publishes a port\n"
    );
}

#[test]
fn a_valid_handoff_is_acted_on_and_so_gives_no_warning() {
    assert_eq!(
        diags(
            "services:\n  web:\n    image: app:1\n    ports: ['80:8080']\n    x-berth: {handoff: http}\n"
        ),
        ""
    );
}
