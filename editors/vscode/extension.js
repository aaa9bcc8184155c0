// Starts agentpolicy-lsp over stdio for .agentpolicy files. The source of the bundle
// `npm run bundle` writes to dist/extension.js with esbuild (vscode-languageclient
// inlined; see docs/editors.md); the .vsix ships only the bundle.
"use strict";

const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("agentpolicy");
  const command = config.get("server.path") || "agentpolicy-lsp";
  const serverOptions = {
    run: { command, transport: TransportKind.stdio },
    debug: { command, transport: TransportKind.stdio },
  };
  const clientOptions = {
    documentSelector: [{ scheme: "file", language: "agentpolicy" }],
    initializationOptions: {
      debounceMs: config.get("server.debounceMs"),
      diagnosticDocsUrl: config.get("diagnosticDocsUrl"),
      proofsOnSave: config.get("proofsOnSave"),
    },
    synchronize: {
      fileEvents: vscode.workspace.createFileSystemWatcher("**/*.agentpolicy"),
    },
  };
  client = new LanguageClient("agentpolicy", "agentpolicy", serverOptions, clientOptions);
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
