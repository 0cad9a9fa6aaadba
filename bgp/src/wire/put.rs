//! Big-endian writes into `BytesMut`, inlined. `BufMut::put_slice` for
//! `BytesMut` is not `#[inline]`, so each small `put_u8`/`put_u16` through
//! it costs a call and a `memcpy`; `extend_from_slice` is, and turns into a
//! plain store for fixed-size arrays.

use bytes::BytesMut;

pub(crate) trait Put {
    fn put_u8(&mut self, v: u8);
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_slice(&mut self, s: &[u8]);
}

impl Put for BytesMut {
    #[inline]
    fn put_u8(&mut self, v: u8) {
        self.extend_from_slice(&[v]);
    }
    #[inline]
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    #[inline]
    fn put_slice(&mut self, s: &[u8]) {
        self.extend_from_slice(s);
    }
}
