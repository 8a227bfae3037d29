//! `reconcile::diff`: what changed between two recorded revisions, as golden text.

use std::collections::BTreeMap;
use std::time::Duration;

use berth::engine::{ContainerCreate, HealthcheckSpec, MountSpec, NetworkAttach, PortBinding};
use berth::reconcile::diff::{self, Change, Diff, Edit};
use berth::store::{Outcome, Revision};

fn revision(number: u64, image: &str, template: Option<ContainerCreate>) -> Revision {
    Revision {
        number,
        spec_hash: format!("hash{number}"),
        image_ref: image.into(),
        image_id: format!("sha256:{number:064}"),
        stable: false,
        created_at: 0,
        ready_at: None,
        outcome: Outcome::InProgress,
        reason: None,
        pin: None,
        template,
        build: None,
        failure: None,
        policy: None,
        logs: None,
    }
}

fn base() -> ContainerCreate {
    ContainerCreate {
        name: "shop-web-1".into(),
        image: "sha256:aa".into(),
        env: vec!["API_KEY=one".into(), "MODE=prod".into(), "OLD=x".into()],
        labels: BTreeMap::from([
            ("berth.spec-hash".into(), "hash1".into()),
            ("com.docker.compose.config-hash".into(), "hash1".into()),
            ("traefik.enable".into(), "true".into()),
        ]),
        ports: vec![PortBinding {
            target: 8080,
            protocol: "tcp".into(),
            host_ip: Some("127.0.0.1".into()),
            published: Some(8080),
            published_end: None,
        }],
        mounts: vec![MountSpec {
            kind: "volume".into(),
            source: Some("shop_data".into()),
            target: "/data".into(),
            read_only: false,
            options: vec![],
        }],
        networks: vec![NetworkAttach {
            network: "shop_default".into(),
            aliases: vec!["web".into()],
            ipv4_address: None,
            ipv6_address: None,
        }],
        restart: "unless-stopped".into(),
        ..ContainerCreate::default()
    }
}

#[test]
fn image_only_change_reads_as_one_field() {
    let a = revision(1, "app:1", Some(base()));
    let b = revision(2, "app:2", Some(base()));
    assert_eq!(diff::between(&a, &b).to_string(), "image app:1 → app:2");
}

#[test]
fn every_field_that_changed_is_named_and_env_values_stay_hidden() {
    let a = revision(1, "app:1", Some(base()));
    let mut t = base();
    t.command = Some(vec!["serve".into(), "--fast".into()]);
    t.env = vec!["API_KEY=s3cret".into(), "MODE=prod".into(), "NEW=1".into()];
    t.labels.insert("berth.spec-hash".into(), "hash2".into());
    t.labels.insert("traefik.enable".into(), "false".into());
    t.ports[0].published = Some(8081);
    t.mounts[0].read_only = true;
    t.networks.push(NetworkAttach {
        network: "shop_backend".into(),
        aliases: vec![],
        ipv4_address: None,
        ipv6_address: None,
    });
    t.memory = Some(512 << 20);
    t.nano_cpus = Some(500_000_000);
    t.healthcheck = Some(HealthcheckSpec {
        test: vec![
            "CMD".into(),
            "wget".into(),
            "-q".into(),
            "localhost:8080/health".into(),
        ],
        interval: Some(Duration::from_secs(5)),
        timeout: None,
        retries: Some(3),
        start_period: None,
        start_interval: None,
    });
    let b = revision(2, "app:2", Some(t));
    let d = diff::between(&a, &b);
    let lines: Vec<String> = d.changes().iter().map(Change::to_string).collect();
    assert_eq!(
        lines.join("\n"),
        "image app:1 → app:2\n\
         command (unset) → [serve --fast]\n\
         environment API_KEY changed (value hidden)\n\
         environment NEW added\n\
         environment OLD removed\n\
         ports +127.0.0.1:8081:8080/tcp -127.0.0.1:8080:8080/tcp\n\
         volumes +shop_data:/data:ro -shop_data:/data\n\
         networks +shop_backend\n\
         label traefik.enable true → false\n\
         cpus (unset) → 0.5\n\
         memory (unset) → 512m\n\
         healthcheck (unset) → [CMD wget -q localhost:8080/health] interval 5s retries 3"
    );
    assert!(!d.to_string().contains("s3cret"), "{d}");
    assert!(d.changes().contains(&Change::Env {
        key: "API_KEY".into(),
        edit: Edit::Changed
    }));
}

#[test]
fn same_reference_pulled_again_shows_the_image_ids() {
    let mut a = revision(1, "app:latest", Some(base()));
    let mut b = revision(2, "app:latest", Some(base()));
    a.image_id = "sha256:aaaaaaaaaaaa1111".into();
    b.image_id = "sha256:bbbbbbbbbbbb2222".into();
    assert_eq!(
        diff::between(&a, &b).to_string(),
        "image app:latest aaaaaaaaaaaa → bbbbbbbbbbbb"
    );
}

#[test]
fn policy_changes_are_named_leaf_by_leaf() {
    let mut a = revision(1, "app:1", Some(base()));
    let mut b = revision(2, "app:1", Some(base()));
    b.image_id = a.image_id.clone();
    a.policy = Some(serde_json::json!({
        "update_config": {"min_ready": {"secs": 5, "nanos": 0}, "update": {"order": null}},
        "x-berth": {"auto_revert": true}
    }));
    b.policy = Some(serde_json::json!({
        "update_config": {"min_ready": {"secs": 10, "nanos": 0}, "update": {"order": "stop-first"}},
        "x-berth": {"auto_revert": true}
    }));
    assert_eq!(
        diff::between(&a, &b).to_string(),
        "policy update_config.min_ready 5s → 10s; policy update_config.update.order (unset) → stop-first"
    );
}

#[test]
fn an_adopted_revision_without_a_template_compares_the_image_only() {
    let mut a = revision(1, "", None);
    a.image_id = "sha256:0123456789abcdef".into();
    let b = revision(2, "app:2", Some(base()));
    assert_eq!(
        diff::between(&a, &b),
        Diff::Unknown {
            image: Some(Change::Value {
                field: "image".into(),
                from: Some("0123456789ab".into()),
                to: Some("app:2".into()),
            })
        }
    );
    assert_eq!(
        diff::between(&a, &b).to_string(),
        "image 0123456789ab → app:2 (other fields: not recorded for the earlier revision)"
    );
}

#[test]
fn identical_revisions_say_so() {
    let a = revision(1, "app:1", Some(base()));
    let mut b = revision(2, "app:1", Some(base()));
    b.image_id = a.image_id.clone();
    assert_eq!(
        diff::between(&a, &b).to_string(),
        "no recorded field changed"
    );
}
