//! The Lambda flow on a developer's machine: the queues of a local stack and the event source
//! mappings that AWS runs between them and the functions (`backline dev pump`).

pub mod batch_response;
pub mod event_sources;
pub mod invoke;
pub mod pump;
pub mod queues;

pub use event_sources::{EventSources, Mapping};
pub use invoke::{Invocation, Invoker};
pub use pump::{Pump, PumpStats};
pub use queues::{EventQueue, ensure_queues};
