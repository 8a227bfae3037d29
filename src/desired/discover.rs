//! Finds the Compose projects under the desired-state root and reads their files safely.
//!
//! The only IO of the loader. `DIR` is one project when it holds a Compose file, otherwise
//! every direct subdirectory holding one is a project (docs/format.md#layout). File names and the
//! override file follow compose's defaults. Reads refuse what would surprise a person at 3 a.m.:
//! files over 10 MB, binary or non-UTF-8 text, and symlinks that lead outside the root.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::diag::{Diagnostics, Loc};

/// Compose's default file names, in the order compose looks for them.
pub const COMPOSE_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// Largest file berth reads (a Compose or env file of 10 MB is a mistake, not a config).
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// The files of one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectFiles {
    /// The project directory (absolute, symlinks resolved).
    pub dir: PathBuf,
    /// The project directory relative to the root (`""` when the root is the project).
    pub rel_dir: String,
    /// The directory's own name, the fallback for the project name.
    pub dir_name: String,
    /// The Compose file, then its override if present.
    pub files: Vec<PathBuf>,
}

/// The desired-state root: where relative paths in diagnostics start.
#[derive(Debug, Clone)]
pub struct Root {
    /// As given, for messages.
    pub given: PathBuf,
    /// Canonical (symlinks resolved), for the escape check.
    pub canonical: PathBuf,
}

impl Root {
    /// Resolves the root; an error message when it is not a readable directory.
    pub fn open(dir: &Path) -> Result<Root, String> {
        let canonical =
            fs::canonicalize(dir).map_err(|e| format!("failed to open {}: {e}", dir.display()))?;
        if !canonical.is_dir() {
            return Err(format!("{} is not a directory", dir.display()));
        }
        Ok(Root {
            given: dir.to_path_buf(),
            canonical,
        })
    }

    /// `path` relative to the root with `/` separators, for diagnostics.
    pub fn rel(&self, path: &Path) -> String {
        let p = path.strip_prefix(&self.canonical).unwrap_or(path);
        let s = p.to_string_lossy().replace('\\', "/");
        if s.is_empty() { ".".into() } else { s }
    }
}

/// Finds the projects under `root`, sorted by directory. Problems (several Compose files in
/// one directory, unreadable or escaping directories) go into `diags`.
pub fn projects(root: &Root, diags: &mut Diagnostics) -> Vec<ProjectFiles> {
    if let Some(p) = project_in(root, &root.canonical, diags) {
        return vec![p];
    }
    let entries = match fs::read_dir(&root.canonical) {
        Ok(e) => e,
        Err(e) => {
            diags.error(
                &Loc::file("."),
                format!("failed to list the directory: {e}"),
            );
            return Vec::new();
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    let mut out = Vec::new();
    for d in dirs {
        let Ok(canonical) = fs::canonicalize(&d) else {
            continue;
        };
        if !canonical.starts_with(&root.canonical) {
            if project_in(root, &canonical, &mut Diagnostics::default()).is_some() {
                let rel = d
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                diags.error(
                    &Loc::file(rel.as_str()),
                    format!(
                        "{rel} is a symlink to {}, outside the desired-state root; \
                         berth only reads files under the root",
                        canonical.display()
                    ),
                );
            }
            continue;
        }
        if let Some(mut p) = project_in(root, &canonical, diags) {
            // Name from the link, not its target, as compose does with the directory given.
            p.dir_name = d
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push(p);
        }
    }
    out
}

/// The project in `dir`, if it holds a Compose file.
fn project_in(root: &Root, dir: &Path, diags: &mut Diagnostics) -> Option<ProjectFiles> {
    let present: Vec<&str> = COMPOSE_FILES
        .iter()
        .copied()
        .filter(|f| dir.join(f).exists())
        .collect();
    let first = *present.first()?;
    if present.len() > 1 {
        let rel = root.rel(&dir.join(first));
        diags.warning(
            &Loc::file(rel.as_str()),
            format!(
                "found several Compose files ({}); using {first}, as docker compose does",
                present.join(", ")
            ),
        );
    }
    let mut files = vec![dir.join(first)];
    if let Some(o) = override_for(dir, first) {
        files.push(o);
    }
    let dir_name = if dir == root.canonical {
        root.given
            .file_name()
            .or_else(|| root.canonical.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let rel_dir = if dir == root.canonical {
        String::new()
    } else {
        root.rel(dir)
    };
    Some(ProjectFiles {
        dir: dir.to_path_buf(),
        rel_dir,
        dir_name,
        files,
    })
}

/// `compose.yaml` → `compose.override.yaml` (then the other extension), as compose does.
fn override_for(dir: &Path, file: &str) -> Option<PathBuf> {
    let (stem, ext) = file.rsplit_once('.')?;
    let other = if ext == "yaml" { "yml" } else { "yaml" };
    [
        format!("{stem}.override.{ext}"),
        format!("{stem}.override.{other}"),
    ]
    .into_iter()
    .map(|n| dir.join(n))
    .find(|p| p.exists())
}

/// Reads a text file under the root: refuses symlinks that escape it, files over 10 MB,
/// binary and non-UTF-8 content. `None` (with an error in `diags`) when it cannot be used.
pub fn read_text(root: &Root, path: &Path, diags: &mut Diagnostics) -> Option<String> {
    let loc = Loc::file(root.rel(path).as_str());
    let bytes = read_bytes(root, path, diags)?;
    text_of(bytes, &loc, diags)
}

/// Reads a file under the root as bytes (an age-encrypted file is binary): refuses symlinks
/// that escape the root and files over 10 MB.
pub fn read_bytes(root: &Root, path: &Path, diags: &mut Diagnostics) -> Option<Vec<u8>> {
    let rel = root.rel(path);
    let loc = Loc::file(rel.as_str());
    let canonical = match fs::canonicalize(path) {
        Ok(c) => c,
        Err(e) => {
            diags.error(&loc, format!("failed to read the file: {e}"));
            return None;
        }
    };
    if !canonical.starts_with(&root.canonical) {
        diags.error(
            &loc,
            format!(
                "the file is a symlink to {}, outside the desired-state root; \
                 berth only reads files under the root",
                canonical.display()
            ),
        );
        return None;
    }
    read_limited_bytes(&canonical, &loc, diags)
}

/// Reads a file anywhere as bytes, refusing files over 10 MB. `loc` names it.
pub fn read_limited_bytes(path: &Path, loc: &Loc, diags: &mut Diagnostics) -> Option<Vec<u8>> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            diags.error(loc, format!("failed to read {}: {e}", path.display()));
            return None;
        }
    };
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes) {
        diags.error(loc, format!("failed to read {}: {e}", path.display()));
        return None;
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        diags.error(
            loc,
            "the file is larger than 10 MB; this is not a Compose or env file",
        );
        return None;
    }
    Some(bytes)
}

