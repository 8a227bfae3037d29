//! Encrypted env files in the repository: age-encrypted (`*.age`, binary or armored) and
//! SOPS-encrypted dotenv files with age recipients, opened with the host's age keys into the
//! plaintext dotenv text that berth's env-file parser then reads like any `.env`.
//!
//! Pure: bytes and [`AgeKeys`] in, plaintext or positioned errors out. `load` decides which
//! files are read (a project's `.env` and `.env.age`, `--env-dir` files, `env_file:` entries)
//! and hands every decrypted value to `redact`. A file that does not open is an error of its
//! project, so the project keeps its last good state (docs/secrets.md).

mod age_file;
pub mod keys;
mod sops;
mod sops_value;
#[cfg(test)]
mod testdata;

use std::path::Path;

pub use keys::{AgeKeys, KeyError};

/// A file that did not open: what is wrong and, where it applies, the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretError {
    /// 1-based line in the encrypted file (SOPS files), `None` for a whole file (age).
    pub line: Option<u32>,
    /// What is wrong and what to do; never a value or a key.
    pub message: String,
}

impl SecretError {
    fn at(line: u32, message: impl Into<String>) -> Self {
        SecretError {
            line: Some(line),
            message: message.into(),
        }
    }

    fn whole(message: impl Into<String>) -> Self {
        SecretError {
            line: None,
            message: message.into(),
        }
    }
}

/// An opened file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opened {
    /// The plaintext, as dotenv text.
    pub text: String,
    /// Every decrypted value (for redaction; the parsed env values are added by the caller).
    pub values: Vec<String>,
}

/// How a file is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encryption {
    /// Plain text.
    None,
    /// A whole age file (its name ends in `.age`).
    Age,
    /// A SOPS dotenv file (it has `sops_mac=` and `sops_version=` lines).
    Sops,
}

/// How the file at `path` with content `bytes` is encrypted.
pub fn encryption(path: &Path, bytes: &[u8]) -> Encryption {
    if path.extension().is_some_and(|e| e == "age") {
        Encryption::Age
    } else if std::str::from_utf8(bytes).is_ok_and(sops::is_sops_dotenv) {
        Encryption::Sops
    } else {
        Encryption::None
    }
}

/// Opens an encrypted file (`how` from [`encryption`]; `None` is passed through as text).
pub fn open(how: Encryption, bytes: &[u8], keys: &AgeKeys) -> Result<Opened, Vec<SecretError>> {
    match how {
        Encryption::Sops => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| vec![SecretError::whole("the file is not valid UTF-8")])?;
            sops::decrypt(text, keys)
        }
        Encryption::Age => {
            let plain = age_file::decrypt(bytes, keys)
                .map_err(|e| vec![SecretError::whole(e.to_string())])?;
            let text = String::from_utf8(plain).map_err(|_| {
                vec![SecretError::whole(
                    "the decrypted file is not UTF-8 text; an encrypted env file holds KEY=VALUE lines",
                )]
            })?;
            Ok(Opened {
                text,
                values: Vec::new(),
            })
        }
        Encryption::None => Ok(Opened {
            text: String::from_utf8_lossy(bytes).into_owned(),
            values: Vec::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::testdata::{DOCO_CD_ENV, KEY};
    use super::*;

    #[test]
    fn the_kind_comes_from_the_name_or_the_sops_lines() {
        assert_eq!(
            encryption(Path::new("a/.env.age"), b"\0\x01"),
            Encryption::Age
        );
        assert_eq!(
            encryption(Path::new(".env"), DOCO_CD_ENV.as_bytes()),
            Encryption::Sops
        );
        assert_eq!(
            encryption(Path::new(".env"), b"A=1\nsops_mac=x\n"),
            Encryption::None
        );
    }

    #[test]
    fn an_age_file_opens_to_its_text() {
        let enc = age_file::encrypt_for_tests(b"A=1\n", KEY, false);
        let keys = AgeKeys::parse(KEY, "k").unwrap();
        assert_eq!(open(Encryption::Age, &enc, &keys).unwrap().text, "A=1\n");
        let err = open(Encryption::Age, b"A=1\n", &keys).unwrap_err();
        assert_eq!(err[0].line, None);
    }
}
