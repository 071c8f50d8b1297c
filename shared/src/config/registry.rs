//! `kind = "..."` -> the kind's spec. The list itself is `sources::REGISTRY`; this is the one
//! place that reads it.

use std::sync::Arc;

use serde_json::Value;

use crate::pipeline::kind::Kind;

/// Reads a kind's spec from the fields of its job entry; on error `(dotted field, what is wrong)`.
pub type ParseSpec = fn(Value) -> Result<Arc<dyn Kind>, (String, String)>;

/// One kind, as the registry knows it.
pub struct KindEntry {
    /// What `kind = "..."` says.
    pub name: &'static str,
    /// One line for `--help` and `config example`.
    pub about: &'static str,
    /// The spec from the entry's fields (`name`, `kind` and the shared fields taken out).
    pub parse: ParseSpec,
    /// A commented job file with one job of this kind (`backline config example KIND`).
    pub example: &'static str,
    /// Tasks in flight per chunk when the job does not say (`concurrency`).
    pub default_concurrency: usize,
    /// The config of another tool this kind replaces, read into a job file
    /// (`backline config import TOOL FILE`).
    pub import: Option<ConfigImport>,
}

/// Reads another tool's config file and writes the equivalent Backline job file.
pub struct ConfigImport {
    /// The tool's name, as `backline config import` takes it.
    pub tool: &'static str,
    pub convert: fn(&str) -> Result<String, String>,
}

/// The importer for `tool`, and the names of all of them.
pub fn importer(tool: &str) -> Result<&'static ConfigImport, Vec<&'static str>> {
    let imports = || kinds().iter().filter_map(|k| k.import.as_ref());
    imports().find(|i| i.tool == tool).ok_or_else(|| imports().map(|i| i.tool).collect())
}

pub fn kinds() -> &'static [KindEntry] {
    crate::sources::REGISTRY
}

pub fn names() -> Vec<&'static str> {
    kinds().iter().map(|k| k.name).collect()
}

pub fn lookup(name: &str) -> Option<&'static KindEntry> {
    kinds().iter().find(|k| k.name == name)
}
