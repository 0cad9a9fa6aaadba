//! The property the decoder fuzz target checks, shared with the regression
//! test that replays what the fuzzer found (`tests/fuzz_regressions.rs`).
//!
//! The first byte picks the negotiated context; the rest is one message.
//! Decoding must never panic, and whatever decodes cleanly must encode and
//! decode again to the same value.

use bgp::wire::{message_len, AddPathFamilies, Context, Message};

pub fn check(data: &[u8]) {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let ctx = Context {
        four_octet_as: flags & 1 != 0,
        extended_message: flags & 2 != 0,
        add_path: AddPathFamilies {
            ipv4_unicast: flags & 4 != 0,
            ipv6_unicast: flags & 8 != 0,
        },
    };
    let _ = message_len(bytes, &ctx);
    let Ok(message) = Message::decode(bytes, &ctx) else {
        return;
    };
    if let Message::Update(u) = &message {
        if !u.errors.is_empty() {
            // Discarded attributes are gone from the value: nothing to compare.
            return;
        }
    }
    let encoded = message.to_bytes(&ctx).expect("a decoded message encodes");
    let again = Message::decode(&encoded, &ctx).expect("an encoded message decodes");
    assert_eq!(again, message);
}
