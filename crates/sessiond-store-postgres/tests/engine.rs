//! Behaviour specific to the engine: migrations, unreachable servers,
//! constraints the conformance suite cannot see.
