//! `agentpolicy fmt PATH... [--check]`: rewrite policy files in the canonical layout, or
//! with `--check` report which files are not formatted (for CI) without touching them.
//!
//! The layout itself is the library's (`agentpolicy::format`); this module only finds
//! files, reads and writes them, prints, and picks the exit code: 0 all formatted (or
//! rewritten), 1 a file would change under `--check` or has syntax errors, 2 a file could
//! not be read or written.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use agentpolicy::diagnostics::{Diagnostic, FileId};
use agentpolicy::format::{FormatError, format};
use agentpolicy::render::{self, Sources};

use super::output::use_color;
use super::{EXIT_FAILURE, EXIT_USAGE, load};

#[derive(Debug, clap::Args)]
pub struct FmtArgs {
    /// `.agentpolicy` files, or directories: every `.agentpolicy` file under them.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Change nothing; list the files that are not formatted, with the first lines that
    /// differ, and exit 1 if there are any.
    #[arg(long)]
    pub check: bool,
}

/// What happened to one file.
enum Outcome {
    Unchanged,
    /// Rewritten, or under `--check` would be.
    Changed,
    /// Syntax errors or invalid UTF-8: reported, left alone.
    Refused,
    /// Could not be read or written.
    IoError,
}

pub fn run(args: FmtArgs) -> u8 {
    let mut files: Vec<PathBuf> = Vec::new();
    let mut io_error = false;
    for path in &args.paths {
        match load::policy_files(path) {
            Ok(found) => {
                for file in found {
                    if !files.contains(&file) {
                        files.push(file);
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                io_error = true;
            }
        }
    }

    let (mut changed, mut refused) = (0usize, 0usize);
    for file in &files {
        match format_file(file, args.check) {
            Outcome::Unchanged => {}
            Outcome::Changed => changed += 1,
            Outcome::Refused => refused += 1,
            Outcome::IoError => io_error = true,
        }
    }

    let files_word = |n: usize| if n == 1 { "file" } else { "files" };
    if args.check && changed > 0 {
        println!(
            "{changed} {} would be reformatted; run `agentpolicy fmt` to format",
            files_word(changed)
        );
    } else if !args.check && changed > 0 {
        println!("formatted {changed} {}", files_word(changed));
    }
    if refused > 0 {
        let verb = if refused == 1 { "has" } else { "have" };
        println!(
            "{refused} {} {verb} errors and {} left as {}",
            files_word(refused),
            if refused == 1 { "was" } else { "were" },
            if refused == 1 { "it was" } else { "they were" },
        );
    }

    if io_error {
        EXIT_USAGE
    } else if refused > 0 || (args.check && changed > 0) {
        EXIT_FAILURE
    } else {
        0
    }
}

fn format_file(file: &Path, check: bool) -> Outcome {
    let display = file.display().to_string();
    let bytes = match std::fs::read(file) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("error: cannot read `{display}`: {}", load::describe_io(&e));
            return Outcome::IoError;
        }
    };
    let source = match agentpolicy::files::decode(bytes, FileId(0)) {
        (text, None) => text,
        (prefix, Some(diagnostic)) => {
            report_refusal(&display, &prefix, &[diagnostic]);
            return Outcome::Refused;
        }
    };
    let formatted = match format(&source) {
        Ok(text) => text,
        Err(error @ FormatError::Syntax(_)) => {
            let diagnostics: Vec<Diagnostic> = error.diagnostics().into_iter().cloned().collect();
            report_refusal(&display, &source, &diagnostics);
            return Outcome::Refused;
        }
        Err(error @ FormatError::WouldChangeMeaning) => {
            println!("{display}: {error}");
            return Outcome::Refused;
        }
    };
    if formatted == source {
        return Outcome::Unchanged;
    }
    if check {
        print!("{}", first_difference(&display, &source, &formatted));
        return Outcome::Changed;
    }
    match write_replacing(file, &formatted) {
        Ok(()) => {
            println!("formatted {display}");
            Outcome::Changed
        }
        Err(e) => {
            eprintln!("error: cannot write `{display}`: {}", load::describe_io(&e));
            Outcome::IoError
        }
    }
}

fn report_refusal(display: &str, source: &str, diagnostics: &[Diagnostic]) {
    let sources = Sources::new(vec![(display.to_string(), source.to_string())]);
    print!("{}", render::human(diagnostics, &sources, use_color()));
    let (noun, them) = match diagnostics.len() {
        1 => ("error", "it"),
        _ => ("errors", "them"),
    };
    println!(
        "not formatted: {display} has {} {noun}; fix {them} first",
        diagnostics.len()
    );
}

