//! The positioned YAML tree every later stage works on, and the YAML parser that builds it.
//!
//! Pure (takes text, returns a tree). Compose loads files into a generic tree, interpolates,
//! merges overrides, and only then turns the result into types; berth does the same, but each
//! [`Node`] keeps the file, line and column it came from so that every diagnostic can point
//! at the input. serde-saphyr does the YAML work: anchors, `<<:` merge keys, duplicate keys
//! rejected, and budgets that refuse alias bombs and deep nesting quickly. A file may hold
//! several YAML documents (merged in order, as compose does), and compose's `!reset` and
//! `!override` tags are read into [`Document::tagged`] for the merge stages.

use std::fmt;
use std::sync::Arc;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::diag::Loc;

/// Nesting deeper than this is refused; real Compose files stay below 15.
const MAX_DEPTH: usize = 64;
/// Parser events per file; a 10 MB file of plain mappings stays far below it, while an
/// alias bomb that expands to millions of nodes is refused in milliseconds.
const MAX_EVENTS: usize = 2_000_000;
/// Nodes (mappings, sequences, scalars) a document may hold once its aliases are expanded:
/// the alias-bomb guard. The count includes every node an alias replays, so a file that uses
/// an alias thousands of times is fine while one that expands exponentially is refused at
/// the alias that crosses the budget.
pub const MAX_NODES: usize = 250_000;

/// A YAML node with the place it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value was written (for merged-in values: where the merge was written).
    pub loc: Loc,
}

/// A YAML value. Mapping order is kept (it matters for messages, never for meaning).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string; `raw` keeps the text before interpolation when it changed, so messages can
    /// quote what the user wrote rather than a value that may come from a secret env file.
    Str {
        /// The (interpolated) text.
        text: String,
        /// The text as written, when interpolation changed it.
        raw: Option<String>,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping with string keys.
    Map(Vec<(Key, Node)>),
}

/// A mapping key with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// The key text (numbers and booleans as written by YAML's canonical form).
    pub name: String,
    /// Where the key was written.
    pub loc: Loc,
}

impl Node {
    /// A string node (used by tests and by code that synthesises defaults).
    pub fn str(text: impl Into<String>, loc: Loc) -> Self {
        Node {
            value: Value::Str {
                text: text.into(),
                raw: None,
            },
            loc,
        }
    }

    /// The mapping entries, if this is a mapping.
    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The mapping entries, mutable.
    pub fn as_map_mut(&mut self) -> Option<&mut Vec<(Key, Node)>> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The elements, if this is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The text, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str { text, .. } => Some(text),
            _ => None,
        }
    }

    /// A scalar as text the way compose reads "string or number" fields (`8080`, `1.5`,
    /// `true`); `None` for null, sequences and mappings.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str { text, .. } => Some(text.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// True for `null`/`~`/an empty value.
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The entry `name` of a mapping.
    pub fn get(&self, name: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(_, v)| v)
    }

    /// What the user wrote, for messages: the raw text of an interpolated string (never the
    /// interpolated value), the text of other scalars, or the kind of a collection.
    pub fn shown(&self) -> String {
        match &self.value {
            Value::Str { raw: Some(raw), .. } => format!("{raw:?}"),
            Value::Str { text, .. } => format!("{text:?}"),
            Value::Null => "null".into(),
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
            _ => self.scalar_text().unwrap_or_default(),
        }
    }

    /// The name of this node's kind, for "expected X, found Y" messages.
    pub fn kind(&self) -> &'static str {
        match self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str { .. } => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// Why a file could not be parsed as YAML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Where the parser stopped.
    pub loc: Loc,
    /// What it found, in one line.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.loc, self.message)
    }
}

/// compose's merge tags on a value (`key: !reset …`, `key: !override …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// `!reset`: the value is removed, here and in what earlier files (or an `extends` base)
    /// set at the same path.
    Reset,
    /// `!override`: the value replaces what earlier files set at the same path instead of
    /// being merged into it.
    Override,
}

/// One parsed YAML document: the tree (without `!reset` values) and the paths of mapping
/// keys whose values carried a merge tag, with the tag and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// The tree.
    pub root: Node,
    /// `(path of keys from the root, tag, position)` for every tagged value.
    pub tagged: Vec<(Vec<String>, Tag, Loc)>,
}

