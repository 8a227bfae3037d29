//! Compose variable interpolation (`$VAR`, `${VAR:-default}` and friends), with the semantics
//! of compose-go's `template` package.
//!
//! Pure: a lookup function in, text out. It runs on the positioned YAML tree after parsing and
//! before the override merge and type conversion, on string values only (never mapping keys);
//! `envfile` uses the same [`interpolate`] to expand values in `.env` files.
//!
//! The syntax, as compose accepts it:
//! - `$$` is a literal `$`;
//! - `$NAME` and `${NAME}`, where NAME is `[A-Za-z_][A-Za-z0-9_]*`; unset gives an empty string
//!   and is reported in [`Interpolated::unset`] (set but empty is not reported);
//! - `${NAME:-default}` / `${NAME-default}`: default when unset or empty / when unset;
//! - `${NAME:+alt}` / `${NAME+alt}`: alt when set and non-empty / when set, else empty;
//! - `${NAME:?message}` / `${NAME?message}`: error when unset or empty / when unset;
//! - defaults, alternatives and messages may contain `$$`, `$NAME` and `${...}` themselves;
//! - a `$` followed by anything else (`$1`, `$ `, `$}`, a trailing `$`) is kept as written,
//!   while a `${` that does not form one of the forms above is an error.
//!
//! Where compose-go's regex-based implementation has accidental edge cases, berth follows
//! the evident intent instead; each such place says so below.

use super::diag::Diagnostics;
use super::node::{Node, Value};

/// `${` nested deeper than this is refused (as a syntax error) instead of recursing further.
const MAX_DEPTH: usize = 32;

/// Result of interpolating one string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interpolated {
    /// The text with every variable reference replaced.
    pub text: String,
    /// Names referenced without a default that are unset, in order of first use, each once.
    /// Names used only inside a default or alternative that was not taken are not listed.
    pub unset: Vec<String>,
}

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// A `${` that is not a valid reference (or references nested deeper than 32 levels).
    #[error(
        "invalid interpolation format for {text:?} at byte {offset}: write $NAME, ${{NAME}} \
         or ${{NAME<op>value}} with <op> one of :- - :+ + :? ?, and use $$ for a literal $"
    )]
    Syntax {
        /// The whole string being interpolated.
        text: String,
        /// Byte offset in `text` of the `$` that starts the bad reference.
        offset: usize,
    },
    /// `${NAME:?message}` or `${NAME?message}` with NAME missing; compose's wording.
    #[error("required variable {name} is missing a value{}", reason(.message))]
    Required {
        /// The variable.
        name: String,
        /// The (interpolated) message the author wrote after `?`; may be empty.
        message: String,
    },
}

