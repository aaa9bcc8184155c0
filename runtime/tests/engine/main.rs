//! Integration tests of the runtime: decide order, flows, encoding, allocation, and the
//! engine (sessions, limits, breakers, kill switch, shadow mode, escalations, audit).

// `cfg(test)` marks the helpers as test code, where unwrap is fine.
#[cfg(test)]
mod alloc;
#[cfg(test)]
mod audit_trail;
#[cfg(test)]
mod breakers;
#[cfg(test)]
mod clinic;
#[cfg(test)]
mod concurrency;
#[cfg(test)]
mod decide;
#[cfg(test)]
mod encoding;
#[cfg(test)]
mod escalations;
#[cfg(test)]
mod fixture;
#[cfg(test)]
mod flow;
#[cfg(test)]
mod kill;
#[cfg(test)]
mod lifecycle;
#[cfg(test)]
mod limits;
#[cfg(test)]
mod oversized;
#[cfg(test)]
mod restore;
#[cfg(test)]
mod sessions;
#[cfg(test)]
mod shadow;
#[cfg(test)]
mod shared_state;
#[cfg(test)]
mod swap;
#[cfg(test)]
mod tamper;
