//! DNSSEC key rollover on request (pure): the annotation `zonegate.dev/dnssec-rollover` on a
//! signed DNSZone asks for a CSK double-signature rollover (RFC 6781 §4.1.2, RFC 7583 §3.3.2),
//! and this module decides each step from the key Secret and the `Delegated` check; the
//! reconciler writes the Secret.
//!
//! - `start`: a new key of the zone's algorithm is added to the Secret as `next.pem`. Both keys
//!   are published (DNSKEY, CDS, CDNSKEY) and both sign, so resolvers that know either key
//!   validate; `status.dnssec.ds` lists both DS records, and the new one goes to the registrar.
//! - `finish`: `next.pem` becomes `key.pem` and the old key goes, but only once that cannot
//!   break validation: the parent must have the new key's DS and no longer the old one's (or
//!   have no DS for the zone at all), seen by the `Delegated` check continuously for the hold
//!   (`--dnssec-rollover-hold`, a day by default: resolvers may still hold the old DS that long).
//!
//! The annotation is a desired state, so repeating a reconcile does nothing new: `start` with a
//! `next.pem` present and `finish` without one are done.

use super::status::DelegationCheck;
use crate::api::DNSZone;
use std::collections::BTreeSet;
use std::time::Duration;

/// The annotation that asks for a rollover step.
pub const ANNOTATION: &str = "zonegate.dev/dnssec-rollover";

/// What the annotation asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    None,
    Start,
    Finish,
    Unknown(String),
}

/// The zone's rollover request.
pub fn request(zone: &DNSZone) -> Request {
    match zone
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ANNOTATION))
        .map(|v| v.trim())
    {
        None => Request::None,
        Some("start") => Request::Start,
        Some("finish") => Request::Finish,
        Some(other) => Request::Unknown(other.to_string()),
    }
}

/// The keys in the Secret, as DS records in `dnssec::ds::text` form, with their key tags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keys {
    pub active: (u16, String),
    pub next: Option<(u16, String)>,
}

/// What the reconciler does for the rollover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing (no request, or the step is done); the message for `status.dnssec.rollover`.
    Idle(Option<String>),
    /// Generate a new key into `next.pem`.
    AddNext,
    /// The parent is ready: remember since when (the hold starts), and wait for the rest.
    Hold(String),
    /// Make `next.pem` the active key and remove `next.pem`.
    Promote,
    /// `finish` cannot proceed yet; why.
    Wait(String),
}

/// Whether the parent, as `check` saw it, lets the old key go: `Ok` when it has the next key's
/// DS and not the active key's, or no DS for the zone at all (DSMissing, NotDelegated); else
/// why not.
pub fn parent_ready(keys: &Keys, check: &DelegationCheck) -> Result<(), String> {
    let Some((next_tag, next_ds)) = &keys.next else {
        return Err("there is no next key".into());
    };
    let (active_tag, active_ds) = &keys.active;
    match check {
        DelegationCheck::Delegated { parent_ds, .. } => {
            ds_ready(parent_ds, *active_tag, active_ds, *next_tag, next_ds)
        }
        DelegationCheck::DsMissing { .. } | DelegationCheck::NotDelegated { .. } => Ok(()),
        DelegationCheck::DsMismatch { .. } => Err(
            "the parent's DS matches none of this zone's keys; put the next key's DS there".into(),
        ),
        DelegationCheck::Mismatch { .. } => {
            Err("the parent delegates to other nameservers (NSMismatch)".into())
        }
        DelegationCheck::Disabled => Err(
            "delegation checks are off (--delegation-check-interval 0), so the parent's DS cannot be confirmed"
                .into(),
        ),
        DelegationCheck::Pending | DelegationCheck::Unreachable { .. } => {
            Err("the parent's DS is not known yet (the delegation check has no answer)".into())
        }
    }
}

fn ds_ready(
    parent: &BTreeSet<String>,
    active_tag: u16,
    active: &str,
    next_tag: u16,
    next: &str,
) -> Result<(), String> {
    match (parent.contains(next), parent.contains(active)) {
        (true, false) => Ok(()),
        (true, true) => Err(format!(
            "the parent still has the DS of the old key (tag {active_tag}) besides the new one (tag {next_tag}); remove the old DS at the registrar"
        )),
        (false, _) => Err(format!(
            "the parent has no DS of the new key (tag {next_tag}) yet; give the registrar its DS from status.dnssec.ds"
        )),
    }
}

