//! AS_PATH and AS4_PATH (RFC 4271 §4.3, RFC 5065, RFC 6793).

use std::fmt;

use bytes::BytesMut;

use super::put::Put;
use smallvec::SmallVec;

use super::attr::collect;
use super::error::EncodeError;
use super::iana::AS_TRANS;

/// Path segment types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SegmentType {
    /// AS_SET (1): unordered, counts as one AS.
    Set,
    /// AS_SEQUENCE (2).
    Sequence,
    /// AS_CONFED_SEQUENCE (3, RFC 5065).
    ConfedSequence,
    /// AS_CONFED_SET (4, RFC 5065).
    ConfedSet,
}

impl SegmentType {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => SegmentType::Set,
            2 => SegmentType::Sequence,
            3 => SegmentType::ConfedSequence,
            4 => SegmentType::ConfedSet,
            _ => return None,
        })
    }

    fn code(self) -> u8 {
        match self {
            SegmentType::Set => 1,
            SegmentType::Sequence => 2,
            SegmentType::ConfedSequence => 3,
            SegmentType::ConfedSet => 4,
        }
    }

    fn is_confed(self) -> bool {
        matches!(self, SegmentType::ConfedSequence | SegmentType::ConfedSet)
    }

    fn is_ordered(self) -> bool {
        matches!(self, SegmentType::Sequence | SegmentType::ConfedSequence)
    }
}

/// The AS numbers of one segment; short ones are held inline.
pub type Asns = SmallVec<[u32; 4]>;

/// One path segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AsSegment {
    pub kind: SegmentType,
    pub asns: Asns,
}

impl AsSegment {
    pub fn new(kind: SegmentType, asns: impl IntoIterator<Item = u32>) -> Self {
        AsSegment {
            kind,
            asns: asns.into_iter().collect(),
        }
    }
}

/// An AS path: AS_PATH, or AS4_PATH, always held with 4-octet AS numbers.
/// Paths of one short segment, the usual kind, need no allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: SmallVec<[AsSegment; 1]>,
}

impl AsPath {
    /// A path of one AS_SEQUENCE (empty for no ASes).
    pub fn sequence(asns: impl IntoIterator<Item = u32>) -> Self {
        let seg = AsSegment::new(SegmentType::Sequence, asns);
        if seg.asns.is_empty() {
            return AsPath::default();
        }
        AsPath::from_segments([seg])
    }

