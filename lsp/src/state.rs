//! The server's picture of one policy: the compiler's salsa database plus the documents
//! it holds (files the editor opened, `.agentpolicy` files of the root folder, and the
//! embedded standard library).
//!
//! One root folder is one policy, exactly what `agentpolicy check ROOT` would read, plus
//! any file the editor opens elsewhere. Edits go to salsa inputs (`SourceText::set_text`),
//! so only the changed file is re-parsed; analysis re-runs from the cached trees. This
//! module is synchronous and protocol-agnostic apart from URIs and ranges, so benchmarks
//! and tests drive the same code path as the server. It never panics on bad input: a
//! request it cannot serve becomes an `Err(message)` for the caller to log.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use agentpolicy::db::{self, Analysis, Database, Loaded, SourceText};
use agentpolicy::diagnostics::FileId;
use agentpolicy::files;
use agentpolicy::line_index::LineIndex;
use agentpolicy::model::Loc;
use agentpolicy::stdlib;
use agentpolicy::syntax::Parsed;
use salsa::Setter as _;
use tower_lsp_server::ls_types::{Location, Range, Uri};

use crate::convert::{TextView, apply_change};
use crate::index::{self, Index};

/// File ids of standard-library modules start here, far above any user file id, so user
/// files can be added and removed without renumbering the library.
const STDLIB_FILE_BASE: u32 = 1 << 30;

/// How many `.agentpolicy` files a root folder may contribute; a root that holds more is
/// most likely a home directory or a monorepo, not one policy.
const MAX_ROOT_FILES: usize = 2_000;

/// A document's identity: its file path for `file:` URIs (so `%3A` and `:` spellings
/// agree), the URI text otherwise.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocKey(String);

impl DocKey {
    pub fn of(uri: &Uri) -> DocKey {
        if uri.scheme().as_str().eq_ignore_ascii_case("file")
            && let Some(path) = uri.to_file_path()
        {
            return DocKey(path.to_string_lossy().into_owned());
        }
        DocKey(uri.as_str().to_string())
    }

    fn of_path(path: &Path) -> DocKey {
        DocKey(path.to_string_lossy().into_owned())
    }
}

/// One file of the policy.
#[derive(Debug)]
pub struct Document {
    pub key: DocKey,
    /// Where the editor finds it. `None` only for a standard-library module that could
    /// not be written to disk.
    pub uri: Option<Uri>,
    pub id: FileId,
    pub source: SourceText,
    /// The editor's version; `None` while the file is only read from disk.
    pub version: Option<i32>,
    /// Open in the editor: the editor's text wins over the disk.
    pub open: bool,
    /// Part of the root folder: closing it reverts to the disk text instead of dropping it.
    pub on_disk: bool,
    /// `Some("std.legal")` for a standard-library module.
    pub module: Option<String>,
    pub lines: LineIndex,
}

/// The policy the server is working on.
#[derive(Debug)]
pub struct PolicyState {
    db: Database,
    workspace: db::Workspace,
    /// User files, sorted by key (the order the CLI reads a directory in).
    files: Vec<Document>,
    stdlib: Vec<Document>,
    root: Option<PathBuf>,
    next_id: u32,
    revision: u64,
    index: Option<(u64, Arc<Index>)>,
}

/// A consistent, read-only view for one request: the state, its analysis and index.
#[derive(Debug)]
pub struct World<'a> {
    pub state: &'a PolicyState,
    pub analysis: Arc<Analysis>,
    pub index: Arc<Index>,
}

impl PolicyState {
    /// An empty policy with the standard library. With `stdlib_dir`, the library's
    /// modules are written there so go-to-definition can open them as ordinary files.
    pub fn new(stdlib_dir: Option<&Path>) -> (Self, Vec<String>) {
        let db = Database::default();
        let mut log = Vec::new();
        let mut stdlib_docs = Vec::new();
        for (i, module) in stdlib::MODULES.iter().enumerate() {
            let id = FileId(STDLIB_FILE_BASE + i as u32);
            let source = SourceText::new(
                &db,
                id,
                module.path.to_string(),
                module.text.to_string(),
                Some(module.name.to_string()),
            );
            let file_name = module.path.trim_start_matches("<stdlib>/");
            let written = stdlib_dir.and_then(|dir| match write_stdlib(dir, file_name, module.text) {
                Ok(path) => Some(path),
                Err(e) => {
                    log.push(format!(
                        "cannot write standard library module `{}` to {}: {e}; its locations will not be served",
                        module.name,
                        dir.display()
                    ));
                    None
                }
            });
            let uri = written.as_deref().and_then(Uri::from_file_path);
            let key = match &written {
                Some(path) => DocKey::of_path(path),
                None => DocKey(module.path.to_string()),
            };
            stdlib_docs.push(Document {
                key,
                uri,
                id,
                source,
                version: None,
                open: false,
                on_disk: true,
                module: Some(module.name.to_string()),
                lines: LineIndex::new(module.text),
            });
        }
        let sources: Vec<SourceText> = stdlib_docs.iter().map(|d| d.source).collect();
        let workspace = db::Workspace::new(&db, sources);
        (
            PolicyState {
                db,
                workspace,
                files: Vec::new(),
                stdlib: stdlib_docs,
                root: None,
                next_id: 0,
                revision: 0,
                index: None,
            },
            log,
        )
    }

