//! Helpers shared by the codec tests: building raw messages byte by byte.
#![allow(dead_code)]

use bgp::wire::{Context, DecodeError, Message, Update, MARKER};

/// Bytes from hex, ignoring white space and `#` comment lines.
pub fn hex(text: &str) -> Vec<u8> {
    let digits: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .flat_map(|l| l.chars())
        .filter(|c| !c.is_whitespace())
        .collect();
    hex::decode(digits).expect("test vector is valid hex")
}

/// A message of type `kind` with `body`, header included.
pub fn message(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = MARKER.to_vec();
    m.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// An UPDATE from its three raw fields.
pub fn update(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    body.extend_from_slice(withdrawn);
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(attrs);
    body.extend_from_slice(nlri);
    message(2, &body)
}

/// One attribute: flags, type, one-octet length, value.
pub fn attr(flags: u8, type_code: u8, value: &[u8]) -> Vec<u8> {
    let mut a = vec![flags, type_code, value.len() as u8];
    a.extend_from_slice(value);
    a
}

/// ORIGIN IGP, AS_PATH [65001] (4-octet), NEXT_HOP 192.0.2.1.
pub fn mandatory() -> Vec<u8> {
    mandatory_for(&Context::modern())
}

/// ORIGIN IGP, AS_PATH [65001] in the context's AS size, NEXT_HOP 192.0.2.1.
pub fn mandatory_for(ctx: &Context) -> Vec<u8> {
    let as_path: &[u8] = if ctx.four_octet_as {
        &[2, 1, 0, 0, 0xfd, 0xe9]
    } else {
        &[2, 1, 0xfd, 0xe9]
    };
    [
        attr(0x40, 1, &[0]),
        attr(0x40, 2, as_path),
        attr(0x40, 3, &[192, 0, 2, 1]),
    ]
    .concat()
}

/// 2001:db8::1
pub const V6_NEXT_HOP: [u8; 16] = [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];

/// NLRI 10.1.0.0/16.
pub const NLRI: &[u8] = &[16, 10, 1];

pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    Message::decode(bytes, &Context::modern())
}

pub fn decode_update(bytes: &[u8]) -> Update {
    decode_update_with(bytes, &Context::modern())
}

pub fn decode_update_with(bytes: &[u8], ctx: &Context) -> Update {
    match Message::decode(bytes, ctx) {
        Ok(Message::Update(u)) => u,
        other => panic!("expected an UPDATE, got {other:?}"),
    }
}

pub fn decode_err(bytes: &[u8]) -> DecodeError {
    match decode(bytes) {
        Err(e) => e,
        Ok(m) => panic!("expected an error, got {m:?}"),
    }
}
