//! Decrypts an age file (binary or ASCII-armored) with the host's [`AgeKeys`]: a whole
//! `*.age` env file, or the data key a SOPS file keeps for each age recipient.
//!
//! Pure: bytes and keys in, plaintext out. The age crate checks the header MAC and every
//! payload chunk's tag, so a changed byte anywhere is an error, never a wrong plaintext.

use std::io::Read;

use super::keys::AgeKeys;

/// Largest plaintext read from an age file (the loader's own limit for any file).
const MAX_PLAINTEXT: u64 = 10 * 1024 * 1024;

/// Why an age file did not decrypt. No variant carries key or plaintext material.
#[derive(Debug, thiserror::Error)]
pub enum AgeError {
    /// No key was given to berth at all.
    #[error("no age key to decrypt it: give berth --age-key-file FILE or set SOPS_AGE_KEY_FILE")]
    NoKey,
    /// None of the keys opens the file.
    #[error(
        "none of the age keys in {origin} can decrypt it (it is encrypted to other recipients)"
    )]
    NoMatchingKey {
        /// Where the keys came from.
        origin: String,
    },
    /// Encrypted with a passphrase, which berth cannot type.
    #[error("it is encrypted with a passphrase; encrypt it to the host's age recipient instead")]
    Passphrase,
    /// Not an age file, or its header or payload was changed.
    #[error("failed to decrypt it: {0}")]
    Broken(String),
}

/// Decrypts `bytes` (binary or armored age) with `keys`.
pub fn decrypt(bytes: &[u8], keys: &AgeKeys) -> Result<Vec<u8>, AgeError> {
    if keys.is_empty() {
        return Err(AgeError::NoKey);
    }
    let reader = age::armor::ArmoredReader::new(bytes);
    let decryptor =
        age::Decryptor::new_buffered(std::io::BufReader::new(reader)).map_err(|e| broken(&e))?;
    if decryptor.is_scrypt() {
        return Err(AgeError::Passphrase);
    }
    let mut stream = decryptor.decrypt(keys.identities()).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => AgeError::NoMatchingKey {
            origin: keys.origin().unwrap_or("the key file").to_owned(),
        },
        e => broken(&e),
    })?;
    let mut plain = Vec::new();
    (&mut stream)
        .take(MAX_PLAINTEXT + 1)
        .read_to_end(&mut plain)
        .map_err(|e| AgeError::Broken(format!("the payload does not authenticate ({e})")))?;
    if plain.len() as u64 > MAX_PLAINTEXT {
        return Err(AgeError::Broken(
            "the plaintext is larger than 10 MB".to_owned(),
        ));
    }
    Ok(plain)
}

fn broken(e: &age::DecryptError) -> AgeError {
    let why = match e {
        age::DecryptError::InvalidHeader | age::DecryptError::UnknownFormat => {
            "it is not an age file, or its header was changed".to_owned()
        }
        age::DecryptError::InvalidMac => {
            "its header MAC does not match (it was changed)".to_owned()
        }
        age::DecryptError::DecryptionFailed => "the payload does not authenticate".to_owned(),
        age::DecryptError::KeyDecryptionFailed => {
            "the file key does not decrypt (the header was changed)".to_owned()
        }
        other => other.to_string(),
    };
    AgeError::Broken(why)
}

/// Encrypts `plain` to the recipient of `identity` (age's format, armored when asked): for
/// tests that build files.
#[cfg(test)]
pub fn encrypt_for_tests(plain: &[u8], identity: &str, armor: bool) -> Vec<u8> {
    use std::io::Write;
    use std::str::FromStr;
    let id = age::x25519::Identity::from_str(identity).expect("test identity");
    let recipient = id.to_public();
    let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .expect("one recipient");
    let mut out = Vec::new();
    let format = if armor {
        age::armor::Format::AsciiArmor
    } else {
        age::armor::Format::Binary
    };
    let armored = age::armor::ArmoredWriter::wrap_output(&mut out, format).expect("in memory");
    let mut w = enc.wrap_output(armored).expect("in memory");
    w.write_all(plain).expect("in memory");
    w.finish()
        .and_then(|a| a.finish())
        .expect("in-memory encryption");
    out
}

#[cfg(test)]
mod tests {
    use super::super::testdata::{KEY, OTHER_KEY};
    use super::*;

    fn keys(k: &str) -> AgeKeys {
        AgeKeys::parse(k, "keys.txt").unwrap()
    }

    #[test]
    fn binary_and_armored_files_decrypt() {
        for armor in [false, true] {
            let enc = encrypt_for_tests(b"A=1\n", KEY, armor);
            assert_eq!(decrypt(&enc, &keys(KEY)).unwrap(), b"A=1\n");
        }
    }

    #[test]
    fn the_wrong_key_says_so() {
        let enc = encrypt_for_tests(b"A=1\n", KEY, true);
        let err = decrypt(&enc, &keys(OTHER_KEY)).unwrap_err();
        assert!(matches!(err, AgeError::NoMatchingKey { .. }), "{err}");
        assert!(matches!(
            decrypt(&enc, &AgeKeys::default()),
            Err(AgeError::NoKey)
        ));
    }

    #[test]
    fn a_changed_byte_is_an_error_not_a_wrong_plaintext() {
        let enc = encrypt_for_tests(b"SECRET=hunter2\n", KEY, false);
        // The header, the nonce and the last payload byte.
        for at in [20, enc.len() - 40, enc.len() - 1] {
            let mut bad = enc.clone();
            bad[at] ^= 1;
            assert!(
                matches!(decrypt(&bad, &keys(KEY)), Err(AgeError::Broken(_))),
                "byte {at}"
            );
        }
        assert!(matches!(
            decrypt(b"A=1\n", &keys(KEY)),
            Err(AgeError::Broken(_))
        ));
    }
}