    /// Reads the `.agentpolicy` files of `root` (recursively, skipping hidden folders,
    /// `broken/`, `target/` and `node_modules/`, like the CLI) into the policy. Returns
    /// log lines for files it could not read.
    pub fn load_root(&mut self, root: &Path) -> Vec<String> {
        self.root = Some(root.to_path_buf());
        let mut paths = Vec::new();
        let mut log = Vec::new();
        collect_policy_files(root, &mut paths, &mut log);
        paths.sort();
        if paths.len() > MAX_ROOT_FILES {
            log.push(format!(
                "{} holds {} .agentpolicy files; reading only the first {MAX_ROOT_FILES}. Open the policy's own folder as the workspace root.",
                root.display(),
                paths.len()
            ));
            paths.truncate(MAX_ROOT_FILES);
        }
        let mut added = Vec::new();
        for path in paths {
            match read_text(&path) {
                Ok((text, warning)) => {
                    log.extend(warning);
                    added.push((path, text));
                }
                Err(e) => log.push(e),
            }
        }
        for (path, text) in added {
            let Some(uri) = Uri::from_file_path(&path) else {
                log.push(format!("cannot make a URI of {}", path.display()));
                continue;
            };
            self.insert_disk_file(uri, text);
        }
        self.sync_workspace();
        log
    }

    pub fn root(&self) -> Option<&Path> {
        self.root.as_deref()
    }

    fn insert_disk_file(&mut self, uri: Uri, text: String) {
        let key = DocKey::of(&uri);
        if let Some(doc) = self.files.iter_mut().find(|d| d.key == key) {
            doc.on_disk = true;
            return;
        }
        self.add_file(uri, key, text, None, false, true);
    }

    fn add_file(
        &mut self,
        uri: Uri,
        key: DocKey,
        text: String,
        version: Option<i32>,
        open: bool,
        on_disk: bool,
    ) {
        let id = FileId(self.next_id);
        self.next_id += 1;
        let path = match uri.to_file_path() {
            Some(p) if uri.scheme().as_str().eq_ignore_ascii_case("file") => {
                display_path(&p, self.root.as_deref())
            }
            _ => uri.as_str().to_string(),
        };
        let lines = LineIndex::new(&text);
        let source = SourceText::new(&self.db, id, path, text, None);
        let at = self.files.partition_point(|d| d.key < key);
        self.files.insert(
            at,
            Document {
                key,
                uri: Some(uri),
                id,
                source,
                version,
                open,
                on_disk,
                module: None,
                lines,
            },
        );
    }

    /// Makes the salsa workspace list the current files: user files, then the library.
    fn sync_workspace(&mut self) {
        let mut sources: Vec<SourceText> = self.files.iter().map(|d| d.source).collect();
        sources.extend(self.stdlib.iter().map(|d| d.source));
        self.workspace.set_files(&mut self.db).to(sources);
        self.revision += 1;
    }

    fn set_text(&mut self, at: usize, text: String) {
        let Some(doc) = self.files.get_mut(at) else {
            return;
        };
        doc.lines = LineIndex::new(&text);
        let source = doc.source;
        source.set_text(&mut self.db).to(text);
        self.revision += 1;
    }

    fn position_of(&self, key: &DocKey) -> Option<usize> {
        self.files.iter().position(|d| &d.key == key)
    }

    fn is_stdlib(&self, key: &DocKey) -> bool {
        self.stdlib.iter().any(|d| &d.key == key)
    }

    /// `textDocument/didOpen`: the editor's text replaces what was read from disk.
    pub fn open(&mut self, uri: Uri, version: i32, text: String) -> Result<(), String> {
        let key = DocKey::of(&uri);
        if self.is_stdlib(&key) {
            return Err(format!(
                "{} is a standard-library module: it is shown read-only, and edits to it are not analysed",
                uri.as_str()
            ));
        }
        match self.position_of(&key) {
            Some(at) => {
                let doc = &mut self.files[at];
                doc.open = true;
                doc.version = Some(version);
                doc.uri = Some(uri);
                self.set_text(at, text);
            }
            None => {
                self.add_file(uri, key, text, Some(version), true, false);
                self.sync_workspace();
            }
        }
        Ok(())
    }

