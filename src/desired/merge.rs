//! Merges an override file (`compose.override.yaml`) into the base file, by compose's rules.
//!
//! Pure, on positioned trees (after interpolation, before conversion), so merged values keep
//! the file and line they came from. The rules are compose-go's `override` package:
//! mappings merge key by key and the override wins for scalars; `command`, `entrypoint` and
//! `healthcheck.test` are replaced; list-or-mapping fields (`environment`, `labels`,
//! `sysctls`, `extra_hosts`, `depends_on`, `networks`) merge by key; `volumes` merge by
//! target, `secrets`/`configs` by source, `ports` are appended without duplicates; any other
//! list is appended without duplicates; `logging` is replaced when the driver changes.
//! compose's `!reset` and `!override` tags in the override remove what the base has at their
//! path first (a reset value is gone, an overriding one replaces instead of merging).

use super::diag::Loc;
use std::sync::Arc;

use super::node::{self, Key, Node, ParseError, Tag, Value};

/// Parses a file into one positioned tree: its YAML documents parsed
/// ([`node::parse_documents`]) and merged in order, as compose merges them. An empty file
/// parses as `Null`.
pub fn parse(file: &Arc<str>, text: &str) -> Result<Node, ParseError> {
    let mut docs = node::parse_documents(file, text)?;
    let mut it = docs.drain(..);
    let first = it.next().map(|d| d.root).unwrap_or(Node {
        value: Value::Null,
        loc: Loc::new(file.clone(), 1, 1),
    });
    Ok(it.fold(first, |acc, d| merge_documents(acc, d.root, &d.tagged)))
}

/// Merges `over` into `base` (both whole Compose documents); `tagged` are the paths of the
/// override's `!reset`/`!override` values (from [`super::node::Document`]).
pub fn merge_documents(mut base: Node, over: Node, tagged: &[(Vec<String>, Tag, Loc)]) -> Node {
    for (path, _, _) in tagged {
        remove_path(&mut base, path);
    }
    merge(base, over, &mut Vec::new())
}

/// Merges `over` into `base`, both the value at `path` (e.g. `["services", "web"]` for an
/// `extends` base and the service that extends it), by the same rules.
pub fn merge_at(base: Node, over: Node, path: &[String]) -> Node {
    merge(base, over, &mut path.to_vec())
}

/// Removes the mapping entry at `path` (keys from the root); sequences are left alone, as in
/// compose.
pub fn remove_path(node: &mut Node, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut cur = node;
    for k in parents {
        let Some(next) = cur
            .as_map_mut()
            .and_then(|m| m.iter_mut().find(|(key, _)| &key.name == k))
        else {
            return;
        };
        cur = &mut next.1;
    }
    if let Some(m) = cur.as_map_mut() {
        m.retain(|(k, _)| &k.name != last);
    }
}

fn merge(base: Node, over: Node, path: &mut Vec<String>) -> Node {
    let rule = rule_for(path);
    match rule {
        Rule::Replace => over,
        Rule::ByKey(sep) => {
            let b = to_keyed(base, sep);
            let o = to_keyed(over, sep);
            merge_maps(b, o, path)
        }
        Rule::ByField(field) => merge_seq_by(base, over, field),
        Rule::Append => append_unique(base, over),
        Rule::Logging => {
            let driver = |n: &Node| n.get("driver").and_then(Node::scalar_text);
            match (driver(&base), driver(&over)) {
                (Some(a), Some(b)) if a != b => over,
                _ => merge_maps(base, over, path),
            }
        }
        Rule::Default => match (&base.value, &over.value) {
            (Value::Map(_), Value::Map(_)) => merge_maps(base, over, path),
            (Value::Seq(_), Value::Seq(_)) => append_unique(base, over),
            _ => over,
        },
    }
}