/// Parses every YAML document of a file (compose merges them in order, like files).
/// A file without any document gives one `Null` document.
pub fn parse_documents(file: &Arc<str>, text: &str) -> Result<Vec<Document>, ParseError> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.max_events = MAX_EVENTS;
    budget.max_nodes = MAX_NODES;
    // The budget counts expanded nodes; the ratio heuristic refused a file for using an
    // anchor 100 times, whatever it expands to.
    budget.enforce_alias_anchor_ratio = false;
    budget.max_aliases = MAX_NODES;
    let mut opts = serde_saphyr::Options::default();
    opts.budget = Some(budget);
    opts.alias_limits.max_total_replayed_events = MAX_EVENTS;
    opts.with_snippet = false;
    // Compose reads YAML 1.2: `yes`/`no`/`on`/`off` are strings, not booleans.
    opts.strict_booleans = true;
    // yaml.v3 (compose) reads `0444` as octal; so must berth, or file modes change meaning.
    opts.legacy_octal_numbers = true;
    // Tags are checked here: compose's `!reset`/`!override` are read, any other is refused
    // (ignoring it would deploy something else than written).
    opts.reject_unsupported_tags = false;
    let raw: Vec<Option<RawNode>> = serde_saphyr::from_str_multiple_with_options(text, opts)
        .map_err(|e| {
            // An alias that crosses the budget is reported where the alias is used.
            let at = e
                .locations()
                .map(|l| l.reference_location)
                .filter(|l| l.line() > 0)
                .or_else(|| e.location());
            let loc = at
                .map(|l| Loc::new(file.clone(), to_u32(l.line()), to_u32(l.column())))
                .unwrap_or_else(|| Loc::new(file.clone(), 1, 1));
            ParseError {
                loc,
                message: describe(&e),
            }
        })?;
    let mut docs = Vec::new();
    for r in raw {
        let mut tagged = Vec::new();
        let root = match r {
            Some(r) => r.into_node(file, &mut Vec::new(), &mut tagged)?,
            None => None,
        };
        docs.push(Document {
            root: root.unwrap_or(Node {
                value: Value::Null,
                loc: Loc::new(file.clone(), 1, 1),
            }),
            tagged,
        });
    }
    if docs.is_empty() {
        docs.push(Document {
            root: Node {
                value: Value::Null,
                loc: Loc::new(file.clone(), 1, 1),
            },
            tagged: Vec::new(),
        });
    }
    Ok(docs)
}

fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// One line, no position prefix (we print our own), and words a Compose author understands.
fn describe(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("invalid YAML").trim();
    // serde-saphyr prefixes "error: line N column M: "; drop it, the diagnostic has the position.
    let msg = first.strip_prefix("error: ").unwrap_or(first);
    let msg = match msg.find(": ") {
        Some(i) if msg.starts_with("line ") => &msg[i + 2..],
        _ => msg,
    };
    if msg.contains("budget breached") || msg.contains("recursion limit") {
        if msg.contains("Depth") || msg.contains("recursion") {
            return format!("YAML nested deeper than {MAX_DEPTH} levels; refusing to load it");
        }
        return format!(
            "YAML aliases expand to more than {MAX_NODES} nodes (alias bomb?); refusing to load it"
        );
    }
    // Some messages repeat the position; the diagnostic already has it.
    let msg = match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(", column ") => &msg[..i],
        _ => msg,
    };
    if msg.starts_with("multiple YAML documents") {
        return "unexpected YAML document".into();
    }
    if let Some(rest) = msg.strip_prefix("duplicate mapping key: ") {
        let key = rest.split(',').next().unwrap_or(rest);
        return format!("duplicate key {key:?}: each key may appear once in a mapping");
    }
    msg.to_string()
}

/// What serde-saphyr builds; positions only, the file is attached afterwards.
struct RawNode {
    value: RawValue,
    tag: Option<String>,
    line: u32,
    col: u32,
}

enum RawValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<RawNode>),
    Map(Vec<(Spanned<RawKey>, RawNode)>),
}

/// A key of any scalar type, kept as text.
struct RawKey(String);

