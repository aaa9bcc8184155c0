//! The protocol front: `tower_lsp_server::LanguageServer` over `PolicyState`.
//!
//! Handlers lock the state, do their (synchronous, bounded) work through the feature
//! modules and answer; none holds the lock across an `await`. Edits bump a generation
//! counter and schedule diagnostics after a short debounce: if another edit arrives
//! first, the older run is dropped, so typing never queues analyses. A request the
//! server cannot serve (unknown file, refused rename) gets an error response; a
//! notification it cannot apply (out-of-order change) gets a log line. Nothing panics.
//!
//! Proofs run on `didSave` and on the `agentpolicy.verify` command, in a blocking task
//! (see `proofs`). Their diagnostics are kept with the revision of the text they were
//! proved on and merged into each file's list while that revision holds: any edit clears
//! them until the next save, because a counterexample for text that has changed would
//! point at the wrong place. After each run the server sends `agentpolicy/proofsRun`
//! (which agents were proved, which came from the cache).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use crate::proofs::{self, ProofCache, ProofRun, ProofSummary};
use crate::state::{PolicyState, World, default_stdlib_dir};
use crate::{
    code_actions, completion, diagnostics, folding, formatting, hover, inlay_hints, navigation,
    semantic_tokens, symbols,
};

/// Options a client may pass as `initializationOptions`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
    /// Quiet time after an edit before diagnostics are recomputed.
    pub debounce_ms: u64,
    /// Base URL of the diagnostic docs pages (`{base}/AP0011.md`), for links in the
    /// editor. No links when absent.
    pub diagnostic_docs_url: Option<String>,
    /// Run the proofs when a file is saved (the `agentpolicy.verify` command runs them
    /// regardless).
    pub proofs_on_save: bool,
    /// Time limit per solver query, in milliseconds, as `check --timeout-ms`.
    pub proof_timeout_ms: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            debounce_ms: 20,
            diagnostic_docs_url: None,
            proofs_on_save: true,
            proof_timeout_ms: 10_000,
        }
    }
}

/// The `agentpolicy/proofsRun` notification.
#[derive(Debug)]
pub enum ProofsRun {}

impl notification::Notification for ProofsRun {
    type Params = ProofSummary;
    const METHOD: &'static str = proofs::PROOFS_RUN;
}

/// Proof diagnostics and the revision of the text they were proved on.
#[derive(Debug)]
struct Proven {
    revision: u64,
    files: HashMap<Uri, Vec<Diagnostic>>,
}

/// A document's last published diagnostics and the version they were for.
type Published = (Option<i32>, Vec<Diagnostic>);

#[derive(Debug)]
struct Shared {
    state: Mutex<PolicyState>,
    config: Mutex<Config>,
    generation: AtomicU64,
    /// What was last published for each URI (version, diagnostics).
    published: tokio::sync::Mutex<HashMap<Uri, Published>>,
    startup_log: Mutex<Vec<String>>,
    /// When diagnostics were last scheduled: an edit after a quiet spell is analysed at
    /// once, and only edits in quick succession wait for the debounce.
    last_scheduled: Mutex<Option<Instant>>,
    /// Verdicts of earlier proof runs; held for a whole run, so runs never overlap.
    proof_cache: Mutex<ProofCache>,
    /// The last proof run's diagnostics, shown while the text is unchanged.
    proven: Mutex<Option<Proven>>,
}

/// Why the input guard replaced a message.
#[derive(Debug, Clone, Deserialize)]
pub struct MalformedParams {
    pub error: String,
}

/// The language server.
#[derive(Debug)]
pub struct Backend {
    client: Client,
    shared: Arc<Shared>,
}

