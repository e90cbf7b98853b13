//! The DNS engine: compiled zones, the responder (bytes in, bytes out) and the transports.
pub mod compiled;
pub mod responder;
pub mod server;

pub use compiled::{CompiledZone, Lookup, Outcome, ZoneSet};
pub use responder::{Summary, Transport, respond};