impl RawNode {
    /// The positioned node, or `None` for a `!reset` value; tagged paths go into `tagged`.
    fn into_node(
        self,
        file: &Arc<str>,
        path: &mut Vec<String>,
        tagged: &mut Vec<(Vec<String>, Tag, Loc)>,
    ) -> Result<Option<Node>, ParseError> {
        let loc = Loc::new(file.clone(), self.line, self.col);
        match self.tag.as_deref() {
            None => {}
            Some("!reset") => {
                tagged.push((path.clone(), Tag::Reset, loc));
                return Ok(None);
            }
            Some("!override") => tagged.push((path.clone(), Tag::Override, loc.clone())),
            // YAML's own types (`!!str 1`) are resolved by the parser already.
            Some(t) if t.starts_with("tag:yaml.org,2002:") => {}
            Some(t) => {
                return Err(ParseError {
                    loc,
                    message: format!(
                        "unsupported YAML tag {t}: compose reads only !reset and !override"
                    ),
                });
            }
        }
        let value = match self.value {
            RawValue::Null => Value::Null,
            RawValue::Bool(b) => Value::Bool(b),
            RawValue::Int(i) => Value::Int(i),
            RawValue::Float(f) => Value::Float(f),
            RawValue::Str(s) => Value::Str { text: s, raw: None },
            RawValue::Seq(s) => {
                let mut items = Vec::new();
                for (i, n) in s.into_iter().enumerate() {
                    path.push(format!("[{i}]"));
                    let n = n.into_node(file, path, tagged);
                    path.pop();
                    items.extend(n?);
                }
                Value::Seq(items)
            }
            RawValue::Map(m) => {
                let mut entries = Vec::new();
                for (k, v) in m {
                    let kloc = Loc::new(
                        file.clone(),
                        to_u32(k.referenced.line()),
                        to_u32(k.referenced.column()),
                    );
                    path.push(k.value.0.clone());
                    let v = v.into_node(file, path, tagged);
                    path.pop();
                    if let Some(v) = v? {
                        entries.push((
                            Key {
                                name: k.value.0,
                                loc: kloc,
                            },
                            v,
                        ));
                    }
                }
                Value::Map(entries)
            }
        };
        Ok(Some(Node { value, loc }))
    }
}

impl<'de> Deserialize<'de> for RawNode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s: Spanned<serde_saphyr::Tagged<RawValue>> = Spanned::deserialize(d)?;
        Ok(RawNode {
            value: s.value.0,
            tag: s.value.1,
            line: to_u32(s.referenced.line()),
            col: to_u32(s.referenced.column()),
        })
    }
}

impl<'de> Deserialize<'de> for RawValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

