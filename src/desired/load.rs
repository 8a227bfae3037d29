//! The loader pipeline: root directory in, [`Loaded`] (state + diagnostics) out.
//!
//! IO only through `discover` (reading files); everything else is the pure stages in order:
//! discover → parse → interpolate → merge override → convert → validate → hash. A project
//! with errors still reports all of them; the state is returned only when there are none.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::convert::{self, Ctx};
use super::diag::{Diagnostics, Loc};
use super::discover::{self, ProjectFiles, Root};
use super::model::{DesiredState, Project};
use super::node::{self, Node};
use super::syntax::names;
use super::{envfile, hash, interpolate, merge, validate};

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
    finish(state, diags, listed, root.given)
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
    let dotenv = read_env_file(
        root,
        &pf.dir.join(".env"),
        &rel(&pf.dir.join(".env")),
        &process,
        diags,
    );
    let mut trees = Vec::new();
    for f in &pf.files {
        let file: Arc<str> = Arc::from(rel(f));
        let Some(text) = discover::read_text(root, f, diags) else {
            continue;
        };
        match node::parse(&file, &text) {
            Ok(n) => trees.push(n),
            Err(e) => diags.error(&e.loc, e.message),
        }
    }
    if trees.len() != pf.files.len() {
        return None;
    }
    let read_file = |p: &Path, loc: &Loc, d: &mut Diagnostics| discover::read_limited(p, loc, d);
    let source = Source {
        dir: run_dir.as_deref().unwrap_or(&pf.dir),
        dir_name: &pf.dir_name,
        read_dir: &pf.dir,
        root: Some(&root.canonical),
        files: pf.files.iter().map(|f| rel(f)).collect(),
        read_file: &read_file,
        display_path: &rel,
        read_env_dir: &|p: &Path, d: &mut Diagnostics| {
            read_env_file(root, p, &p.display().to_string(), &process, d)
        },
    };
    build_project(trees, &dotenv, &source, opts, diags)
}

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
    display_path: &'a dyn Fn(&Path) -> String,
    read_env_dir: &'a dyn Fn(&Path, &mut Diagnostics) -> BTreeMap<String, String>,
}

/// The pure part of a project load: name, interpolation, merge, conversion.
fn build_project(
    mut trees: Vec<Node>,
    dotenv: &BTreeMap<String, String>,
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
    let (name, name_loc) = project_name(&trees, src.dir_name, &pre_lookup, diags);
    let host_env = match &opts.env_dir {
        Some(dir) => {
            let p = dir.join(format!("{name}.env"));
            if p.exists() {
                (src.read_env_dir)(&p, diags)
            } else {
                BTreeMap::new()
            }
        }
        None => BTreeMap::new(),
    };
    let lookup = |k: &str| {
        process(k)
            .or_else(|| host_env.get(k).cloned())
            .or_else(|| dotenv.get(k).cloned())
    };
    for t in &mut trees {
        interpolate::interpolate_tree(t, &lookup, diags);
    }
    if let Err(e) = names::check_project_name(&name) {
        diags.error(&name_loc, e);
        return None;
    }
    let mut it = trees.into_iter();
    let mut doc = it.next()?;
    for over in it {
        doc = merge::merge_documents(doc, over);
    }
    let ctx = Ctx {
        project_dir: src.dir,
        read_dir: src.read_dir,
        root: src.root,
        lookup: &lookup,
        read_file: src.read_file,
        display_path: src.display_path,
        profiles: &opts.profiles,
    };
    convert::convert_project(&doc, &name, src.files.clone(), &ctx, diags)
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
    match node::parse(&file, text) {
        Err(e) => diags.error(&e.loc, e.message),
        Ok(tree) => {
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
            let source = Source {
                dir: &dir,
                dir_name: "project",
                read_dir: &dir,
                root: None,
                files: vec![file.to_string()],
                read_file: &read_file,
                display_path: &display,
                read_env_dir: &|_, _| BTreeMap::new(),
            };
            if let Some(p) = build_project(vec![tree], &BTreeMap::new(), &source, opts, &mut diags)
            {
                listed.push((p.name.clone(), String::new()));
                state.projects.insert(p.name.clone(), p);
            }
        }
    }
    finish(state, diags, listed, PathBuf::from("."))
}

/// The whole-host stages: cross-project validation and hashing; the state only if valid.
fn finish(
    mut state: DesiredState,
    mut diags: Diagnostics,
    projects: Vec<(String, String)>,
    root: PathBuf,
) -> Loaded {
    validate::validate(&mut state, &mut diags);
    hash::hash_all(&mut state);
    let state = (!diags.has_errors()).then_some(state);
    Loaded {
        state,
        diagnostics: diags,
        projects,
        root,
    }
}

/// `name:` from the last file that sets it, interpolated; else the normalised directory name.
fn project_name(
    trees: &[Node],
    dir_name: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    diags: &mut Diagnostics,
) -> (String, Loc) {
    if let Some(n) = trees.iter().rev().find_map(|t| t.get("name")) {
        let mut n = n.clone();
        interpolate::interpolate_tree(&mut n, lookup, diags);
        if let Some(s) = n.scalar_text() {
            return (s, n.loc);
        }
        diags.error(&n.loc, format!("name must be a string, found {}", n.kind()));
    }
    let loc = trees
        .first()
        .map(|t| Loc::file(t.loc.file.clone()))
        .unwrap_or_default();
    (names::normalize_project_name(dir_name), loc)
}

fn read_env_file(
    root: &Root,
    path: &Path,
    shown: &str,
    process: &dyn Fn(&str) -> Option<String>,
    diags: &mut Diagnostics,
) -> BTreeMap<String, String> {
    if !path.exists() {
        return BTreeMap::new();
    }
    let loc = Loc::file(shown);
    let text = if path.starts_with(&root.canonical) {
        discover::read_text(root, path, diags)
    } else {
        discover::read_limited(path, &loc, diags)
    };
    let Some(text) = text else {
        return BTreeMap::new();
    };
    match envfile::parse(&text, process) {
        Ok(entries) => entries.into_iter().map(|e| (e.key, e.value)).collect(),
        Err(errs) => {
            for e in errs {
                diags.error(&Loc::new(loc.file.clone(), e.line, e.col), e.message);
            }
            BTreeMap::new()
        }
    }
}
