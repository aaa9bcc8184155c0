//! `textDocument/formatting` through the compiler's formatter (`agentpolicy::format`, the
//! same layout as `agentpolicy fmt`). The answer is one edit covering only the span that
//! changed, so the editor keeps the cursor and undo history tidy. A file with syntax
//! errors is left as it is, like `agentpolicy fmt` does; the reason goes to the log.

use agentpolicy::format::format;
use agentpolicy::syntax::ast::TextRange;
use tower_lsp_server::ls_types::{TextEdit, Uri};

use crate::state::World;

/// The edits that format the document: none when it is already formatted; `Err` with
/// the formatter's reason when it refuses.
pub fn formatting(world: &World<'_>, uri: &Uri) -> Result<Result<Vec<TextEdit>, String>, String> {
    let doc = world.document(uri)?;
    if doc.module.is_some() {
        return Ok(Ok(Vec::new()));
    }
    let view = world.state.view(doc);
    let formatted = match format(view.text) {
        Ok(text) => text,
        Err(e) => return Ok(Err(e.to_string())),
    };
    let Some((range, replacement)) = changed_span(view.text, &formatted) else {
        return Ok(Ok(Vec::new()));
    };
    Ok(Ok(vec![TextEdit {
        range: view.range(range),
        new_text: replacement.to_string(),
    }]))
}

/// The smallest range of `old` to replace, and its replacement, that turns `old` into
/// `new`; `None` when they are equal. Cuts fall on character boundaries.
fn changed_span<'a>(old: &str, new: &'a str) -> Option<(TextRange, &'a str)> {
    if old == new {
        return None;
    }
    let prefix = old
        .char_indices()
        .zip(new.chars())
        .find(|((_, a), b)| a != b)
        .map(|((i, _), _)| i)
        .unwrap_or(old.len().min(new.len()));
    // Keep the prefix on a boundary of both texts (they agree up to it, so it is).
    let max_suffix = (old.len() - prefix).min(new.len() - prefix);
    let suffix = old
        .chars()
        .rev()
        .zip(new.chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .scan(0usize, |total, len| {
            *total += len;
            Some(*total)
        })
        .take_while(|total| *total <= max_suffix)
        .last()
        .unwrap_or(0);
    let range = TextRange::new(prefix, old.len() - suffix);
    Some((range, new.get(prefix..new.len() - suffix).unwrap_or(new)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(old: &str, new: &str) -> String {
        match changed_span(old, new) {
            None => old.to_string(),
            Some((r, text)) => {
                let mut out = old.to_string();
                out.replace_range(r.start as usize..r.end as usize, text);
                out
            }
        }
    }

    #[test]
    fn the_span_turns_old_into_new() {
        for (old, new) in [
            ("abc", "abc"),
            ("a  b", "a b"),
            ("x😀 y", "x😀y"),
            ("aaa", "aaaa"),
            ("tool t {}\n", "tool t {}\n\n"),
            ("", "policy p\n"),
            ("é", "è"),
        ] {
            assert_eq!(apply(old, new), new, "{old:?} -> {new:?}");
        }
        assert_eq!(
            changed_span("a  b", "a b").map(|(r, _)| r),
            Some(TextRange::new(2, 3))
        );
    }
}