/// The text of a file's bytes: refuses binary and non-UTF-8 content, drops a byte-order mark.
pub fn text_of(bytes: Vec<u8>, loc: &Loc, diags: &mut Diagnostics) -> Option<String> {
    if bytes.contains(&0) {
        diags.error(
            loc,
            "the file is binary (it contains NUL bytes); expected YAML or env text",
        );
        return None;
    }
    match String::from_utf8(bytes) {
        Ok(s) => Some(s.strip_prefix('\u{feff}').map(str::to_owned).unwrap_or(s)),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let text = &e.as_bytes()[..at];
            let line = 1 + text.iter().filter(|b| **b == b'\n').count();
            let col = 1 + text.iter().rev().take_while(|b| **b != b'\n').count();
            let l = Loc::new(loc.file.clone(), line as u32, col as u32);
            diags.error(&l, "the file is not valid UTF-8; save it as UTF-8");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, rel: &str, text: &str) {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    #[test]
    fn a_directory_with_a_compose_file_is_one_project() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "compose.yaml", "services: {}\n");
        write(t.path(), "compose.override.yaml", "services: {}\n");
        write(t.path(), "sub/compose.yaml", "services: {}\n");
        let root = Root::open(t.path()).unwrap();
        let mut d = Diagnostics::default();
        let ps = projects(&root, &mut d);
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].files.len(), 2);
        assert!(ps[0].files[1].ends_with("compose.override.yaml"));
        assert!(d.is_empty());
    }

    #[test]
    fn otherwise_each_subdirectory_with_one_is_a_project() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "b/docker-compose.yml", "services: {}\n");
        write(t.path(), "a/compose.yml", "services: {}\n");
        write(t.path(), "c/readme.txt", "not a project\n");
        write(t.path(), ".git/compose.yaml", "hidden\n");
        let root = Root::open(t.path()).unwrap();
        let mut d = Diagnostics::default();
        let names: Vec<String> = projects(&root, &mut d)
            .into_iter()
            .map(|p| p.rel_dir)
            .collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn several_compose_files_warn_and_use_the_first() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "compose.yaml", "services: {}\n");
        write(t.path(), "docker-compose.yml", "services: {}\n");
        let root = Root::open(t.path()).unwrap();
        let mut d = Diagnostics::default();
        let ps = projects(&root, &mut d);
        assert!(ps[0].files[0].ends_with("compose.yaml"));
        assert_eq!(d.warnings(), 1, "{d}");
    }

    #[test]
    fn refuses_binary_large_non_utf8_and_escaping_files() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "secret.yaml", "x: 1\n");
        write(t.path(), "bin.yaml", "a\0b");
        fs::write(t.path().join("latin1.yaml"), b"a: 1\nb: caf\xe9\n").unwrap();
        fs::write(
            t.path().join("big.yaml"),
            vec![b'#'; (MAX_FILE_BYTES + 1) as usize],
        )
        .unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.yaml"),
            t.path().join("link.yaml"),
        )
        .unwrap();
        let root = Root::open(t.path()).unwrap();
        let mut d = Diagnostics::default();
        for f in [
            "bin.yaml",
            "latin1.yaml",
            "big.yaml",
            "link.yaml",
            "missing.yaml",
        ] {
            assert!(read_text(&root, &t.path().join(f), &mut d).is_none(), "{f}");
        }
        let text = d.to_string();
        assert!(
            text.contains("bin.yaml: error: the file is binary"),
            "{text}"
        );
        assert!(
            text.contains("latin1.yaml:2:7: error: the file is not valid UTF-8"),
            "{text}"
        );
        assert!(
            text.contains("big.yaml: error: the file is larger than 10 MB"),
            "{text}"
        );
        assert!(
            text.contains("link.yaml: error: the file is a symlink to"),
            "{text}"
        );
        assert!(
            text.contains("missing.yaml: error: failed to read the file"),
            "{text}"
        );
    }
}
