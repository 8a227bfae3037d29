//! `.env` and `env_file` parsing, with the semantics of compose-go's `dotenv` package.
//!
//! Pure: text and a lookup in, entries out. A project's `.env` feeds interpolation of its
//! Compose files; `env_file:` files feed a service's environment. Values are expanded with
//! [`interpolate`], which looks names up in the entries above them in the same file first and
//! then in the caller's lookup.
//!
//! The format, as compose reads it:
//! - blank lines and lines starting with `#` are skipped;
//! - `KEY=VALUE` or `KEY: VALUE`, optionally after `export `; whitespace around the key and
//!   before the value is dropped; names hold letters, digits, `_`, `.`, `-`, `[` and `]`;
//! - unquoted values run to the end of the line, lose trailing whitespace and an inline
//!   comment that starts with ` #` (`a#b` keeps its `#`), and are interpolated;
//! - `'single quoted'` values are taken literally (only `\'` is unescaped);
//! - `"double quoted"` values expand `\n \r \t \a \b \f \v \\ \" \$` and `\0NNN` (octal),
//!   keep any other backslash, and are interpolated; both kinds of quotes may span lines;
//! - a bare `KEY` takes its value from the lookup and is left out when that has none;
//! - a key given twice keeps its last value, at the position of the last one.
//!
//! Unlike compose, which stops at the first problem, every problem is reported at once.

use std::collections::HashMap;

use super::interpolate::{InterpolateError, interpolate};

/// One `KEY=VALUE` of an env file, after quoting and interpolation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvEntry {
    /// The variable name.
    pub key: String,
    /// The value.
    pub value: String,
    /// 1-based line where the key is written.
    pub line: u32,
}

/// A problem in an env file, at a 1-based line and column (in characters).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EnvFileError {
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub col: u32,
    /// What is wrong and what to do about it.
    pub message: String,
}

/// Parses an env file. `lookup` resolves variables referenced inside values that no earlier
/// entry of the same file defines, and gives bare `KEY` lines their value. Returns the
/// entries in file order (a repeated key at its last position), or every parse error.
pub fn parse(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<EnvEntry>, Vec<EnvFileError>> {
    // Some editors start files with a byte-order mark; compose skips it too.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut p = Parser {
        text,
        line_starts: std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
        lookup,
        slots: Vec::new(),
        index: HashMap::new(),
        errors: Vec::new(),
    };
    let mut pos = 0;
    while let Some(start) = p.next_statement(pos) {
        match p.statement(start) {
            Some(next) => pos = next,
            None => break,
        }
    }
    if p.errors.is_empty() {
        Ok(p.slots.into_iter().flatten().collect())
    } else {
        Err(p.errors)
    }
}

struct Parser<'a> {
    text: &'a str,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    lookup: &'a dyn Fn(&str) -> Option<String>,
    /// Entries in order; a key set again empties its earlier slot.
    slots: Vec<Option<EnvEntry>>,
    /// Slot of each key's current entry.
    index: HashMap<String, usize>,
    errors: Vec<EnvFileError>,
}

