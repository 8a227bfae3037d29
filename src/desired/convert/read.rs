//! Typed reads from positioned nodes, each recording a positioned diagnostic on failure.
//!
//! Pure. The converter calls these for every field so that one pass reports every problem:
//! a read that fails returns `None` (or an empty value) and the caller carries on.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::desired::diag::{Diagnostics, Loc};
use crate::desired::node::{Key, Node, Value};
use crate::desired::syntax::{suggest, units};

/// Diagnostics sink plus typed readers.
pub struct Reader<'d> {
    /// Where problems go.
    pub diags: &'d mut Diagnostics,
}

impl Reader<'_> {
    /// An error at `loc`.
    pub fn error(&mut self, loc: &Loc, msg: impl Into<String>) {
        self.diags.error(loc, msg);
    }

    /// A warning at `loc`.
    pub fn warning(&mut self, loc: &Loc, msg: impl Into<String>) {
        self.diags.warning(loc, msg);
    }

    /// Reports that `node` is an invalid `kind` (e.g. "port"), with the parser's explanation
    /// `detail`. When the value came from interpolation the detail may quote a secret, so only
    /// what the user wrote and the parser's generic hint are shown.
    pub fn invalid(&mut self, node: &Node, kind: &str, detail: &str) {
        let msg = if is_interpolated(node) {
            let hint = detail
                .rsplit_once("; ")
                .map(|(_, h)| format!("; {h}"))
                .unwrap_or_default();
            format!(
                "invalid {kind} {} (its interpolated value is not shown){hint}",
                node.shown()
            )
        } else if detail.starts_with("invalid ") {
            // The syntax parsers already name the value: `invalid port "80:x": …`.
            detail.to_string()
        } else {
            format!("invalid {kind} {}: {detail}", node.shown())
        };
        self.error(&node.loc, msg);
    }

    /// The entries of a mapping; an error naming `what` otherwise. Null reads as empty.
    pub fn map<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [(Key, Node)]> {
        match &node.value {
            Value::Map(m) => Some(m),
            Value::Null => Some(&[]),
            _ => {
                self.error(
                    &node.loc,
                    format!("{what} must be a mapping, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// The elements of a list; an error naming `what` otherwise. Null reads as empty.
    pub fn seq<'n>(&mut self, node: &'n Node, what: &str) -> Option<&'n [Node]> {
        match &node.value {
            Value::Seq(s) => Some(s),
            Value::Null => Some(&[]),
            _ => {
                self.error(
                    &node.loc,
                    format!("{what} must be a list, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// A scalar as text (strings, numbers, booleans).
    pub fn string(&mut self, node: &Node, what: &str) -> Option<String> {
        match node.scalar_text() {
            Some(s) => Some(s),
            None => {
                self.error(
                    &node.loc,
                    format!("{what} must be a string, found {}", node.kind()),
                );
                None
            }
        }
    }

    /// A boolean; after interpolation `"true"`/`"false"` strings count too.
    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            Value::Str { text, .. } if text == "true" || text == "false" => Some(text == "true"),
            _ => {
                self.error(
                    &node.loc,
                    format!("{what} must be true or false, found {}", node.shown()),
                );
                None
            }
        }
    }

    /// A non-negative integer that fits `u32` (numbers, or numeric strings after interpolation).
    pub fn u32(&mut self, node: &Node, what: &str) -> Option<u32> {
        let n = self.i64(node, what)?;
        match u32::try_from(n) {
            Ok(v) => Some(v),
            Err(_) => {
                self.error(
                    &node.loc,
                    format!(
                        "{what} must be a whole number from 0 to {}, found {n}",
                        u32::MAX
                    ),
                );
                None
            }
        }
    }

    /// An integer (numbers, or numeric strings after interpolation).
    pub fn i64(&mut self, node: &Node, what: &str) -> Option<i64> {
        let parsed = match &node.value {
            Value::Int(i) => Some(*i),
            Value::Str { text, .. } => text.trim().parse().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.error(
                &node.loc,
                format!("{what} must be a whole number, found {}", node.shown()),
            );
        }
        parsed
    }

    /// A number (integer or fractional; numeric strings too).
    pub fn f64(&mut self, node: &Node, what: &str) -> Option<f64> {
        let parsed = match &node.value {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Str { text, .. } => text.trim().parse().ok(),
            _ => None,
        }
        .filter(|f: &f64| f.is_finite());
        if parsed.is_none() {
            self.error(
                &node.loc,
                format!("{what} must be a number, found {}", node.shown()),
            );
        }
        parsed
    }

    /// A Go-style duration (`1m30s`); a bare number is refused because its unit is unclear.
    pub fn duration(&mut self, node: &Node, what: &str) -> Option<Duration> {
        let text = match &node.value {
            Value::Str { text, .. } => text.clone(),
            Value::Int(0) => return Some(Duration::ZERO),
            Value::Int(_) | Value::Float(_) => {
                self.error(
                    &node.loc,
                    format!(
                        "invalid duration {} for {what}: add a unit, e.g. {}s or {}ms",
                        node.shown(),
                        node.shown(),
                        node.shown()
                    ),
                );
                return None;
            }
            _ => {
                self.error(
                    &node.loc,
                    format!("{what} must be a duration like 30s, found {}", node.kind()),
                );
                return None;
            }
        };
        match units::parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.report_unit(node, "duration", what, &e);
                None
            }
        }
    }

    fn report_unit(&mut self, node: &Node, kind: &str, what: &str, e: &str) {
        if is_interpolated(node) {
            self.invalid(node, &format!("{kind} for {what}"), e);
        } else {
            self.error(&node.loc, format!("{e} (in {what})"));
        }
    }

    /// A byte size: a number of bytes or `64m`, `1g`.
    pub fn size(&mut self, node: &Node, what: &str) -> Option<u64> {
        match &node.value {
            Value::Int(i) if *i >= 0 => Some(*i as u64),
            _ => {
                let text = self.string(node, what)?;
                match units::parse_size(&text) {
                    Ok(s) => Some(s),
                    Err(e) => {
                        self.report_unit(node, "size", what, &e);
                        None
                    }
                }
            }
        }
    }

    /// A list of strings, or a single string read as a one-element list.
    pub fn strings(&mut self, node: &Node, what: &str) -> Vec<String> {
        if node.scalar_text().is_some() {
            return self.string(node, what).into_iter().collect();
        }
        let Some(items) = self.seq(node, what) else {
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|n| self.string(n, &format!("each entry of {what}")))
            .collect()
    }

    /// `command`/`entrypoint`: a list, or a string split like a shell would.
    pub fn command(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        match &node.value {
            Value::Null => None,
            Value::Seq(_) => Some(self.strings(node, what)),
            _ => {
                let text = self.string(node, what)?;
                match shell_words(&text) {
                    Ok(w) => Some(w),
                    Err(e) => {
                        self.error(&node.loc, format!("failed to split {what}: {e}"));
                        None
                    }
                }
            }
        }
    }

    /// A list-or-mapping of `KEY=VALUE` (environment, labels, sysctls): a mapping, or a list
    /// of `KEY=VALUE`/`KEY` strings. A key without a value maps to `None`.
    pub fn key_values(
        &mut self,
        node: &Node,
        what: &str,
        seps: &[char],
    ) -> BTreeMap<String, (Option<String>, Loc)> {
        let mut out = BTreeMap::new();
        match &node.value {
            Value::Map(entries) => {
                for (k, v) in entries {
                    let value = match &v.value {
                        Value::Null => None,
                        _ => self.string(v, &format!("{what}.{}", k.name)),
                    };
                    out.insert(k.name.clone(), (value, v.loc.clone()));
                }
            }
            Value::Seq(items) => {
                for item in items {
                    let Some(text) = self.string(item, &format!("each entry of {what}")) else {
                        continue;
                    };
                    let (k, v) = match text.split_once(seps) {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (text, None),
                    };
                    if k.is_empty() {
                        self.error(
                            &item.loc,
                            format!("empty key in {what} entry {}", item.shown()),
                        );
                        continue;
                    }
                    out.insert(k, (v, item.loc.clone()));
                }
            }
            Value::Null => {}
            _ => self.error(
                &node.loc,
                format!(
                    "{what} must be a mapping or a list of KEY=VALUE, found {}",
                    node.kind()
                ),
            ),
        }
        out
    }

    /// Like [`Reader::key_values`], keeping only keys with values.
    pub fn string_map(&mut self, node: &Node, what: &str) -> BTreeMap<String, String> {
        self.key_values(node, what, &['='])
            .into_iter()
            .map(|(k, (v, _))| (k, v.unwrap_or_default()))
            .collect()
    }

    /// Warns about keys that berth does not know (`known`) or knows but ignores (`ignored`).
    /// `x-` keys are extensions and always allowed. Returns nothing; reading goes on.
    pub fn check_keys(
        &mut self,
        entries: &[(Key, Node)],
        path: &str,
        known: &[&str],
        ignored: &[&str],
    ) {
        for (k, _) in entries {
            let name = k.name.as_str();
            if known.contains(&name) || name.starts_with("x-") {
                continue;
            }
            if ignored.contains(&name) {
                self.warning(
                    &k.loc,
                    format!("{path}.{name} is not supported by berth and is ignored"),
                );
            } else {
                let hint = suggest::did_you_mean(name, known.iter().copied());
                self.warning(
                    &k.loc,
                    format!("unknown key {path}.{name} is ignored{hint}"),
                );
            }
        }
    }
}

/// True when interpolation changed the node's text (it may hold a secret).
pub fn is_interpolated(node: &Node) -> bool {
    matches!(node.value, Value::Str { raw: Some(_), .. })
}

/// Splits a command string like POSIX sh would for words and quotes (no expansion), as
/// compose does with go-shellwords.
pub fn shell_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(ch @ ('"' | '\\' | '$' | '`')) => cur.push(ch),
                            Some(ch) => {
                                cur.push('\\');
                                cur.push(ch);
                            }
                            None => return Err("unterminated double quote".into()),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(ch) => cur.push(ch),
                    None => cur.push('\\'),
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_split_like_sh() {
        assert_eq!(
            shell_words(r#"sh -c 'echo "hi there"' x\ y"#).unwrap(),
            ["sh", "-c", "echo \"hi there\"", "x y"]
        );
        assert_eq!(
            shell_words(r#"a "b \"c\"" ''"#).unwrap(),
            ["a", "b \"c\"", ""]
        );
        assert!(shell_words("a 'b").is_err());
        assert!(shell_words("").unwrap().is_empty());
    }
}
