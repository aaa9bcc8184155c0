//! `--max-arg-bytes`, `--max-list-items` and `--max-request-bytes`: the runtime's
//! [`RequestLimits`] as options, shared by `decide`, `replay` and `serve` so they refuse
//! the same oversized input with the same reason; and reading a request no further than
//! its limit.

use std::io::Read;

use agentpolicy_runtime::{
    DEFAULT_ARG_BYTES, DEFAULT_LIST_ITEMS, DEFAULT_REQUEST_BYTES, RequestLimits,
};

/// The argument limits (`serve` bounds whole requests with `--body-limit` instead).
#[derive(Debug, Clone, clap::Args)]
pub struct ArgLimitArgs {
    /// The most bytes in one text argument (or in all elements of one list argument);
    /// a larger argument is refused, naming it, before any test reads it.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_ARG_BYTES)]
    pub max_arg_bytes: usize,
    /// The most elements in one list argument.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_LIST_ITEMS)]
    pub max_list_items: usize,
}

/// The argument limits and the request length limit.
#[derive(Debug, Clone, clap::Args)]
pub struct LimitArgs {
    #[command(flatten)]
    pub args: ArgLimitArgs,
    /// The most bytes in one request as JSON (the request file, or one trace line).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_REQUEST_BYTES)]
    pub max_request_bytes: usize,
}

impl ArgLimitArgs {
    pub fn limits(&self) -> RequestLimits {
        RequestLimits {
            arg_bytes: self.max_arg_bytes,
            list_items: self.max_list_items,
            ..RequestLimits::default()
        }
    }
}

impl LimitArgs {
    pub fn limits(&self) -> RequestLimits {
        RequestLimits {
            request_bytes: self.max_request_bytes,
            ..self.args.limits()
        }
    }
}

/// Reads at most `limit` bytes of UTF-8 text; more is an error naming `what` and the
/// limit (the rest is never read, so a huge input costs no more than the limit).
pub fn read_bounded(mut from: impl Read, limit: usize, what: &str) -> Result<String, String> {
    let mut bytes = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    from.by_ref()
        .take(cap)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if bytes.len() > limit {
        return Err(format!(
            "{what} is over the limit of {limit} bytes; it was not read \
             (raise it with `--max-request-bytes` if such requests are expected)"
        ));
    }
    String::from_utf8(bytes).map_err(|e| format!("{what} is not UTF-8 text: {e}"))
}
