//! Which files form a policy, and how their bytes become text: one rule for the CLI and
//! the language server, so `check` and the editor always see the same policy. No IO:
//! callers list directories and read bytes, and ask these functions.
//!
//! A policy is one `.agentpolicy` file, or a directory whose `.agentpolicy` files, found
//! recursively and sorted by path, form one policy. Directories whose names start with
//! `.`, and `broken`, `target` and `node_modules`, are skipped: broken variants and
//! fixtures kept beside a policy are policies of their own, and build output is not
//! source.

use std::path::{Path, PathBuf};

use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::syntax::ast::TextRange;

/// The extension of policy files, without the dot.
pub const EXTENSION: &str = "agentpolicy";

/// `path` names a policy file (by its extension).
pub fn is_policy_file(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()) == Some(EXTENSION)
}

/// A directory of this name is not searched for a policy's files.
pub fn is_skipped_dir(name: &str) -> bool {
    name.starts_with('.') || matches!(name, "broken" | "target" | "node_modules")
}

/// `path` is one of the files of the policy rooted at the directory `root`: a policy
/// file under `root`, with no skipped directory between them.
pub fn is_policy_path(root: &Path, path: &Path) -> bool {
    let Ok(relative) = path.strip_prefix(root) else {
        return false;
    };
    let mut dirs = relative.components().collect::<Vec<_>>();
    dirs.pop();
    is_policy_file(path)
        && !dirs
            .iter()
            .any(|c| is_skipped_dir(&c.as_os_str().to_string_lossy()))
}

/// One entry of a directory listing, as a caller's lister reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub path: PathBuf,
    pub is_dir: bool,
}

/// The policy files under the directory `root`, found recursively by the rule above and
/// sorted by path. `list` lists one directory (the caller does the IO, and words its
/// errors); the CLI and the Python package walk a policy folder with it, so both find
/// the same files.
pub fn policy_files_under<E>(
    root: &Path,
    list: &mut dyn FnMut(&Path) -> Result<Vec<DirEntry>, E>,
) -> Result<Vec<PathBuf>, E> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in list(&dir)? {
            if entry.is_dir {
                // Broken variants and fixtures kept beside a policy are separate policies.
                let name = entry
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default();
                if !is_skipped_dir(&name) {
                    pending.push(entry.path);
                }
            } else if is_policy_file(&entry.path) {
                found.push(entry.path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// A policy file's text from its bytes. Bytes that are not UTF-8 give the valid prefix
/// (so a snippet can show the line, and the rest is not analysed as something else) and
/// an AP0004 diagnostic at the first bad byte.
pub fn decode(bytes: Vec<u8>, file: FileId) -> (String, Option<Diagnostic>) {
    match String::from_utf8(bytes) {
        Ok(text) => (text, None),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let mut bytes = e.into_bytes();
            bytes.truncate(valid);
            let prefix = String::from_utf8(bytes).unwrap_or_default();
            let diagnostic = Diagnostic::new(
                Code::InvalidEncoding,
                format!("this file is not UTF-8 text: byte {valid} is not valid UTF-8"),
                Label::new(file, TextRange::new(valid, valid), "invalid byte here"),
            )
            .with_help("save the file as UTF-8; policies are text files");
            (prefix, Some(diagnostic))
        }
    }
}

/// The directories (relative to the root, in order) of the files that hold a `policy`
/// header, when they are several different directories: the root then holds several
/// policies side by side (`examples/` with one policy per sub-directory), which do not
/// form one policy. `files` are (path relative to the root, text); `None` for one policy.
pub fn several_policies<'a>(
    files: impl IntoIterator<Item = (&'a Path, &'a str)>,
) -> Option<Vec<String>> {
    let mut dirs: Vec<String> = Vec::new();
    for (path, text) in files {
        let parsed = crate::syntax::parse(FileId(0), text);
        let has_header = parsed
            .tree
            .items
            .iter()
            .any(|i| matches!(i.kind, crate::syntax::ast::ItemKind::Policy(_)));
        if has_header {
            let dir = path
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    (dirs.len() > 1).then_some(dirs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn several_policies_are_headers_in_several_directories() {
        use std::path::Path;
        let one = [
            (Path::new("a.agentpolicy"), "policy p"),
            (Path::new("agents/b.agentpolicy"), "agent x { }"),
        ];
        assert_eq!(super::several_policies(one), None);
        let two = [
            (Path::new("law/p.agentpolicy"), "policy law"),
            (Path::new("health/p.agentpolicy"), "policy health"),
        ];
        assert_eq!(
            super::several_policies(two),
            Some(vec!["law".to_string(), "health".to_string()])
        );
    }

    use super::*;

    #[test]
    fn the_policy_file_rule() {
        let root = Path::new("/p");
        assert!(is_policy_path(root, Path::new("/p/a.agentpolicy")));
        assert!(is_policy_path(root, Path::new("/p/sub/a.agentpolicy")));
        assert!(!is_policy_path(root, Path::new("/p/broken/a.agentpolicy")));
        assert!(!is_policy_path(root, Path::new("/p/.git/a.agentpolicy")));
        assert!(!is_policy_path(
            root,
            Path::new("/p/x/node_modules/a.agentpolicy")
        ));
        assert!(!is_policy_path(root, Path::new("/p/a.txt")));
        assert!(!is_policy_path(root, Path::new("/q/a.agentpolicy")));
        // The root itself may have any name.
        assert!(is_policy_path(
            Path::new("/.hidden"),
            Path::new("/.hidden/a.agentpolicy")
        ));
    }

    #[test]
    fn a_walk_finds_policy_files_sorted_and_skips_broken_variants() {
        let listing = |dir: &Path| -> Result<Vec<DirEntry>, String> {
            let entry = |p: &str, is_dir| DirEntry {
                path: PathBuf::from(p),
                is_dir,
            };
            Ok(match dir.to_str() {
                Some("/p") => vec![
                    entry("/p/z.agentpolicy", false),
                    entry("/p/broken", true),
                    entry("/p/sub", true),
                    entry("/p/README.md", false),
                ],
                Some("/p/sub") => vec![entry("/p/sub/a.agentpolicy", false)],
                Some("/p/broken") => vec![entry("/p/broken/x.agentpolicy", false)],
                other => return Err(format!("unexpected {other:?}")),
            })
        };
        let found = policy_files_under(Path::new("/p"), &mut { listing }).unwrap();
        assert_eq!(
            found,
            [
                PathBuf::from("/p/sub/a.agentpolicy"),
                PathBuf::from("/p/z.agentpolicy")
            ]
        );
        let failing = |_: &Path| -> Result<Vec<DirEntry>, String> { Err("denied".into()) };
        assert_eq!(
            policy_files_under(Path::new("/q"), &mut { failing }),
            Err("denied".to_string())
        );
    }

    #[test]
    fn bad_bytes_become_ap0004_at_the_first_one() {
        let (text, d) = decode(b"policy p\n\xff rest".to_vec(), FileId(0));
        assert_eq!(text, "policy p\n");
        let d = d.expect("a diagnostic");
        assert_eq!(d.code, Code::InvalidEncoding);
        assert_eq!(d.primary.range, TextRange::new(9, 9));
        assert_eq!(decode(b"ok".to_vec(), FileId(0)), ("ok".to_string(), None));
    }
}