enum Rule {
    Replace,
    /// List-or-mapping: lists of `k<sep>v` strings become mappings, then merge by key.
    ByKey(&'static [char]),
    /// Lists of strings or mappings merged by one identifying field.
    ByField(IdField),
    Append,
    Logging,
    Default,
}

#[derive(Clone, Copy)]
enum IdField {
    VolumeTarget,
    Source,
}

fn rule_for(path: &[String]) -> Rule {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["services", _, "command" | "entrypoint"] => Rule::Replace,
        ["services", _, "healthcheck", "test"] => Rule::Replace,
        [
            "services",
            _,
            "environment" | "labels" | "sysctls" | "annotations",
        ] => Rule::ByKey(&['=']),
        ["services", _, "build", "args" | "labels"] => Rule::ByKey(&['=']),
        ["services", _, "extra_hosts"] => Rule::ByKey(&['=', ':']),
        ["services", _, "depends_on" | "networks"] => Rule::ByKey(&[]),
        ["services", _, "volumes"] => Rule::ByField(IdField::VolumeTarget),
        ["services", _, "secrets" | "configs"] => Rule::ByField(IdField::Source),
        ["services", _, "logging"] => Rule::Logging,
        ["services", _, "ports"] => Rule::Append,
        _ => Rule::Default,
    }
}

fn merge_maps(base: Node, over: Node, path: &mut Vec<String>) -> Node {
    let loc = base.loc;
    let (mut entries, over_entries) = match (base.value, over.value) {
        (Value::Map(b), Value::Map(o)) => (b, o),
        // Not two mappings (a type error the converter reports): the override wins.
        (_, value) => {
            return Node {
                value,
                loc: over.loc,
            };
        }
    };
    for (k, v) in over_entries {
        match entries.iter().position(|(bk, _)| bk.name == k.name) {
            Some(i) => {
                let (bk, bv) = entries.remove(i);
                path.push(k.name.clone());
                let merged = if bv.is_null() || v.is_null() {
                    if v.is_null() {
                        Node {
                            value: bv.value,
                            loc: bv.loc,
                        }
                    } else {
                        v
                    }
                } else {
                    merge(bv, v, path)
                };
                path.pop();
                entries.insert(
                    i,
                    (
                        Key {
                            name: bk.name,
                            loc: k.loc,
                        },
                        merged,
                    ),
                );
            }
            None => entries.push((k, v)),
        }
    }
    Node {
        value: Value::Map(entries),
        loc,
    }
}

/// `["A=1", "B"]` → `{A: "1", B: null}`; `[db, cache]` → `{db: null, cache: null}`.
fn to_keyed(node: Node, seps: &[char]) -> Node {
    let Value::Seq(items) = node.value else {
        return node;
    };
    let mut entries = Vec::new();
    for item in items {
        let loc = item.loc.clone();
        let Some(text) = item.scalar_text() else {
            // Not a plain string list; leave the conversion step to report it.
            return Node {
                value: Value::Seq(Vec::new()),
                loc: node.loc,
            };
        };
        let split = if seps.is_empty() {
            None
        } else {
            text.split_once(seps)
        };
        let (k, v) = match split {
            Some((k, v)) => (k.to_string(), Node::str(v, loc.clone())),
            None => (
                text.clone(),
                Node {
                    value: Value::Null,
                    loc: loc.clone(),
                },
            ),
        };
        entries.push((Key { name: k, loc }, v));
    }
    Node {
        value: Value::Map(entries),
        loc: node.loc,
    }
}

fn merge_seq_by(base: Node, over: Node, field: IdField) -> Node {
    let (mut items, over_items, loc) = match both_seqs(base, over) {
        Ok(parts) => parts,
        Err(winner) => return winner,
    };
    for o in over_items {
        let id = identity(&o, field);
        match items
            .iter()
            .position(|b| id.is_some() && identity(b, field) == id)
        {
            Some(i) => items[i] = o,
            None => items.push(o),
        }
    }
    Node {
        value: Value::Seq(items),
        loc,
    }
}

fn identity(n: &Node, field: IdField) -> Option<String> {
    match field {
        IdField::VolumeTarget => match n.scalar_text() {
            // Short syntax: `src:target[:mode]` or just `target`.
            Some(s) => {
                let parts: Vec<&str> = s.split(':').collect();
                Some(if parts.len() >= 2 { parts[1] } else { parts[0] }.to_string())
            }
            None => n.get("target").and_then(Node::scalar_text),
        },
        IdField::Source => n
            .scalar_text()
            .or_else(|| n.get("source").and_then(Node::scalar_text)),
    }
}

/// Both lists' items, or — when either is not a list — the override, which then simply wins
/// (the converter reports a wrong type at its own position).
fn both_seqs(
    base: Node,
    over: Node,
) -> Result<(Vec<Node>, Vec<Node>, crate::desired::diag::Loc), Node> {
    match (base.value, over.value) {
        (Value::Seq(b), Value::Seq(o)) => Ok((b, o, base.loc)),
        (_, value) => Err(Node {
            value,
            loc: over.loc,
        }),
    }
}

