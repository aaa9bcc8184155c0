//! `agentpolicy-lsp`: the language server for `.agentpolicy` files.
//!
//! A thin layer over the compiler library: `state` holds the compiler's salsa database
//! and the documents; each feature module turns the compiler's data (diagnostics, syntax
//! tree, lossless tokens, resolved model, proofs) into protocol answers; `server` wires them to
//! tower-lsp-server. LSP types live only in this crate; the compiler knows nothing of the
//! protocol.

pub mod code_actions;
pub mod completion;
pub mod convert;
pub mod diagnostics;
pub mod folding;
pub mod formatting;
pub mod framing;
pub mod hover;
pub mod index;
pub mod inlay_hints;
pub mod lookup;
pub mod navigation;
pub mod proofs;
pub mod semantic_tokens;
pub mod server;
pub mod state;
pub mod symbols;