impl Parser<'_> {
    /// The start of the next statement at or after `pos`, skipping blank and comment lines.
    fn next_statement(&self, mut pos: usize) -> Option<usize> {
        loop {
            let rest = self.text.get(pos..)?;
            let skipped = rest.len() - rest.trim_start().len();
            pos += skipped;
            match self.text.as_bytes().get(pos)? {
                b'#' => pos = self.line_end(pos) + 1,
                _ => return Some(pos),
            }
        }
    }

    /// Parses the statement at `start`; returns where to continue, or `None` when nothing
    /// after it can be trusted (an unterminated quote).
    fn statement(&mut self, start: usize) -> Option<usize> {
        let text = self.text;
        let key_start = skip_export(text, start);
        let mut sep = None;
        let mut key_end = text.len();
        for (i, c) in text[key_start..].char_indices() {
            let i = key_start + i;
            match c {
                '=' | ':' => {
                    sep = Some((i, c));
                    key_end = i;
                    break;
                }
                '\n' => {
                    key_end = i;
                    break;
                }
                c if is_space(c) || is_key_char(c) => {}
                c => {
                    self.error(
                        i,
                        format!(
                            "unexpected character {c:?} in a variable name; names may hold \
                             letters, digits, '_', '.', '-', '[' and ']'"
                        ),
                    );
                    return Some(self.line_end(i) + 1);
                }
            }
        }
        let key = text[key_start..key_end].trim_end();
        let line = self.line_of(key_start);
        if key.contains(char::is_whitespace) {
            self.error(
                key_start,
                format!(
                    "variable name {key:?} contains whitespace; write KEY=VALUE with the \
                     value after the '='"
                ),
            );
            return Some(self.line_end(key_start) + 1);
        }
        let Some((sep, sep_char)) = sep else {
            // A bare `KEY` (compose: "inherited") takes its value from the lookup. compose
            // mis-reads a bare key on the last line when the file has no final newline;
            // berth treats it like any other line.
            if !key.is_empty()
                && let Some(value) = (self.lookup)(key)
            {
                self.set(key, value, line);
            }
            return Some(key_end + 1);
        };
        if key.is_empty() {
            self.error(
                sep,
                format!("missing variable name before {sep_char:?}; write KEY=VALUE"),
            );
            return Some(self.line_end(sep) + 1);
        }
        let value_start = sep + 1 + leading_space(&text[sep + 1..]);
        match text[value_start..].chars().next() {
            Some(quote @ ('"' | '\'')) => self.quoted(key, line, value_start, quote),
            _ => Some(self.unquoted(key, line, value_start)),
        }
    }

    fn unquoted(&mut self, key: &str, line: u32, start: usize) -> usize {
        let end = self.line_end(start);
        let mut raw = &self.text[start..end];
        if let Some(comment) = raw.find(" #") {
            raw = &raw[..comment];
        }
        let raw = raw.trim_end();
        match self.expand(raw) {
            Ok(value) => self.set(key, value, line),
            Err(e) => self.interpolation_error(key, &e, |offset| start + offset),
        }
        end + 1
    }

    fn quoted(&mut self, key: &str, line: u32, start: usize, quote: char) -> Option<usize> {
        let text = self.text;
        let body = start + 1;
        let mut raw = String::new();
        let mut escaped = false;
        let mut close = None;
        for (i, c) in text[body..].char_indices() {
            if escaped {
                // An escaped quote loses its backslash; other escapes are kept for later.
                escaped = false;
                if c != quote {
                    raw.push('\\');
                }
                raw.push(c);
            } else if c == '\\' {
                escaped = true;
            } else if c == quote {
                close = Some(body + i);
                break;
            } else {
                raw.push(c);
            }
        }
        let Some(close) = close else {
            self.error(
                start,
                format!(
                    "unterminated quoted value for {key}: add the closing {quote} (write \\{quote} \
                     for a {quote} inside the value)"
                ),
            );
            return None;
        };
        let after = close + 1 + leading_space(&text[close + 1..]);
        if !matches!(text.as_bytes().get(after), None | Some(b'\n' | b'#')) {
            self.error(
                after,
                format!(
                    "unexpected text after the closing quote of {key}; put it inside the \
                     quotes, or start a comment with #"
                ),
            );
            return Some(self.line_end(after) + 1);
        }
        if quote == '\'' {
            self.set(key, raw, line);
        } else {
            match self.expand(&expand_escapes(&raw)) {
                Ok(value) => self.set(key, value, line),
                // Escapes move offsets around; point at the opening quote.
                Err(e) => self.interpolation_error(key, &e, |_| start),
            }
        }
        Some(self.line_end(after) + 1)
    }

    /// Interpolates a value, looking names up in this file's entries so far, then outside.
    fn expand(&self, raw: &str) -> Result<String, InterpolateError> {
        let own = |name: &str| {
            self.index
                .get(name)
                .and_then(|&i| self.slots.get(i)?.as_ref())
                .map(|e| e.value.clone())
                .or_else(|| (self.lookup)(name))
        };
        interpolate(raw, &own).map(|done| done.text)
    }

    /// Records an interpolation failure; `at` maps an offset in the value to one in the file.
    fn interpolation_error(
        &mut self,
        key: &str,
        e: &InterpolateError,
        at: impl Fn(usize) -> usize,
    ) {
        match e {
            // The value itself is not repeated: env files often hold secrets.
            InterpolateError::Syntax { offset, .. } => self.error(
                at(*offset),
                format!(
                    "invalid interpolation format in the value of {key}: write $NAME, ${{NAME}} \
                     or ${{NAME:-default}}, and use $$ for a literal $"
                ),
            ),
            InterpolateError::Required { .. } => self.error(at(0), e.to_string()),
        }
    }

    fn set(&mut self, key: &str, value: String, line: u32) {
        if let Some(&old) = self.index.get(key) {
            self.slots[old] = None;
        }
        self.index.insert(key.to_owned(), self.slots.len());
        self.slots.push(Some(EnvEntry {
            key: key.to_owned(),
            value,
            line,
        }));
    }

    fn error(&mut self, pos: usize, message: String) {
        let line = self.line_of(pos);
        let line_start = self.line_starts[line as usize - 1];
        let col = self
            .text
            .get(line_start..pos)
            .map_or(0, |s| s.chars().count());
        self.errors.push(EnvFileError {
            line,
            col: to_u32(col + 1),
            message,
        });
    }

    /// 1-based line of byte offset `pos`.
    fn line_of(&self, pos: usize) -> u32 {
        to_u32(self.line_starts.partition_point(|&s| s <= pos).max(1))
    }

    /// Offset of the `\n` that ends the line holding `pos` (or the end of the text).
    fn line_end(&self, pos: usize) -> usize {
        self.text
            .get(pos..)
            .and_then(|rest| rest.find('\n'))
            .map_or(self.text.len(), |i| pos + i)
    }
}