/// Where the standard library is written for go-to-definition:
/// `$AGENTPOLICY_LSP_STDLIB_DIR`, else a versioned folder in the temp directory.
fn stdlib_dir() -> PathBuf {
    std::env::var_os("AGENTPOLICY_LSP_STDLIB_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(default_stdlib_dir)
}

impl Backend {
    pub fn new(client: Client) -> Self {
        let (state, log) = PolicyState::new(Some(&stdlib_dir()));
        Backend {
            client,
            shared: Arc::new(Shared {
                state: Mutex::new(state),
                config: Mutex::new(Config::default()),
                generation: AtomicU64::new(0),
                published: tokio::sync::Mutex::new(HashMap::new()),
                startup_log: Mutex::new(log),
                last_scheduled: Mutex::new(None),
                proof_cache: Mutex::new(ProofCache::default()),
                proven: Mutex::new(None),
            }),
        }
    }

    async fn log(&self, level: MessageType, message: impl std::fmt::Display) {
        self.client.log_message(level, message).await;
    }

    /// Runs `f` on a consistent view of the policy.
    fn with_world<T>(
        &self,
        f: impl FnOnce(&World<'_>) -> std::result::Result<T, String>,
    ) -> Result<T> {
        let mut state = lock(&self.shared.state);
        let world = state.world();
        f(&world).map_err(Error::invalid_params)
    }

    fn schedule_diagnostics(&self, debounce: Duration) {
        schedule_diagnostics(&self.shared, &self.client, debounce);
    }

    /// Stand-in for a request the client sent malformed (see `framing`).
    pub async fn malformed_request(&self, params: MalformedParams) -> Result<()> {
        self.log(
            MessageType::WARNING,
            format!("malformed request: {}", params.error),
        )
        .await;
        Err(Error {
            code: ErrorCode::InvalidRequest,
            message: format!("malformed request: {}", params.error).into(),
            data: None,
        })
    }

    /// Stand-in for a malformed message without an id (see `framing`).
    pub async fn malformed_message(&self, params: MalformedParams) {
        self.log(
            MessageType::WARNING,
            format!("ignoring a malformed message: {}", params.error),
        )
        .await;
    }

    fn debounce(&self) -> Duration {
        Duration::from_millis(lock(&self.shared.config).debounce_ms)
    }
}

/// Recomputes and publishes diagnostics, unless a newer edit comes first. The first
/// edit after a quiet spell of `debounce` runs at once (leading edge); edits in quick
/// succession wait `debounce` and only the last one is analysed (trailing edge).
fn schedule_diagnostics(shared: &Arc<Shared>, client: &Client, debounce: Duration) {
    let delay = {
        let mut last = lock(&shared.last_scheduled);
        let now = Instant::now();
        let quiet = last.is_none_or(|t| now.duration_since(t) >= debounce);
        *last = Some(now);
        if quiet { Duration::ZERO } else { debounce }
    };
    let generation = shared.generation.fetch_add(1, Ordering::SeqCst) + 1;
    let shared = shared.clone();
    let client = client.clone();
    tokio::spawn(async move {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if shared.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        let computing = shared.clone();
        let batch = tokio::task::spawn_blocking(move || {
            let docs = lock(&computing.config).diagnostic_docs_url.clone();
            let state = lock(&computing.state);
            // A newer edit arrived while this run waited for the lock: let it publish.
            if computing.generation.load(Ordering::SeqCst) != generation {
                return None;
            }
            let analysis = state.analysis();
            let mut batch = diagnostics::collect(&state, &analysis, docs.as_deref());
            if let Some(proven) = lock(&computing.proven).as_ref()
                && proven.revision == state.revision()
            {
                diagnostics::merge(&state, &mut batch, &proven.files);
            }
            Some(batch)
        })
        .await;
        let batch = match batch {
            Ok(Some(batch)) => batch,
            Ok(None) => return,
            Err(e) => {
                client
                    .log_message(
                        MessageType::ERROR,
                        format!("computing diagnostics failed: {e}"),
                    )
                    .await;
                return;
            }
        };
        let mut published = shared.published.lock().await;
        if shared.generation.load(Ordering::SeqCst) != generation {
            return;
        }
        // Publish only what changed since the last run: in a policy of many files,
        // an edit to one must not resend every other file's list.
        let listed: HashSet<Uri> = batch.iter().map(|f| f.uri.clone()).collect();
        let stale: Vec<Uri> = published
            .keys()
            .filter(|u| !listed.contains(*u))
            .cloned()
            .collect();
        for uri in stale {
            published.remove(&uri);
            client.publish_diagnostics(uri, Vec::new(), None).await;
        }
        for file in batch {
            let last = (file.version, file.diagnostics);
            if published.get(&file.uri) == Some(&last) {
                continue;
            }
            client
                .publish_diagnostics(file.uri.clone(), last.1.clone(), last.0)
                .await;
            published.insert(file.uri, last);
        }
    });
}

/// Runs the proofs in a blocking task (a save spawns this, so the server keeps serving),
/// announces the run, then republishes every file's diagnostics with the proofs' merged in.
async fn run_proofs(shared: Arc<Shared>, client: Client) -> Option<ProofSummary> {
    let timeout_ms = lock(&shared.config).proof_timeout_ms;
    let computing = shared.clone();
    let outcome = tokio::task::spawn_blocking(move || prove_now(&computing, timeout_ms)).await;
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e) => {
            client
                .log_message(
                    MessageType::ERROR,
                    format!("running the proofs failed: {e}"),
                )
                .await;
            return None;
        }
    };
    let line = match &summary.skipped {
        Some(reason) => format!("proofs not run: {reason}"),
        None => format!(
            "proofs: {} agent(s) proved ({}), {} from the cache; asserts {}; {} diagnostic(s)",
            summary.proved_agents.len(),
            summary.proved_agents.join(", "),
            summary.cached_agents.len(),
            if summary.proved_asserts {
                "proved"
            } else {
                "from the cache"
            },
            summary.diagnostics
        ),
    };
    client.log_message(MessageType::INFO, line).await;
    client.send_notification::<ProofsRun>(summary.clone()).await;
    schedule_diagnostics(&shared, &client, Duration::ZERO);
    Some(summary)
}

