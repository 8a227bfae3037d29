//! A project's compose identity: the `COMPOSE_*` variables that decide its name, files and
//! profiles, read as docker compose reads them.
//!
//! Pure (takes the process environment and the project's parsed `.env`). The loader runs it
//! before parsing, because `COMPOSE_FILE` chooses the files. Like compose, the process
//! environment wins over `.env`; but when the desired-state root holds several projects,
//! berth ignores `COMPOSE_PROJECT_NAME` and `COMPOSE_FILE` from its own environment (they
//! would name every project the same) and reads them from each project's `.env` only.

use std::collections::BTreeMap;

use super::model::NameSource;

/// What the `COMPOSE_*` variables say about one project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// `COMPOSE_PROJECT_NAME`, when set and not empty, with where it was set.
    pub name: Option<(String, NameSource)>,
    /// `COMPOSE_FILE` split by `COMPOSE_PATH_SEPARATOR` (default `:`), relative to the
    /// project directory; `None` when unset.
    pub files: Option<Vec<String>>,
    /// `COMPOSE_PROFILES`, split by `,` (used when no `--profile` is given).
    pub profiles: Vec<String>,
}

/// Reads the identity; `single` is true when the root is this one project.
pub fn read(
    process: &BTreeMap<String, String>,
    dotenv: &BTreeMap<String, String>,
    single: bool,
) -> Identity {
    let from_process = |k: &str| process.get(k).filter(|v| !v.is_empty());
    let from_dotenv = |k: &str| dotenv.get(k).filter(|v| !v.is_empty());
    let name = match (
        single
            .then(|| from_process("COMPOSE_PROJECT_NAME"))
            .flatten(),
        from_dotenv("COMPOSE_PROJECT_NAME"),
    ) {
        (Some(n), _) => Some((n.clone(), NameSource::Environment)),
        (None, Some(n)) => Some((n.clone(), NameSource::DotEnv)),
        (None, None) => None,
    };
    let any = |k: &str| from_process(k).or_else(|| from_dotenv(k));
    let sep = any("COMPOSE_PATH_SEPARATOR")
        .cloned()
        .unwrap_or_else(|| ":".into());
    let file_var = match single.then(|| from_process("COMPOSE_FILE")).flatten() {
        Some(f) => Some(f),
        None => from_dotenv("COMPOSE_FILE"),
    };
    let files = file_var.map(|f| {
        f.split(sep.as_str())
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    });
    let profiles = any("COMPOSE_PROFILES")
        .map(|p| {
            p.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    Identity {
        name,
        files,
        profiles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_environment_wins_over_dotenv_for_one_project_only() {
        let env = m(&[("COMPOSE_PROJECT_NAME", "fromenv")]);
        let dot = m(&[("COMPOSE_PROJECT_NAME", "fromdot")]);
        assert_eq!(
            read(&env, &dot, true).name,
            Some(("fromenv".into(), NameSource::Environment))
        );
        assert_eq!(
            read(&env, &dot, false).name,
            Some(("fromdot".into(), NameSource::DotEnv))
        );
        assert_eq!(read(&env, &m(&[]), false).name, None);
    }

    #[test]
    fn files_split_by_the_separator_and_profiles_by_commas() {
        let dot = m(&[
            ("COMPOSE_FILE", "a.yaml;b.yaml"),
            ("COMPOSE_PATH_SEPARATOR", ";"),
            ("COMPOSE_PROFILES", "x, y,"),
        ]);
        let id = read(&m(&[]), &dot, true);
        assert_eq!(id.files, Some(vec!["a.yaml".into(), "b.yaml".into()]));
        assert_eq!(id.profiles, ["x", "y"]);
        assert_eq!(
            read(&m(&[]), &m(&[("COMPOSE_FILE", "a:b")]), true)
                .files
                .unwrap()
                .len(),
            2
        );
    }
}
