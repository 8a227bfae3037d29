//! Positioned diagnostics: every problem berth finds in the desired state, as
//! `path:LINE:COL: error|warning: message`.
//!
//! Pure data. The loader, converter and validator push into one [`Diagnostics`] so that a
//! single `berth validate` run reports every problem at once instead of stopping at the first.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// A place in an input file: the file (relative to the desired-state root) and a 1-based
/// line and column. Line 0 means "the file as a whole" (no position known).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Loc {
    /// Path relative to the desired-state root, with `/` separators.
    pub file: Arc<str>,
    /// 1-based line; 0 when unknown.
    pub line: u32,
    /// 1-based column; 0 when unknown.
    pub col: u32,
}

impl Loc {
    /// A position in `file`.
    pub fn new(file: Arc<str>, line: u32, col: u32) -> Self {
        Self { file, line, col }
    }

    /// The file as a whole, without a line.
    pub fn file(file: impl Into<Arc<str>>) -> Self {
        Self {
            file: file.into(),
            line: 0,
            col: 0,
        }
    }
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.file)
        } else {
            write!(f, "{}:{}:{}", self.file, self.line, self.col)
        }
    }
}

/// How bad a diagnostic is: errors make the desired state invalid, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The desired state cannot be applied.
    Error,
    /// Applied, but probably not what the author meant.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in the input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Where it is.
    #[serde(flatten)]
    pub loc: Loc,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong and, where possible, what to do about it.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.loc, self.severity, self.message)
    }
}

/// Every diagnostic of one load, in the order found; [`Diagnostics::sorted`] orders them by
/// file and position for display.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Diagnostics(Vec<Diagnostic>);

impl Diagnostics {
    /// Records an error at `loc`.
    pub fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        self.push(loc, Severity::Error, message.into());
    }

    /// Records a warning at `loc`.
    pub fn warning(&mut self, loc: &Loc, message: impl Into<String>) {
        self.push(loc, Severity::Warning, message.into());
    }

    fn push(&mut self, loc: &Loc, severity: Severity, message: String) {
        let d = Diagnostic {
            loc: loc.clone(),
            severity,
            message,
        };
        // The same node can be reached twice (an anchor used by several services): report once.
        if !self.0.contains(&d) {
            self.0.push(d);
        }
    }

    /// True when at least one error was recorded.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }

    /// Number of errors.
    pub fn errors(&self) -> usize {
        self.0
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    }

    /// Number of warnings.
    pub fn warnings(&self) -> usize {
        self.0
            .iter()
            .filter(|d| d.severity == Severity::Warning)
            .count()
    }

    /// Number of warnings located in files under `dir/` (a project's own files).
    pub fn warnings_under(&self, dir: &str) -> usize {
        self.0
            .iter()
            .filter(|d| d.severity == Severity::Warning && in_dir(&d.loc.file, dir))
            .count()
    }

    /// Errors in files under `dir` (relative to the root; `""` is everything).
    pub fn errors_under(&self, dir: &str) -> usize {
        self.0
            .iter()
            .filter(|d| d.severity == Severity::Error && in_dir(&d.loc.file, dir))
            .count()
    }

    /// All diagnostics ordered by file, line, column (stable for equal positions).
    pub fn sorted(&self) -> Vec<&Diagnostic> {
        let mut v: Vec<&Diagnostic> = self.0.iter().collect();
        v.sort_by(|a, b| a.loc.cmp(&b.loc));
        v
    }

    /// Iterates in the order found.
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of diagnostics.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Appends another set.
    pub fn extend(&mut self, other: Diagnostics) {
        for d in other.0 {
            if !self.0.contains(&d) {
                self.0.push(d);
            }
        }
    }
}

fn in_dir(file: &str, dir: &str) -> bool {
    dir.is_empty() || dir == "." || file.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in self.sorted() {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_compiler_style() {
        let mut d = Diagnostics::default();
        d.warning(&Loc::new("b/compose.yaml".into(), 3, 5), "second");
        d.error(&Loc::new("a/compose.yaml".into(), 12, 7), "first");
        d.error(&Loc::file("c/compose.yaml"), "whole file");
        assert_eq!(
            d.to_string(),
            "a/compose.yaml:12:7: error: first\n\
             b/compose.yaml:3:5: warning: second\n\
             c/compose.yaml: error: whole file\n"
        );
        assert_eq!((d.errors(), d.warnings()), (2, 1));
    }

    #[test]
    fn same_problem_reported_once() {
        let mut d = Diagnostics::default();
        let l = Loc::new("x.yaml".into(), 1, 1);
        d.error(&l, "dup");
        d.error(&l, "dup");
        assert_eq!(d.len(), 1);
    }
}
