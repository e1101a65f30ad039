//! Opening the shared-engine stores (one file per backend, so each can
//! change without touching the others).

pub mod postgres;
pub mod redis;
