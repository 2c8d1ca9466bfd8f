//! Output formats shared by the commands.

use std::io::Write as _;

use comfy_table::{ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};

/// Exit status after a closed pipe, as a process ended by SIGPIPE reports it (128 + 13).
pub const CLOSED_PIPE: u8 = 141;

/// Write to stdout. A reader that went away (`rampart audit big.log | head`) ends the program
/// quietly, as Unix tools end; any other write error ends it with the error. Every command
/// prints through here ([`out!`](crate::out), [`outln!`](crate::outln)), so it is handled once.
pub fn emit(args: std::fmt::Arguments<'_>) {
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        exit_on_write_error(&e);
    }
}

/// End the program after a failed write to stdout.
pub fn exit_on_write_error(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(i32::from(CLOSED_PIPE));
    }
    eprintln!("error: cannot write the output: {e}");
    std::process::exit(2);
}

/// An error and its causes in one line, each cause once: many errors already quote their
/// source in their own message, which `{:#}` would print a second time
/// ("cannot read x: No such file (os error 2): No such file (os error 2)").
pub fn error_chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if text.contains(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&cause);
    }
    text
}

/// Whether an error is (caused by) a closed pipe.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                .is_some_and(|k| k == std::io::ErrorKind::BrokenPipe)
    })
}

/// `print!` that survives a closed pipe (see [`emit`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::output::emit(format_args!($($arg)*)) };
}

/// `println!` that survives a closed pipe (see [`emit`]).
#[macro_export]
macro_rules! outln {
    () => { $crate::output::emit(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::output::emit(format_args!("{}\n", format_args!($($arg)*))) };
}

/// How to print a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum Format {
    /// A table for people.
    #[default]
    Table,
    /// JSON for programs.
    Json,
}

/// A table with the house style; an empty header means a key/value table without one.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    if header.iter().any(|h| !h.is_empty()) {
        t.set_header(header);
    }
    t
}

/// `policy@file:line:col` for each reason, one per line.
pub fn reasons(diagnostic: &rampart_types::Diagnostic) -> String {
    let mut lines: Vec<String> =
        diagnostic.reasons.iter().map(|r| format!("{} ({})", r.policy, r.position)).collect();
    lines.extend(
        diagnostic.errors.iter().map(|e| format!("error in {} ({}): {}", e.policy, e.position, e.message)),
    );
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn each_cause_is_printed_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot read policies: {source}")]
        struct Read {
            #[source]
            source: std::io::Error,
        }
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file (os error 2)");
        let e = anyhow::Error::new(Read { source: io }).context("loading tier org");
        assert_eq!(
            super::error_chain(&e),
            "loading tier org: cannot read policies: No such file (os error 2)"
        );
    }
}
