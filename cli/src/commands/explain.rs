//! `agentpolicy explain CODE`: print a diagnostic code's documentation page.

use agentpolicy::diagnostics::Code;

use super::{EXIT_FAILURE, EXIT_USAGE};

#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// A diagnostic code such as AP0011 (case does not matter); `list` lists all codes.
    pub code: String,
}

pub fn run(args: ExplainArgs) -> u8 {
    if args.code.eq_ignore_ascii_case("list") {
        for code in Code::ALL {
            println!("{}  {}", code.as_str(), code.title());
        }
        return 0;
    }
    let Some(code) = Code::parse(&args.code) else {
        eprintln!(
            "error: `{}` is not a diagnostic code\nhelp: codes look like AP0011; `agentpolicy explain list` lists them",
            args.code
        );
        return EXIT_USAGE;
    };
    match agentpolicy::explain::page(code) {
        Some(page) => {
            print!("{page}");
            0
        }
        None => {
            eprintln!("error: {code} has no documentation page in this build");
            EXIT_FAILURE
        }
    }
}
