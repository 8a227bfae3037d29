//! Assembles one Compose document from the files it references: `include` and `extends`.
//!
//! Pure apart from the file reader it is given (the loader passes `discover`'s, which keeps
//! every read under the desired-state root). Runs per document, after interpolation and
//! before the override merge, in compose-go's order: includes first (their resources are
//! imported, the including file's own definitions merged over them), then `extends`
//! (same file or `file:`; the extending service merged over a copy of its base by the
//! override rules, the base's `!reset`/`!override` paths removed first). Values keep the
//! file and line they were written at, so diagnostics name the included or extended file.
//! Relative paths of a referenced file (build contexts, env files, bind mounts, secret and
//! config files) are rewritten to be relative to the referencing file's directory, as
//! compose resolves them against the file they were written in.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::diag::{Diagnostics, Loc};
use super::merge;
use super::node::{Document, Key, Node, Tag, Value};

/// Includes nested deeper than this are refused (compose refuses cycles; this bounds chains).
const MAX_INCLUDE_DEPTH: usize = 16;

/// Merge-tag paths of a document (see [`Document::tagged`]).
type Tagged = Vec<(Vec<String>, Tag, Loc)>;

/// Reads, parses and interpolates a Compose file (see [`Files::load`]).
pub type LoadFn<'a> =
    dyn Fn(&Path, &Loc, &BTreeMap<String, String>, &mut Diagnostics) -> Option<Vec<Document>> + 'a;

/// Reads an env file into variables (see [`Files::env_file`]).
pub type EnvFileFn<'a> =
    dyn Fn(&Path, &Loc, &mut Diagnostics) -> Option<BTreeMap<String, String>> + 'a;

/// How the assembler reaches other files.
pub struct Files<'a> {
    /// Reads and parses the file at a project-relative path (already normalised) and
    /// interpolates it with the given extra variables (from an include's env files, under
    /// the project's own); `None` (with a diagnostic at `at`) when it cannot be used.
    pub load: &'a LoadFn<'a>,
    /// Reads an env file (project-relative path) into variables, for `include.env_file`.
    pub env_file: &'a EnvFileFn<'a>,
}

/// Applies `include` and then `extends` to one document of the file at `file` (a path
/// relative to the project directory). `tagged` are the document's merge-tag paths.
pub fn assemble(
    doc: &mut Node,
    tagged: &[(Vec<String>, Tag, Loc)],
    file: &Path,
    files: &Files<'_>,
    diags: &mut Diagnostics,
) {
    let mut chain = vec![file.to_path_buf()];
    apply_include(
        doc,
        tagged,
        file,
        files,
        &mut chain,
        &BTreeMap::new(),
        diags,
    );
    apply_extends(doc, tagged, file, files, diags);
}

fn parent(file: &Path) -> PathBuf {
    file.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// `a/./b/../c` → `a/c`, lexically; a leading `..` stays.
pub fn normalize(p: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                _ => out.push(c),
            },
            _ => out.push(c),
        }
    }
    out.iter().collect()
}

