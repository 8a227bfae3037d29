//! The loader pipeline: root directory in, [`Loaded`] (state + diagnostics) out.
//!
//! IO only through `discover` (reading files); everything else is the pure stages in order:
//! discover → identity (`COMPOSE_*` from the environment and `.env`) → parse → interpolate →
//! include and extends (`assemble`) → merge the next file or document → convert → validate
//! → hash. A project
//! with errors still reports all of them; the state is returned only when there are none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::convert::{self, Ctx};
use super::diag::{Diagnostics, Loc};
use super::discover::{self, ProjectFiles, Root};
use super::hosts::{self, HOSTS_FILE};
use super::identity;
use super::model::{DesiredState, NameSource, Project};
use super::node::{self, Document, Node};
use super::placement::{self, HostChoice, HostsSource};
use super::secrets::{self, AgeKeys};
use super::syntax::names;
use super::{assemble, envfile, hash, interpolate, merge, validate};

/// Options of one load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Active profiles (`--profile`).
    pub profiles: Vec<String>,
    /// `--env-dir`: `DIR/<project>.env` holds host-side variables for interpolation.
    pub env_dir: Option<PathBuf>,
    /// The process environment (injected so tests do not depend on the real one).
    pub env: BTreeMap<String, String>,
    /// Where the root is reached when containers are created, when that differs from where it
    /// is read: the git source reads a commit's own tree but containers mount through
    /// `DATA_DIR/git/good`, a symlink that follows the commits, so that a relative bind mount
    /// keeps one path (and the service its revision) across commits. Project directories and
    /// every path resolved against them (bind mounts, env files, secret and config files)
    /// start here instead of at the resolved root.
    pub run_root: Option<PathBuf>,
    /// The host's age keys (`--age-key-file`, `SOPS_AGE_KEY_FILE`, `SOPS_AGE_KEY`), which open
    /// encrypted env files (`.env.age`, SOPS dotenv; see `secrets`).
    pub age_keys: AgeKeys,
    /// The host this load is for, when the root has a hosts file (`--host`, the machine's
    /// name); only its projects are kept (see `placement`).
    pub host: HostChoice,
}

impl LoadOptions {
    /// Options with the real process environment.
    pub fn from_process_env() -> Self {
        LoadOptions {
            env: std::env::vars().collect(),
            ..Default::default()
        }
    }
}

/// What a load produced.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The desired state; `None` when any error was found.
    pub state: Option<DesiredState>,
    /// Everything found, errors and warnings. Also holds the partial projects' summary.
    pub diagnostics: Diagnostics,
    /// Each project found, with its directory relative to the root (also when invalid).
    pub projects: Vec<(String, String)>,
    /// The root as given, for messages.
    pub root: PathBuf,
}

/// Loads and validates the desired state under `root`.
pub fn load(root: &Path, opts: &LoadOptions) -> Loaded {
    let mut diags = Diagnostics::default();
    let root = match Root::open(root) {
        Ok(r) => r,
        Err(e) => {
            diags.error(&Loc::file(root.display().to_string()), e);
            return Loaded {
                state: None,
                diagnostics: diags,
                projects: Vec::new(),
                root: root.to_path_buf(),
            };
        }
    };
    let found = discover::projects(&root, &mut diags);
    if found.is_empty() && !diags.has_errors() {
        diags.error(
            &Loc::file("."),
            format!(
                "no Compose file here or in any subdirectory (looked for {})",
                discover::COMPOSE_FILES.join(", ")
            ),
        );
    }
    let mut state = DesiredState::default();
    let mut listed = Vec::new();
    let mut name_dirs: BTreeMap<String, String> = BTreeMap::new();
    for pf in &found {
        let Some(project) = load_project(&root, pf, opts, &mut diags) else {
            // Listed all the same (by its directory name), so reports show every project.
            listed.push((
                names::normalize_project_name(&pf.dir_name),
                pf.rel_dir.clone(),
            ));
            continue;
        };
        listed.push((project.name.clone(), pf.rel_dir.clone()));
        if let Some(other) = name_dirs.get(&project.name) {
            diags.error(
                &Loc::file(project.files.first().cloned().unwrap_or_default()),
                format!(
                    "project name {:?} is also used by {other}; project names are unique per host: set name: in one of them",
                    project.name
                ),
            );
            continue;
        }
        name_dirs.insert(project.name.clone(), pf.rel_dir.clone());
        state.projects.insert(project.name.clone(), project);
    }
    let hosts = read_hosts_file(&root, &mut diags);
    finish(state, diags, listed, root.given, hosts, &opts.host)
}

