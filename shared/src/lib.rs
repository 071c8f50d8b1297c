//! Backline's engine: the job file, the plan -> chunk -> execute -> finalize pipeline, and the
//! sources it backs up. Lambda handlers and the CLI are thin shells around this crate.

pub mod aws;
pub mod config;
pub mod dev;
pub mod model;
pub mod notify;
pub mod pipeline;
pub mod secrets;
pub mod sources;
pub mod store;

pub use config::{Config, ConfigError, Job, JobSpec};
pub use pipeline::{Engine, EngineError};
