//! The age identities berth decrypts repository secrets with: parsed from an age key file
//! (`age-keygen`'s format) given by `--age-key-file`, `SOPS_AGE_KEY_FILE` or `SOPS_AGE_KEY`.
//!
//! Pure apart from [`AgeKeys::load`], which the command line calls once at start-up. A key
//! never leaves this type: its `Debug` shows how many keys it holds, and error messages name
//! the file and line, never the key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

/// The environment variable naming a key file, as sops reads it.
pub const KEY_FILE_ENV: &str = "SOPS_AGE_KEY_FILE";
/// The environment variable holding keys themselves, as sops reads it.
pub const KEY_ENV: &str = "SOPS_AGE_KEY";

/// A problem with the key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("failed to read the age key file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A line is not an age identity.
    #[error(
        "failed to read the age key file {origin}: line {line} is not an age identity \
         (expected AGE-SECRET-KEY-1…, a # comment or a blank line)"
    )]
    BadLine {
        /// The file, or the environment variable.
        origin: String,
        /// 1-based line.
        line: u32,
    },
    /// No identity in the file.
    #[error("failed to read the age key file {origin}: it holds no AGE-SECRET-KEY-1… line")]
    Empty {
        /// The file, or the environment variable.
        origin: String,
    },
}

/// A set of age X25519 identities. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct AgeKeys {
    identities: Arc<Vec<age::x25519::Identity>>,
    /// Where the keys came from, for messages (a path or an environment variable's name).
    origin: Option<String>,
}

impl AgeKeys {
    /// Parses an age key file's text: one `AGE-SECRET-KEY-1…` a line, `#` comments and blank
    /// lines skipped. `origin` names the file in messages.
    pub fn parse(text: &str, origin: &str) -> Result<AgeKeys, KeyError> {
        let mut identities = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity =
                age::x25519::Identity::from_str(line).map_err(|_| KeyError::BadLine {
                    origin: origin.to_owned(),
                    line: u32::try_from(i + 1).unwrap_or(u32::MAX),
                })?;
            identities.push(identity);
        }
        if identities.is_empty() {
            return Err(KeyError::Empty {
                origin: origin.to_owned(),
            });
        }
        Ok(AgeKeys {
            identities: Arc::new(identities),
            origin: Some(origin.to_owned()),
        })
    }

    /// The keys berth runs with: `file` (`--age-key-file`) if given, else the file
    /// `SOPS_AGE_KEY_FILE` names, else the keys in `SOPS_AGE_KEY`; none when none is set.
    /// `env` is the process environment.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<AgeKeys, KeyError> {
        let file = file.map(Path::to_path_buf).or_else(|| {
            env(KEY_FILE_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        if let Some(path) = file {
            let text = std::fs::read_to_string(&path).map_err(|source| KeyError::Read {
                path: path.clone(),
                source,
            })?;
            return AgeKeys::parse(&text, &path.display().to_string());
        }
        match env(KEY_ENV).filter(|v| !v.trim().is_empty()) {
            Some(text) => AgeKeys::parse(&text, KEY_ENV),
            None => Ok(AgeKeys::default()),
        }
    }

    /// Whether no key was given.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// Where the keys came from, for messages.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The identities, as the age crate takes them.
    pub(super) fn identities(&self) -> impl Iterator<Item = &dyn age::Identity> {
        self.identities.iter().map(|i| i as &dyn age::Identity)
    }
}

impl fmt::Debug for AgeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgeKeys({} keys", self.identities.len())?;
        if let Some(o) = &self.origin {
            write!(f, " from {o}")?;
        }
        write!(f, ")")
    }
}

#[cfg(test)]
mod tests {
    use super::super::testdata::KEY;
    use super::*;

    #[test]
    fn a_key_file_skips_comments_and_blank_lines() {
        let text = format!("# created: 2025-06-28\n# public key: age1…\n\n{KEY}\n");
        let keys = AgeKeys::parse(&text, "k.txt").unwrap();
        assert_eq!(format!("{keys:?}"), "AgeKeys(1 keys from k.txt)");
    }

    #[test]
    fn a_bad_line_is_named_by_number_and_never_shown() {
        let err = AgeKeys::parse("# c\nAGE-SECRET-KEY-1NOTAKEY\n", "k.txt").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("line 2 is not an age identity"), "{text}");
        assert!(!text.contains("NOTAKEY"), "{text}");
    }

    #[test]
    fn an_empty_file_is_refused() {
        assert!(matches!(
            AgeKeys::parse("# nothing\n", "k.txt"),
            Err(KeyError::Empty { .. })
        ));
    }

    #[test]
    fn the_flag_wins_over_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keys.txt");
        std::fs::write(&file, KEY).unwrap();
        let env = |k: &str| match k {
            KEY_FILE_ENV => Some("/nonexistent/keys.txt".to_owned()),
            _ => None,
        };
        assert!(!AgeKeys::load(Some(&file), &env).unwrap().is_empty());
        assert!(matches!(
            AgeKeys::load(None, &env),
            Err(KeyError::Read { .. })
        ));
        let inline = |k: &str| (k == KEY_ENV).then(|| KEY.to_owned());
        let keys = AgeKeys::load(None, &inline).unwrap();
        assert_eq!(keys.origin(), Some(KEY_ENV));
        assert!(AgeKeys::load(None, &|_| None).unwrap().is_empty());
    }
}
