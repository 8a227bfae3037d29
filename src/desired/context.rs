//! Build contexts: which files a `build:` sends (after `.dockerignore`) and the content hash
//! that is the built image's identity.
//!
//! The hash covers every file, directory and symlink the build would see (relative path,
//! permission bits, content or link target), the Dockerfile (or `dockerfile_inline`), build
//! args, target, labels and the service's `image:` name. An unchanged context gives the same
//! hash; any change to a file that is sent gives a new one; a change to an ignored file does
//! not. It is incremental: a file's content digest is kept per context, keyed by path, size,
//! mtime, ctime and inode, so an unchanged context costs one `stat` per file (the controller
//! reloads the desired state every round).
//!
//! `.dockerignore` rules (one pattern a line, `#` comments, `!` exceptions, the last match
//! wins, a pattern names a path from the context root and everything under it) are matched
//! with the `ignore` crate's gitignore matcher with every pattern anchored at the root; as in
//! Docker, the Dockerfile and `.dockerignore` are always sent.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::model::{Build, BuildParts};

/// Bumped when what is hashed changes.
const SCHEME: &str = "berth-build-v1";

/// What kind of entry a context path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory (sent so that empty directories exist in the build).
    Dir,
    /// A regular file.
    File,
    /// A symbolic link (sent as a link, never followed).
    Symlink,
}

/// One path the build sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the context, `/`-separated.
    pub rel: String,
    /// Kind.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Size in bytes (files).
    pub len: u64,
    stamp: Stamp,
}

/// Why a context could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A path could not be listed or read.
    #[error("failed to read {path}")]
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A `.dockerignore` pattern is not a valid glob.
    #[error(".dockerignore: {0}")]
    Pattern(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ContextError + '_ {
    move |source| ContextError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The `.dockerignore` rules of a context.
struct Rules {
    matcher: Gitignore,
    /// True when some rule re-includes (`!`): ignored directories must still be walked.
    has_exceptions: bool,
}

impl Rules {
    fn read(dir: &Path) -> Result<Rules, ContextError> {
        let path = dir.join(".dockerignore");
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        Rules::parse(dir, &text)
    }

    fn parse(dir: &Path, text: &str) -> Result<Rules, ContextError> {
        let mut b = GitignoreBuilder::new(dir);
        let mut has_exceptions = false;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (neg, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            has_exceptions |= neg;
            // Docker cleans the pattern and matches it from the context root.
            let pat = pat.trim_start_matches("./").trim_start_matches('/');
            let pat = pat.trim_end_matches('/');
            if pat.is_empty() || pat == "." {
                continue;
            }
            let anchored = format!("{}/{pat}", if neg { "!" } else { "" });
            b.add_line(None, &anchored)
                .map_err(|e| ContextError::Pattern(e.to_string()))?;
        }
        let matcher = b
            .build()
            .map_err(|e| ContextError::Pattern(e.to_string()))?;
        Ok(Rules {
            matcher,
            has_exceptions,
        })
    }

    fn ignored(&self, rel: &Path, is_dir: bool) -> bool {
        self.matcher
            .matched_path_or_any_parents(rel, is_dir)
            .is_ignore()
    }
}

/// Every path under `dir` that a build sends, sorted by path. `always` (the Dockerfile and
/// `.dockerignore`, relative) are sent even when ignored.
pub fn entries(dir: &Path, always: &[&str]) -> Result<Vec<Entry>, ContextError> {
    let rules = Rules::read(dir)?;
    let mut out = Vec::new();
    walk(dir, Path::new(""), &rules, always, &mut out)?;
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk(
    base: &Path,
    rel: &Path,
    rules: &Rules,
    always: &[&str],
    out: &mut Vec<Entry>,
) -> Result<(), ContextError> {
    let dir = base.join(rel);
    let mut items: Vec<(std::ffi::OsString, fs::Metadata)> = Vec::new();
    for e in fs::read_dir(&dir).map_err(io_err(&dir))? {
        let e = e.map_err(io_err(&dir))?;
        // DirEntry::metadata is an lstat relative to the open directory.
        let md = e.metadata().map_err(io_err(&e.path()))?;
        items.push((e.file_name(), md));
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, md) in items {
        let r = rel.join(&name);
        let ft = md.file_type();
        let rel_s = r.to_string_lossy().replace('\\', "/");
        let ignored = rules.ignored(&r, ft.is_dir()) && !always.contains(&rel_s.as_str());
        if ft.is_dir() {
            if !ignored {
                out.push(Entry {
                    rel: rel_s,
                    kind: Kind::Dir,
                    mode: md.permissions().mode() & 0o7777,
                    len: 0,
                    stamp: Stamp::of(&md),
                });
            }
            if !ignored || rules.has_exceptions {
                walk(base, &r, rules, always, out)?;
            }
        } else if !ignored {
            let kind = if ft.is_symlink() {
                Kind::Symlink
            } else if ft.is_file() {
                Kind::File
            } else {
                continue; // sockets, fifos, devices: Docker skips them too
            };
            out.push(Entry {
                rel: rel_s,
                kind,
                mode: md.permissions().mode() & 0o7777,
                len: md.len(),
                stamp: Stamp::of(&md),
            });
        }
    }
    Ok(())
}

/// What identifies an unchanged file without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
}

impl Stamp {
    fn of(md: &fs::Metadata) -> Stamp {
        Stamp {
            len: md.len(),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
            ino: md.ino(),
        }
    }
}

/// Per context directory: each file's stamp and content digest from the last hash. Shared
/// (`Arc`), so that two loads hashing one context at once (the source watcher's and the
/// controller's) both start from it instead of one of them re-reading every file.
type Cache = HashMap<PathBuf, std::sync::Arc<HashMap<String, (Stamp, [u8; 32])>>>;

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
}

