//! Reading the environment: every variable is parsed up front, and a value that does not parse
//! is an error that names the variable (exit 2), never a silent default.

use std::collections::HashMap;
use std::time::Duration;

/// The process environment, captured once so parsing is testable.
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        Self { vars }
    }

    /// The variable's value; unset and empty are the same.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `APP_VERSION`, or `dev` when unset.
    pub fn version(&self) -> &str {
        self.get("APP_VERSION").unwrap_or("dev")
    }
}

/// A variable parsed with `parse`, or `default` when unset.
pub fn env_or<T>(
    env: &Env,
    name: &str,
    default: T,
    parse: fn(&str, &str) -> Result<T, String>,
) -> Result<T, String> {
    env.get(name)
        .map_or(Ok(default), |value| parse(name, value))
}

/// A boolean switch: `1`/`true`/`yes` or `0`/`false`/`no`; unset is false.
pub fn env_flag(env: &Env, name: &str) -> Result<bool, String> {
    env_or(env, name, false, |name, value| {
        match value.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" => Ok(true),
            "0" | "false" | "no" => Ok(false),
            _ => Err(format!("{name}={value:?}: expected 1 or 0")),
        }
    })
}

/// A duration in seconds (decimals allowed), or `None` when unset.
pub fn env_seconds(env: &Env, name: &str) -> Result<Option<Duration>, String> {
    env.get(name)
        .map(|value| parse_seconds(name, value))
        .transpose()
}

/// Seconds as a decimal number: `0`, `2`, `0.5`. At most a year, so deadlines cannot overflow.
pub fn parse_seconds(name: &str, value: &str) -> Result<Duration, String> {
    const MAX: f64 = 365.0 * 24.0 * 3600.0;
    match value.trim().parse::<f64>() {
        Ok(s) if (0.0..=MAX).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "{name}={value:?}: expected seconds between 0 and {MAX}"
        )),
    }
}

/// A process exit code, 0 to 255.
pub fn parse_exit_code(name: &str, value: &str) -> Result<u8, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{name}={value:?}: expected an exit code from 0 to 255"))
}

/// A TCP port, 1 to 65535.
pub fn parse_port(name: &str, value: &str) -> Result<u16, String> {
    match value.trim().parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(format!("{name}={value:?}: expected a port from 1 to 65535")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn seconds_accept_decimals_and_reject_garbage() {
        assert_eq!(parse_seconds("X", "0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds("X", "3"), Ok(Duration::from_secs(3)));
        assert!(parse_seconds("X", "-1").is_err());
        assert!(parse_seconds("X", "NaN").is_err());
        assert!(parse_seconds("X", "1e30").is_err());
        assert!(
            parse_seconds("X", "soon")
                .unwrap_err()
                .starts_with("X=\"soon\"")
        );
    }

    #[test]
    fn flags_are_strict() {
        assert_eq!(env_flag(&env(&[("F", "1")]), "F"), Ok(true));
        assert_eq!(env_flag(&env(&[("F", "0")]), "F"), Ok(false));
        assert_eq!(env_flag(&env(&[("F", "")]), "F"), Ok(false));
        assert_eq!(env_flag(&env(&[]), "F"), Ok(false));
        assert!(env_flag(&env(&[("F", "maybe")]), "F").is_err());
    }

    #[test]
    fn version_defaults_to_dev() {
        assert_eq!(env(&[]).version(), "dev");
        assert_eq!(env(&[("APP_VERSION", "2")]).version(), "2");
    }

    #[test]
    fn exit_codes_and_ports_are_bounded() {
        assert_eq!(parse_exit_code("E", "3"), Ok(3));
        assert!(parse_exit_code("E", "256").is_err());
        assert_eq!(parse_port("P", "8080"), Ok(8080));
        assert!(parse_port("P", "0").is_err());
        assert!(parse_port("P", "70000").is_err());
    }
}
