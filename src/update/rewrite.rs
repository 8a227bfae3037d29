//! Writing a new image where the service's image is defined, byte for byte: a Compose
//! `image:` value, or the `.env` variable that value is interpolated from. Everything else in
//! the file — comments, quoting, indentation, key order, blank lines — is left as it was.
//!
//! Pure: texts in, texts out. The caller reads the files (the loader's `field_locs["image"]`
//! says where the value starts) and writes the result back atomically.

use std::ops::Range;

/// Why a file cannot be rewritten.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// The position does not fall on a scalar in the text.
    #[error("failed to find the image value at line {line}, column {col}")]
    NoValue {
        /// 1-based line.
        line: u32,
        /// 1-based column.
        col: u32,
    },
    /// The text there is not what the loader read (the file changed since).
    #[error(
        "the value at line {line} is {found:?}, not {expected:?} (the file changed since it was read)"
    )]
    Changed {
        /// 1-based line.
        line: u32,
        /// What the caller expected.
        expected: String,
        /// What is written.
        found: String,
    },
    /// The value is put together from variables in a way berth does not edit.
    #[error(
        "the image value {raw:?} is not one literal or one ${{VARIABLE}} around a literal prefix and suffix"
    )]
    Unsupported {
        /// The value as written.
        raw: String,
    },
    /// The new image does not keep the literal parts around the variable.
    #[error(
        "the new image {new:?} does not keep {prefix:?} before and {suffix:?} after ${{{var}}}"
    )]
    Shape {
        /// The variable.
        var: String,
        /// Literal text before it.
        prefix: String,
        /// Literal text after it.
        suffix: String,
        /// The new reference.
        new: String,
    },
    /// The variable is not assigned in the env file.
    #[error("{var} is not set in the env file")]
    NotInEnv {
        /// The variable.
        var: String,
    },
}

/// Where the image is defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// Literally in the Compose file; the result is the file's new text.
    Compose(String),
    /// In the variable `var` (of the project's `.env`), which must change from `old` to `new`
    /// (see [`env_value`]).
    Env {
        /// The variable.
        var: String,
        /// Its value now.
        old: String,
        /// Its value after.
        new: String,
    },
}

/// Rewrites the Compose `image:` value starting at `line`:`col` (1-based, in characters, as
/// the loader reports it) from `old` (the interpolated reference) to `new`. When the value
/// is one `${VAR}` (or `$VAR`, or `${VAR:-default}`) with literal text around it, the edit
/// belongs in the variable: [`Site::Env`] says which and to what.
pub fn compose_image(
    text: &str,
    line: u32,
    col: u32,
    old: &str,
    new: &str,
) -> Result<Site, RewriteError> {
    let span = scalar_at(text, line, col).ok_or(RewriteError::NoValue { line, col })?;
    let raw = &text[span.clone()];
    if !raw.contains('$') {
        if raw != old {
            return Err(RewriteError::Changed {
                line,
                expected: old.to_string(),
                found: raw.to_string(),
            });
        }
        let mut out = String::with_capacity(text.len() + new.len());
        out.push_str(&text[..span.start]);
        out.push_str(new);
        out.push_str(&text[span.end..]);
        return Ok(Site::Compose(out));
    }
    let (prefix, var, suffix) = one_variable(raw).ok_or_else(|| RewriteError::Unsupported {
        raw: raw.to_string(),
    })?;
    let strip = |whole: &str| -> Option<String> {
        whole
            .strip_prefix(prefix)?
            .strip_suffix(suffix)
            .map(str::to_string)
    };
    let old_value = strip(old).ok_or_else(|| RewriteError::Changed {
        line,
        expected: old.to_string(),
        found: raw.to_string(),
    })?;
    let new_value = strip(new).ok_or_else(|| RewriteError::Shape {
        var: var.to_string(),
        prefix: prefix.to_string(),
        suffix: suffix.to_string(),
        new: new.to_string(),
    })?;
    Ok(Site::Env {
        var: var.to_string(),
        old: old_value,
        new: new_value,
    })
}

/// Rewrites the value of `var` in an env file (`VAR=value`, `export VAR=value`, quoted or
/// not, with or without a trailing `# comment`) from `old` to `new`. The last assignment
/// counts, as when the file is read.
pub fn env_value(text: &str, var: &str, old: &str, new: &str) -> Result<String, RewriteError> {
    let mut found: Option<(u32, Range<usize>)> = None;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        if let Some(span) = env_assignment(line, var) {
            found = Some((i as u32 + 1, offset + span.start..offset + span.end));
        }
        offset += line.len();
    }
    let (line, span) = found.ok_or_else(|| RewriteError::NotInEnv {
        var: var.to_string(),
    })?;
    if &text[span.clone()] != old {
        return Err(RewriteError::Changed {
            line,
            expected: old.to_string(),
            found: text[span].to_string(),
        });
    }
    Ok(format!("{}{new}{}", &text[..span.start], &text[span.end..]))
}

