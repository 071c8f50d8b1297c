//! `kind = "tableau-restore"`: workbooks from a `tableau` job's backup published back to a site
//! (the object version a chosen run stored), into their project path or another, as jobs the
//! queue checks on.

mod config;
mod kind;
mod plan;
mod publish;
mod task;

pub use config::{TableauRestoreJob, TableauRestoreOptions};
pub use kind::ENTRY;
pub use task::TableauRestoreTask;