impl<'de> Deserialize<'de> for RawKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match RawValue::deserialize(d)? {
            RawValue::Str(s) => Ok(RawKey(s)),
            RawValue::Int(i) => Ok(RawKey(i.to_string())),
            RawValue::Float(f) => Ok(RawKey(f.to_string())),
            RawValue::Bool(b) => Ok(RawKey(b.to_string())),
            RawValue::Null => Ok(RawKey(String::new())),
            _ => Err(de::Error::custom("mapping keys must be plain strings")),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = RawValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_none<E>(self) -> Result<RawValue, E> {
        Ok(RawValue::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<RawValue, D::Error> {
        RawValue::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<RawValue, E> {
        Ok(RawValue::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<RawValue, E> {
        Ok(RawValue::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<RawValue, E> {
        Ok(i64::try_from(u)
            .map(RawValue::Int)
            .unwrap_or_else(|_| RawValue::Str(u.to_string())))
    }
    fn visit_i128<E>(self, i: i128) -> Result<RawValue, E> {
        Ok(RawValue::Str(i.to_string()))
    }
    fn visit_u128<E>(self, u: u128) -> Result<RawValue, E> {
        Ok(RawValue::Str(u.to_string()))
    }
    fn visit_f64<E>(self, f: f64) -> Result<RawValue, E> {
        Ok(RawValue::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<RawValue, E> {
        Ok(RawValue::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<RawValue, E> {
        Ok(RawValue::Str(s))
    }
    fn visit_bytes<E: de::Error>(self, b: &[u8]) -> Result<RawValue, E> {
        Ok(RawValue::Str(String::from_utf8_lossy(b).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<RawValue, A::Error> {
        let mut v = Vec::new();
        while let Some(n) = a.next_element()? {
            v.push(n);
        }
        Ok(RawValue::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<RawValue, A::Error> {
        let mut v = Vec::new();
        while let Some(entry) = a.next_entry()? {
            v.push(entry);
        }
        Ok(RawValue::Map(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use indoc::indoc;

    fn p(text: &str) -> Result<Node, ParseError> {
        crate::desired::merge::parse(&Arc::from("compose.yaml"), text)
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let n = p("services:\n  web:\n    image: app:1\n").unwrap();
        let web = n.get("services").unwrap().get("web").unwrap();
        let (k, v) = &web.as_map().unwrap()[0];
        assert_eq!((k.name.as_str(), k.loc.line, k.loc.col), ("image", 3, 5));
        assert_eq!((v.as_str(), v.loc.line, v.loc.col), (Some("app:1"), 3, 12));
    }

    #[test]
    fn merge_keys_and_anchors_expand_and_local_keys_win() {
        let n = p(indoc! {"
            x-base: &base
              image: base:1
              restart: always
            services:
              web:
                <<: *base
                image: web:2
        "})
        .unwrap();
        let web = n.get("services").unwrap().get("web").unwrap();
        assert_eq!(web.get("image").unwrap().as_str(), Some("web:2"));
        assert_eq!(web.get("restart").unwrap().as_str(), Some("always"));
        assert_eq!(web.as_map().unwrap().len(), 2);
    }

    #[test]
    fn duplicate_keys_are_rejected_at_the_second_key() {
        let e = p("services:\n  web:\n    image: a\n    image: b\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "compose.yaml:4:5: duplicate key \"image\": each key may appear once in a mapping"
        );
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut y = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
        for (prev, cur) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let refs = vec![format!("*{prev}"); 10].join(",");
            y.push_str(&format!("{cur}: &{cur} [{refs}]\n"));
        }
        let e = p(&y).unwrap_err();
        assert!(e.message.contains("alias bomb"), "{e}");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let y = format!("a: {}{}", "[".repeat(5000), "]".repeat(5000));
        let e = p(&y).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
    }

    #[test]
    fn yaml_1_1_booleans_are_strings_as_in_compose() {
        let n = p("a: yes\nb: no\nc: true\n").unwrap();
        assert_eq!(n.get("a").unwrap().as_str(), Some("yes"));
        assert_eq!(n.get("b").unwrap().as_str(), Some("no"));
        assert_eq!(n.get("c").unwrap().value, Value::Bool(true));
    }

    #[test]
    fn leading_zero_numbers_are_octal_as_in_yaml_v3() {
        let n = p("a: 0444\nb: 0o400\nc: 440\n").unwrap();
        assert_eq!(n.get("a").unwrap().value, Value::Int(0o444));
        assert_eq!(n.get("b").unwrap().value, Value::Int(0o400));
        assert_eq!(n.get("c").unwrap().value, Value::Int(440));
    }

    #[test]
    fn unsupported_tags_are_refused_with_a_position() {
        let e = p("services:\n  w:\n    ports: !custom []\n").unwrap_err();
        assert_eq!(e.loc.line, 3, "{e}");
        assert!(e.message.contains("!custom"), "{e}");
    }

    #[test]
    fn reset_values_are_dropped_and_tagged_paths_recorded() {
        let docs = parse_documents(
            &Arc::from("compose.yaml"),
            "services:\n  w:\n    ports: !reset []\n    environment: !override {A: 1}\n",
        )
        .unwrap();
        let w = docs[0].root.get("services").unwrap().get("w").unwrap();
        assert!(w.get("ports").is_none());
        assert!(w.get("environment").is_some());
        let tags: Vec<(String, Tag)> = docs[0]
            .tagged
            .iter()
            .map(|(p, t, _)| (p.join("."), *t))
            .collect();
        assert_eq!(
            tags,
            [
                ("services.w.ports".to_string(), Tag::Reset),
                ("services.w.environment".to_string(), Tag::Override)
            ]
        );
    }

    #[test]
    fn empty_document_is_null() {
        assert!(p("").unwrap().is_null());
        assert!(p("# only a comment\n").unwrap().is_null());
    }

    #[test]
    fn syntax_error_has_a_position() {
        let e = p("services:\n  web:\n    image: [a\n").unwrap_err();
        assert!(e.loc.line >= 3, "{e}");
    }
}
