//! Encrypted secrets in the repository (issue 19, part 3), against the real engine: a
//! project's `.env.age` made by the real `age` CLI and a SOPS `.env` made by the real sops
//! (doco-cd's test file) are decrypted with `--age-key-file`; the container receives the
//! values; no `berth apply -vv` output shows them. Then `.env.age` is re-encrypted to another
//! key: the apply fails at that file and the running container is left as it was.

mod support {
    pub mod tier;
    pub mod world;
}

use std::path::Path;
use std::process::Command;

use support::tier::require_tool;
use support::world::{TestProject, docker};

/// doco-cd's public test key, the recipient of the real-sops file below.
const DOCO_CD_KEY: &str =
    "AGE-SECRET-KEY-1U2W28TTH2KSRD0K0J36U93S2C5UW4RXRYGGQ8NPGCDG7RKFCT5SQEKNGQK";
/// Written by sops 3.9.0 (doco-cd's `internal/encryption/testdata/encrypted.env`); decrypts
/// to `THIS_IS_ENCRYPTED=yes`.
const SOPS_ENV: &str = include_str!("../src/desired/secrets/testdata/doco-cd-encrypted.env");

/// A fresh age key pair from the real `age-keygen`: (key file text, recipient).
fn keygen() -> (String, String) {
    let out = Command::new("age-keygen").output().expect("run age-keygen");
    assert!(out.status.success(), "age-keygen failed");
    let text = String::from_utf8(out.stdout).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("age-keygen prints the public key")
        .to_owned();
    (text, recipient)
}

/// Encrypts `plain` to `recipient` with the real `age` CLI into `out` (binary).
fn age_encrypt(plain: &str, recipient: &str, out: &Path) {
    let plain_file = out.with_extension("plain");
    std::fs::write(&plain_file, plain).unwrap();
    let status = Command::new("age")
        .args(["-r", recipient, "-o"])
        .arg(out)
        .arg(&plain_file)
        .status()
        .expect("run age");
    std::fs::remove_file(&plain_file).unwrap();
    assert!(status.success(), "age failed");
}

fn container_env(name: &str) -> String {
    docker(&["inspect", "--format", "{{json .Config.Env}}", name])
}

#[test]
fn decrypted_values_reach_the_container_and_no_output() {
    require_tool("age", "age");
    require_tool("age-keygen", "age");
    let secret = format!("h19s-s3cret-{}", std::process::id());
    let p = TestProject::new(
        "h19s",
        "services:\n  web:\n    image: berth-test-busybox:1\n    command: [sleep, '600']\n    \
         environment:\n      DB_PASSWORD: ${DB_PASSWORD}\n      FROM_SOPS: ${THIS_IS_ENCRYPTED}\n",
    );
    let (key, recipient) = keygen();
    let root = p.dir.parent().unwrap();
    let key_file = root.join("age.key");
    std::fs::write(&key_file, format!("{key}\n{DOCO_CD_KEY}\n")).unwrap();
    age_encrypt(
        &format!("DB_PASSWORD={secret}\n"),
        &recipient,
        &p.dir.join(".env.age"),
    );
    std::fs::write(p.dir.join(".env"), SOPS_ENV).unwrap();
    let data = root.join("data");
    let apply = || {
        p.berth()
            .args(["apply", "-vv", "--timeout", "90s", "--age-key-file"])
            .arg(&key_file)
            .arg("--data-dir")
            .arg(&data)
            .arg(&p.dir)
            .output()
            .unwrap()
    };

    let out = apply();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "apply failed:\n{stdout}\n{stderr}");
    assert!(
        !stdout.contains(&secret) && !stderr.contains(&secret),
        "berth apply -vv shows the decrypted value:\n{stdout}\n{stderr}"
    );
    let container = format!("{}-web-1", p.name);
    let env = container_env(&container);
    assert!(
        env.contains(&format!("DB_PASSWORD={secret}")),
        "the age value reaches the container: {env}"
    );
    assert!(
        env.contains("FROM_SOPS=yes"),
        "the sops value reaches the container: {env}"
    );
    let id = docker(&["inspect", "--format", "{{.Id}}", &container]);

    // Re-encrypted to a key the host does not have: an error at the file, nothing changes.
    let (_, stranger) = keygen();
    age_encrypt(
        "DB_PASSWORD=changed-value\n",
        &stranger,
        &p.dir.join(".env.age"),
    );
    let out = apply();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "apply with an unopenable file succeeded"
    );
    assert!(
        stderr.contains(".env.age: error: none of the age keys in"),
        "the error names the file:\n{stderr}"
    );
    assert_eq!(
        docker(&["inspect", "--format", "{{.Id}}", &container]),
        id,
        "the running container was left alone"
    );
    assert!(container_env(&container).contains(&format!("DB_PASSWORD={secret}")));
}
