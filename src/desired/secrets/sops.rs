//! SOPS-encrypted dotenv files (the format `sops --encrypt x.env` writes, as doco-cd and Flux
//! users keep them): parsed, their data key opened with the host's age keys, every value
//! decrypted and the file's MAC verified (getsops/sops `stores/dotenv/store.go`, `sops.go`).
//!
//! Pure. The format: lines split at `\n`; blank lines skipped; `#…` comments (berth drops
//! them); `KEY=VALUE` split at the first `=`, with `\n` in a value standing for a newline;
//! keys starting `sops_` hold the metadata, flattened (`sops_age__list_0__map_enc`). Each
//! value's additional data is `KEY:`. The MAC is SHA-512 over the plaintext values in file
//! order (only the encrypted ones under `mac_only_encrypted`, after a fixed prefix), as
//! upper-case hex, stored encrypted with the `lastmodified` time as additional data.
//!
//! The result is the plaintext dotenv text `sops --decrypt` would print, laid on the same
//! lines as the encrypted file (metadata and comments become blank lines), so that berth's
//! env-file parser reads it like any `.env` and its positions point into the real file.

use std::collections::BTreeMap;

use sha2::{Digest, Sha512};
use subtle::ConstantTimeEq;

use super::age_file::{self, AgeError};
use super::keys::AgeKeys;
use super::sops_value::{self, ValueError};
use super::{Opened, SecretError};

/// sops' `MACOnlyEncryptedInitialization`: hashed first when `mac_only_encrypted` is set.
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// Whether `text` is a SOPS dotenv file: it has the `sops_mac=` and `sops_version=` lines
/// sops always writes.
pub fn is_sops_dotenv(text: &str) -> bool {
    let mut mac = false;
    let mut version = false;
    for line in text.split('\n') {
        mac |= line.starts_with("sops_mac=");
        version |= line.starts_with("sops_version=");
    }
    mac && version
}

/// One `KEY=VALUE` of the data.
struct Entry<'a> {
    key: &'a str,
    value: String,
    line: u32,
}