    pub fn from_segments(segments: impl IntoIterator<Item = AsSegment>) -> Self {
        AsPath {
            segments: segments.into_iter().collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.segments.iter().all(|s| s.asns.is_empty())
    }

    /// The length used by the decision process: an AS_SET counts 1,
    /// confederation segments 0 (RFC 4271 §9.1.2.2, RFC 5065 §5.3).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                SegmentType::ConfedSequence | SegmentType::ConfedSet => 0,
            })
            .sum()
    }

    /// The neighbouring AS: the first AS of a leading AS_SEQUENCE.
    pub fn first_as(&self) -> Option<u32> {
        let first = self.segments.iter().find(|s| !s.kind.is_confed())?;
        match first.kind {
            SegmentType::Sequence => first.asns.first().copied(),
            _ => None,
        }
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// Put `asn` in front, as an eBGP speaker does (RFC 4271 §5.1.2).
    pub fn prepend(&mut self, asn: u32) {
        match self.segments.first_mut() {
            Some(s) if s.kind == SegmentType::Sequence && s.asns.len() < 255 => {
                s.asns.insert(0, asn)
            }
            _ => self
                .segments
                .insert(0, AsSegment::new(SegmentType::Sequence, [asn])),
        }
    }

    /// Whether a 2-octet speaker needs an AS4_PATH to carry this path.
    pub fn has_four_octet(&self) -> bool {
        self.segments
            .iter()
            .flat_map(|s| &s.asns)
            .any(|&a| a > 0xffff)
    }

    /// The AS4_PATH to send a 2-octet speaker along with this path, if one
    /// is needed (RFC 6793 §4.2.2: confederation segments stay out of it).
    pub fn as4_path(&self) -> Option<AsPath> {
        if !self.has_four_octet() {
            return None;
        }
        Some(AsPath {
            segments: self
                .segments
                .iter()
                .filter(|s| !s.kind.is_confed())
                .cloned()
                .collect(),
        })
    }

    /// Decode an AS_PATH (or AS4_PATH with `four_octet`); `None` when
    /// malformed as RFC 7606 §7.2 defines it.
    pub(crate) fn decode(mut value: &[u8], four_octet: bool) -> Option<AsPath> {
        let width = if four_octet { 4 } else { 2 };
        let mut segments = SmallVec::new();
        while !value.is_empty() {
            let [code, count, rest @ ..] = value else {
                return None;
            };
            let kind = SegmentType::from_code(*code)?;
            let n = usize::from(*count);
            if n == 0 || rest.len() < n * width {
                return None;
            }
            let (body, rest) = rest.split_at(n * width);
            let asns = if four_octet {
                collect(body.chunks_exact(4), |c| {
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]])
                })
            } else {
                collect(body.chunks_exact(2), |c| {
                    u32::from(u16::from_be_bytes([c[0], c[1]]))
                })
            };
            segments.push(AsSegment { kind, asns });
            value = rest;
        }
        Some(AsPath { segments })
    }

    /// Encode; with 2-octet numbers a larger AS becomes AS_TRANS. Sequences
    /// longer than 255 are split; a set that long cannot be carried.
    pub(crate) fn encode(&self, four_octet: bool, out: &mut BytesMut) -> Result<(), EncodeError> {
        for seg in &self.segments {
            if seg.asns.is_empty() {
                continue;
            }
            if !seg.kind.is_ordered() && seg.asns.len() > 255 {
                return Err(EncodeError::AsSetTooLong(seg.asns.len()));
            }
            for chunk in seg.asns.chunks(255) {
                out.put_u8(seg.kind.code());
                out.put_u8(chunk.len() as u8);
                for &asn in chunk {
                    if four_octet {
                        out.put_u32(asn);
                    } else {
                        out.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS));
                    }
                }
            }
        }
        Ok(())
    }

    /// Rebuild the true path from an AS_PATH and AS4_PATH received from a
    /// 2-octet speaker (RFC 6793 §4.2.3): the leading ASes of AS_PATH that
    /// AS4_PATH does not cover, then AS4_PATH. An AS4_PATH longer than the
    /// AS_PATH is ignored.
    pub(crate) fn merge_as4(&self, as4: &AsPath) -> AsPath {
        let (n, n4) = (self.path_len(), as4.path_len());
        if n < n4 {
            return self.clone();
        }
        let mut keep = n - n4;
        let mut segments: SmallVec<[AsSegment; 1]> = SmallVec::new();
        for seg in &self.segments {
            match seg.kind {
                SegmentType::ConfedSequence | SegmentType::ConfedSet => segments.push(seg.clone()),
                SegmentType::Set if keep >= 1 => {
                    segments.push(seg.clone());
                    keep -= 1;
                }
                SegmentType::Sequence if keep > 0 => {
                    let take = keep.min(seg.asns.len());
                    segments.push(AsSegment::new(seg.kind, seg.asns[..take].iter().copied()));
                    keep -= take;
                }
                _ => break,
            }
        }
        let mut tail = as4.segments.iter().cloned();
        // Rejoin a sequence that AS_TRANS entries had split across the two.
        if let (Some(last), Some(first)) = (segments.last_mut(), as4.segments.first()) {
            if last.kind == SegmentType::Sequence
                && first.kind == SegmentType::Sequence
                && last.asns.len() + first.asns.len() <= 255
            {
                last.asns.extend_from_slice(&first.asns);
                tail.next();
            }
        }
        segments.extend(tail);
        AsPath { segments }
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let (open, close) = match seg.kind {
                SegmentType::Sequence => ("", ""),
                SegmentType::Set => ("{", "}"),
                SegmentType::ConfedSequence => ("(", ")"),
                SegmentType::ConfedSet => ("[", "]"),
            };
            f.write_str(open)?;
            let sep = if seg.kind.is_ordered() { " " } else { "," };
            for (i, asn) in seg.asns.iter().enumerate() {
                if i > 0 {
                    f.write_str(sep)?;
                }
                write!(f, "{asn}")?;
            }
            f.write_str(close)?;
        }
        Ok(())
    }
}
