//! Placeholder; the benchmarks follow.
#![allow(missing_docs)]
fn main() {}
