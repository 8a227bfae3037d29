//! Mounts in Compose volume short syntax: `/data`, `db:/var/lib/db`, `./conf:/etc/app:ro,z`.
//!
//! A pure function from text to a [`ShortVolume`], or to a one-line message that says what
//! is wrong and what a valid value looks like; the converter resolves host paths against the
//! project directory, builds the [`Mount`](crate::desired::model::Mount) and adds the
//! `file:line:col` position. The split follows compose-go `format.ParseVolume` on Linux
//! (no Windows drive letters); unlike compose-go, unknown or conflicting options are errors.

use crate::desired::model::MountKind;

/// What a valid short-syntax volume looks like, for messages.
const VOLUME_HINT: &str = "use e.g. /data, db:/var/lib/db or ./conf:/etc/app:ro";

/// The options the short syntax accepts after the second `:`, for messages.
const VALID_OPTIONS: &str = "ro, rw, z, Z, nocopy, shared, rshared, slave, rslave, private, \
                             rprivate, cached, delegated, consistent";

/// One short-syntax `volumes:` entry, split and checked but not yet resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortVolume {
    /// Host path (as written: `./dir`, `~/x`, `/abs`) or volume name; `None` for an
    /// anonymous volume.
    pub source: Option<String>,
    /// Absolute path inside the container.
    pub target: String,
    /// `ro` was given.
    pub read_only: bool,
    /// The other options (`z`, `Z`, `nocopy`, `rshared`, `cached`...), in the order
    /// written, without `ro` and `rw`.
    pub options: Vec<String>,
    /// [`MountKind::Bind`] when the source is a path (starts with `.`, `/` or `~`),
    /// otherwise [`MountKind::Volume`] (a named or anonymous volume).
    pub kind: MountKind,
}

/// Parses one short-syntax `volumes:` entry: `TARGET`, `SOURCE:TARGET` or
/// `SOURCE:TARGET:OPTIONS`, where `OPTIONS` is a comma-separated list.
///
/// The target must be an absolute path other than `/`. A source starting with `.`, `/` or
/// `~` is a host path (bind mount); any other source is a volume name, which must match
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]*`. `nocopy` applies to volumes only and propagation
/// (`shared`, `rslave`...) to bind mounts only, as Docker refuses the other combinations.
pub fn parse_volume_short(s: &str) -> Result<ShortVolume, String> {
    let fail = |why: String| format!("invalid volume {s:?}: {why}; {VOLUME_HINT}");
    let fields: Vec<&str> = s.split(':').collect();
    let (source, target, options) = match fields.as_slice() {
        [""] => return Err(fail("empty".to_owned())),
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, options] => (Some(*source), *target, Some(*options)),
        _ => {
            return Err(fail(format!(
                "too many colons ({}); the form is SOURCE:TARGET:OPTIONS",
                fields.len() - 1
            )));
        }
    };
    if source == Some("") {
        return Err(fail(
            "the source before the first colon is empty".to_owned(),
        ));
    }
    if target.is_empty() {
        return Err(fail("the target path is empty".to_owned()));
    }
    if !target.starts_with('/') {
        return Err(fail(format!(
            "target {target:?} must be an absolute path in the container"
        )));
    }
    if target.trim_end_matches('/').is_empty() {
        return Err(fail(
            "target must not be the container's root \"/\"".to_owned(),
        ));
    }
    let kind = match source {
        Some(src) if src.starts_with(['.', '/', '~']) => MountKind::Bind,
        Some(src) => {
            check_volume_name(src).map_err(fail)?;
            MountKind::Volume
        }
        None => MountKind::Volume,
    };
    let (read_only, options) = match options {
        None => (false, Vec::new()),
        Some(list) => parse_options(list, kind).map_err(fail)?,
    };
    Ok(ShortVolume {
        source: source.map(str::to_owned),
        target: target.to_owned(),
        read_only,
        options,
        kind,
    })
}

/// A volume name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`. (Docker's own rule needs two characters,
/// but Compose prefixes the project name, so a one-letter key is fine.)
fn check_volume_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Ok(());
    }
    let hint = if name.contains('/') {
        format!(" (for a host path write ./{name})")
    } else {
        String::new()
    };
    Err(format!(
        "{name:?} is not a valid volume name{hint}: use letters, digits, '_', '.' and '-', \
         starting with a letter or digit"
    ))
}

