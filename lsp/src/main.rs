//! The `agentpolicy-lsp` binary: the language server over stdin and stdout.

use agentpolicy_lsp::framing::{self, MALFORMED_MESSAGE, MALFORMED_REQUEST};
use agentpolicy_lsp::server::Backend;
use tower_lsp_server::{LspService, Server};

fn main() -> std::process::ExitCode {
    // Editors start the server with no arguments (some add `--stdio`, which is the only
    // transport there is); other arguments are left alone as before, so no client breaks.
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--version" | "-V" => {
                println!("agentpolicy-lsp {}", env!("CARGO_PKG_VERSION"));
                return std::process::ExitCode::SUCCESS;
            }
            "--help" | "-h" => {
                println!(
                    "agentpolicy-lsp {}: the agentpolicy language server, over standard input and output\n\n\
                     Usage: agentpolicy-lsp [--stdio]\n\n\
                     Options:\n  -V, --version  Print the version and exit\n  -h, --help     Print this help and exit\n\n\
                     Set-up for VS Code, Neovim and Helix: docs/editors.md",
                    env!("CARGO_PKG_VERSION")
                );
                return std::process::ExitCode::SUCCESS;
            }
            _ => {}
        }
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("agentpolicy-lsp: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    runtime.block_on(async {
        let (service, socket) = LspService::build(Backend::new)
            .custom_method(MALFORMED_REQUEST, Backend::malformed_request)
            .custom_method(MALFORMED_MESSAGE, Backend::malformed_message)
            .finish();
        let input = framing::guard(tokio::io::stdin());
        Server::new(input, tokio::io::stdout(), socket)
            .serve(service)
            .await;
    });
    // The stdin reader may still be blocked in a read on a thread of its own; the
    // protocol says to exit right after `exit`, so do not wait for it.
    runtime.shutdown_background();
    std::process::ExitCode::SUCCESS
}
