//! Telling people and systems how a run went.

pub mod metrics;
