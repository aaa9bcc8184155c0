//! [`RequestLimits`]: how large a request and its arguments may be. Checked before
//! anything looks inside them (the request builder before any set search or glob, the
//! request JSON reader before parsing), so an oversized request is refused quickly with
//! a reason that names the argument and the limit, never decided slowly.

/// Size limits on requests; [`Default`] gives the defaults every front end uses unless
/// configured otherwise (`EngineConfig::limits`, `--max-arg-bytes`, ...).
///
/// ```
/// use agentpolicy_runtime::RequestLimits;
/// let l = RequestLimits::default();
/// assert_eq!((l.arg_bytes, l.list_items, l.request_bytes), (256 * 1024, 4096, 1024 * 1024));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// The most bytes (UTF-8) in one text argument, and in all elements of one list
    /// argument together.
    pub arg_bytes: usize,
    /// The most elements in one list argument.
    pub list_items: usize,
    /// The most bytes in one request as JSON text (a request file, a trace line).
    pub request_bytes: usize,
}

/// The default of [`RequestLimits::arg_bytes`]: 256 KiB.
pub const DEFAULT_ARG_BYTES: usize = 256 * 1024;
/// The default of [`RequestLimits::list_items`].
pub const DEFAULT_LIST_ITEMS: usize = 4096;
/// The default of [`RequestLimits::request_bytes`]: 1 MiB.
pub const DEFAULT_REQUEST_BYTES: usize = 1024 * 1024;

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            arg_bytes: DEFAULT_ARG_BYTES,
            list_items: DEFAULT_LIST_ITEMS,
            request_bytes: DEFAULT_REQUEST_BYTES,
        }
    }
}

/// What an oversized argument is measured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SizeUnit {
    Bytes,
    Elements,
}

impl SizeUnit {
    pub fn keyword(self) -> &'static str {
        match self {
            SizeUnit::Bytes => "bytes",
            SizeUnit::Elements => "elements",
        }
    }
}

impl RequestLimits {
    /// Checks a text argument (`items` of one) or a list argument against the limits:
    /// `Err((size, limit, unit))` for the first bound it exceeds. Reads only lengths.
    pub fn check_arg(&self, items: &[&str], list: bool) -> Result<(), (usize, usize, SizeUnit)> {
        if list && items.len() > self.list_items {
            return Err((items.len(), self.list_items, SizeUnit::Elements));
        }
        let bytes = items
            .iter()
            .fold(0usize, |sum, item| sum.saturating_add(item.len()));
        if bytes > self.arg_bytes {
            return Err((bytes, self.arg_bytes, SizeUnit::Bytes));
        }
        Ok(())
    }

    /// Checks a request's JSON text length.
    ///
    /// ```
    /// use agentpolicy_runtime::RequestLimits;
    /// let l = RequestLimits { request_bytes: 10, ..RequestLimits::default() };
    /// assert!(l.check_request("{}").is_ok());
    /// assert_eq!(
    ///     l.check_request(&"x".repeat(11)).unwrap_err(),
    ///     "the request is 11 bytes, over the limit of 10 bytes; it was not read \
    ///      (raise the request limit, `--max-request-bytes`, if such requests are expected)"
    /// );
    /// ```
    pub fn check_request(&self, text: &str) -> Result<(), String> {
        if text.len() > self.request_bytes {
            return Err(format!(
                "the request is {} bytes, over the limit of {} bytes; it was not read \
                 (raise the request limit, `--max-request-bytes`, if such requests are expected)",
                text.len(),
                self.request_bytes
            ));
        }
        Ok(())
    }
}