/// Compose omits the `: ` when the author gave no message (`${NAME:?}`).
fn reason(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

/// Interpolates one string; `lookup` returns `None` for unset variables.
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, InterpolateError> {
    let mut out = Interpolated {
        text: String::with_capacity(input.len()),
        unset: Vec::new(),
    };
    if !input.contains('$') {
        out.text.push_str(input);
        return Ok(out);
    }
    Interp { src: input, lookup }.run(0, 0, false, &mut out)?;
    Ok(out)
}

/// Walks a tree: interpolates every string value (never mapping keys), sets `raw` to the text
/// as written on strings whose text changed, and records a warning per unset variable and an
/// error per failure at the node's position. A string that fails keeps its text.
pub fn interpolate_tree(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    diags: &mut Diagnostics,
) {
    match &mut node.value {
        Value::Str { text, raw } => match interpolate(text, lookup) {
            Ok(done) => {
                for name in &done.unset {
                    diags.warning(
                        &node.loc,
                        format!("variable {name:?} is not set; substituting an empty string"),
                    );
                }
                if done.text != *text {
                    let written = std::mem::replace(text, done.text);
                    // A second pass (e.g. over merged-in nodes) keeps what the user wrote.
                    raw.get_or_insert(written);
                }
            }
            Err(e) => diags.error(&node.loc, e.to_string()),
        },
        Value::Seq(items) => {
            for item in items {
                interpolate_tree(item, lookup, diags);
            }
        }
        Value::Map(entries) => {
            for (_, value) in entries {
                interpolate_tree(value, lookup, diags);
            }
        }
        Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
    }
}

/// One interpolation: the whole input (offsets in errors are into it) and the lookup.
struct Interp<'a> {
    src: &'a str,
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

/// How a run of text ended.
enum End {
    /// At the end of the input.
    Input,
    /// At the `}` (this byte offset) that closes the enclosing `${`.
    Brace(usize),
}

/// The operator of `${NAME<op>arg}`.
#[derive(Clone, Copy)]
enum Op {
    /// `-` / `:-`
    Default,
    /// `+` / `:+`
    Alt,
    /// `?` / `:?`
    Required,
}

impl Interp<'_> {
    fn syntax(&self, offset: usize) -> InterpolateError {
        InterpolateError::Syntax {
            text: self.src.to_owned(),
            offset,
        }
    }

    /// Interpolates from `pos` to the end of the input or, inside an argument (`in_arg`), up
    /// to the first `}` that closes no literal `{` of the argument.
    ///
    /// Literal braces are counted so that `${X:-{"a":1}}` defaults to `{"a":1}`, as current
    /// compose-go does; an unbalanced `{` in an argument leaves the reference unclosed (an
    /// error), where compose-go's regex falls back to its greedy match. An argument may span
    /// lines here; compose-go's `.*` stops at a line break, so it rejects that.
    ///
    /// Only ASCII bytes are ever cut at, so every slice is on a character boundary.
    fn run(
        &self,
        mut pos: usize,
        depth: usize,
        in_arg: bool,
        out: &mut Interpolated,
    ) -> Result<End, InterpolateError> {
        let bytes = self.src.as_bytes();
        let mut literal = pos;
        let mut open = 0usize;
        while let Some(&b) = bytes.get(pos) {
            match b {
                b'$' => {
                    out.text.push_str(&self.src[literal..pos]);
                    pos = self.dollar(pos, depth, out)?;
                    literal = pos;
                }
                b'{' if in_arg => {
                    open += 1;
                    pos += 1;
                }
                b'}' if in_arg && open == 0 => {
                    out.text.push_str(&self.src[literal..pos]);
                    return Ok(End::Brace(pos));
                }
                b'}' if in_arg => {
                    open -= 1;
                    pos += 1;
                }
                _ => pos += 1,
            }
        }
        out.text.push_str(&self.src[literal..]);
        Ok(End::Input)
    }

    /// Handles the `$` at `pos`; returns the offset just past what it consumed.
    fn dollar(
        &self,
        pos: usize,
        depth: usize,
        out: &mut Interpolated,
    ) -> Result<usize, InterpolateError> {
        let bytes = self.src.as_bytes();
        match bytes.get(pos + 1) {
            Some(b'$') => {
                out.text.push('$');
                Ok(pos + 2)
            }
            Some(b'{') => self.braced(pos, depth + 1, out),
            Some(&b) if is_name_start(b) => {
                let end = name_end(bytes, pos + 1);
                self.plain(&self.src[pos + 1..end], out);
                Ok(end)
            }
            // compose-go keeps a `$` that starts no reference: "a $ string", "^REGEX$", "$}".
            _ => {
                out.text.push('$');
                Ok(pos + 1)
            }
        }
    }

    /// `$NAME` or `${NAME}`: the value, or empty and reported when unset.
    fn plain(&self, name: &str, out: &mut Interpolated) {
        match (self.lookup)(name) {
            Some(value) => out.text.push_str(&value),
            None => note_unset(&mut out.unset, name),
        }
    }

    /// The `${` at `pos`, `depth` levels deep; returns the offset just past its `}`.
    fn braced(
        &self,
        pos: usize,
        depth: usize,
        out: &mut Interpolated,
    ) -> Result<usize, InterpolateError> {
        if depth > MAX_DEPTH {
            return Err(self.syntax(pos));
        }
        let bytes = self.src.as_bytes();
        let start = pos + 2;
        if !bytes.get(start).is_some_and(|&b| is_name_start(b)) {
            return Err(self.syntax(pos));
        }
        let end = name_end(bytes, start);
        let name = &self.src[start..end];
        if bytes.get(end) == Some(&b'}') {
            self.plain(name, out);
            return Ok(end + 1);
        }
        // The operator is whatever follows the name; compose-go picks "the operator that
        // occurs first", which, names being [A-Za-z0-9_], is the same thing. Anything else,
        // including `${NAME[key]}` (compose-go's named mappings, which docker compose leaves
        // off and so keeps as written), is refused.
        let colon = bytes.get(end) == Some(&b':');
        let op_at = end + usize::from(colon);
        let Some(op) = bytes.get(op_at).copied().and_then(op_of) else {
            return Err(self.syntax(pos));
        };
        // Like compose-go, the argument is interpolated whether or not it is used, so an
        // error inside an unused default (`${SET:-${UNSET:?}}`) is still an error; but
        // unset names in an unused argument are not reported.
        let mut arg = Interpolated::default();
        let close = match self.run(op_at + 1, depth, true, &mut arg)? {
            End::Brace(close) => close,
            End::Input => return Err(self.syntax(pos)),
        };
        let value = (self.lookup)(name);
        let present = value.as_deref().is_some_and(|v| !(colon && v.is_empty()));
        let take_arg = match op {
            Op::Default => !present,
            Op::Alt => present,
            Op::Required if present => false,
            Op::Required => {
                return Err(InterpolateError::Required {
                    name: name.to_owned(),
                    message: arg.text,
                });
            }
        };
        if take_arg {
            out.text.push_str(&arg.text);
            for name in &arg.unset {
                note_unset(&mut out.unset, name);
            }
        } else if let Some(value) = value {
            // For an alternative not taken this is "" (empty) or nothing (unset).
            out.text.push_str(&value);
        }
        Ok(close + 1)
    }
}