fn append_unique(base: Node, over: Node) -> Node {
    let (mut items, over_items, loc) = match both_seqs(base, over) {
        Ok(parts) => parts,
        Err(winner) => return winner,
    };
    for o in over_items {
        if !items.iter().any(|b| same_value(b, &o)) {
            items.push(o);
        }
    }
    Node {
        value: Value::Seq(items),
        loc,
    }
}

/// Equality ignoring positions.
fn same_value(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same_value(p, q))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| k1.name == k2.name && same_value(v1, v2))
        }
        (Value::Str { text: x, .. }, Value::Str { text: y, .. }) => x == y,
        _ => a.scalar_text().is_some() && a.scalar_text() == b.scalar_text(),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;
    use super::*;
    use indoc::indoc;
    use std::sync::Arc;

    fn merged(base: &str, over: &str) -> Node {
        let b = parse(&Arc::from("compose.yaml"), base).unwrap();
        let o = parse(&Arc::from("compose.override.yaml"), over).unwrap();
        merge_documents(b, o, &[])
    }

    fn svc(n: &Node) -> &Node {
        n.get("services").unwrap().get("web").unwrap()
    }

    #[test]
    fn scalars_are_replaced_and_keep_the_override_position() {
        let n = merged(
            "services:\n  web:\n    image: a:1\n",
            "services:\n  web:\n    image: a:2\n",
        );
        let img = svc(&n).get("image").unwrap();
        assert_eq!(img.as_str(), Some("a:2"));
        assert_eq!(&*img.loc.file, "compose.override.yaml");
    }

    #[test]
    fn environment_list_and_map_merge_by_key() {
        let n = merged(
            "services:\n  web:\n    environment: [A=1, B=2]\n",
            "services:\n  web:\n    environment: {B: 3, C: 4}\n",
        );
        let env = svc(&n).get("environment").unwrap();
        let got: Vec<(String, String)> = env
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.name.clone(), v.scalar_text().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("A".into(), "1".into()),
                ("B".into(), "3".into()),
                ("C".into(), "4".into())
            ]
        );
    }

    #[test]
    fn command_is_replaced_not_appended() {
        let n = merged(
            "services:\n  web:\n    command: [a, b]\n",
            "services:\n  web:\n    command: [c]\n",
        );
        assert_eq!(svc(&n).get("command").unwrap().as_seq().unwrap().len(), 1);
    }

    #[test]
    fn volumes_merge_by_target_ports_append_unique() {
        let n = merged(
            indoc! {"
                services:
                  web:
                    volumes: ['data:/data', './conf:/etc/app:ro']
                    ports: ['80:80']
            "},
            indoc! {"
                services:
                  web:
                    volumes: [{type: volume, source: other, target: /data}]
                    ports: ['80:80', '443:443']
            "},
        );
        let vols = svc(&n).get("volumes").unwrap().as_seq().unwrap();
        assert_eq!(vols.len(), 2);
        assert_eq!(vols[0].get("source").unwrap().as_str(), Some("other"));
        assert_eq!(svc(&n).get("ports").unwrap().as_seq().unwrap().len(), 2);
    }

    #[test]
    fn depends_on_short_and_long_forms_merge() {
        let n = merged(
            "services:\n  web:\n    depends_on: [db]\n",
            "services:\n  web:\n    depends_on:\n      cache: {condition: service_healthy}\n",
        );
        let deps = svc(&n).get("depends_on").unwrap().as_map().unwrap();
        let names: Vec<&str> = deps.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(names, ["db", "cache"]);
    }

    #[test]
    fn a_type_mismatch_lets_the_override_win() {
        let n = merged(
            "services:\n  web:\n    environment: oops\n    ports: '80'\n",
            "services:\n  web:\n    environment: {A: 1}\n    ports: ['81:81']\n",
        );
        assert!(svc(&n).get("environment").unwrap().get("A").is_some());
        assert_eq!(svc(&n).get("ports").unwrap().as_seq().unwrap().len(), 1);
    }

    #[test]
    fn logging_is_replaced_when_the_driver_changes() {
        let n = merged(
            "services:\n  web:\n    logging: {driver: json-file, options: {max-size: 1m}}\n",
            "services:\n  web:\n    logging: {driver: syslog}\n",
        );
        assert!(svc(&n).get("logging").unwrap().get("options").is_none());
    }
}