/// Skips `export` and the blanks after it when a name follows (`export=1` sets `export`).
fn skip_export(text: &str, start: usize) -> usize {
    let Some(rest) = text[start..].strip_prefix("export") else {
        return start;
    };
    let blanks = leading_space(rest);
    match rest[blanks..].chars().next() {
        Some(c) if blanks > 0 && is_key_char(c) => start + "export".len() + blanks,
        _ => start,
    }
}

/// Blanks compose skips inside a line (whitespace other than a line break).
fn is_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    )
}

/// Length in bytes of the blanks that start `s`.
fn leading_space(s: &str) -> usize {
    s.len() - s.trim_start_matches(is_space).len()
}

fn is_key_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '[' | ']')
}

fn to_u32(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Expands the escapes of a double-quoted value the way compose does: the POSIX `echo` set
/// plus `\"` and `\\`; `\$` becomes `$$` so that interpolation leaves a literal `$`; any other
/// backslash is kept.
///
/// `\0` takes up to three digits and stands for the octal byte they spell; compose rewrites
/// it to Go's `\NNN` first, so when that is not a valid escape (`\01`, `\0400`) the result is
/// the text without its `0`, which is reproduced here.
fn expand_escapes(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut literal = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        out.push_str(&s[literal..i]);
        let simple = match bytes.get(i + 1) {
            Some(b'a') => Some("\u{7}"),
            Some(b'b') => Some("\u{8}"),
            Some(b'f') => Some("\u{c}"),
            Some(b'n') => Some("\n"),
            Some(b'r') => Some("\r"),
            Some(b't') => Some("\t"),
            Some(b'v') => Some("\u{b}"),
            Some(b'\\') => Some("\\"),
            Some(b'"') => Some("\""),
            Some(b'$') => Some("$$"),
            _ => None,
        };
        if let Some(replacement) = simple {
            out.push_str(replacement);
            i += 2;
        } else if bytes.get(i + 1) == Some(&b'0') {
            let digits_start = i + 2;
            let mut digits_end = digits_start;
            while digits_end < bytes.len()
                && digits_end - digits_start < 3
                && bytes[digits_end].is_ascii_digit()
            {
                digits_end += 1;
            }
            let digits = &s[digits_start..digits_end];
            match u8::from_str_radix(digits, 8) {
                Ok(byte) if digits.len() == 3 => out.push(char::from(byte)),
                _ => {
                    out.push('\\');
                    out.push_str(digits);
                }
            }
            i = digits_end;
        } else {
            out.push('\\');
            i += 1;
        }
        literal = i;
    }
    out.push_str(&s[literal..]);
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn outside(name: &str) -> Option<String> {
        match name {
            "ME" => Some("YES".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn entries(input: &str) -> Vec<(String, String, u32)> {
        parse(input, &outside)
            .unwrap_or_else(|e| panic!("{input:?}: {e:?}"))
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect()
    }

    fn errors(input: &str) -> Vec<(u32, u32, String)> {
        parse(input, &outside)
            .expect_err(input)
            .into_iter()
            .map(|e| (e.line, e.col, e.message))
            .collect()
    }

    #[test]
    fn single_lines_parse_like_compose() {
        #[rustfmt::skip]
        let cases: &[(&str, &str, &str)] = &[
            // input                                   key            value
            ("FOO=bar",                                "FOO",         "bar"),
            ("FOO =bar",                               "FOO",         "bar"),
            ("FOO= bar",                               "FOO",         "bar"),
            (" KEY =value",                            "KEY",         "value"),
            ("\tKEY=value",                            "KEY",         "value"),
            ("KEY=",                                   "KEY",         ""),
            ("FOO.BAR=foobar",                         "FOO.BAR",     "foobar"),
            ("a-b[0]=x",                               "a-b[0]",      "x"),
            ("FOO=foobar=",                            "FOO",         "foobar="),
            ("FOO=bar ",                               "FOO",         "bar"),
            ("FOO=a\\tb",                              "FOO",         "a\\tb"),
            // yaml style
            ("OPTION_A: 1",                            "OPTION_A",    "1"),
            ("OPTION_A: Foo=bar",                      "OPTION_A",    "Foo=bar"),
            ("OPTION_A=1:B",                           "OPTION_A",    "1:B"),
            // export
            ("export OPTION_A=2",                      "OPTION_A",    "2"),
            ("export OPTION_B='\\n'",                  "OPTION_B",    "\\n"),
            ("export exportFoo=2",                     "exportFoo",   "2"),
            ("exportFOO=2",                            "exportFOO",   "2"),
            ("export_FOO =2",                          "export_FOO",  "2"),
            ("export.FOO= 2",                          "export.FOO",  "2"),
            ("export\tOPTION_A=2",                     "OPTION_A",    "2"),
            ("  export OPTION_A=2",                    "OPTION_A",    "2"),
            ("export OPTION_A=\"export A\"",           "OPTION_A",    "export A"),
            ("export=1",                               "export",      "1"),
            // inline comments
            ("FOO=bar # this is foo",                  "FOO",         "bar"),
            ("FOO=bar #this is foo",                   "FOO",         "bar"),
            ("FOO=bar #",                              "FOO",         "bar"),
            ("FOO=123#not-an-inline-comment",          "FOO",         "123#not-an-inline-comment"),
            ("FOO=\"bar#baz\"",                        "FOO",         "bar#baz"),
            ("FOO=\"bar#baz\"#",                       "FOO",         "bar#baz"),
            ("FOO=\"bar#baz\" # comment",              "FOO",         "bar#baz"),
            ("FOO='bar#baz' # comment",                "FOO",         "bar#baz"),
            // quotes and escapes
            ("FOO=\"bar\"",                            "FOO",         "bar"),
            ("FOO='bar'",                              "FOO",         "bar"),
            ("FOO=\"escaped\\\"bar\"",                 "FOO",         "escaped\"bar"),
            ("FOO=\"\\\"quoted\\\"\"",                 "FOO",         "\"quoted\""),
            ("FOO=\"'d'\"",                            "FOO",         "'d'"),
            ("FOO='it\\'s'",                           "FOO",         "it's"),
            ("FOO='a\\nb $ME'",                        "FOO",         "a\\nb $ME"),
            ("FOO=\"bar\\nbaz\"",                      "FOO",         "bar\nbaz"),
            ("FOO=\"a\\tb\"",                          "FOO",         "a\tb"),
            ("KEY=\"Z\\aZ\\bZ\\fZ\\nZ\\rZ\\tZ\\vZ\\\\Z\\0123Z\"",
                                                       "KEY",         "Z\u{7}Z\u{8}Z\u{c}Z\nZ\rZ\tZ\u{b}Z\\ZSZ"),
            ("FOO=\"bar\\n\\ b\\az\"",                 "FOO",         "bar\n\\ b\u{7}z"),
            ("FOO=\"bar\\\\\\n\\ b\\az\"",             "FOO",         "bar\\\n\\ b\u{7}z"),
            ("FOO=\"bar\\nbaz\\\\\"",                  "FOO",         "bar\nbaz\\"),
            ("KEY=\"\\x07 \\u12e4 \\c\"",              "KEY",         "\\x07 \\u12e4 \\c"),
            ("KEY=\"\\01 \\0400 \\0\"",                "KEY",         "\\1 \\400 \\"),
            // interpolation
            ("TEST=$ME",                               "TEST",        "YES"),
            ("TEST=${ME}bar",                          "TEST",        "YESbar"),
            ("TEST=$NOPE",                             "TEST",        ""),
            ("TEST=${NOPE:-fallback}",                 "TEST",        "fallback"),
            ("TEST=${EMPTY-fallback}",                 "TEST",        ""),
            ("TEST=\"quote $ME\"",                     "TEST",        "quote YES"),
            ("TEST='quote $ME'",                       "TEST",        "quote $ME"),
            ("TEST=\"foo\\$ME\"",                      "TEST",        "foo$ME"),
            ("TEST=\"foo\\${ME}\"",                    "TEST",        "foo${ME}"),
            ("TEST=\"\\\\$ME\"",                       "TEST",        "\\YES"),
            ("TEST=$$ME",                              "TEST",        "$ME"),
            ("TEST=price $5",                          "TEST",        "price $5"),
            // byte-order mark and CRLF
            ("\u{feff}A=1",                            "A",           "1"),
            ("A=1\r\n",                                "A",           "1"),
            ("A=\"x\"\r\n",                            "A",           "x"),
            ("ME\r\n",                                 "ME",          "YES"),
        ];
        for &(input, key, value) in cases {
            assert_eq!(entries(input), [(key.into(), value.into(), 1)], "{input:?}");
        }
    }

    #[test]
    fn files_keep_order_lines_and_the_last_of_a_repeated_key() {
        let text = "# settings\n\
                    \n\
                    A=1\n\
                    \t# indented comment\n\
                    B=$A\n\
                    ME\n\
                    NOPE\n\
                    MULTI=\"first line\n\
                    second ${A}\"\n\
                    SINGLE='one\n\
                    two $A'\n\
                    A=2\n\
                    C=$A\n\
                    EMPTY";
        let want = [
            ("B", "1", 5),
            ("ME", "YES", 6),
            ("MULTI", "first line\nsecond 1", 8),
            ("SINGLE", "one\ntwo $A", 10),
            ("A", "2", 12),
            ("C", "2", 13),
            ("EMPTY", "", 14),
        ];
        let want: Vec<_> = want
            .iter()
            .map(|&(k, v, l)| (k.to_string(), v.to_string(), l))
            .collect();
        assert_eq!(entries(text), want);
    }

    #[test]
    fn entries_of_the_file_shadow_the_lookup() {
        assert_eq!(
            entries("ME=file\nX=${ME}"),
            [
                ("ME".into(), "file".into(), 1),
                ("X".into(), "file".into(), 2)
            ]
        );
    }

    #[test]
    fn a_bare_key_may_not_override_with_nothing() {
        // NOPE has no outside value, so the file's own stays.
        assert_eq!(entries("NOPE=1\nNOPE"), [("NOPE".into(), "1".into(), 1)]);
        assert_eq!(entries(""), []);
        assert_eq!(entries("\n\n  \t\n# only comments\n"), []);
    }

    #[test]
    fn errors_point_at_the_problem() {
        #[rustfmt::skip]
        let cases: &[(&str, u32, u32)] = &[
            ("lol$wut",               1, 4),
            ("FOO BAR=1",             1, 1),
            ("export A B=1",          1, 8),
            ("KEY # comment",         1, 5),
            ("=value",                1, 1),
            ("  : value",             1, 3),
            ("KEY=\"",                1, 5),
            ("KEY=\"value",           1, 5),
            ("KEY=\"value\\\"",       1, 5),
            ("KEY=\"value'",          1, 5),
            ("KEY='",                 1, 5),
            ("KEY='value",            1, 5),
            ("KEY='value\\'",         1, 5),
            ("KEY='value\"",          1, 5),
            ("A=\"x\" junk",          1, 7),
            ("A=${",                  1, 3),
            ("A=ok ${",               1, 6),
            ("A=é ${x",               1, 5),
            ("A=\"ok ${\"",           1, 3),
            ("A=${NOPE:?set it}",     1, 3),
            ("A=\"${NOPE?}\"",        1, 3),
            ("é=1\nÉ!=2",             2, 2),
        ];
        for &(input, line, col) in cases {
            let errs = errors(input);
            assert_eq!(errs.len(), 1, "{input:?}: {errs:?}");
            assert_eq!((errs[0].0, errs[0].1), (line, col), "{input:?}: {errs:?}");
        }
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let messages =
            |input: &str| -> Vec<String> { errors(input).into_iter().map(|(_, _, m)| m).collect() };
        assert_eq!(
            messages("lol$wut"),
            [
                "unexpected character '$' in a variable name; names may hold letters, digits, \
              '_', '.', '-', '[' and ']'"
            ]
        );
        assert_eq!(
            messages("KEY=\"value"),
            [
                "unterminated quoted value for KEY: add the closing \" (write \\\" for a \" \
              inside the value)"
            ]
        );
        assert_eq!(
            messages("SECRET=hunter2${"),
            [
                "invalid interpolation format in the value of SECRET: write $NAME, ${NAME} or \
              ${NAME:-default}, and use $$ for a literal $"
            ]
        );
        assert_eq!(
            messages("A=${NOPE:?set it}"),
            ["required variable NOPE is missing a value: set it"]
        );
    }

    #[test]
    fn all_errors_are_reported_at_once() {
        let text = "A=1\nB C=2\nD=${\nok=1\nE!=3\nF=\"never closed\nG=1\n";
        let at: Vec<(u32, u32)> = errors(text).into_iter().map(|(l, c, _)| (l, c)).collect();
        // Nothing after an unterminated quote is trusted, so G is not looked at.
        assert_eq!(at, [(2, 1), (3, 3), (5, 2), (6, 3)]);
    }

    proptest! {
        #[test]
        fn never_panics(s in "(export |[A-Za-z_é. ]|[=:\"'\\\\$#{}\n\r\t]|\u{feff}){0,60}") {
            let _ = parse(&s, &outside);
        }

        #[test]
        fn never_panics_on_any_string(s in any::<String>()) {
            let _ = parse(&s, &outside);
        }

        #[test]
        fn single_quoted_values_are_literal(
            key in "[A-Za-z_][A-Za-z0-9_]{0,8}",
            value in "[^'\\\\]{0,20}",
        ) {
            let got = parse(&format!("{key}='{value}'\n"), &outside).unwrap();
            prop_assert_eq!(got, vec![EnvEntry { key, value, line: 1 }]);
        }

        #[test]
        fn plain_values_round_trip(
            key in "[A-Za-z_][A-Za-z0-9_]{0,8}",
            value in "[A-Za-z0-9_./:@+-][A-Za-z0-9_./:@+ -]{0,20}[A-Za-z0-9_./:@+-]",
        ) {
            let got = parse(&format!("export {key} = {value}"), &outside).unwrap();
            prop_assert_eq!(got, vec![EnvEntry { key, value, line: 1 }]);
        }
    }
}