fn file_digest(path: &Path) -> Result<[u8; 32], ContextError> {
    let mut f = fs::File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

/// The Dockerfile path relative to the context (`Dockerfile` when unset).
pub fn dockerfile_rel(build: &Build) -> String {
    build
        .dockerfile
        .clone()
        .unwrap_or_else(|| "Dockerfile".into())
}

#[derive(Serialize)]
struct Meta<'a> {
    scheme: &'static str,
    image: Option<&'a str>,
    dockerfile: String,
    dockerfile_text: &'a str,
    args: &'a BTreeMap<String, String>,
    target: &'a Option<String>,
    labels: &'a BTreeMap<String, String>,
}

/// The content hash of `build` (64 hex digits), for a service whose `image:` is `image`, and
/// the digests of its parts (what changed between two builds).
pub fn build_hash(
    build: &Build,
    image: Option<&str>,
) -> Result<(String, BuildParts), ContextError> {
    let dir = &build.context_dir;
    let df_rel = dockerfile_rel(build);
    let dockerfile_text = match &build.dockerfile_inline {
        Some(t) => t.clone(),
        None => {
            let p = dir.join(&df_rel);
            fs::read_to_string(&p).map_err(io_err(&p))?
        }
    };
    let always = [df_rel.as_str(), ".dockerignore"];
    let list = entries(dir, &always)?;
    let mut h = Sha256::new();
    let meta = Meta {
        scheme: SCHEME,
        image,
        dockerfile: df_rel.clone(),
        dockerfile_text: &dockerfile_text,
        args: &build.args,
        target: &build.target,
        labels: &build.labels,
    };
    h.update(serde_json::to_vec(&meta).unwrap_or_default());
    let dockerfile_part = digest16(&[df_rel.as_bytes(), &[0], dockerfile_text.as_bytes()]);
    let settings_part =
        digest16(&[
            &serde_json::to_vec(&(image, &build.args, &build.target, &build.labels))
                .unwrap_or_default(),
        ]);
    // The files part: fed the same bytes as the content hash after its metadata.
    let mut files = Sha256::new();
    let previous = cache()
        .lock()
        .ok()
        .and_then(|c| c.get(dir).cloned())
        .unwrap_or_default();
    let mut next = HashMap::with_capacity(list.len());
    for e in &list {
        // The Dockerfile is its own part: editing it is "Dockerfile changed", not "context".
        let in_files = e.rel != df_rel;
        let mut both = |bytes: &[u8]| {
            h.update(bytes);
            if in_files {
                files.update(bytes);
            }
        };
        both(e.rel.as_bytes());
        both(&[0]);
        both(&e.mode.to_le_bytes());
        match e.kind {
            Kind::Dir => both(b"d"),
            Kind::Symlink => {
                let full = dir.join(&e.rel);
                let target = fs::read_link(&full).map_err(io_err(&full))?;
                both(b"l");
                both(target.to_string_lossy().as_bytes());
                both(&[0]);
            }
            Kind::File => {
                let digest = match previous.get(&e.rel) {
                    Some((s, d)) if *s == e.stamp => *d,
                    _ => file_digest(&dir.join(&e.rel))?,
                };
                next.insert(e.rel.clone(), (e.stamp, digest));
                both(b"f");
                both(&digest);
            }
        }
    }
    if let Ok(mut c) = cache().lock() {
        c.insert(dir.clone(), std::sync::Arc::new(next));
    }
    let parts = BuildParts {
        dockerfile: dockerfile_part,
        files: hex(&files.finalize()[..8]),
        settings: settings_part,
    };
    Ok((hex(&h.finalize()), parts))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first 16 hex digits of the SHA-256 of `pieces`, concatenated.
fn digest16(pieces: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in pieces {
        h.update(p);
    }
    hex(&h.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Rules {
        Rules::parse(Path::new("/ctx"), text).unwrap()
    }

    fn ign(r: &Rules, p: &str, dir: bool) -> bool {
        r.ignored(Path::new(p), dir)
    }

    #[test]
    fn patterns_match_from_the_root_and_cover_everything_below() {
        let r = rules("# comment\nnode_modules\n/tmp/\n*.log\n");
        assert!(ign(&r, "node_modules", true));
        assert!(ign(&r, "node_modules/a/b.js", false));
        assert!(!ign(&r, "src/node_modules", true), "anchored at the root");
        assert!(ign(&r, "tmp/x", false));
        assert!(ign(&r, "a.log", false));
        assert!(!ign(&r, "sub/a.log", false), "* does not cross /");
        assert!(!ign(&r, "src/main.rs", false));
    }

    #[test]
    fn double_star_and_exceptions_last_match_wins() {
        let r = rules("**/*.tmp\ndocs\n!docs/keep.md\n");
        assert!(ign(&r, "a/b/c.tmp", false));
        assert!(ign(&r, "x.tmp", false));
        assert!(ign(&r, "docs/other.md", false));
        assert!(!ign(&r, "docs/keep.md", false));
        assert!(r.has_exceptions);
    }

    #[test]
    fn dot_slash_and_empty_patterns_are_cleaned() {
        let r = rules("./secret.txt\n\n.\n");
        assert!(ign(&r, "secret.txt", false));
        assert!(!ign(&r, "other", false));
    }
}