/// The step to take for `req` with `keys`, the parent as `check` saw it, and `ready_for`: how
/// long the parent has been seen ready (`None`: not ready at the last check).
pub fn decide(
    req: &Request,
    keys: &Keys,
    check: &DelegationCheck,
    ready_for: Option<Duration>,
    hold: Duration,
) -> Action {
    match req {
        Request::None => Action::Idle(None),
        Request::Unknown(v) => Action::Idle(Some(format!(
            "annotation {ANNOTATION}: {v:?} is neither start nor finish; nothing done"
        ))),
        Request::Start => match &keys.next {
            None => Action::AddNext,
            Some((tag, _)) => Action::Idle(Some(format!(
                "rollover started: key {tag} is published and signs besides key {}; give the registrar its DS from status.dnssec.ds and remove the old one, then annotate {ANNOTATION}=finish",
                keys.active.0
            ))),
        },
        Request::Finish => match &keys.next {
            None => Action::Idle(Some(format!(
                "rollover finished: key {} is the only key",
                keys.active.0
            ))),
            Some((tag, _)) => match parent_ready(keys, check) {
                Err(why) => Action::Wait(format!("rollover to key {tag} waits: {why}")),
                Ok(()) => match ready_for {
                    Some(t) if t >= hold => Action::Promote,
                    _ => Action::Hold(format!(
                        "rollover to key {tag} waits: the parent is ready; the old key goes once it has stayed so for {}s (cached DS records expire)",
                        hold.as_secs()
                    )),
                },
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(next: bool) -> Keys {
        Keys {
            active: (1, "1 13 2 AA".into()),
            next: next.then(|| (2, "2 13 2 BB".into())),
        }
    }

    fn delegated(ds: &[&str]) -> DelegationCheck {
        DelegationCheck::Delegated {
            parent: "example.com".into(),
            servers: vec!["127.0.0.1:53".into()],
            secure: true,
            parent_ds: ds.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn the_annotation_names_the_step() {
        let z = |a: Option<&str>| -> DNSZone {
            let mut v = json!({"apiVersion": "zonegate.dev/v1alpha1", "kind": "DNSZone",
                "metadata": {"name": "z", "namespace": "n"}, "spec": {"domain": "acme.example.com"}});
            if let Some(a) = a {
                v["metadata"]["annotations"] = json!({ANNOTATION: a});
            }
            serde_json::from_value(v).unwrap()
        };
        assert_eq!(request(&z(None)), Request::None);
        assert_eq!(request(&z(Some("start"))), Request::Start);
        assert_eq!(request(&z(Some(" finish "))), Request::Finish);
        assert_eq!(request(&z(Some("now"))), Request::Unknown("now".into()));
    }

    #[test]
    fn start_adds_a_next_key_once() {
        let d = delegated(&["1 13 2 AA"]);
        let h = Duration::from_secs(60);
        assert_eq!(
            decide(&Request::Start, &keys(false), &d, None, h),
            Action::AddNext
        );
        match decide(&Request::Start, &keys(true), &d, None, h) {
            Action::Idle(Some(m)) => assert!(m.starts_with("rollover started: key 2"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            decide(&Request::None, &keys(true), &d, None, h),
            Action::Idle(None)
        );
        assert!(matches!(
            decide(&Request::Unknown("x".into()), &keys(false), &d, None, h),
            Action::Idle(Some(_))
        ));
    }

    #[test]
    fn finish_waits_for_the_parent_and_the_hold() {
        let h = Duration::from_secs(60);
        let fin = |check: &DelegationCheck, ready_for| {
            decide(&Request::Finish, &keys(true), check, ready_for, h)
        };
        // the parent has only the old DS, or both: wait, saying what to do
        for (ds, says) in [
            (&["1 13 2 AA"][..], "no DS of the new key (tag 2)"),
            (
                &["1 13 2 AA", "2 13 2 BB"][..],
                "still has the DS of the old key (tag 1)",
            ),
        ] {
            match fin(&delegated(ds), None) {
                Action::Wait(m) => assert!(m.contains(says), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        // only the new DS: held, then promoted after the hold
        let ready = delegated(&["2 13 2 BB", "9 8 2 CC"]);
        assert!(matches!(fin(&ready, None), Action::Hold(_)));
        assert!(matches!(
            fin(&ready, Some(Duration::from_secs(59))),
            Action::Hold(_)
        ));
        assert_eq!(fin(&ready, Some(h)), Action::Promote);
        // no DS at the parent at all: nothing validates through the old key
        let missing = DelegationCheck::DsMissing {
            parent: "example.com".into(),
            detail: String::new(),
        };
        assert_eq!(fin(&missing, Some(h)), Action::Promote);
        // unknown or wrong parents: wait
        for c in [
            DelegationCheck::Pending,
            DelegationCheck::Disabled,
            DelegationCheck::Unreachable { detail: "x".into() },
            DelegationCheck::DsMismatch {
                parent: "p".into(),
                detail: "x".into(),
            },
            DelegationCheck::Mismatch {
                parent: "p".into(),
                detail: "x".into(),
            },
        ] {
            assert!(matches!(fin(&c, Some(h)), Action::Wait(_)), "{c:?}");
        }
        // done: no next key
        match decide(&Request::Finish, &keys(false), &ready, Some(h), h) {
            Action::Idle(Some(m)) => assert_eq!(m, "rollover finished: key 1 is the only key"),
            other => panic!("{other:?}"),
        }
    }
}
