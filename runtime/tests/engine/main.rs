//! Integration tests of the runtime: decide order, flows, encoding, allocation.

// `cfg(test)` marks the helpers as test code, where unwrap is fine.
#[cfg(test)]
mod alloc;
#[cfg(test)]
mod decide;
#[cfg(test)]
mod encoding;
#[cfg(test)]
mod fixture;
#[cfg(test)]
mod flow;