fn apply_include(
    doc: &mut Node,
    tagged: &[(Vec<String>, Tag, Loc)],
    file: &Path,
    files: &Files<'_>,
    chain: &mut Vec<PathBuf>,
    env: &BTreeMap<String, String>,
    diags: &mut Diagnostics,
) {
    let Some(entries) = doc.as_map_mut() else {
        return;
    };
    let Some(i) = entries.iter().position(|(k, _)| k.name == "include") else {
        return;
    };
    let (_, list) = entries.remove(i);
    let items: Vec<Node> = match list.value {
        Value::Seq(s) => s,
        Value::Null => Vec::new(),
        _ => {
            diags.error(
                &list.loc,
                format!("include must be a list, found {}", list.kind()),
            );
            return;
        }
    };
    let dir = parent(file);
    for item in items {
        let Some((paths, project_dir, env_files)) = include_entry(&item, diags) else {
            continue;
        };
        let Some((first_path, first_loc)) = paths.first().cloned() else {
            diags.error(&item.loc, "include needs path: the Compose file to include");
            continue;
        };
        let first = normalize(&dir.join(&first_path));
        if chain.contains(&first) || chain.len() > MAX_INCLUDE_DEPTH {
            diags.error(
                &first_loc,
                format!(
                    "include cycle: {} includes {} again",
                    file.display(),
                    first.display()
                ),
            );
            continue;
        }
        let inc_dir = match &project_dir {
            Some(d) => normalize(&dir.join(d)),
            None => parent(&first),
        };
        // Variables: the project's own win, then the include's env files (or its .env).
        let mut inc_env = env.clone();
        let env_list: Vec<(PathBuf, Loc, bool)> = if env_files.is_empty() {
            vec![(inc_dir.join(".env"), item.loc.clone(), false)]
        } else {
            env_files
                .into_iter()
                .map(|(p, l)| (normalize(&dir.join(p)), l, true))
                .collect()
        };
        for (p, l, required) in env_list {
            if !required && p.as_os_str() == ".env" && inc_dir.as_os_str().is_empty() {
                continue; // the project's own .env, already read
            }
            let mut quiet = Diagnostics::default();
            match (files.env_file)(&p, &l, if required { diags } else { &mut quiet }) {
                Some(vars) => {
                    for (k, v) in vars {
                        inc_env.entry(k).or_insert(v);
                    }
                }
                None => continue,
            }
        }
        let mut merged: Option<Node> = None;
        chain.push(first.clone());
        for (p, l) in &paths {
            let path = normalize(&dir.join(p));
            let Some(docs) = (files.load)(&path, l, &inc_env, diags) else {
                continue;
            };
            for d in docs {
                let mut root = d.root;
                apply_include(&mut root, &d.tagged, &path, files, chain, &inc_env, diags);
                apply_extends(&mut root, &d.tagged, &path, files, diags);
                merged = Some(match merged {
                    None => root,
                    Some(acc) => merge::merge_documents(acc, root, &d.tagged),
                });
            }
        }
        chain.pop();
        let Some(mut imported) = merged else {
            continue;
        };
        // Paths in the included files are relative to the include's project directory.
        if let Some(prefix) = relative_to(&inc_dir, &dir) {
            rebase_document(&mut imported, &prefix);
        }
        import_resources(doc, imported, tagged);
    }
}

type IncludeEntry = (Vec<(String, Loc)>, Option<String>, Vec<(String, Loc)>);

/// `- path` or `- {path: a | [a, b], project_directory: d, env_file: e | [e]}`.
fn include_entry(item: &Node, diags: &mut Diagnostics) -> Option<IncludeEntry> {
    let strings = |n: &Node, what: &str, diags: &mut Diagnostics| -> Vec<(String, Loc)> {
        match &n.value {
            Value::Seq(s) => s
                .iter()
                .filter_map(|x| match x.scalar_text() {
                    Some(t) => Some((t, x.loc.clone())),
                    None => {
                        diags.error(&x.loc, format!("include {what} must be a string"));
                        None
                    }
                })
                .collect(),
            _ => match n.scalar_text() {
                Some(t) => vec![(t, n.loc.clone())],
                None => {
                    diags.error(&n.loc, format!("include {what} must be a string or a list"));
                    Vec::new()
                }
            },
        }
    };
    if let Some(t) = item.scalar_text() {
        return Some((vec![(t, item.loc.clone())], None, Vec::new()));
    }
    let Some(map) = item.as_map() else {
        diags.error(
            &item.loc,
            format!(
                "include entries are a path or a mapping, found {}",
                item.kind()
            ),
        );
        return None;
    };
    let mut paths = Vec::new();
    let mut project_dir = None;
    let mut env = Vec::new();
    for (k, v) in map {
        match k.name.as_str() {
            "path" => paths = strings(v, "path", diags),
            "project_directory" => project_dir = v.scalar_text(),
            "env_file" => env = strings(v, "env_file", diags),
            other if other.starts_with("x-") => {}
            other => diags.error(
                &k.loc,
                format!(
                    "unknown include key {other:?}: expected path, project_directory or env_file"
                ),
            ),
        }
    }
    Some((paths, project_dir, env))
}

/// `to` as seen from `from` (both project-relative, normalised): `a/b` from `a` is `b`,
/// `c` from `a` is `../c`. `None` when they are the same directory.
fn relative_to(to: &Path, from: &Path) -> Option<PathBuf> {
    if to == from {
        return None;
    }
    let t: Vec<Component<'_>> = to.components().collect();
    let f: Vec<Component<'_>> = from.components().collect();
    let common = t.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    Some(out)
}

const RESOURCES: [&str; 5] = ["services", "volumes", "networks", "secrets", "configs"];