fn op_of(b: u8) -> Option<Op> {
    match b {
        b'-' => Some(Op::Default),
        b'+' => Some(Op::Alt),
        b'?' => Some(Op::Required),
        _ => None,
    }
}

fn note_unset(unset: &mut Vec<String>, name: &str) {
    if !unset.iter().any(|n| n == name) {
        unset.push(name.to_owned());
    }
}

/// Names are ASCII, as in compose-go's `[_a-z][_a-z0-9]*` (matched case-insensitively).
fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn name_end(bytes: &[u8], mut pos: usize) -> usize {
    while bytes
        .get(pos)
        .is_some_and(|&b| b.is_ascii_alphanumeric() || b == b'_')
    {
        pos += 1;
    }
    pos
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use indoc::indoc;
    use proptest::prelude::*;

    use super::*;

    /// FOO is set, BAR is set but empty, everything else is unset.
    fn env(name: &str) -> Option<String> {
        match name {
            "FOO" => Some("first".into()),
            "BAR" => Some(String::new()),
            _ => None,
        }
    }

    fn ok(input: &str) -> (String, Vec<String>) {
        let done = interpolate(input, &env).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        (done.text, done.unset)
    }

    #[test]
    fn substitutes_every_operator_like_compose() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, &[&str])] = &[
            // input                              text                    unset
            ("no variables",                      "no variables",         &[]),
            ("$FOO",                              "first",                &[]),
            ("${FOO}",                            "first",                &[]),
            ("x${FOO}y",                          "xfirsty",              &[]),
            ("$FOO-bar",                          "first-bar",            &[]),
            ("$FOO.$FOO",                         "first.first",          &[]),
            ("é$FOO€",                            "éfirst€",              &[]),
            // escapes and lone dollars
            ("$$",                                "$",                    &[]),
            ("$${FOO}",                           "${FOO}",               &[]),
            ("$$FOO",                             "$FOO",                 &[]),
            ("$$$FOO",                            "$first",               &[]),
            ("a $ string",                        "a $ string",           &[]),
            ("^REGEX$",                           "^REGEX$",              &[]),
            ("$}",                                "$}",                   &[]),
            ("$",                                 "$",                    &[]),
            ("$1 and 5$",                         "$1 and 5$",            &[]),
            ("$é",                                "$é",                   &[]),
            // unset and empty
            ("${UNSET}",                          "",                     &["UNSET"]),
            ("$B $A ${B} $foo",                   "   ",                  &["B", "A", "foo"]),
            ("${BAR}",                            "",                     &[]),
            // :- and -
            ("${UNSET:-def}",                     "def",                  &[]),
            ("${BAR:-def}",                       "def",                  &[]),
            ("${FOO:-def}",                       "first",                &[]),
            ("${UNSET-def}",                      "def",                  &[]),
            ("${BAR-def}",                        "",                     &[]),
            ("${FOO-def}",                        "first",                &[]),
            ("${UNSET:-}",                        "",                     &[]),
            ("${BAR:-/non:-alphanumeric}",        "/non:-alphanumeric",   &[]),
            ("${UNSET-myerror?msg}",              "myerror?msg",          &[]),
            // :+ and +
            ("${UNSET:+alt}",                     "",                     &[]),
            ("${BAR:+alt}",                       "",                     &[]),
            ("${FOO:+alt}",                       "alt",                  &[]),
            ("${UNSET+alt}",                      "",                     &[]),
            ("${BAR+alt}",                        "alt",                  &[]),
            ("${FOO+alt}",                        "alt",                  &[]),
            // :? and ? when satisfied
            ("${FOO:?err}",                       "first",                &[]),
            ("${FOO?err}",                        "first",                &[]),
            ("${BAR?err}",                        "",                     &[]),
            ("${FOO?bar-baz}",                    "first",                &[]),
            // nesting
            ("${UNSET-$FOO}",                     "first",                &[]),
            ("${UNSET:-${FOO}}",                  "first",                &[]),
            ("${UNSET-${FOO} ${FOO}}",            "first first",          &[]),
            ("${BAR+$FOO ${FOO:+second}}",        "first second",         &[]),
            ("${UNSET:-${OTHER:-deep}}",          "deep",                 &[]),
            ("${UNSET:-${MISSING}}",              "",                     &["MISSING"]),
            ("${FOO:-${MISSING}}",                "first",                &[]),
            ("${UNSET:+$MISSING}",                "",                     &[]),
            ("${UNSET:-$$}",                      "$",                    &[]),
            ("${UNSET:-$}",                       "$",                    &[]),
            ("${UNSET:-a}b}",                     "ab}",                  &[]),
            ("${UNSET:-{\"a\":1}}",               "{\"a\":1}",            &[]),
            ("${UNSET:-x}${FOO}",                 "xfirst",               &[]),
            ("-ok ${BAR:-v} :-ok ${BAR-v} +ok",   "-ok v :-ok  +ok",      &[]),
        ];
        for &(input, text, unset) in cases {
            let unset: Vec<String> = unset.iter().map(|s| s.to_string()).collect();
            assert_eq!(ok(input), (text.to_string(), unset), "{input:?}");
        }
    }

    #[test]
    fn malformed_references_are_errors_at_their_dollar() {
        #[rustfmt::skip]
        let cases: &[(&str, usize)] = &[
            ("${",               0),
            ("${}",              0),
            ("${ }",             0),
            ("${ foo}",          0),
            ("${foo }",          0),
            ("${foo!}",          0),
            ("${FOO:x}",         0),
            ("${FOO:}",          0),
            ("${FOO:",           0),
            ("${1abc}",          0),
            ("${FOO",            0),
            ("${FOO:-x",         0),
            ("${FOO:-${BAR}",    0),
            ("${FOO[key]}",      0),
            ("ab ${FOO:}",       3),
            ("$FOO ${",          5),
            ("${UNSET:-${}}",    9),
            ("é${",              2),
            ("${UNSET:-{x}",     0),
        ];
        for &(input, offset) in cases {
            let e = interpolate(input, &env).unwrap_err();
            assert_eq!(
                e,
                InterpolateError::Syntax {
                    text: input.into(),
                    offset
                },
                "{input:?}"
            );
        }
        assert_eq!(
            interpolate("echo ${", &env).unwrap_err().to_string(),
            "invalid interpolation format for \"echo ${\" at byte 5: write $NAME, ${NAME} or \
             ${NAME<op>value} with <op> one of :- - :+ + :? ?, and use $$ for a literal $"
        );
    }

    #[test]
    fn required_variables_fail_with_composes_message() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("not ok ${UNSET:?Mandatory Variable Unset}",
             "required variable UNSET is missing a value: Mandatory Variable Unset"),
            ("not ok ${BAR:?Mandatory Variable Empty}",
             "required variable BAR is missing a value: Mandatory Variable Empty"),
            ("${UNSET:?}",                "required variable UNSET is missing a value"),
            ("${UNSET?}",                 "required variable UNSET is missing a value"),
            ("${UNSET?bar-baz}",          "required variable UNSET is missing a value: bar-baz"),
            ("${UNSET:?Mandatory ${FOO}}", "required variable UNSET is missing a value: Mandatory first"),
            // compose-go interpolates a default before deciding whether to use it
            ("${FOO:-${UNSET:?needed}}",  "required variable UNSET is missing a value: needed"),
        ];
        for &(input, message) in cases {
            let e = interpolate(input, &env).unwrap_err();
            assert!(
                matches!(e, InterpolateError::Required { .. }),
                "{input:?}: {e:?}"
            );
            assert_eq!(e.to_string(), message, "{input:?}");
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let nest = |n: usize| format!("{}x{}", "${UNSET:-".repeat(n), "}".repeat(n));
        assert_eq!(ok(&nest(MAX_DEPTH)).0, "x");
        let too_deep = nest(MAX_DEPTH + 1);
        let offset = MAX_DEPTH * "${UNSET:-".len();
        assert_eq!(
            interpolate(&too_deep, &env).unwrap_err(),
            InterpolateError::Syntax {
                text: too_deep.clone(),
                offset
            }
        );
        // Far deeper input fails the same way instead of overflowing the stack.
        assert!(interpolate(&nest(100_000), &env).is_err());
    }

    #[test]
    fn tree_interpolates_values_not_keys_and_keeps_what_was_written() {
        let mut tree = crate::desired::merge::parse(
            &Arc::from("compose.yaml"),
            indoc! {r#"
                services:
                  web:
                    image: "app:${TAG}"
                    environment:
                      $TAG: "$$literal"
                      PLAIN: value
                    command: ["echo", "$UNSET", "${"]
                    replicas: 2
            "#},
        )
        .unwrap();
        let lookup = |name: &str| (name == "TAG").then(|| "1.2".to_string());
        let mut diags = Diagnostics::default();
        interpolate_tree(&mut tree, &lookup, &mut diags);

        let web = tree.get("services").unwrap().get("web").unwrap();
        let str_of = |n: &Node| match &n.value {
            Value::Str { text, raw } => (text.clone(), raw.clone()),
            other => panic!("not a string: {other:?}"),
        };
        let image = web.get("image").unwrap();
        assert_eq!(str_of(image), ("app:1.2".into(), Some("app:${TAG}".into())));
        assert_eq!(image.shown(), "\"app:${TAG}\"");
        let env = web.get("environment").unwrap();
        assert_eq!(env.as_map().unwrap()[0].0.name, "$TAG");
        assert_eq!(
            str_of(env.get("$TAG").unwrap()),
            ("$literal".into(), Some("$$literal".into()))
        );
        assert_eq!(str_of(env.get("PLAIN").unwrap()), ("value".into(), None));
        let command = web.get("command").unwrap().as_seq().unwrap();
        assert_eq!(str_of(&command[1]), (String::new(), Some("$UNSET".into())));
        assert_eq!(str_of(&command[2]), ("${".into(), None));
        assert_eq!(
            diags.to_string(),
            indoc! {r#"
                compose.yaml:7:23: warning: variable "UNSET" is not set; substituting an empty string
                compose.yaml:7:33: error: invalid interpolation format for "${" at byte 0: write $NAME, ${NAME} or ${NAME<op>value} with <op> one of :- - :+ + :? ?, and use $$ for a literal $
            "#}
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in "[a-zA-Z0-9_${}:?+\\- é]{0,40}") {
            let _ = interpolate(&s, &env);
        }

        #[test]
        fn never_panics_on_any_string(s in any::<String>()) {
            let _ = interpolate(&s, &env);
        }

        #[test]
        fn text_without_dollar_is_unchanged(s in any::<String>()) {
            let s = s.replace('$', "");
            prop_assert_eq!(ok(&s), (s.clone(), vec![]));
        }

        #[test]
        fn escaping_every_dollar_round_trips(s in "[a-zA-Z0-9_${}:?+\\- é]{0,40}") {
            prop_assert_eq!(ok(&s.replace('$', "$$")), (s.clone(), vec![]));
        }

        #[test]
        fn escaping_round_trips_any_string(s in any::<String>()) {
            prop_assert_eq!(ok(&s.replace('$', "$$")), (s.clone(), vec![]));
        }
    }
}
