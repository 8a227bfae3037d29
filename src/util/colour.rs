//! Whether to colour output: only on a terminal, and never with `NO_COLOR` set
//! (<https://no-color.org>). IO (reads the environment and asks the OS about the stream);
//! every module that colours asks here, so files, pipes and the journal get plain text.

use std::io::IsTerminal as _;

/// Colour for standard error (logs, `berth apply`'s progress).
pub fn stderr() -> bool {
    allowed() && std::io::stderr().is_terminal()
}

/// Colour for standard output.
pub fn stdout() -> bool {
    allowed() && std::io::stdout().is_terminal()
}

/// `NO_COLOR` unset or empty.
fn allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