/// Decrypts a SOPS dotenv file with `keys`; every problem, with its line, on failure.
pub fn decrypt(text: &str, keys: &AgeKeys) -> Result<Opened, Vec<SecretError>> {
    let mut errors = Vec::new();
    let mut entries = Vec::new();
    // Metadata by flattened name (without `sops_`): value and line.
    let mut meta: BTreeMap<&str, (String, u32)> = BTreeMap::new();
    let mut lines = 0;
    for (i, raw) in text.split('\n').enumerate() {
        let line = u32::try_from(i + 1).unwrap_or(u32::MAX);
        lines = i + 1;
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let Some((key, value)) = raw.split_once('=') else {
            errors.push(SecretError::at(
                line,
                "not a KEY=VALUE line of a sops dotenv file",
            ));
            continue;
        };
        let value = value.replace("\\n", "\n");
        match key.strip_prefix("sops_") {
            Some(name) => {
                meta.insert(name, (value, line));
            }
            None => entries.push(Entry { key, value, line }),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let m = Metadata::read(&meta)?;
    let data_key = data_key(&meta, keys)?;
    let mut hash = Sha512::new();
    if m.mac_only_encrypted {
        hash.update(MAC_ONLY_ENCRYPTED_INIT);
    }
    let mut plain: Vec<(usize, &str, String)> = Vec::with_capacity(entries.len());
    for e in &entries {
        let encrypted = m.should_be_encrypted(e.key);
        let value = if encrypted {
            match sops_value::decrypt(&e.value, &data_key, &format!("{}:", e.key)) {
                Ok(v) => v,
                Err(err) => {
                    errors.push(value_error(e, &err));
                    continue;
                }
            }
        } else {
            e.value.clone()
        };
        if !m.mac_only_encrypted || encrypted {
            hash.update(value.as_bytes());
        }
        plain.push((e.line as usize, e.key, value));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let computed = format!("{:X}", hash.finalize());
    let (mac, mac_line) = &m.mac;
    let stored =
        sops_value::decrypt(mac, &data_key, &go_rfc3339(&m.lastmodified)).map_err(|e| {
            vec![SecretError::at(
                *mac_line,
                format!("failed to decrypt the file's MAC (sops_mac): {e}"),
            )]
        })?;
    if !bool::from(stored.as_bytes().ct_eq(computed.as_bytes())) {
        return Err(vec![SecretError::at(
            *mac_line,
            "the file's MAC does not match its values: it was changed after sops wrote it \
             (a value or key added, removed, reordered or edited by hand); re-encrypt it with sops",
        )]);
    }
    // The plaintext on the encrypted file's lines, as `sops --decrypt` prints each entry.
    let mut out = vec![String::new(); lines];
    let mut values = Vec::with_capacity(plain.len());
    for (line, key, value) in plain {
        out[line - 1] = format!("{key}={}", value.replace('\n', "\\n"));
        values.push(value);
    }
    Ok(Opened {
        text: out.join("\n"),
        values,
    })
}

fn value_error(e: &Entry<'_>, err: &ValueError) -> SecretError {
    let hint = match err {
        ValueError::Format => {
            " (sops encrypts every value unless sops_unencrypted_suffix or a regex says \
             otherwise; a plain value here was added by hand)"
        }
        _ => "",
    };
    SecretError::at(
        e.line,
        format!("failed to decrypt the value of {}: {err}{hint}", e.key),
    )
}

/// The metadata berth needs.
struct Metadata {
    lastmodified: String,
    mac: (String, u32),
    mac_only_encrypted: bool,
    unencrypted_suffix: Option<String>,
    encrypted_suffix: Option<String>,
    unencrypted_regex: Option<regex::Regex>,
    encrypted_regex: Option<regex::Regex>,
}

impl Metadata {
    fn read(meta: &BTreeMap<&str, (String, u32)>) -> Result<Metadata, Vec<SecretError>> {
        let mut errors = Vec::new();
        let first_line = meta.values().map(|(_, l)| *l).min().unwrap_or(1);
        let mut required = |name: &str| match meta.get(name) {
            Some(v) => Some(v.clone()),
            None => {
                errors.push(SecretError::at(
                    first_line,
                    format!("the sops metadata has no sops_{name} line"),
                ));
                None
            }
        };
        let lastmodified = required("lastmodified");
        let mac = required("mac");
        required("version");
        for unsupported in [
            "shamir_threshold",
            "unencrypted_comment_regex",
            "encrypted_comment_regex",
        ] {
            if let Some((_, line)) = meta.get(unsupported) {
                errors.push(SecretError::at(
                    *line,
                    format!("sops_{unsupported} is not supported by berth"),
                ));
            }
        }
        if let Some((_, line)) = meta
            .iter()
            .find(|(k, _)| k.starts_with("key_groups"))
            .map(|(_, v)| v)
        {
            errors.push(SecretError::at(
                *line,
                "sops key groups (Shamir secret sharing) are not supported by berth; encrypt \
                 the file to age recipients without key groups",
            ));
        }
        let text = |name: &str| {
            meta.get(name)
                .map(|(v, _)| v.clone())
                .filter(|v| !v.is_empty())
        };
        let mut regex = |name: &str| {
            let (pattern, line) = meta.get(name).filter(|(v, _)| !v.is_empty())?;
            match regex::Regex::new(pattern) {
                Ok(r) => Some(r),
                Err(_) => {
                    errors.push(SecretError::at(
                        *line,
                        format!("sops_{name} is not a regular expression berth can read"),
                    ));
                    None
                }
            }
        };
        let unencrypted_regex = regex("unencrypted_regex");
        let encrypted_regex = regex("encrypted_regex");
        let m = Metadata {
            lastmodified: lastmodified.map(|(v, _)| v).unwrap_or_default(),
            mac: mac.unwrap_or_default(),
            mac_only_encrypted: text("mac_only_encrypted").is_some_and(|v| v == "true"),
            unencrypted_suffix: text("unencrypted_suffix"),
            encrypted_suffix: text("encrypted_suffix"),
            unencrypted_regex,
            encrypted_regex,
        };
        if errors.is_empty() {
            Ok(m)
        } else {
            Err(errors)
        }
    }

    /// sops' `shouldBeEncrypted` for a dotenv key (a path of one element).
    fn should_be_encrypted(&self, key: &str) -> bool {
        let mut encrypted = true;
        if let Some(s) = &self.unencrypted_suffix
            && key.ends_with(s.as_str())
        {
            encrypted = false;
        }
        if let Some(s) = &self.encrypted_suffix {
            encrypted = key.ends_with(s.as_str());
        }
        if let Some(r) = &self.unencrypted_regex
            && r.is_match(key)
        {
            encrypted = false;
        }
        if let Some(r) = &self.encrypted_regex {
            encrypted = r.is_match(key);
        }
        encrypted
    }
}

/// One age recipient's entry: its encrypted data key (value and line) and its recipient.
type Stanza<'a> = (Option<&'a (String, u32)>, Option<&'a str>);

/// Opens the data key with the first age recipient whose stanza a key of ours decrypts.
fn data_key(
    meta: &BTreeMap<&str, (String, u32)>,
    keys: &AgeKeys,
) -> Result<[u8; 32], Vec<SecretError>> {
    // `age__list_N__map_enc` and `…_recipient`, in list order.
    let mut stanzas: BTreeMap<u32, Stanza<'_>> = BTreeMap::new();
    for (name, v) in meta {
        let Some(rest) = name.strip_prefix("age__list_") else {
            continue;
        };
        let Some((n, field)) = rest.split_once("__map_") else {
            continue;
        };
        let Ok(n) = n.parse::<u32>() else { continue };
        let slot = stanzas.entry(n).or_default();
        match field {
            "enc" => slot.0 = Some(v),
            "recipient" => slot.1 = Some(v.0.as_str()),
            _ => {}
        }
    }
    let first_line = meta.values().map(|(_, l)| *l).min().unwrap_or(1);
    if stanzas.values().all(|(enc, _)| enc.is_none()) {
        let others: Vec<&str> = ["pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"]
            .into_iter()
            .filter(|k| meta.keys().any(|m| m.starts_with(&format!("{k}__list_"))))
            .collect();
        let why = if others.is_empty() {
            "the file has no age recipient (no sops_age__list_N__map_enc line)".to_owned()
        } else {
            format!(
                "the file is encrypted only for {} keys; berth decrypts with age keys: add the \
                 host's age recipient (sops updatekeys)",
                others.join(", ")
            )
        };
        return Err(vec![SecretError::at(first_line, why)]);
    }
    let mut first_error: Option<(AgeError, u32)> = None;
    let mut recipients = Vec::new();
    for (enc, recipient) in stanzas.values() {
        let Some((enc, line)) = enc else { continue };
        recipients.extend(recipient.map(str::to_owned));
        match age_file::decrypt(enc.as_bytes(), keys) {
            Ok(key) => match <[u8; 32]>::try_from(key.as_slice()) {
                Ok(k) => return Ok(k),
                Err(_) => {
                    first_error.get_or_insert((
                        AgeError::Broken("the data key is not 32 bytes".into()),
                        *line,
                    ));
                }
            },
            Err(e @ AgeError::NoKey) => return Err(vec![SecretError::at(*line, e.to_string())]),
            Err(AgeError::NoMatchingKey { .. }) => {}
            Err(e) => {
                first_error.get_or_insert((e, *line));
            }
        }
    }
    Err(vec![match first_error {
        Some((e, line)) => SecretError::at(line, format!("failed to open the sops data key: {e}")),
        None => SecretError::at(
            first_line,
            format!(
                "none of the age keys in {} is a recipient of this file (its recipients: {})",
                keys.origin().unwrap_or("the key file"),
                recipients.join(", ")
            ),
        ),
    }])
}

/// `lastmodified` as Go's `time.Format(time.RFC3339)` prints what sops parsed: without
/// fractional seconds, and `Z` for a zero offset.
fn go_rfc3339(t: &str) -> String {
    let t = t.trim();
    let (date_time, zone) = match t.rfind(['Z', '+', '-']) {
        Some(i) if i > 10 => t.split_at(i),
        _ => return t.to_owned(),
    };
    let date_time = date_time.split('.').next().unwrap_or(date_time);
    let zone = match zone {
        "+00:00" | "-00:00" => "Z",
        z => z,
    };
    format!("{date_time}{zone}")
}

/// Encrypts a plaintext dotenv file as sops does (one age recipient, the given time): for
/// tests, beside the real sops file they also read.
#[cfg(test)]
pub fn encrypt_for_tests(plain: &[(&str, &str)], identity: &str, lastmodified: &str) -> String {
    let data_key = [42u8; 32];
    let mut iv = [1u8; 32];
    let mut out = String::new();
    let mut hash = Sha512::new();
    for (k, v) in plain {
        iv[0] = iv[0].wrapping_add(1);
        hash.update(v.as_bytes());
        let enc = if v.is_empty() {
            String::new()
        } else {
            sops_value::encrypt(v, &data_key, &format!("{k}:"), &iv)
        };
        out.push_str(&format!("{k}={enc}\n"));
    }
    let stanza = age_file::encrypt_for_tests(&data_key, identity, true);
    let stanza = String::from_utf8(stanza).expect("armor is text");
    out.push_str(&format!(
        "sops_age__list_0__map_enc={}\n",
        stanza.replace('\n', "\\n")
    ));
    out.push_str("sops_age__list_0__map_recipient=age1test\n");
    out.push_str(&format!("sops_lastmodified={lastmodified}\n"));
    let mac = sops_value::encrypt(
        &format!("{:X}", hash.finalize()),
        &data_key,
        lastmodified,
        &[3; 32],
    );
    out.push_str(&format!("sops_mac={mac}\n"));
    out.push_str("sops_unencrypted_suffix=_unencrypted\nsops_version=3.9.0\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{DOCO_CD_ENV, KEY, OTHER_KEY};
    use super::*;

    fn keys(k: &str) -> AgeKeys {
        AgeKeys::parse(k, "keys.txt").unwrap()
    }

    fn errors(text: &str, k: &AgeKeys) -> Vec<(Option<u32>, String)> {
        decrypt(text, k)
            .map(|o| o.text)
            .expect_err("should fail")
            .into_iter()
            .map(|e| (e.line, e.message))
            .collect()
    }

    #[test]
    fn a_file_written_by_the_real_sops_decrypts_and_its_mac_verifies() {
        assert!(is_sops_dotenv(DOCO_CD_ENV));
        let opened = decrypt(DOCO_CD_ENV, &keys(KEY)).unwrap();
        assert_eq!(opened.text, "THIS_IS_ENCRYPTED=yes\n\n\n\n\n\n\n");
        assert_eq!(opened.values, ["yes"]);
    }

    #[test]
    fn a_value_changed_in_the_real_file_fails_its_mac() {
        // An unencrypted entry added by hand: sops would refuse the file too.
        let added = format!("EXTRA_unencrypted=1\n{DOCO_CD_ENV}");
        let errs = errors(&added, &keys(KEY));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].0, Some(6));
        assert!(errs[0].1.contains("MAC does not match"), "{errs:?}");
    }

    #[test]
    fn the_wrong_key_names_the_recipients() {
        let errs = errors(DOCO_CD_ENV, &keys(OTHER_KEY));
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].1.contains(
                "is a recipient of this file (its recipients: \
                 age1g3lclrkw2j0fkvq8a9jgvhglu408378tmwj84uv05qkhvax2cdrqcwqvmx)"
            ),
            "{errs:?}"
        );
        let errs = errors(DOCO_CD_ENV, &AgeKeys::default());
        assert_eq!(errs[0].0, Some(2));
        assert!(errs[0].1.contains("--age-key-file"), "{errs:?}");
    }

    #[test]
    fn own_files_round_trip_with_lines_kept() {
        let text = encrypt_for_tests(
            &[
                ("DB_PASSWORD", "hunter2 # not a comment"),
                ("EMPTY", ""),
                ("MULTI", "a\nb"),
            ],
            KEY,
            "2026-01-02T03:04:05Z",
        );
        let opened = decrypt(&text, &keys(KEY)).unwrap();
        let lines: Vec<&str> = opened.text.lines().take(3).collect();
        assert_eq!(
            lines,
            [
                "DB_PASSWORD=hunter2 # not a comment",
                "EMPTY=",
                "MULTI=a\\nb"
            ]
        );
    }

    #[test]
    fn a_swapped_value_fails_at_its_line() {
        let text = encrypt_for_tests(
            &[("A", "first"), ("B", "second")],
            KEY,
            "2026-01-02T03:04:05Z",
        );
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        let a = lines[0].split_once('=').unwrap().1.to_owned();
        let b = lines[1].split_once('=').unwrap().1.to_owned();
        lines[0] = format!("A={b}");
        lines[1] = format!("B={a}");
        let errs = errors(&lines.join("\n"), &keys(KEY));
        assert_eq!(
            errs.iter().map(|e| e.0).collect::<Vec<_>>(),
            [Some(1), Some(2)]
        );
        assert!(
            errs[0]
                .1
                .starts_with("failed to decrypt the value of A: the value failed to authenticate")
        );
    }

    #[test]
    fn reordered_entries_fail_the_mac() {
        let text = encrypt_for_tests(
            &[("A", "first"), ("B", "second")],
            KEY,
            "2026-01-02T03:04:05Z",
        );
        let mut lines: Vec<&str> = text.lines().collect();
        lines.swap(0, 1);
        let errs = errors(&lines.join("\n"), &keys(KEY));
        assert!(errs[0].1.contains("MAC does not match"), "{errs:?}");
    }

    #[test]
    fn a_changed_lastmodified_fails_the_mac_decryption() {
        let text = encrypt_for_tests(&[("A", "first")], KEY, "2026-01-02T03:04:05Z")
            .replace("2026-01-02T03:04:05Z", "2026-01-02T03:04:06Z");
        let errs = errors(&text, &keys(KEY));
        assert!(
            errs[0].1.starts_with("failed to decrypt the file's MAC"),
            "{errs:?}"
        );
    }

    #[test]
    fn a_plain_value_added_by_hand_is_positioned() {
        let text = format!(
            "{}ADDED=plain\n",
            encrypt_for_tests(&[("A", "first")], KEY, "2026-01-02T03:04:05Z")
        );
        let errs = errors(&text, &keys(KEY));
        assert_eq!(errs[0].0, Some(8), "{errs:?}");
        assert!(
            errs[0]
                .1
                .starts_with("failed to decrypt the value of ADDED: the value is not in sops'")
        );
    }

    #[test]
    fn format_errors_are_positioned() {
        let errs = errors(
            "A=1\nno equals sign\nsops_mac=x\nsops_version=3",
            &keys(KEY),
        );
        assert_eq!(
            errs,
            [(
                Some(2),
                "not a KEY=VALUE line of a sops dotenv file".to_owned()
            )]
        );
        let errs = errors("A=1\nsops_mac=x\nsops_version=3", &keys(KEY));
        assert_eq!(
            errs,
            [(
                Some(2),
                "the sops metadata has no sops_lastmodified line".to_owned()
            )]
        );
        let errs = errors(
            "A=1\nsops_mac=x\nsops_lastmodified=t\nsops_pgp__list_0__map_enc=x\nsops_version=3",
            &keys(KEY),
        );
        assert!(
            errs[0].1.contains("encrypted only for pgp keys"),
            "{errs:?}"
        );
    }

    #[test]
    fn which_keys_are_encrypted_follows_the_metadata() {
        let regex = |name: &str, p: &str| {
            let mut meta = BTreeMap::new();
            meta.insert(name, (p.to_owned(), 1));
            Metadata::read(
                &meta
                    .into_iter()
                    .chain([
                        ("lastmodified", ("t".to_owned(), 1)),
                        ("mac", ("m".to_owned(), 1)),
                        ("version", ("3".to_owned(), 1)),
                    ])
                    .collect(),
            )
            .unwrap()
        };
        let m = regex("unencrypted_suffix", "_unencrypted");
        assert!(m.should_be_encrypted("A") && !m.should_be_encrypted("A_unencrypted"));
        let m = regex("encrypted_regex", "^(PASS|TOKEN)");
        assert!(m.should_be_encrypted("PASSWORD") && !m.should_be_encrypted("HOST"));
        let m = regex("unencrypted_regex", "^PUBLIC_");
        assert!(!m.should_be_encrypted("PUBLIC_URL") && m.should_be_encrypted("KEY"));
    }

    #[test]
    fn lastmodified_is_formatted_as_go_prints_it() {
        assert_eq!(go_rfc3339("2025-06-28T16:03:31Z"), "2025-06-28T16:03:31Z");
        assert_eq!(
            go_rfc3339("2025-06-28T16:03:31.123Z"),
            "2025-06-28T16:03:31Z"
        );
        assert_eq!(
            go_rfc3339("2025-06-28T16:03:31+00:00"),
            "2025-06-28T16:03:31Z"
        );
        assert_eq!(
            go_rfc3339("2025-06-28T18:03:31+02:00"),
            "2025-06-28T18:03:31+02:00"
        );
    }
}
