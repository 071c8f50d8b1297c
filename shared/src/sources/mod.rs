//! One folder per job kind, and the one list of them.
//!
//! A kind is a folder here with its spec (config), its task type, its plan, its execution and
//! its `Kind` impl; it joins the registry with one line below. `CONTRIBUTING.md` walks through
//! adding one.

pub mod filesystem;
#[cfg(feature = "quicksight")]
pub mod quicksight;
pub mod s3;
pub mod tableau;

use crate::config::registry::KindEntry;

/// Every kind Backline knows, in the order `--help` lists them.
pub static REGISTRY: &[KindEntry] = &[
    s3::ENTRY,
    s3::restore::ENTRY,
    filesystem::ENTRY,
    filesystem::restore::ENTRY,
    tableau::ENTRY,
    tableau::restore::ENTRY,
    #[cfg(feature = "quicksight")]
    quicksight::ENTRY,
    #[cfg(feature = "quicksight")]
    quicksight::restore::ENTRY,
];