/// Reads and converts the root's hosts file, when there is one.
fn read_hosts_file(root: &Root, diags: &mut Diagnostics) -> HostsSource {
    let path = root.canonical.join(HOSTS_FILE);
    if !path.exists() {
        return HostsSource::Absent;
    }
    let Some(text) = discover::read_text(root, &path, diags) else {
        return HostsSource::Invalid;
    };
    let file: Arc<str> = Arc::from(root.rel(&path));
    match node::parse_documents(&file, &text) {
        Ok(docs) => match docs.first() {
            Some(doc) => match hosts::convert(&doc.root, &file, diags) {
                Some(h) => HostsSource::Valid(h),
                None => HostsSource::Invalid,
            },
            None => {
                diags.error(
                    &Loc::file(file),
                    "the hosts file is empty: list the hosts under hosts:",
                );
                HostsSource::Invalid
            }
        },
        Err(e) => {
            diags.error(&e.loc, e.message);
            HostsSource::Invalid
        }
    }
}

fn load_project(
    root: &Root,
    pf: &ProjectFiles,
    opts: &LoadOptions,
    diags: &mut Diagnostics,
) -> Option<Project> {
    // Paths under the run root show relative to the root, like the others.
    let rel = |p: &Path| match opts.run_root.as_deref().map(|r| p.strip_prefix(r)) {
        Some(Ok(inner)) => root.rel(&root.canonical.join(inner)),
        _ => root.rel(p),
    };
    let run_dir = opts.run_root.as_ref().map(|r| match pf.rel_dir.as_str() {
        "" => r.clone(),
        d => r.join(d),
    });
    let process = |k: &str| opts.env.get(k).cloned();
    let keys = &opts.age_keys;
    let mut dotenv = read_env_file(
        root,
        &pf.dir.join(".env"),
        &rel(&pf.dir.join(".env")),
        &process,
        keys,
        diags,
    );
    // `.env.age`: the project's encrypted variables, over its plain `.env` ones.
    let dotenv_age = pf.dir.join(".env.age");
    dotenv.extend(read_env_file(
        root,
        &dotenv_age,
        &rel(&dotenv_age),
        &process,
        keys,
        diags,
    ));
    let single = pf.rel_dir.is_empty();
    let identity = identity::read(&opts.env, &dotenv, single);
    // COMPOSE_FILE replaces the discovered files, as with docker compose in this directory.
    let files: Vec<PathBuf> = match &identity.files {
        Some(list) => list.iter().map(|f| pf.dir.join(f)).collect(),
        None => pf.files.clone(),
    };
    let mut docs = Vec::new();
    let mut ok = true;
    for f in &files {
        let file: Arc<str> = Arc::from(rel(f));
        let Some(text) = discover::read_text(root, f, diags) else {
            ok = false;
            continue;
        };
        match node::parse_documents(&file, &text) {
            Ok(ds) => {
                let in_project = f.strip_prefix(&pf.dir).unwrap_or(f).to_path_buf();
                docs.extend(ds.into_iter().map(|d| (d, in_project.clone())));
            }
            Err(e) => {
                diags.error(&e.loc, e.message);
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    // `env_file:` entries: read as text, or opened when encrypted (age or SOPS).
    let read_file = |p: &Path, loc: &Loc, d: &mut Diagnostics| {
        let bytes = discover::read_limited_bytes(p, loc, d)?;
        open_env_bytes(p, bytes, &loc.file, keys, d).map(|(text, _)| text)
    };
    let read_compose = |p: &Path, loc: &Loc, d: &mut Diagnostics| -> Option<(Arc<str>, String)> {
        let abs = pf.dir.join(p);
        if !abs.exists() {
            d.error(loc, format!("failed to read {}: no such file", p.display()));
            return None;
        }
        let text = discover::read_text(root, &abs, d)?;
        Some((Arc::from(rel(&assemble::normalize(&abs))), text))
    };
    let source = Source {
        dir: run_dir.as_deref().unwrap_or(&pf.dir),
        dir_name: &pf.dir_name,
        read_dir: &pf.dir,
        root: Some(&root.canonical),
        files: files.iter().map(|f| rel(f)).collect(),
        read_file: &read_file,
        read_compose: &read_compose,
        display_path: &rel,
        read_env_dir: &|p: &Path, d: &mut Diagnostics| {
            read_env_file(root, p, &p.display().to_string(), &process, keys, d)
        },
    };
    build_project(docs, &dotenv, &identity, &source, opts, diags)
}

/// Reads a Compose file by project-relative path: its name for positions and its text.
type ReadComposeFn<'a> = dyn Fn(&Path, &Loc, &mut Diagnostics) -> Option<(Arc<str>, String)> + 'a;

/// Where a project's parsed files came from, and how to reach its other files.
struct Source<'a> {
    dir: &'a Path,
    dir_name: &'a str,
    /// Where the project's files are read (differs from `dir` under a run root).
    read_dir: &'a Path,
    /// The desired-state root (canonical), when there is one.
    root: Option<&'a Path>,
    files: Vec<String>,
    read_file: &'a dyn Fn(&Path, &Loc, &mut Diagnostics) -> Option<String>,
    /// Reads a Compose file an `include`/`extends` names (path relative to the project
    /// directory): its name for positions and its text.
    read_compose: &'a ReadComposeFn<'a>,
    display_path: &'a dyn Fn(&Path) -> String,
    read_env_dir: &'a dyn Fn(&Path, &mut Diagnostics) -> BTreeMap<String, String>,
}

/// The pure part of a project load: name, interpolation, include and extends, merge,
/// conversion. `docs` are the documents of the project's files in merge order, each with its
/// file's path relative to the project directory.
fn build_project(
    docs: Vec<(Document, PathBuf)>,
    dotenv: &BTreeMap<String, String>,
    identity: &identity::Identity,
    src: &Source<'_>,
    opts: &LoadOptions,
    diags: &mut Diagnostics,
) -> Option<Project> {
    // Variables: process env over --env-dir over the project's .env
    // (docs/format.md#interpolation; the host's own secrets must win over the repository's
    // defaults).
    let process = |k: &str| opts.env.get(k).cloned();
    // The name decides which --env-dir file applies, so read it before interpolating the rest.
    let pre_lookup = |k: &str| process(k).or_else(|| dotenv.get(k).cloned());
    let roots: Vec<&Node> = docs.iter().map(|(d, _)| &d.root).collect();
    let (name, name_loc, name_source) =
        project_name(&roots, identity, src.dir_name, &pre_lookup, diags);
    // `DIR/<project>.env`, then `DIR/<project>.env.age` over it.
    let mut host_env = BTreeMap::new();
    if let Some(dir) = &opts.env_dir {
        for p in [
            dir.join(format!("{name}.env")),
            dir.join(format!("{name}.env.age")),
        ] {
            if p.exists() {
                host_env.extend((src.read_env_dir)(&p, diags));
            }
        }
    }
    // The host's env files hold its secrets: whatever they end up in (an image tag, a probe
    // URL, a label), every output masks them by value (see `redact`).
    crate::redact::add(host_env.values().cloned());
    let lookup = |k: &str| {
        process(k)
            .or_else(|| host_env.get(k).cloned())
            .or_else(|| dotenv.get(k).cloned())
    };
    if let Err(e) = names::check_project_name(&name) {
        diags.error(&name_loc, e);
        return None;
    }
    // Files that `include` and `extends` name: parsed and interpolated like the project's
    // own (an include's env files add variables under the project's).
    let load_other = |p: &Path, at: &Loc, extra: &BTreeMap<String, String>, d: &mut Diagnostics| {
        let (shown, text) = (src.read_compose)(p, at, d)?;
        match node::parse_documents(&shown, &text) {
            Ok(mut ds) => {
                let l = |k: &str| lookup(k).or_else(|| extra.get(k).cloned());
                for doc in &mut ds {
                    interpolate::interpolate_tree(&mut doc.root, &l, d);
                }
                Some(ds)
            }
            Err(e) => {
                d.error(&e.loc, e.message);
                None
            }
        }
    };
    let env_file = |p: &Path, at: &Loc, d: &mut Diagnostics| {
        let (_, text) = (src.read_compose)(p, at, d)?;
        match envfile::parse(&text, &process) {
            Ok(entries) => Some(entries.into_iter().map(|e| (e.key, e.value)).collect()),
            Err(errs) => {
                for e in errs {
                    d.error(at, e.message);
                }
                None
            }
        }
    };
    let files = assemble::Files {
        load: &load_other,
        env_file: &env_file,
    };
    let mut doc: Option<Node> = None;
    for (d, file) in docs {
        let mut root = d.root;
        interpolate::interpolate_tree(&mut root, &lookup, diags);
        assemble::assemble(&mut root, &d.tagged, &file, &files, diags);
        doc = Some(match doc {
            None => root,
            Some(acc) => merge::merge_documents(acc, root, &d.tagged),
        });
    }
    let doc = doc?;
    let mut profiles = opts.profiles.clone();
    if profiles.is_empty() {
        profiles = identity.profiles.clone();
    }
    let ctx = Ctx {
        project_dir: src.dir,
        read_dir: src.read_dir,
        root: src.root,
        lookup: &lookup,
        read_file: src.read_file,
        display_path: src.display_path,
        profiles: &profiles,
    };
    let mut project = convert::convert_project(&doc, &name, src.files.clone(), &ctx, diags)?;
    project.name_source = name_source;
    Some(project)
}

/// Loads one Compose document given as text, as if it were `DIR/compose.yaml` of a project
/// directory named `project` that holds nothing else (env files and secret files referenced
/// by it are reported missing). For inline-YAML tests, fuzzing and benchmarks.
pub fn load_inline(text: &str, opts: &LoadOptions) -> Loaded {
    let mut diags = Diagnostics::default();
    let file: Arc<str> = Arc::from("compose.yaml");
    let dir = PathBuf::from("/nonexistent/berth-inline/project");
    let mut state = DesiredState::default();
    let mut listed = Vec::new();
    match node::parse_documents(&file, text) {
        Err(e) => diags.error(&e.loc, e.message),
        Ok(docs) => {
            let read_file = |p: &Path, loc: &Loc, d: &mut Diagnostics| {
                d.error(
                    loc,
                    format!(
                        "failed to read {}: inline documents have no files",
                        p.display()
                    ),
                );
                None
            };
            let display = |p: &Path| p.strip_prefix(&dir).unwrap_or(p).display().to_string();
            let read_compose = |p: &Path, loc: &Loc, d: &mut Diagnostics| {
                d.error(
                    loc,
                    format!(
                        "failed to read {}: inline documents have no files",
                        p.display()
                    ),
                );
                None
            };
            let source = Source {
                dir: &dir,
                dir_name: "project",
                read_dir: &dir,
                root: None,
                files: vec![file.to_string()],
                read_file: &read_file,
                read_compose: &read_compose,
                display_path: &display,
                read_env_dir: &|_, _| BTreeMap::new(),
            };
            let docs = docs
                .into_iter()
                .map(|d| (d, PathBuf::from("compose.yaml")))
                .collect();
            let identity = identity::read(&opts.env, &BTreeMap::new(), true);
            if let Some(p) =
                build_project(docs, &BTreeMap::new(), &identity, &source, opts, &mut diags)
            {
                listed.push((p.name.clone(), String::new()));
                state.projects.insert(p.name.clone(), p);
            }
        }
    }
    finish(
        state,
        diags,
        listed,
        PathBuf::from("."),
        HostsSource::Absent,
        &opts.host,
    )
}

/// The whole-host stages: placement (keeping this host's projects), cross-project validation
/// (per host) and hashing; the state only if valid.
fn finish(
    mut state: DesiredState,
    mut diags: Diagnostics,
    mut projects: Vec<(String, String)>,
    root: PathBuf,
    hosts: HostsSource,
    host: &HostChoice,
) -> Loaded {
    let fleet = placement::place(&state, &projects, hosts, host, &mut diags);
    match &fleet {
        Some(f) if f.this_host.is_none() => {
            validate::validate_per_host(&mut state, &f.placement, &mut diags)
        }
        Some(f) => {
            placement::keep_this_host(f, &mut state, &mut projects);
            validate::validate(&mut state, &mut diags);
        }
        None => validate::validate(&mut state, &mut diags),
    }
    state.fleet = fleet;
    hash::hash_all(&mut state);
    let state = (!diags.has_errors()).then_some(state);
    Loaded {
        state,
        diagnostics: diags,
        projects,
        root,
    }
}

/// The project name by compose's precedence: `COMPOSE_PROJECT_NAME` (environment, then the
/// project's `.env`), else `name:` from the last file that sets it (interpolated), else the
/// normalised directory name; with where it came from.
fn project_name(
    trees: &[&Node],
    identity: &identity::Identity,
    dir_name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    diags: &mut Diagnostics,
) -> (String, Loc, NameSource) {
    let file_loc = trees
        .first()
        .map(|t| Loc::file(t.loc.file.clone()))
        .unwrap_or_default();
    if let Some((name, source)) = &identity.name {
        return (name.clone(), file_loc, *source);
    }
    if let Some(n) = trees.iter().rev().find_map(|t| t.get("name")) {
        let mut n = n.clone();
        interpolate::interpolate_tree(&mut n, lookup, diags);
        if let Some(s) = n.scalar_text() {
            return (s, n.loc, NameSource::NameKey);
        }
        diags.error(&n.loc, format!("name must be a string, found {}", n.kind()));
    }
    (
        names::normalize_project_name(dir_name),
        file_loc,
        NameSource::Directory,
    )
}

fn read_env_file(
    root: &Root,
    path: &Path,
    shown: &str,
    process: &dyn Fn(&str) -> Option<String>,
    keys: &AgeKeys,
    diags: &mut Diagnostics,
) -> BTreeMap<String, String> {
    if !path.exists() {
        return BTreeMap::new();
    }
    let loc = Loc::file(shown);
    let bytes = if path.starts_with(&root.canonical) {
        discover::read_bytes(root, path, diags)
    } else {
        discover::read_limited_bytes(path, &loc, diags)
    };
    let Some((text, secret)) = bytes.and_then(|b| open_env_bytes(path, b, &loc.file, keys, diags))
    else {
        return BTreeMap::new();
    };
    match envfile::parse(&text, process) {
        Ok(entries) => {
            let vars: BTreeMap<String, String> =
                entries.into_iter().map(|e| (e.key, e.value)).collect();
            if secret {
                // After interpolation, as they will be used.
                crate::redact::add(vars.values().cloned());
            }
            vars
        }
        Err(errs) => {
            for e in errs {
                diags.error(&Loc::new(loc.file.clone(), e.line, e.col), e.message);
            }
            BTreeMap::new()
        }
    }
}

/// The env-file text of `bytes` read from `path`, and whether it was encrypted: as is when
/// plain, decrypted when it is an age or SOPS file (every decrypted value goes to `redact`).
/// `None`, with errors at `file` (and the line, where one applies), when it is binary, not
/// UTF-8 or does not open.
fn open_env_bytes(
    path: &Path,
    bytes: Vec<u8>,
    file: &std::sync::Arc<str>,
    keys: &AgeKeys,
    diags: &mut Diagnostics,
) -> Option<(String, bool)> {
    let how = secrets::encryption(path, &bytes);
    if how == secrets::Encryption::None {
        return discover::text_of(bytes, &Loc::file(file.clone()), diags).map(|t| (t, false));
    }
    match secrets::open(how, &bytes, keys) {
        Ok(opened) => {
            // Masked before anything could print them: whatever they end up in.
            crate::redact::add(opened.values.iter().cloned());
            crate::redact::add(
                envfile::parse(&opened.text, &|_| None)
                    .into_iter()
                    .flatten()
                    .map(|e| e.value),
            );
            Some((opened.text, true))
        }
        Err(errs) => {
            for e in errs {
                let at = match e.line {
                    Some(line) => Loc::new(file.clone(), line, 1),
                    None => Loc::file(file.clone()),
                };
                diags.error(&at, e.message);
            }
            None
        }
    }
}