    /// `textDocument/didChange`. A change for a file that is not open, or with a version
    /// not newer than the one held, is refused (the caller logs it) and leaves the text
    /// untouched.
    pub fn change(
        &mut self,
        uri: &Uri,
        version: i32,
        changes: Vec<(Option<Range>, String)>,
    ) -> Result<(), String> {
        let key = DocKey::of(uri);
        if self.is_stdlib(&key) {
            return Err(format!(
                "ignoring an edit to the standard-library module {}",
                uri.as_str()
            ));
        }
        let Some(at) = self.position_of(&key) else {
            return Err(format!(
                "ignoring a change to {}, which was never opened",
                uri.as_str()
            ));
        };
        let doc = &self.files[at];
        if !doc.open {
            return Err(format!(
                "ignoring a change to {}, which is not open",
                uri.as_str()
            ));
        }
        if let Some(held) = doc.version
            && version <= held
        {
            return Err(format!(
                "ignoring an out-of-order change to {} (version {version}, but version {held} is already applied)",
                uri.as_str()
            ));
        }
        let mut text = doc.source.text(&self.db).clone();
        for (range, new_text) in changes {
            apply_change(&mut text, range, &new_text);
        }
        self.files[at].version = Some(version);
        self.set_text(at, text);
        Ok(())
    }

    /// `textDocument/didClose`: a root-folder file goes back to its disk text; any other
    /// file leaves the policy. Returns the URI whose diagnostics must be cleared, if any.
    pub fn close(&mut self, uri: &Uri) -> Result<Option<Uri>, String> {
        let key = DocKey::of(uri);
        let Some(at) = self.position_of(&key) else {
            return Err(format!(
                "ignoring a close of {}, which was never opened",
                uri.as_str()
            ));
        };
        self.files[at].open = false;
        self.files[at].version = None;
        if self.files[at].on_disk {
            let path = PathBuf::from(&key.0);
            match read_text(&path) {
                Ok((text, _)) => {
                    self.set_text(at, text);
                    return Ok(None);
                }
                Err(_) => {
                    // Deleted while open: it leaves the policy like any other file.
                }
            }
        }
        let removed = self.files.remove(at);
        self.sync_workspace();
        Ok(removed.uri)
    }

    /// A watched `.agentpolicy` file was created or changed on disk. Open files keep the
    /// editor's text. Files outside the root folder are ignored.
    pub fn disk_changed(&mut self, uri: Uri) -> Result<(), String> {
        let key = DocKey::of(&uri);
        let path = PathBuf::from(&key.0);
        if self.is_stdlib(&key) || !self.in_root(&path) {
            return Ok(());
        }
        match self.position_of(&key) {
            Some(at) if self.files[at].open => {
                self.files[at].on_disk = true;
                Ok(())
            }
            Some(at) => {
                let (text, _) = read_text(&path)?;
                self.set_text(at, text);
                Ok(())
            }
            None => {
                let (text, _) = read_text(&path)?;
                self.add_file(uri, key, text, None, false, true);
                self.sync_workspace();
                Ok(())
            }
        }
    }

    /// A watched file was deleted: it leaves the policy unless it is open. Returns the
    /// URI whose diagnostics must be cleared.
    pub fn disk_deleted(&mut self, uri: &Uri) -> Option<Uri> {
        let key = DocKey::of(uri);
        let at = self.position_of(&key)?;
        if self.files[at].open {
            self.files[at].on_disk = false;
            return None;
        }
        let removed = self.files.remove(at);
        self.sync_workspace();
        removed.uri
    }

    fn in_root(&self, path: &Path) -> bool {
        match &self.root {
            Some(root) => files::is_policy_path(root, path),
            None => false,
        }
    }

    /// The analysis of the current texts (salsa re-runs only what an edit invalidated).
    pub fn analysis(&self) -> Arc<Analysis> {
        self.db.analysis(Loaded {
            workspace: self.workspace,
        })
    }

