//! The DNS engine: compiled zones, the responder (bytes in, bytes out) and the transports.
pub mod compiled;
pub mod journal;
pub mod netlog;
pub mod responder;
pub mod server;
pub mod tsig;
pub mod xfr;
pub mod xfr_out;

pub use compiled::{CompiledZone, Lookup, Outcome, ZoneSet};
pub use responder::{Summary, Transport, respond};
