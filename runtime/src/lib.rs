//! The embedded decision engine: the decision-table format and `decide`.
//!
//! This crate must never link a parser, a solver or salsa: agent platforms embed it.