/// Adds an included document's resources to `doc`; a name defined in both is the included
/// definition with the including file's merged over it (its `!reset`/`!override` first).
fn import_resources(doc: &mut Node, imported: Node, tagged: &[(Vec<String>, Tag, Loc)]) {
    let Value::Map(src) = imported.value else {
        return;
    };
    let Some(target) = doc.as_map_mut() else {
        return;
    };
    for (key, from) in src {
        if !RESOURCES.contains(&key.name.as_str()) {
            continue;
        }
        let Value::Map(from_entries) = from.value else {
            continue;
        };
        let pos = match target.iter().position(|(k, _)| k.name == key.name) {
            Some(p) => p,
            None => {
                target.push((
                    key.clone(),
                    Node {
                        value: Value::Map(Vec::new()),
                        loc: from.loc.clone(),
                    },
                ));
                target.len() - 1
            }
        };
        if target[pos].1.is_null() {
            target[pos].1.value = Value::Map(Vec::new());
        }
        let Some(to) = target[pos].1.as_map_mut() else {
            continue;
        };
        for (name, mut def) in from_entries {
            match to.iter().position(|(k, _)| k.name == name.name) {
                None => to.push((name, def)),
                Some(i) => {
                    let own = to[i].1.clone();
                    let within = [key.name.clone(), name.name.clone()];
                    for (p, _, _) in tagged {
                        if p.starts_with(&within) {
                            merge::remove_path(&mut def, &p[2..]);
                        }
                    }
                    let overridden = tagged
                        .iter()
                        .any(|(p, t, _)| *t == Tag::Override && p[..] == within[..]);
                    to[i].1 = if overridden {
                        own
                    } else {
                        merge::merge_at(def, own, &within)
                    };
                }
            }
        }
    }
}

fn apply_extends(
    doc: &mut Node,
    tagged: &[(Vec<String>, Tag, Loc)],
    file: &Path,
    files: &Files<'_>,
    diags: &mut Diagnostics,
) {
    let names: Vec<String> = match doc.get("services").and_then(Node::as_map) {
        Some(m) => m.iter().map(|(k, _)| k.name.clone()).collect(),
        None => return,
    };
    let mut resolved: BTreeMap<String, Node> = BTreeMap::new();
    for name in &names {
        let Some(services) = doc.get("services") else {
            return;
        };
        let mut stack = Vec::new();
        if let Some(n) = resolve(name, services, tagged, file, files, &mut stack, diags) {
            resolved.insert(name.clone(), n);
        }
    }
    if let Some(svcs) = doc
        .as_map_mut()
        .and_then(|m| m.iter_mut().find(|(k, _)| k.name == "services"))
        .and_then(|(_, v)| v.as_map_mut())
    {
        for (k, v) in svcs.iter_mut() {
            if let Some(n) = resolved.remove(&k.name) {
                *v = n;
            }
            // A broken chain is reported already; the key itself is not a setting.
            if let Some(m) = v.as_map_mut() {
                m.retain(|(k, _)| k.name != "extends");
            }
        }
    }
}

