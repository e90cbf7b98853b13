//! The DNS engine: compiled zones, the responder (bytes in, bytes out) and the transports
//! (UDP, TCP and DoT in `server` and `dot`, DoH in `doh`, DoQ on hickory-server in `hickory`),
//! and zone transfers out (`xfr`, packed by `pack`).
pub mod acl;
pub mod compiled;
pub mod cookies;
pub mod doh;
pub mod dot;
pub mod hickory;
pub mod identity;
pub mod journal;
pub mod netlog;
pub mod pack;
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
