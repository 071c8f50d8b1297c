//! `kind = "tableau"`: Tableau Server workbooks through its REST API into S3, incremental by
//! each site's `upload_state.json`, metadata as object tags, deletions tagged `Deleted=True`.

mod client;
mod config;
mod download;
pub mod import;
mod kind;
mod plan;
pub mod restore;
mod session;
mod state;
mod tags;
mod task;
pub mod xml;

pub use config::{ProjectTarget, ServerUrl, TableauJob, TableauSource, TableauTarget};
pub use kind::ENTRY;
pub use plan::SITE_VARIABLE;
pub use state::{Stored, UploadState, state_path};
pub use task::TableauTask;