/// One proof run (blocking): takes what it needs under the state's lock, proves without
/// it, and keeps the diagnostics if the text did not change meanwhile.
fn prove_now(shared: &Shared, timeout_ms: u32) -> ProofSummary {
    let mut cache = lock(&shared.proof_cache);
    let (revision, input) = {
        let state = lock(&shared.state);
        let analysis = state.analysis();
        (state.revision(), proofs::input(&state, &analysis))
    };
    let config = agentpolicy_verify::Config {
        budget: agentpolicy_verify::Budget {
            timeout_ms: Some(timeout_ms),
            rlimit: None,
        },
    };
    let run = match input {
        Ok(input) => proofs::prove(&input, &mut cache, &config),
        Err(reason) => ProofRun {
            summary: ProofSummary {
                skipped: Some(reason),
                ..ProofSummary::default()
            },
            diagnostics: Vec::new(),
        },
    };
    drop(cache);
    let docs = lock(&shared.config).diagnostic_docs_url.clone();
    let state = lock(&shared.state);
    // Edited while proving: the verdicts are cached by content and stay valid, but their
    // locations are for the old text, so they are not shown.
    if state.revision() == revision {
        let files = diagnostics::by_file(&state, &run.diagnostics, docs.as_deref());
        *lock(&shared.proven) = Some(Proven { revision, files });
    }
    run.summary
}

/// Locks a mutex, recovering the data if a panic elsewhere poisoned it: the state is
/// only ever replaced whole by salsa setters, so it stays consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn request_failed(message: String) -> Error {
    Error {
        code: ErrorCode::ServerError(-32803),
        message: message.into(),
        data: None,
    }
}

fn root_of(params: &InitializeParams) -> Option<PathBuf> {
    let from_folders = params
        .workspace_folders
        .as_ref()
        .and_then(|f| f.first())
        .map(|f| &f.uri);
    #[expect(deprecated, reason = "older clients send only `rootUri`")]
    let uri = from_folders.or(params.root_uri.as_ref())?;
    if !uri.scheme().as_str().eq_ignore_ascii_case("file") {
        return None;
    }
    uri.to_file_path().map(|p| p.into_owned())
}

