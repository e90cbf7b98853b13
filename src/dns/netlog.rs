//! Log lines caused by network input, bounded: a packet from the network must not be able to
//! write the log full. Every such event (hickory-proto's warnings while parsing a message,
//! such as a malformed EDNS option, and the transports' own, such as a failed accept) is
//! counted in `zonegate_network_log_events_total`, and at most one line per
//! `INTERVAL` says how many there were, with the first one as an example.
//!
//! The events of the libraries that handle network input ([`NETWORK_LIBRARIES`]: hickory-proto
//! parsing messages, hickory-server and its transports, quinn, h2) are caught by `NetLogLayer`
//! (installed by the binary's logging set-up) before any other layer sees them; the logging
//! set-up lets their warnings and errors through to it and filters the rest (hickory-server
//! logs two info lines per response). The summary line is written by a background thread,
//! because an event cannot be logged from inside the subscriber that is handling another.

use prometheus_client::metrics::counter::Counter;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, Once};
use std::time::Duration;
use tracing::Subscriber;
use tracing_subscriber::layer::{Context, Layer};

/// At most one summary line per interval.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// How soon after a quiet period the first line comes.
const POLL: Duration = Duration::from_millis(500);

/// Events counted; registered in every `ServerMetrics` registry.
pub static EVENTS: LazyLock<Counter> = LazyLock::new(Counter::default);

/// The first event of the current interval, as text.
static SAMPLE: Mutex<Option<String>> = Mutex::new(None);
static HAVE_SAMPLE: AtomicBool = AtomicBool::new(false);
static LOGGED: AtomicU64 = AtomicU64::new(0);
static START: Once = Once::new();

/// Counts one event; `describe` is called only when an example is wanted.
pub fn note(describe: impl FnOnce() -> String) {
    EVENTS.inc();
    if !HAVE_SAMPLE.swap(true, Ordering::AcqRel)
        && let Ok(mut s) = SAMPLE.lock()
    {
        *s = Some(describe());
    }
    START.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("netlog".into())
            .spawn(summary_loop);
    });
}

/// A warning caused by network input, through the same bound.
pub fn warn_limited(args: std::fmt::Arguments<'_>) {
    note(|| args.to_string());
}

fn summary_loop() {
    let mut last_line: Option<std::time::Instant> = None;
    loop {
        std::thread::sleep(POLL);
        if last_line.is_some_and(|t| t.elapsed() < INTERVAL) {
            continue;
        }
        if let Some(()) = flush() {
            last_line = Some(std::time::Instant::now());
        }
    }
}

/// Writes the summary line if anything happened since the last one.
fn flush() -> Option<()> {
    let total = EVENTS.get();
    let since = total - LOGGED.swap(total, Ordering::AcqRel);
    if since == 0 {
        return None;
    }
    let sample = SAMPLE.lock().ok().and_then(|mut s| s.take());
    HAVE_SAMPLE.store(false, Ordering::Release);
    tracing::warn!(
        events = since,
        example = sample.as_deref().unwrap_or(""),
        "log events caused by network input (malformed packets and the like), at most one line per {}s; all counted in zonegate_network_log_events_total",
        INTERVAL.as_secs()
    );
    Some(())
}

/// Libraries (and our DoH listener) whose events are driven by network input (a malformed
/// message, a failed handshake or stream): their events are counted and summarised, never
/// written one by one.
pub const NETWORK_LIBRARIES: [&str; 7] = [
    "hickory_proto",
    "hickory_server",
    "hickory_net",
    "quinn",
    "h2",
    "zonegate::dns::doh",
    "zonegate::dns::dot",
];

/// Whether `target` (a tracing target such as `hickory_proto::rr::rdata::opt`) is one of
/// [`NETWORK_LIBRARIES`] or a module of one.
pub fn is_network_library(target: &str) -> bool {
    NETWORK_LIBRARIES.iter().any(|lib| {
        target
            .strip_prefix(lib)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Catches the events of [`NETWORK_LIBRARIES`] so that no other layer writes them; each is
/// counted and summarised by `note`.
pub struct NetLogLayer;

impl<S: Subscriber> Layer<S> for NetLogLayer {
    fn event_enabled(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) -> bool {
        if !is_network_library(event.metadata().target()) {
            return true;
        }
        note(|| {
            let mut v = MessageText(String::new());
            event.record(&mut v);
            format!("{}: {}", event.metadata().target(), v.0)
        });
        false
    }
}

struct MessageText(String);

impl tracing::field::Visit for MessageText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write;
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, "{}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_libraries_are_matched_by_crate_not_by_prefix() {
        assert!(is_network_library("hickory_proto"));
        assert!(is_network_library("hickory_proto::rr::rdata::opt"));
        assert!(is_network_library("hickory_server::server"));
        assert!(is_network_library("h2::proto::connection"));
        assert!(is_network_library("quinn"));
        assert!(!is_network_library("h2o"));
        assert!(!is_network_library("hickory_protocol::x"));
        assert!(!is_network_library("zonegate::dns::server"));
        assert!(!is_network_library("hyper::proto"));
    }
}