/// The service `name` of `services` (in `file`) with its `extends` chain applied; `None`
/// when it has no `extends` (it stays as it is) or the chain is broken (reported).
fn resolve(
    name: &str,
    services: &Node,
    tagged: &[(Vec<String>, Tag, Loc)],
    file: &Path,
    files: &Files<'_>,
    stack: &mut Vec<(PathBuf, String)>,
    diags: &mut Diagnostics,
) -> Option<Node> {
    let service = services.get(name)?;
    let ext = service.get("extends")?;
    let (base_name, base_file, at) = match (&ext.value, ext.get("service")) {
        (Value::Map(_), Some(s)) => {
            let Some(s) = s.scalar_text() else {
                diags.error(&s.loc, "extends.service must be a string");
                return None;
            };
            let f = match ext.get("file") {
                Some(f) => match f.scalar_text() {
                    Some(t) => Some((t, f.loc.clone())),
                    None => {
                        diags.error(&f.loc, "extends.file must be a string");
                        return None;
                    }
                },
                None => None,
            };
            (s, f, ext.loc.clone())
        }
        (Value::Map(_), None) => {
            diags.error(
                &ext.loc,
                format!("extends of service {name:?} needs service: the service to extend"),
            );
            return None;
        }
        _ => match ext.scalar_text() {
            Some(s) => (s, None, ext.loc.clone()),
            None => {
                diags.error(&ext.loc, "extends must be a service name or a mapping");
                return None;
            }
        },
    };
    let key = (file.to_path_buf(), name.to_string());
    if stack.contains(&key) {
        let chain: Vec<String> = stack.iter().map(|(_, s)| s.clone()).collect();
        diags.error(
            &at,
            format!("extends cycle: {} → {name}", chain.join(" → ")),
        );
        return None;
    }
    stack.push(key);
    let base = match base_file {
        None => {
            if services.get(&base_name).is_none() {
                diags.error(
                    &at,
                    format!(
                        "service {name:?} extends {base_name:?}, which is not defined in {}",
                        file.display()
                    ),
                );
                stack.pop();
                return None;
            }
            resolve(&base_name, services, tagged, file, files, stack, diags)
                .or_else(|| services.get(&base_name).cloned())
        }
        Some((f, floc)) => {
            let path = normalize(&parent(file).join(&f));
            let docs = (files.load)(&path, &floc, &BTreeMap::new(), diags);
            let Some(docs) = docs else {
                stack.pop();
                return None;
            };
            let mut other: Option<(Node, Tagged)> = None;
            for d in docs {
                other = Some(match other {
                    None => (d.root, d.tagged),
                    Some((acc, mut t)) => {
                        let merged = merge::merge_documents(acc, d.root, &d.tagged);
                        t.extend(d.tagged);
                        (merged, t)
                    }
                });
            }
            let (other, other_tags) = other?;
            let Some(other_services) = other.get("services") else {
                diags.error(
                    &floc,
                    format!("service {name:?} extends {base_name:?} in {f}, which has no services"),
                );
                stack.pop();
                return None;
            };
            if other_services.get(&base_name).is_none() {
                diags.error(
                    &floc,
                    format!("service {name:?} extends {base_name:?}, which is not defined in {f}"),
                );
                stack.pop();
                return None;
            }
            let mut b = resolve(
                &base_name,
                other_services,
                &other_tags,
                &path,
                files,
                stack,
                diags,
            )
            .or_else(|| other_services.get(&base_name).cloned())?;
            if let Some(prefix) = relative_to(&parent(&path), &parent(file)) {
                rebase_service(&mut b, &prefix);
            }
            Some(b)
        }
    };
    stack.pop();
    let mut base = base?;
    // The extending service's `!reset`/`!override` paths clear the base first.
    let within = ["services".to_string(), name.to_string()];
    for (p, _, _) in tagged {
        if p.len() > 2 && p.starts_with(&within) {
            merge::remove_path(&mut base, &p[2..]);
        }
    }
    if let Some(m) = base.as_map_mut() {
        m.retain(|(k, _)| k.name != "extends");
    }
    let mut own = service.clone();
    if let Some(m) = own.as_map_mut() {
        m.retain(|(k, _)| k.name != "extends");
    }
    let mut merged = merge::merge_at(base, own, &within);
    merged.loc = service.loc.clone();
    Some(merged)
}

/// Rewrites the relative paths of a whole included document (services, secrets, configs).
fn rebase_document(doc: &mut Node, prefix: &Path) {
    let Some(m) = doc.as_map_mut() else {
        return;
    };
    for (k, v) in m.iter_mut() {
        match k.name.as_str() {
            "services" => {
                for (_, s) in v.as_map_mut().into_iter().flatten() {
                    rebase_service(s, prefix);
                }
            }
            "secrets" | "configs" => {
                for (_, o) in v.as_map_mut().into_iter().flatten() {
                    if let Some(f) = field_mut(o, "file") {
                        rebase_str(f, prefix);
                    }
                }
            }
            _ => {}
        }
    }
}

fn field_mut<'a>(n: &'a mut Node, name: &str) -> Option<&'a mut Node> {
    n.as_map_mut()?
        .iter_mut()
        .find(|(k, _)| k.name == name)
        .map(|(_, v)| v)
}

/// `./x`, `x`, `../x` → `prefix/x` (normalised); absolute paths, `~`, URLs and values with
/// variables left unexpanded stay as written.
fn rebase_str(n: &mut Node, prefix: &Path) {
    let Value::Str { text, .. } = &mut n.value else {
        return;
    };
    if text.starts_with('/')
        || text.starts_with('~')
        || text.contains("://")
        || text.starts_with("git@")
    {
        return;
    }
    let joined = normalize(&prefix.join(text.as_str()));
    let s = joined.to_string_lossy().into_owned();
    *text = if s.is_empty() {
        ".".into()
    } else if s.starts_with("..") {
        s
    } else {
        format!("./{s}")
    };
}