/// Writes `text` to a new file beside `file` and renames it over `file`, so an
/// interrupted write never leaves a half-written policy. The original's permissions are
/// kept.
fn write_replacing(file: &Path, text: &str) -> std::io::Result<()> {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = file.with_file_name(format!(".{name}.fmt-{}", std::process::id()));
    let permissions = std::fs::metadata(file)?.permissions();
    let written = std::fs::write(&temp, text)
        .and_then(|()| std::fs::set_permissions(&temp, permissions))
        .and_then(|()| std::fs::rename(&temp, file));
    if written.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Lines of context around a change.
const CONTEXT: usize = 3;
/// The most removed or added lines shown; the rest is summarised.
const MAX_SHOWN: usize = 12;
/// How far ahead to look for the lines where the two texts agree again.
const RESYNC_WINDOW: usize = 400;

/// A unified-diff style hunk of the first place where `old` and `new` differ.
fn first_difference(path: &str, old: &str, new: &str) -> String {
    let old_lines = split_lines(old);
    let new_lines = split_lines(new);
    let mut out = format!("--- {path}\n+++ {path} (formatted)\n");
    let prefix = old_lines
        .iter()
        .zip(&new_lines)
        .take_while(|(a, b)| a == b)
        .count();
    if prefix == old_lines.len() && prefix == new_lines.len() {
        out.push_str("(only the end of the file differs: the final newline)\n");
        return out;
    }
    let (old_end, new_end) = resync(&old_lines, &new_lines, prefix);
    let start = prefix.saturating_sub(CONTEXT);
    let after = CONTEXT
        .min(old_lines.len() - old_end)
        .min(new_lines.len() - new_end);
    let _ = writeln!(
        out,
        "@@ -{} +{} @@",
        range(start, old_end + after),
        range(start, new_end + after)
    );
    for line in &old_lines[start..prefix] {
        let _ = writeln!(out, " {}", visible(line));
    }
    for (sign, lines) in [
        ('-', &old_lines[prefix..old_end]),
        ('+', &new_lines[prefix..new_end]),
    ] {
        for line in lines.iter().take(MAX_SHOWN) {
            let _ = writeln!(out, "{sign}{}", visible(line));
        }
        if lines.len() > MAX_SHOWN {
            let _ = writeln!(out, "{sign}... ({} more lines)", lines.len() - MAX_SHOWN);
        }
    }
    for line in &old_lines[old_end..old_end + after] {
        let _ = writeln!(out, " {}", visible(line));
    }
    out
}

/// Lines without their `\n` (a `\r` stays, to show CRLF); no empty line after a final `\n`.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.split('\n').collect();
    if text.ends_with('\n') || text.is_empty() {
        lines.pop();
    }
    lines
}

/// The first `(old, new)` line indices at or after `from` where the texts agree again
/// for two lines (or both end): the end of the first changed region.
fn resync(old: &[&str], new: &[&str], from: usize) -> (usize, usize) {
    let agrees_at = |i: usize, j: usize| {
        (0..2).all(|k| match (old.get(i + k), new.get(j + k)) {
            (Some(a), Some(b)) => a == b,
            (None, None) => true,
            _ => false,
        })
    };
    let remaining = (old.len() - from) + (new.len() - from);
    for distance in 1..=remaining.min(RESYNC_WINDOW) {
        for i in 0..=distance {
            let (oi, nj) = (from + i, from + distance - i);
            if oi <= old.len() && nj <= new.len() && agrees_at(oi, nj) {
                return (oi, nj);
            }
        }
    }
    (old.len(), new.len())
}

/// `start,count` in 1-based unified-diff form.
fn range(start: usize, end: usize) -> String {
    let count = end - start;
    if count == 0 {
        format!("{start},0")
    } else {
        format!("{},{count}", start + 1)
    }
}

/// Makes the whitespace the formatter removes visible in a diff line.
fn visible(line: &str) -> String {
    let (body, cr) = match line.strip_suffix('\r') {
        Some(body) => (body, "␍"),
        None => (line, ""),
    };
    let trimmed = body.trim_end_matches([' ', '\t']);
    let trailing: String = body
        .get(trimmed.len()..)
        .unwrap_or("")
        .chars()
        .map(|c| if c == '\t' { '→' } else { '·' })
        .collect();
    format!("{}{trailing}{cr}", trimmed.replace('\r', "␍"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_shows_the_first_changed_lines_with_context() {
        let old = "policy p\ntiers a < b\nisolate m\nagent a {\n    allow t\n}\ntool t { effect read }\nuse std.legal\nisolate n\n";
        let new = "policy p\ntiers a < b\nisolate m\nagent a {\n  allow t\n}\ntool t { effect read }\nuse std.legal\nisolate n\n";
        assert_eq!(
            first_difference("f.agentpolicy", old, new),
            "--- f.agentpolicy\n+++ f.agentpolicy (formatted)\n@@ -2,7 +2,7 @@\n tiers a < b\n isolate m\n agent a {\n-    allow t\n+  allow t\n }\n tool t { effect read }\n use std.legal\n"
        );
    }

    #[test]
    fn the_diff_marks_whitespace_the_formatter_removes() {
        let diff = first_difference("f", "policy p  \r\n", "policy p\n");
        assert!(
            diff.ends_with("@@ -1,1 +1,1 @@\n-policy p··␍\n+policy p\n"),
            "{diff}"
        );
        let diff = first_difference("f", "policy p", "policy p\n");
        assert!(diff.ends_with("the final newline)\n"), "{diff}");
    }

    #[test]
    fn long_changes_are_summarised() {
        let old: String = (0..30).map(|i| format!("isolate   m{i}\n")).collect();
        let new: String = (0..30).map(|i| format!("isolate m{i}\n")).collect();
        let diff = first_difference("f", &old, &new);
        assert!(diff.contains("-... (18 more lines)\n"), "{diff}");
        assert!(diff.contains("+... (18 more lines)\n"), "{diff}");
    }
}
