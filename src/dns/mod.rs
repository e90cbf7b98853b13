//! The DNS engine: compiled zones, the responder (bytes in, bytes out) and the transports
//! (UDP and TCP in `server`, DoT, DoH and DoQ on hickory-server in `hickory`).
pub mod acl;
pub mod compiled;
pub mod cookies;
pub mod doh;
pub mod dot;
pub mod hickory;
pub mod identity;
pub mod journal;
pub mod netlog;
pub mod policy;
pub mod responder;
pub mod rrl;
pub mod server;
pub mod tls;
pub mod tsig;
pub mod xfr;
pub mod xfr_out;

pub use compiled::{CompiledZone, Lookup, Outcome, ZoneSet};
pub use responder::{Summary, Transport, respond};