/// Rewrites a service's relative paths: build context, env files, bind mounts, label files.
pub fn rebase_service(svc: &mut Node, prefix: &Path) {
    if let Some(b) = field_mut(svc, "build") {
        if b.as_str().is_some() {
            rebase_str(b, prefix);
        } else if let Some(c) = field_mut(b, "context") {
            rebase_str(c, prefix);
        } else if let Some(m) = b.as_map_mut() {
            let loc = m.first().map(|(k, _)| k.loc.clone()).unwrap_or_default();
            let mut ctx = Node::str(".", loc.clone());
            rebase_str(&mut ctx, prefix);
            m.push((
                Key {
                    name: "context".into(),
                    loc,
                },
                ctx,
            ));
        }
    }
    for field in ["env_file", "label_file"] {
        let Some(e) = field_mut(svc, field) else {
            continue;
        };
        match &mut e.value {
            Value::Seq(items) => {
                for it in items {
                    if it.as_str().is_some() {
                        rebase_str(it, prefix);
                    } else if let Some(p) = field_mut(it, "path") {
                        rebase_str(p, prefix);
                    }
                }
            }
            Value::Str { .. } => rebase_str(e, prefix),
            _ => {}
        }
    }
    if let Some(Value::Seq(vols)) = field_mut(svc, "volumes").map(|v| &mut v.value) {
        for v in vols {
            if let Value::Str { text, .. } = &v.value {
                // Short syntax: only a source that starts with `.` is a relative bind mount.
                if text.starts_with('.') {
                    let (src, rest) = text.split_once(':').unwrap_or((text.as_str(), ""));
                    let mut n = Node::str(src, v.loc.clone());
                    rebase_str(&mut n, prefix);
                    let new = match (n.as_str(), rest) {
                        (Some(s), "") => s.to_string(),
                        (Some(s), r) => format!("{s}:{r}"),
                        _ => continue,
                    };
                    v.value = Value::Str {
                        text: new,
                        raw: None,
                    };
                }
            } else if v.get("type").and_then(Node::as_str) == Some("bind")
                && let Some(s) = field_mut(v, "source")
            {
                rebase_str(s, prefix);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::merge::parse;
    use std::sync::Arc;

    #[test]
    fn paths_normalise_and_relate() {
        assert_eq!(normalize(Path::new("a/./b/../c")), PathBuf::from("a/c"));
        assert_eq!(normalize(Path::new("../x/./y")), PathBuf::from("../x/y"));
        assert_eq!(
            relative_to(Path::new("a/b"), Path::new("a")),
            Some(PathBuf::from("b"))
        );
        assert_eq!(
            relative_to(Path::new("c"), Path::new("a")),
            Some(PathBuf::from("../c"))
        );
        assert_eq!(relative_to(Path::new("a"), Path::new("a")), None);
    }

    #[test]
    fn a_service_from_another_directory_keeps_its_paths() {
        let mut svc = parse(
            &Arc::from("common/base.yaml"),
            "build: ./app\nenv_file: [a.env, {path: b.env}]\nvolumes: ['./data:/data', 'named:/n', {type: bind, source: conf, target: /c}, '/abs:/abs']\n",
        )
        .unwrap();
        rebase_service(&mut svc, Path::new("common"));
        let text = |n: &Node| n.as_str().unwrap().to_string();
        assert_eq!(text(svc.get("build").unwrap()), "./common/app");
        let env = svc.get("env_file").unwrap().as_seq().unwrap();
        assert_eq!(text(&env[0]), "./common/a.env");
        assert_eq!(text(env[1].get("path").unwrap()), "./common/b.env");
        let vols = svc.get("volumes").unwrap().as_seq().unwrap();
        assert_eq!(text(&vols[0]), "./common/data:/data");
        assert_eq!(text(&vols[1]), "named:/n");
        assert_eq!(text(vols[2].get("source").unwrap()), "./common/conf");
        assert_eq!(text(&vols[3]), "/abs:/abs");
    }

    #[test]
    fn extends_cycles_are_errors_at_the_extends() {
        let mut doc = parse(
            &Arc::from("compose.yaml"),
            "services:\n  a: {image: x:1, extends: b}\n  b: {image: x:1, extends: a}\n",
        )
        .unwrap();
        let no_files = Files {
            load: &|_, _, _, _| None,
            env_file: &|_, _, _| None,
        };
        let mut d = Diagnostics::default();
        assemble(&mut doc, &[], Path::new("compose.yaml"), &no_files, &mut d);
        let text = d.to_string();
        assert!(
            text.contains("compose.yaml:2:28: error: extends cycle: a → b → a"),
            "{text}"
        );
    }
}
