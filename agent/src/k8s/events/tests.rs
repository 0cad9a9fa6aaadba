//! The recorder's deduplication and rate limit, on a clock of our own.

use std::time::{Duration, Instant};

use super::*;
use crate::events::{NodeEvent, Reason};

fn ev(reason: Reason, note: &str) -> NodeEvent {
    NodeEvent {
        reason,
        note: note.into(),
    }
}

/// A correlator and a name maker counting up.
struct Clock {
    c: Correlator,
    start: Instant,
    names: u32,
}

impl Clock {
    fn new() -> Clock {
        let start = Instant::now();
        Clock {
            c: Correlator::new(start),
            start,
            names: 0,
        }
    }

    fn at(&mut self, seconds: u64, e: &NodeEvent) -> Verdict {
        let now = self.start + Duration::from_secs(seconds);
        let names = &mut self.names;
        self.c.observe(e, now, || {
            *names += 1;
            format!("e{names}")
        })
    }
}

fn create(name: &str, note: &str) -> Verdict {
    Verdict::Create {
        name: name.into(),
        note: note.into(),
    }
}

fn repeat(name: &str, count: u32, note: &str) -> Verdict {
    Verdict::Repeat {
        name: name.into(),
        count,
        note: note.into(),
    }
}

#[test]
fn reasons_read_as_kubernetes_writes_them() {
    let all = [
        (Reason::BgpSessionUp, "BGPSessionUp", false),
        (Reason::BgpSessionDown, "BGPSessionDown", true),
        (Reason::RouteRefused, "RouteRefused", true),
        (Reason::SnatFailed, "SNATFailed", true),
        (Reason::InvalidConfig, "InvalidConfig", true),
    ];
    for (reason, name, warning) in all {
        assert_eq!((reason.as_str(), reason.warning()), (name, warning));
        // The API server's limits on reason and action.
        assert!(reason.as_str().len() <= 128 && reason.action().len() <= 128);
        assert!(!reason.action().is_empty());
    }
}

#[test]
fn a_repeat_within_six_minutes_joins_the_series_and_a_later_one_starts_anew() {
    let mut k = Clock::new();
    let down = ev(
        Reason::BgpSessionDown,
        "BGP session with 10.0.0.2 is down: hold timer expired",
    );
    assert_eq!(k.at(0, &down), create("e1", &down.note));
    assert_eq!(k.at(60, &down), repeat("e1", 2, &down.note));
    assert_eq!(k.at(400, &down), repeat("e1", 3, &down.note));
    // Another note, another reason: events of their own.
    let other = ev(
        Reason::BgpSessionDown,
        "BGP session with 10.0.0.3 is down: hold timer expired",
    );
    assert_eq!(k.at(401, &other), create("e2", &other.note));
    let up = ev(Reason::BgpSessionUp, &down.note);
    assert_eq!(k.at(402, &up), create("e3", &up.note));
    // More than six minutes after the last of the series: a new Event.
    assert_eq!(k.at(400 + 361, &down), create("e4", &down.note));
}

#[test]
fn more_than_ten_different_notes_of_one_reason_are_combined() {
    let mut k = Clock::new();
    for i in 0..10 {
        let e = ev(
            Reason::RouteRefused,
            &format!("192.168.{i}.0/24 outside fib.accept"),
        );
        assert!(matches!(k.at(i, &e), Verdict::Create { .. }), "{i}");
    }
    let eleventh = ev(Reason::RouteRefused, "192.168.10.0/24 outside fib.accept");
    let combined = format!("{COMBINED}{}", eleventh.note);
    assert_eq!(k.at(10, &eleventh), create("e11", &combined));
    let twelfth = ev(Reason::RouteRefused, "192.168.11.0/24 outside fib.accept");
    let combined = format!("{COMBINED}{}", twelfth.note);
    assert_eq!(k.at(11, &twelfth), repeat("e11", 2, &combined));
    // A note seen before is not new: its own series goes on.
    let first = ev(Reason::RouteRefused, "192.168.0.0/24 outside fib.accept");
    assert_eq!(k.at(12, &first), repeat("e1", 2, &first.note));
    // Other reasons are not affected.
    let snat = ev(Reason::SnatFailed, "nft: no such table");
    assert_eq!(k.at(13, &snat), create("e12", &snat.note));
    // Ten quiet minutes, and notes stand alone again.
    let later = ev(Reason::RouteRefused, "192.168.99.0/24 outside fib.accept");
    assert_eq!(k.at(12 + 601, &later), create("e13", &later.note));
}

#[test]
fn twenty_five_at_once_then_one_every_five_minutes() {
    let mut k = Clock::new();
    let mut written = 0;
    for i in 0..40 {
        // Every one different, of different reasons: the bucket is the
        // Node's, whatever the reason.
        let reason = if i % 2 == 0 {
            Reason::BgpSessionDown
        } else {
            Reason::BgpSessionUp
        };
        if k.at(0, &ev(reason, &format!("peer {i}"))) != Verdict::Drop {
            written += 1;
        }
    }
    assert_eq!(written, BURST);
    // Repeats spend tokens too: nothing more until a token is back.
    assert_eq!(
        k.at(299, &ev(Reason::BgpSessionUp, "peer 1")),
        Verdict::Drop
    );
    assert_ne!(
        k.at(300, &ev(Reason::SnatFailed, "nft failed")),
        Verdict::Drop
    );
    assert_eq!(
        k.at(301, &ev(Reason::SnatFailed, "nft failed")),
        Verdict::Drop
    );
    // Two more periods, two more tokens.
    assert_ne!(k.at(900, &ev(Reason::InvalidConfig, "a")), Verdict::Drop);
    assert_ne!(k.at(900, &ev(Reason::InvalidConfig, "b")), Verdict::Drop);
    assert_eq!(k.at(900, &ev(Reason::InvalidConfig, "c")), Verdict::Drop);
    // A long quiet fills the bucket, never past its size.
    let mut later = 0;
    for i in 0..40 {
        if k.at(100_000, &ev(Reason::RouteRefused, &format!("x{i}"))) != Verdict::Drop {
            later += 1;
        }
    }
    assert_eq!(later, BURST);
}

#[test]
fn an_event_that_could_not_be_written_is_written_anew_next_time() {
    let mut k = Clock::new();
    let e = ev(Reason::SnatFailed, "nft: permission denied");
    assert_eq!(k.at(0, &e), create("e1", &e.note));
    k.c.forget("e1");
    assert_eq!(k.at(1, &e), create("e2", &e.note));
    assert_eq!(k.at(2, &e), repeat("e2", 2, &e.note));
}

#[test]
fn a_long_note_is_cut_to_what_the_api_server_takes() {
    let long = "é".repeat(1000);
    let cut = bounded(&long);
    assert!(cut.len() <= 1024 && cut.ends_with("..."), "{}", cut.len());
    assert_eq!(bounded("short"), "short");
}
