//! Diagnostics that semantic analysis reports from more than one place: one constructor
//! per family, so the same mistake reads the same wherever it is found. Wording only; the
//! checks themselves stay with the declarations they check.

use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::syntax::ast::TextRange;

/// `RepeatedMember` (AP0024): `owner` (as written in the message, e.g. ``agent `a` ``)
/// has a second `clause` at `second`, the first at `first` when it is worth pointing at.
/// The help says to keep one; a caller with better advice replaces it.
pub(super) fn repeated_clause(
    file: FileId,
    owner: &str,
    clause: &str,
    second: TextRange,
    first: Option<TextRange>,
) -> Diagnostic {
    let d = Diagnostic::new(
        Code::RepeatedMember,
        format!("{owner} has two `{clause}` clauses"),
        Label::new(file, second, "second one"),
    );
    let d = match first {
        Some(first) => d.with_secondary(Label::new(file, first, "first one")),
        None => d,
    };
    d.with_help(format!("keep one `{clause}`"))
}

/// `DuplicateDefinition` (AP0010) for a tool parameter named after something the runtime supplies
/// itself (`confidence`, `tainted`): `message` says what the name is reserved for,
/// `instead` is a name to suggest.
pub(super) fn reserved_parameter(
    file: FileId,
    name: TextRange,
    message: &str,
    instead: &str,
) -> Diagnostic {
    Diagnostic::new(
        Code::DuplicateDefinition,
        message.to_string(),
        Label::new(file, name, "reserved name"),
    )
    .with_help(format!(
        "call the parameter something else, e.g. `{instead}`"
    ))
}

/// The callers the fixture snapshots do not reach read exactly as before the constructors.
#[cfg(test)]
mod wording {
    use crate::diagnostics::{Diagnostic, FileId};
    use crate::sema::{FileInput, analyze};
    use crate::syntax::parse;

    fn diagnostics(source: &str) -> Vec<Diagnostic> {
        let parsed = parse(FileId(0), source);
        assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
        let file = FileInput {
            id: FileId(0),
            tree: &parsed.tree,
            module: None,
            has_syntax_errors: false,
        };
        analyze(&[file]).1
    }

    fn find<'d>(all: &'d [Diagnostic], message: &str) -> &'d Diagnostic {
        all.iter()
            .find(|d| d.message == message)
            .unwrap_or_else(|| panic!("no {message:?} in {all:#?}"))
    }

    #[test]
    fn repeated_and_reserved() {
        let all = diagnostics(
            "policy p version \"1\"\n\
             escalation r { notify \"a\" notify \"b\" timeout 1m then deny }\n\
             tool t(tainted: bool) { effect read }\n\
             agent a {\n\
               owner \"o\"\n\
               allow t\n\
               stage shadow\n\
               promote to autonomous when errors < 1% over 10 decisions\n\
               promote to autonomous when errors < 2% over 10 decisions\n\
             }\n",
        );
        let notify = find(&all, "`r` has two `notify` clauses");
        assert_eq!(notify.help.as_deref(), Some("keep one `notify`"));
        assert!(notify.secondary.is_empty());
        let tainted = find(
            &all,
            "`tainted` is reserved for whether the session has read untrusted content",
        );
        assert_eq!(
            tainted.help.as_deref(),
            Some("call the parameter something else, e.g. `flagged`")
        );
        assert_eq!(tainted.primary.message, "reserved name");
        let promote = find(&all, "agent `a` has two `promote to autonomous` clauses");
        assert_eq!(
            promote.help.as_deref(),
            Some("join their criteria with `and` in one clause")
        );
        assert_eq!(promote.secondary[0].message, "first one");
    }
}