/// The span of `var`'s value on one env-file line (inside quotes, before a comment).
fn env_assignment(line: &str, var: &str) -> Option<Range<usize>> {
    let body = line.trim_end_matches(['\n', '\r']);
    let lead = body.len() - body.trim_start().len();
    let mut rest = &body[lead..];
    let mut at = lead;
    if let Some(r) = rest.strip_prefix("export ") {
        let skipped = rest.len() - r.trim_start().len();
        at += skipped;
        rest = &rest[skipped..];
    }
    let r = rest.strip_prefix(var)?;
    let eq = r.len() - r.trim_start().len();
    let r = r.trim_start().strip_prefix('=')?;
    at += var.len() + eq + 1;
    let value_lead = r.len() - r.trim_start().len();
    at += value_lead;
    let v = &r[value_lead..];
    Some(match v.as_bytes().first() {
        Some(q @ (b'"' | b'\'')) => {
            let close = v[1..].find(*q as char)?;
            at + 1..at + 1 + close
        }
        _ => {
            // Unquoted: up to a ` #` comment, trailing blanks left where they are.
            let end = v
                .char_indices()
                .find(|&(i, c)| c == '#' && i > 0 && v[..i].ends_with([' ', '\t']))
                .map_or(v.len(), |(i, _)| i);
            at..at + v[..end].trim_end().len()
        }
    })
}

/// `prefix ${VAR} suffix` (or `$VAR`, `${VAR:-default}`, `${VAR-default}`) with no other `$`.
fn one_variable(raw: &str) -> Option<(&str, &str, &str)> {
    let start = raw.find('$')?;
    let after = &raw[start + 1..];
    let (name, rest) = if let Some(inner) = after.strip_prefix('{') {
        let close = inner.find('}')?;
        let body = &inner[..close];
        let name_len = body
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        let tail = &body[name_len..];
        // A default (`:-x`, `-x`) is fine: berth edits the variable, which is set.
        if !(tail.is_empty() || tail.starts_with(":-") || tail.starts_with('-')) {
            return None;
        }
        (&body[..name_len], &inner[close + 1..])
    } else {
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        (&after[..len], &after[len..])
    };
    if name.is_empty() || rest.contains('$') || raw[..start].contains('$') {
        return None;
    }
    Some((&raw[..start], name, rest))
}

/// The byte span of the scalar starting at `line`:`col` (inside its quotes when quoted; a
/// plain scalar ends at a ` #` comment or the line's end, trailing blanks excluded).
fn scalar_at(text: &str, line: u32, col: u32) -> Option<Range<usize>> {
    if line == 0 || col == 0 {
        return None;
    }
    let line_start = if line == 1 {
        0
    } else {
        text.match_indices('\n').nth(line as usize - 2)?.0 + 1
    };
    let line_text = text[line_start..].split('\n').next()?;
    let line_text = line_text.strip_suffix('\r').unwrap_or(line_text);
    let (rel, _) = line_text.char_indices().nth(col as usize - 1)?;
    let v = &line_text[rel..];
    let at = line_start + rel;
    match v.as_bytes().first()? {
        b'"' => {
            let bytes = v.as_bytes();
            let mut i = 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => return Some(at + 1..at + i),
                    _ => i += 1,
                }
            }
            None
        }
        b'\'' => {
            let close = v[1..].find('\'')?;
            Some(at + 1..at + 1 + close)
        }
        _ => {
            let end = v
                .char_indices()
                .find(|&(i, c)| c == '#' && i > 0 && v[..i].ends_with([' ', '\t']))
                .map_or(v.len(), |(i, _)| i);
            let len = v[..end].trim_end().len();
            (len > 0).then_some(at..at + len)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_variable_splits_prefix_and_suffix() {
        assert_eq!(one_variable("app:${TAG}"), Some(("app:", "TAG", "")));
        assert_eq!(one_variable("$IMAGE"), Some(("", "IMAGE", "")));
        assert_eq!(
            one_variable("reg/app:${TAG:-1.0}-alpine"),
            Some(("reg/app:", "TAG", "-alpine"))
        );
        assert_eq!(one_variable("${REG}/app:${TAG}"), None);
        assert_eq!(one_variable("app:${TAG:?set it}"), None);
    }

    #[test]
    fn scalar_at_handles_quotes_and_comments() {
        let t = "a: 1\nimage: \"x:1\"  # c\nb: y:2 # c\n";
        assert_eq!(&t[scalar_at(t, 2, 8).unwrap()], "x:1");
        assert_eq!(&t[scalar_at(t, 3, 4).unwrap()], "y:2");
        assert_eq!(scalar_at(t, 9, 1), None);
    }
}
