//! One SOPS-encrypted value, `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`: parsed and
//! decrypted with the file's 32-byte data key (getsops/sops `aes/cipher.go`).
//!
//! Pure. AES-256-GCM with sops' 32-byte nonce; the additional data is the value's path
//! joined by `:` plus a final `:` (a dotenv key `DB` is `DB:`), or the `lastmodified` time
//! for the MAC. An empty value is stored as is, unencrypted, and decrypts to itself.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Key, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// sops' AES-GCM: AES-256 with a 32-byte nonce.
type SopsGcm = AesGcm<Aes256, U32>;

/// Why a value did not decrypt. No variant carries the value or the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// Not `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`.
    #[error("the value is not in sops' ENC[AES256_GCM,data:…,iv:…,tag:…,type:…] form")]
    Format,
    /// A part is not base64, or has the wrong length.
    #[error("the value's {0} is not valid (bad base64 or length)")]
    Part(&'static str),
    /// The tag did not verify: wrong data key, or the value, its key name or its place changed.
    #[error(
        "the value failed to authenticate: it was changed, moved to another key, or encrypted \
         with another data key"
    )]
    Tag,
    /// The plaintext is not UTF-8 text.
    #[error("the decrypted value is not UTF-8 text")]
    NotText,
    /// A `type:` sops writes but berth does not read.
    #[error("the value has type {0:?}; berth reads str, int, float, bool and comment values")]
    Type(String),
}

/// Decrypts `value` with `key` (the 32-byte data key) and `aad`; an empty value is itself.
/// Returns the plaintext text (numbers and booleans as sops wrote them).
pub fn decrypt(value: &str, key: &[u8; 32], aad: &str) -> Result<String, ValueError> {
    if value.is_empty() {
        return Ok(String::new());
    }
    let parts = parse(value)?;
    let cipher = SopsGcm::new(Key::<SopsGcm>::from_slice(key));
    let mut sealed = parts.data;
    sealed.extend_from_slice(&parts.tag);
    let plain = cipher
        .decrypt(
            Nonce::<U32>::from_slice(&parts.iv),
            Payload {
                msg: &sealed,
                aad: aad.as_bytes(),
            },
        )
        .map_err(|_| ValueError::Tag)?;
    match parts.kind {
        "str" | "int" | "float" | "bool" | "comment" => {
            String::from_utf8(plain).map_err(|_| ValueError::NotText)
        }
        other => Err(ValueError::Type(other.to_owned())),
    }
}

struct Parts<'a> {
    data: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    kind: &'a str,
}

/// Splits `ENC[AES256_GCM,data:D,iv:I,tag:T,type:K]` (what sops' regular expression
/// `^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]` accepts; base64 never holds
/// a comma, so splitting on commas finds the same parts).
fn parse(value: &str) -> Result<Parts<'_>, ValueError> {
    let inner = value
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|v| v.strip_suffix(']'))
        .ok_or(ValueError::Format)?;
    let mut fields = inner.splitn(4, ',');
    let mut field = |name: &str| {
        fields
            .next()
            .and_then(|f| f.strip_prefix(name))
            .and_then(|f| f.strip_prefix(':'))
            .ok_or(ValueError::Format)
    };
    let (data, iv, tag, kind) = (field("data")?, field("iv")?, field("tag")?, field("type")?);
    let b64 = |s: &str, what| STANDARD.decode(s).map_err(|_| ValueError::Part(what));
    let parts = Parts {
        data: b64(data, "data")?,
        iv: b64(iv, "iv")?,
        tag: b64(tag, "tag")?,
        kind,
    };
    // sops writes 32-byte nonces and 16-byte tags; nothing else decrypts here.
    if parts.iv.len() != 32 {
        return Err(ValueError::Part("iv"));
    }
    if parts.tag.len() != 16 {
        return Err(ValueError::Part("tag"));
    }
    Ok(parts)
}

/// Encrypts `plain` as sops does, with a given nonce: for tests that build files.
#[cfg(test)]
pub fn encrypt(plain: &str, key: &[u8; 32], aad: &str, iv: &[u8; 32]) -> String {
    let cipher = SopsGcm::new(Key::<SopsGcm>::from_slice(key));
    let sealed = cipher
        .encrypt(
            Nonce::<U32>::from_slice(iv),
            Payload {
                msg: plain.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .expect("in-memory encryption");
    let (data, tag) = sealed.split_at(sealed.len() - 16);
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:str]",
        STANDARD.encode(data),
        STANDARD.encode(iv),
        STANDARD.encode(tag)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];
    const IV: [u8; 32] = [9; 32];

    #[test]
    fn a_value_round_trips_with_its_path() {
        let enc = encrypt("hunter2", &KEY, "DB:", &IV);
        assert_eq!(decrypt(&enc, &KEY, "DB:").unwrap(), "hunter2");
    }

    #[test]
    fn a_value_moved_to_another_key_fails() {
        let enc = encrypt("hunter2", &KEY, "DB:", &IV);
        assert_eq!(decrypt(&enc, &KEY, "OTHER:"), Err(ValueError::Tag));
        assert_eq!(decrypt(&enc, &[8; 32], "DB:"), Err(ValueError::Tag));
    }

    #[test]
    fn a_tampered_value_fails() {
        let enc = encrypt("hunter2", &KEY, "DB:", &IV);
        // Flip one character of the data.
        let at = enc.find("data:").unwrap() + 5;
        let mut bytes = enc.into_bytes();
        bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(bytes).unwrap();
        assert_eq!(decrypt(&tampered, &KEY, "DB:"), Err(ValueError::Tag));
    }

    #[test]
    fn malformed_values_say_which_part() {
        assert_eq!(decrypt("plain", &KEY, "A:"), Err(ValueError::Format));
        assert_eq!(
            decrypt("ENC[AES256_GCM,data:!!,iv:x,tag:y,type:str]", &KEY, "A:"),
            Err(ValueError::Part("data"))
        );
        let short_iv = "ENC[AES256_GCM,data:AA==,iv:AA==,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]";
        assert_eq!(decrypt(short_iv, &KEY, "A:"), Err(ValueError::Part("iv")));
        assert_eq!(decrypt("", &KEY, "A:").unwrap(), "");
    }

    #[test]
    fn bytes_values_are_refused() {
        let enc = encrypt("x", &KEY, "A:", &IV).replace("type:str", "type:bytes");
        assert_eq!(
            decrypt(&enc, &KEY, "A:"),
            Err(ValueError::Type("bytes".into()))
        );
    }
}
