//! Guides: documentation pages that are not about one item.
//!
//! * [`fault_matrix`]: what each supported client, under its stack, does with every fault of
//!   the reset lab, for GET, PUT, POST and POST with an `Idempotency-Key`; generated and checked
//!   by the `clients` test target.

#[doc = include_str!("../docs/fault-matrix.md")]
pub mod fault_matrix {}