/// The comma-separated options: (read-only, the other options in order).
fn parse_options(list: &str, kind: MountKind) -> Result<(bool, Vec<String>), String> {
    const PROPAGATION: [&str; 6] = [
        "shared", "rshared", "slave", "rslave", "private", "rprivate",
    ];
    const SELINUX: [&str; 2] = ["z", "Z"];
    const CONSISTENCY: [&str; 3] = ["cached", "delegated", "consistent"];
    let mut access: Option<&str> = None;
    let mut options: Vec<String> = Vec::new();
    for option in list.split(',') {
        let group: &[&str] = match option {
            "" => return Err("empty option (check for a stray comma)".to_owned()),
            "ro" | "rw" => {
                if let Some(previous) = access.filter(|&p| p != option) {
                    return Err(format!(
                        "options {previous} and {option} contradict each other"
                    ));
                }
                access = Some(option);
                continue;
            }
            "nocopy" if kind == MountKind::Bind => {
                return Err("nocopy applies to volumes, not to host paths".to_owned());
            }
            "nocopy" => &["nocopy"],
            o if PROPAGATION.contains(&o) && kind == MountKind::Volume => {
                return Err(format!(
                    "propagation option {o} applies to host paths, not to volumes"
                ));
            }
            o if PROPAGATION.contains(&o) => &PROPAGATION,
            o if SELINUX.contains(&o) => &SELINUX,
            o if CONSISTENCY.contains(&o) => &CONSISTENCY,
            other => {
                return Err(format!(
                    "unknown option {other:?}; valid options are {VALID_OPTIONS}"
                ));
            }
        };
        if let Some(previous) = options.iter().find(|o| group.contains(&o.as_str())) {
            return Err(if previous == option {
                format!("option {option} is given twice")
            } else {
                format!("options {previous} and {option} contradict each other")
            });
        }
        options.push(option.to_owned());
    }
    Ok((access == Some("ro"), options))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn vol(
        source: Option<&str>,
        target: &str,
        read_only: bool,
        options: &[&str],
        kind: MountKind,
    ) -> ShortVolume {
        ShortVolume {
            source: source.map(str::to_owned),
            target: target.to_owned(),
            read_only,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            kind,
        }
    }

    #[test]
    fn short_syntax_forms() {
        use MountKind::{Bind, Volume};
        let cases = [
            ("/data", vol(None, "/data", false, &[], Volume)),
            ("/d", vol(None, "/d", false, &[], Volume)),
            ("vol:/data", vol(Some("vol"), "/data", false, &[], Volume)),
            ("v:/data", vol(Some("v"), "/data", false, &[], Volume)),
            (
                "my_vol.1-x:/data",
                vol(Some("my_vol.1-x"), "/data", false, &[], Volume),
            ),
            (
                "./dir:/data:ro",
                vol(Some("./dir"), "/data", true, &[], Bind),
            ),
            (".:/src", vol(Some("."), "/src", false, &[], Bind)),
            ("../up:/up", vol(Some("../up"), "/up", false, &[], Bind)),
            ("~/x:/y", vol(Some("~/x"), "/y", false, &[], Bind)),
            ("/host:/ctr", vol(Some("/host"), "/ctr", false, &[], Bind)),
            (
                "vol:/data:rw,nocopy",
                vol(Some("vol"), "/data", false, &["nocopy"], Volume),
            ),
            (
                "/host:/ctr:ro,z",
                vol(Some("/host"), "/ctr", true, &["z"], Bind),
            ),
            (
                "/host:/ctr:Z,ro",
                vol(Some("/host"), "/ctr", true, &["Z"], Bind),
            ),
            (
                "/host:/ctr:rw",
                vol(Some("/host"), "/ctr", false, &[], Bind),
            ),
            (
                "/host:/ctr:ro,ro",
                vol(Some("/host"), "/ctr", true, &[], Bind),
            ),
            (
                "/host:/ctr:rshared,z,cached",
                vol(
                    Some("/host"),
                    "/ctr",
                    false,
                    &["rshared", "z", "cached"],
                    Bind,
                ),
            ),
            (
                "vol:/data:z",
                vol(Some("vol"), "/data", false, &["z"], Volume),
            ),
            (
                "vol:/data:delegated",
                vol(Some("vol"), "/data", false, &["delegated"], Volume),
            ),
            ("/host:/ctr/", vol(Some("/host"), "/ctr/", false, &[], Bind)),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_volume_short(input), Ok(expected), "input {input:?}");
        }
    }

    #[test]
    fn bad_volumes_say_what_is_wrong_and_what_fits() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("data", r#"target "data" must be an absolute path"#),
            ("vol:data", r#"target "data" must be an absolute path"#),
            ("./dir:", "the target path is empty"),
            (":/data", "the source before the first colon is empty"),
            ("/", "must not be the container's root"),
            ("/host://", "must not be the container's root"),
            ("a:/b:ro:x", "too many colons (3)"),
            ("C:\\x:/data", "must be an absolute path"),
            ("vol:/data:", "empty option"),
            ("vol:/data:ro,", "empty option"),
            (
                "vol:/data:fast",
                r#"unknown option "fast"; valid options are ro, rw, z, Z, nocopy, shared, rshared, slave, rslave, private, rprivate, cached, delegated, consistent"#,
            ),
            ("vol:/data:RO", r#"unknown option "RO""#),
            ("/h:/c:ro,rw", "options ro and rw contradict each other"),
            ("/h:/c:z,Z", "options z and Z contradict each other"),
            (
                "/h:/c:shared,private",
                "options shared and private contradict each other",
            ),
            (
                "/h:/c:cached,delegated",
                "options cached and delegated contradict",
            ),
            ("/h:/c:z,z", "option z is given twice"),
            (
                "./h:/c:nocopy",
                "nocopy applies to volumes, not to host paths",
            ),
            (
                "vol:/c:rshared",
                "propagation option rshared applies to host paths",
            ),
            ("/c:ro", r#"target "ro" must be an absolute path"#),
            (
                "data/x:/c",
                r#""data/x" is not a valid volume name (for a host path write ./data/x)"#,
            ),
            ("_vol:/c", r#""_vol" is not a valid volume name"#),
            ("v ol:/c", r#""v ol" is not a valid volume name"#),
            ("völ:/c", r#""völ" is not a valid volume name"#),
            ("${X}:/c", r#""${X}" is not a valid volume name"#),
        ];
        for (input, why) in cases {
            let err = parse_volume_short(input).expect_err(input);
            assert!(err.contains(why), "{input:?}: {err}");
            assert!(
                err.starts_with(&format!("invalid volume {input:?}: ")),
                "{err}"
            );
            assert!(err.ends_with(VOLUME_HINT), "{err}");
        }
    }

    proptest! {
        #[test]
        fn parse_volume_short_never_panics(s in "\\PC*") {
            let _ = parse_volume_short(&s);
        }

        #[test]
        fn parse_volume_short_never_panics_on_near_misses(
            s in "[./~a-zZ_]{0,8}(:[/a-z]{0,6})?(:(ro|rw|z|Z|nocopy|rshared|cached|x|)(,(ro|z|nocopy|private|))?)?"
        ) {
            match parse_volume_short(&s) {
                Ok(v) => {
                    prop_assert!(v.target.starts_with('/'));
                    prop_assert!(v.options.iter().all(|o| o != "ro" && o != "rw"));
                }
                Err(e) => prop_assert!(!e.contains('\n')),
            }
        }
    }
}