/// What the server offers.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(PositionEncodingKind::UTF16),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                will_save: None,
                will_save_wait_until: None,
                save: Some(TextDocumentSyncSaveOptions::Supported(true)),
            },
        )),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![" ".to_string(), "(".to_string(), ".".to_string()]),
            ..Default::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        workspace_symbol_provider: Some(OneOf::Left(true)),
        semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
            SemanticTokensOptions {
                work_done_progress_options: Default::default(),
                legend: semantic_tokens::legend(),
                range: None,
                full: Some(SemanticTokensFullOptions::Bool(true)),
            },
        )),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![CodeActionKind::QUICKFIX]),
            work_done_progress_options: Default::default(),
            resolve_provider: None,
        })),
        folding_range_provider: Some(FoldingRangeProviderCapability::Simple(true)),
        document_formatting_provider: Some(OneOf::Left(true)),
        document_highlight_provider: Some(OneOf::Left(true)),
        inlay_hint_provider: Some(OneOf::Left(true)),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: vec![proofs::VERIFY_COMMAND.to_string()],
            work_done_progress_options: Default::default(),
        }),
        ..Default::default()
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        if let Some(options) = params.initialization_options.clone() {
            match serde_json::from_value::<Config>(options) {
                Ok(config) => *lock(&self.shared.config) = config,
                Err(e) => lock(&self.shared.startup_log)
                    .push(format!("ignoring invalid initializationOptions: {e}")),
            }
        }
        if let Some(root) = root_of(&params) {
            let log = lock(&self.shared.state).load_root(&root);
            lock(&self.shared.startup_log).extend(log);
        }
        Ok(InitializeResult {
            capabilities: capabilities(),
            server_info: Some(ServerInfo {
                name: "agentpolicy-lsp".to_string(),
                version: Some(env!("CARGO_PKG_VERSION").to_string()),
            }),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let log = std::mem::take(&mut *lock(&self.shared.startup_log));
        for line in log {
            self.log(MessageType::WARNING, line).await;
        }
        let root = lock(&self.shared.state)
            .root()
            .map(|r| r.display().to_string());
        let files = lock(&self.shared.state).files().len();
        match root {
            Some(root) => {
                self.log(
                    MessageType::INFO,
                    format!("agentpolicy-lsp: policy root {root}, {files} files"),
                )
                .await;
            }
            None => {
                self.log(
                    MessageType::INFO,
                    "agentpolicy-lsp: no root folder; the policy is the open files",
                )
                .await;
            }
        }
        // Watch the root's policy files when the client can; a client that never
        // answers must not hold up this handler.
        let client = self.client.clone();
        tokio::spawn(async move {
            let options = DidChangeWatchedFilesRegistrationOptions {
                watchers: vec![FileSystemWatcher {
                    glob_pattern: GlobPattern::String("**/*.agentpolicy".to_string()),
                    kind: None,
                }],
            };
            let registration = Registration {
                id: "agentpolicy-watch".to_string(),
                method: "workspace/didChangeWatchedFiles".to_string(),
                register_options: serde_json::to_value(options).ok(),
            };
            let _ = client.register_capability(vec![registration]).await;
        });
        self.schedule_diagnostics(Duration::ZERO);
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        let result = lock(&self.shared.state).open(doc.uri, doc.version, doc.text);
        if let Err(e) = result {
            self.log(MessageType::INFO, e).await;
        }
        self.schedule_diagnostics(self.debounce());
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let changes = params
            .content_changes
            .into_iter()
            .map(|c| (c.range, c.text))
            .collect();
        let result = lock(&self.shared.state).change(
            &params.text_document.uri,
            params.text_document.version,
            changes,
        );
        match result {
            Ok(()) => self.schedule_diagnostics(self.debounce()),
            Err(e) => self.log(MessageType::WARNING, e).await,
        }
    }

    async fn did_save(&self, _: DidSaveTextDocumentParams) {
        if lock(&self.shared.config).proofs_on_save {
            tokio::spawn(run_proofs(self.shared.clone(), self.client.clone()));
        }
    }

    async fn execute_command(
        &self,
        params: ExecuteCommandParams,
    ) -> Result<Option<serde_json::Value>> {
        if params.command != proofs::VERIFY_COMMAND {
            return Err(Error::invalid_params(format!(
                "unknown command `{}`; the server offers `{}`",
                params.command,
                proofs::VERIFY_COMMAND
            )));
        }
        let summary = run_proofs(self.shared.clone(), self.client.clone())
            .await
            .ok_or_else(|| request_failed("running the proofs failed".to_string()))?;
        serde_json::to_value(summary)
            .map(Some)
            .map_err(|e| request_failed(format!("cannot encode the proof summary: {e}")))
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let result = lock(&self.shared.state).close(&params.text_document.uri);
        match result {
            Ok(Some(removed)) => {
                self.shared.published.lock().await.remove(&removed);
                self.client
                    .publish_diagnostics(removed, Vec::new(), None)
                    .await;
            }
            Ok(None) => {}
            Err(e) => self.log(MessageType::WARNING, e).await,
        }
        self.schedule_diagnostics(self.debounce());
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        for event in params.changes {
            let result = {
                let mut state = lock(&self.shared.state);
                if event.typ == FileChangeType::DELETED {
                    Ok(state.disk_deleted(&event.uri))
                } else {
                    state.disk_changed(event.uri).map(|()| None)
                }
            };
            match result {
                Ok(Some(removed)) => {
                    self.shared.published.lock().await.remove(&removed);
                    self.client
                        .publish_diagnostics(removed, Vec::new(), None)
                        .await;
                }
                Ok(None) => {}
                Err(e) => self.log(MessageType::WARNING, e).await,
            }
        }
        self.schedule_diagnostics(self.debounce());
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let p = params.text_document_position_params;
        self.with_world(|w| hover::hover(w, &p.text_document.uri, p.position))
    }

    async fn goto_definition(
        &self,
        params: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let p = params.text_document_position_params;
        self.with_world(|w| {
            navigation::goto_definition(w, &p.text_document.uri, p.position)
                .map(|l| l.map(GotoDefinitionResponse::Scalar))
        })
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let p = params.text_document_position;
        self.with_world(|w| {
            navigation::references(
                w,
                &p.text_document.uri,
                p.position,
                params.context.include_declaration,
            )
        })
    }

    async fn prepare_rename(
        &self,
        params: TextDocumentPositionParams,
    ) -> Result<Option<PrepareRenameResponse>> {
        let mut state = lock(&self.shared.state);
        let world = state.world();
        world
            .document(&params.text_document.uri)
            .map_err(Error::invalid_params)?;
        navigation::prepare_rename(&world, &params.text_document.uri, params.position)
            .map(Some)
            .map_err(request_failed)
    }

    async fn rename(&self, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let p = params.text_document_position;
        let mut state = lock(&self.shared.state);
        let world = state.world();
        world
            .document(&p.text_document.uri)
            .map_err(Error::invalid_params)?;
        navigation::rename(&world, &p.text_document.uri, p.position, &params.new_name)
            .map(Some)
            .map_err(request_failed)
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        let p = params.text_document_position;
        let by_space = params
            .context
            .as_ref()
            .and_then(|c| c.trigger_character.as_deref())
            == Some(" ");
        self.with_world(|w| completion::completion(w, &p.text_document.uri, p.position, by_space))
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        self.with_world(|w| {
            symbols::document_symbols(w, &params.text_document.uri)
                .map(|s| Some(DocumentSymbolResponse::Nested(s)))
        })
    }

    async fn symbol(
        &self,
        params: WorkspaceSymbolParams,
    ) -> Result<Option<WorkspaceSymbolResponse>> {
        self.with_world(|w| {
            Ok(Some(WorkspaceSymbolResponse::Nested(
                symbols::workspace_symbols(w, &params.query),
            )))
        })
    }

    async fn semantic_tokens_full(
        &self,
        params: SemanticTokensParams,
    ) -> Result<Option<SemanticTokensResult>> {
        self.with_world(|w| {
            semantic_tokens::full(w, &params.text_document.uri)
                .map(|t| Some(SemanticTokensResult::Tokens(t)))
        })
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        self.with_world(|w| {
            code_actions::code_actions(w, &params.text_document.uri, params.range).map(Some)
        })
    }

    async fn folding_range(&self, params: FoldingRangeParams) -> Result<Option<Vec<FoldingRange>>> {
        self.with_world(|w| folding::folding_ranges(w, &params.text_document.uri).map(Some))
    }

    async fn formatting(&self, params: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        let outcome = self.with_world(|w| formatting::formatting(w, &params.text_document.uri))?;
        match outcome {
            Ok(edits) => Ok(Some(edits)),
            Err(reason) => {
                self.log(
                    MessageType::INFO,
                    format!("{}: {reason}", params.text_document.uri.as_str()),
                )
                .await;
                Ok(None)
            }
        }
    }

    async fn inlay_hint(&self, params: InlayHintParams) -> Result<Option<Vec<InlayHint>>> {
        self.with_world(|w| {
            inlay_hints::inlay_hints(w, &params.text_document.uri, params.range).map(Some)
        })
    }

    async fn document_highlight(
        &self,
        params: DocumentHighlightParams,
    ) -> Result<Option<Vec<DocumentHighlight>>> {
        let p = params.text_document_position_params;
        self.with_world(|w| inlay_hints::document_highlights(w, &p.text_document.uri, p.position))
    }
}
