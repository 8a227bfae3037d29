//! Encrypted env files through the whole loader: a SOPS `.env` written by the real sops, an
//! age `.env.age`, a SOPS `env_file:` and an `--env-dir` age file feed interpolation and the
//! environment; the wrong key or a tampered file is a positioned error and no state. No Docker.

use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use berth::desired::secrets::AgeKeys;
use berth::desired::{self, LoadOptions};

/// doco-cd's public test key; the real-sops file below is encrypted to it.
const KEY: &str = "AGE-SECRET-KEY-1U2W28TTH2KSRD0K0J36U93S2C5UW4RXRYGGQ8NPGCDG7RKFCT5SQEKNGQK";
/// sops' public `mockOtherIdentity`: not a recipient of anything here.
const OTHER_KEY: &str =
    "AGE-SECRET-KEY-1432K5YRNSC44GC4986NXMX6GVZ52WTMT9C79CLUVWYY4DKDHD5JSNDP4MC";
/// Written by sops 3.9.0 (doco-cd's `internal/encryption/testdata/encrypted.env`); decrypts
/// to `THIS_IS_ENCRYPTED=yes`.
const SOPS_ENV: &str = include_str!("../src/desired/secrets/testdata/doco-cd-encrypted.env");

fn age_encrypt(plain: &str, armor: bool) -> Vec<u8> {
    let id = age::x25519::Identity::from_str(KEY).unwrap();
    let recipient = id.to_public();
    let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .unwrap();
    let mut out = Vec::new();
    let format = if armor {
        age::armor::Format::AsciiArmor
    } else {
        age::armor::Format::Binary
    };
    let armored = age::armor::ArmoredWriter::wrap_output(&mut out, format).unwrap();
    let mut w = enc.wrap_output(armored).unwrap();
    w.write_all(plain.as_bytes()).unwrap();
    w.finish().unwrap().finish().unwrap();
    out
}

fn opts(key: Option<&str>) -> LoadOptions {
    LoadOptions {
        age_keys: key.map_or_else(AgeKeys::default, |k| AgeKeys::parse(k, "keys.txt").unwrap()),
        ..LoadOptions::default()
    }
}

fn project(dir: &Path) {
    std::fs::write(
        dir.join("compose.yaml"),
        "services:\n  web:\n    image: busybox\n    env_file: [secrets.env]\n    environment:\n      \
         FROM_SOPS: ${THIS_IS_ENCRYPTED}\n      FROM_AGE: ${DB_PASSWORD}\n",
    )
    .unwrap();
    std::fs::write(dir.join(".env"), SOPS_ENV).unwrap();
    std::fs::write(
        dir.join(".env.age"),
        age_encrypt("DB_PASSWORD=s3cret-from-age\n", false),
    )
    .unwrap();
    std::fs::write(dir.join("secrets.env"), SOPS_ENV).unwrap();
}

#[test]
fn encrypted_files_feed_interpolation_and_the_environment() {
    let t = tempfile::tempdir().unwrap();
    project(t.path());
    let loaded = desired::load(t.path(), &opts(Some(KEY)));
    let state = loaded
        .state
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics));
    let web = &state.projects.values().next().unwrap().services["web"];
    let env = |k: &str| web.environment[k].value.clone();
    assert_eq!(env("FROM_SOPS"), "yes");
    assert_eq!(env("FROM_AGE"), "s3cret-from-age");
    assert_eq!(env("THIS_IS_ENCRYPTED"), "yes");
    assert!(web.environment["THIS_IS_ENCRYPTED"].secret);
    // Every output masks a decrypted value.
    assert_eq!(
        berth::redact::text("password s3cret-from-age"),
        "password [redacted]"
    );
}

#[test]
fn an_env_dir_age_file_wins_over_the_repository() {
    let t = tempfile::tempdir().unwrap();
    let env_dir = tempfile::tempdir().unwrap();
    // The project is named after its directory: shop.
    let shop = t.path().join("shop");
    std::fs::create_dir(&shop).unwrap();
    project(&shop);
    std::fs::write(
        env_dir.path().join("shop.env.age"),
        age_encrypt("DB_PASSWORD=host-wins-here\n", true),
    )
    .unwrap();
    let loaded = desired::load(
        &shop,
        &LoadOptions {
            env_dir: Some(env_dir.path().to_path_buf()),
            ..opts(Some(KEY))
        },
    );
    let state = loaded
        .state
        .unwrap_or_else(|| panic!("{}", loaded.diagnostics));
    let web = &state.projects.values().next().unwrap().services["web"];
    assert_eq!(web.environment["FROM_AGE"].value, "host-wins-here");
}

#[test]
fn the_wrong_key_is_an_error_at_the_file_and_line() {
    let t = tempfile::tempdir().unwrap();
    project(t.path());
    let loaded = desired::load(t.path(), &opts(Some(OTHER_KEY)));
    assert!(loaded.state.is_none());
    let text = loaded.diagnostics.to_string();
    assert!(
        text.contains(
            ".env:2:1: error: none of the age keys in keys.txt is a recipient of this file"
        ),
        "{text}"
    );
    assert!(
        text.contains(".env.age: error: none of the age keys in keys.txt can decrypt it"),
        "{text}"
    );
    assert!(text.contains("secrets.env:2:1: error:"), "{text}");
}

#[test]
fn no_key_says_how_to_give_one() {
    let t = tempfile::tempdir().unwrap();
    project(t.path());
    let loaded = desired::load(t.path(), &opts(None));
    assert!(loaded.state.is_none());
    let text = loaded.diagnostics.to_string();
    assert!(text.contains("--age-key-file"), "{text}");
}

#[test]
fn a_tampered_file_changes_nothing() {
    let t = tempfile::tempdir().unwrap();
    project(t.path());
    // A value edited by hand: a plain line sops would never write.
    std::fs::write(t.path().join(".env"), format!("ADDED=1\n{SOPS_ENV}")).unwrap();
    let loaded = desired::load(t.path(), &opts(Some(KEY)));
    assert!(loaded.state.is_none());
    let text = loaded.diagnostics.to_string();
    assert!(
        text.contains(".env:1:1: error: failed to decrypt the value of ADDED"),
        "{text}"
    );
    // A flipped byte in the age file.
    project(t.path());
    let mut bytes = std::fs::read(t.path().join(".env.age")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(t.path().join(".env.age"), bytes).unwrap();
    let loaded = desired::load(t.path(), &opts(Some(KEY)));
    assert!(loaded.state.is_none());
    let text = loaded.diagnostics.to_string();
    assert!(
        text.contains(".env.age: error: failed to decrypt it"),
        "{text}"
    );
}