    /// The analysis and the reference index of the current texts.
    pub fn world(&mut self) -> World<'_> {
        let analysis = self.analysis();
        let index = match &self.index {
            Some((rev, index)) if *rev == self.revision => index.clone(),
            _ => {
                let index = Arc::new(self.build_index(&analysis));
                self.index = Some((self.revision, index.clone()));
                index
            }
        };
        World {
            state: self,
            analysis,
            index,
        }
    }

    fn build_index(&self, analysis: &Analysis) -> Index {
        let used = self.used_modules();
        let mut inputs: Vec<(FileId, Arc<Parsed>)> = Vec::new();
        for doc in self.files.iter().chain(self.stdlib.iter()) {
            if doc.module.as_ref().is_some_and(|m| !used.contains(m)) {
                continue;
            }
            inputs.push((doc.id, db::parse_file(&self.db, doc.source).clone()));
        }
        let trees: Vec<(FileId, &agentpolicy::syntax::ast::SourceFile)> =
            inputs.iter().map(|(id, p)| (*id, &p.tree)).collect();
        index::build(&trees, &analysis.model)
    }

    /// Standard-library modules reached from the user's files through `use`, transitively.
    pub fn used_modules(&self) -> Vec<String> {
        let mut used: Vec<String> = Vec::new();
        let mut queue: Vec<&Document> = self.files.iter().collect();
        while let Some(doc) = queue.pop() {
            let parsed = db::parse_file(&self.db, doc.source);
            for item in &parsed.tree.items {
                if let agentpolicy::syntax::ast::ItemKind::Use(u) = &item.kind {
                    let path = u
                        .path
                        .iter()
                        .map(|n| n.text.as_str())
                        .collect::<Vec<_>>()
                        .join(".");
                    if !used.contains(&path) {
                        if let Some(module) = self
                            .stdlib
                            .iter()
                            .find(|d| d.module.as_deref() == Some(&path))
                        {
                            queue.push(module);
                        }
                        used.push(path);
                    }
                }
            }
        }
        used
    }

    /// The user's files, in key order.
    pub fn files(&self) -> &[Document] {
        &self.files
    }

    pub fn stdlib_documents(&self) -> &[Document] {
        &self.stdlib
    }

    /// Any document, user or library, by file id.
    pub fn document(&self, id: FileId) -> Option<&Document> {
        self.files
            .iter()
            .chain(self.stdlib.iter())
            .find(|d| d.id == id)
    }

    /// A user or library document by URI.
    pub fn document_by_uri(&self, uri: &Uri) -> Option<&Document> {
        let key = DocKey::of(uri);
        self.files
            .iter()
            .chain(self.stdlib.iter())
            .find(|d| d.key == key)
    }

    pub fn text(&self, doc: &Document) -> &str {
        doc.source.text(&self.db)
    }

    pub fn view<'a>(&'a self, doc: &'a Document) -> TextView<'a> {
        TextView::new(self.text(doc), &doc.lines)
    }

    /// The parse of a document (cached by salsa).
    pub fn parsed(&self, doc: &Document) -> Arc<Parsed> {
        db::parse_file(&self.db, doc.source).clone()
    }

    /// A compiler location as a protocol location, if its file has a URI.
    pub fn location(&self, loc: Loc) -> Option<Location> {
        let doc = self.document(loc.file)?;
        let uri = doc.uri.clone()?;
        Some(Location::new(uri, self.view(doc).range(loc.range)))
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }
}

impl World<'_> {
    pub fn document(&self, uri: &Uri) -> Result<&Document, String> {
        self.state
            .document_by_uri(uri)
            .ok_or_else(|| format!("{} is not part of the policy: open it first", uri.as_str()))
    }
}

/// The path diagnostics show: relative to the root folder when inside it.
fn display_path(path: &Path, root: Option<&Path>) -> String {
    root.and_then(|r| path.strip_prefix(r).ok())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn collect_policy_files(dir: &Path, out: &mut Vec<PathBuf>, log: &mut Vec<String>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            log.push(format!("cannot list {}: {e}", dir.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !files::is_skipped_dir(&name) && out.len() <= MAX_ROOT_FILES {
                collect_policy_files(&path, out, log);
            }
        } else if files::is_policy_file(&path) {
            out.push(path);
        }
    }
}

/// Reads a policy file as `check` does (`agentpolicy::files::decode`): bytes that are
/// not UTF-8 end the text at the first bad one, with a warning to log, so the editor
/// analyses the same policy the CLI does.
fn read_text(path: &Path) -> Result<(String, Option<String>), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (text, diagnostic) = files::decode(bytes, FileId(0));
    Ok((
        text,
        diagnostic.map(|d| format!("{}: {}", path.display(), d.message)),
    ))
}

/// Writes a library module to `dir` unless an identical copy is already there. Writes go
/// through a temporary file and a rename, so two servers starting at once never see a
/// half-written module.
fn write_stdlib(dir: &Path, file_name: &str, text: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(file_name);
    if std::fs::read_to_string(&path).is_ok_and(|existing| existing == text) {
        return Ok(path);
    }
    let tmp = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

/// The default folder for the library's modules: versioned, so an upgrade never shows
/// stale text.
pub fn default_stdlib_dir() -> PathBuf {
    std::env::temp_dir()
        .join(format!("agentpolicy-lsp-{}", env!("CARGO_PKG_VERSION")))
        .join("stdlib")
}

/// Parses a URI string, for tests and benchmarks.
pub fn uri(text: &str) -> Result<Uri, String> {
    Uri::from_str(text).map_err(|e| format!("invalid URI `{text}`: {e}"))
}
