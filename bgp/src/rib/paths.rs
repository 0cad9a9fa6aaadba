//! A prefix's paths, and the store their arrays live in.
//!
//! Most prefixes of a table have one path, held inline. A prefix with more
//! keeps them in an array of exactly that many, so a table holds little
//! room it does not use; a prefix that gains a path moves to an array one
//! longer. One that loses a path keeps its array while at most a quarter
//! of it goes unused (a peer that goes and comes back costs no move), and
//! moves to one of its length beyond that. Made one by one by the
//! allocator, each move was a `malloc`, a copy and a `free`, and left the
//! heap with holes of every size. Here the arrays of each length sit
//! in chunks of about 128 KiB: a move takes a free array of the new length
//! (the last one given back, else the chunk's next unused one) and gives
//! the old one back to its chunk, and a chunk whose arrays are all free
//! goes, its memory kept for the next chunk of any length (a few such) or
//! given back to the allocator. A chunk's arrays carry no allocator header
//! and are never rounded up.
//!
//! A chunk's arrays not in use hold no paths: their memory is
//! uninitialised, and a move copies the paths' bytes to the new array and
//! forgets the old one's. The code that reads or drops paths in place
//! (marked `unsafe`) rests on one rule: an array holds initialised paths,
//! its first `count`, exactly while a `Paths::Many` names it with that
//! `count`, and no two name the same one. `take` hands out an array no one
//! names and `give_back` takes it back once no one does; the tests check
//! the books after every step. The store does not know the counts: the
//! prefix map that holds the handles drops the paths (`Dests`), and a store
//! dropped with arrays in use leaks their paths rather than guess.

use std::fmt;
use std::mem::MaybeUninit;
use std::ops::{Deref, DerefMut};
use std::ptr;

use super::Path;

/// Paths a chunk has room for, whatever the length of its arrays: about
/// 128 KiB, large enough for the daemon's allocator to map each on its own
/// (see `PrefixMap`). Its pages are only touched as its arrays are first
/// handed out.
const CHUNK_PATHS: usize = 128 * 1024 / std::mem::size_of::<Path>();
/// Emptied chunks' memory kept for the next chunk of any length: a table
/// loading from several peers moves its prefixes from chunks of one
/// length to the next, and without these each chunk's pages would be
/// mapped, faulted in and unmapped again for every length in turn.
const SPARE_CHUNKS: usize = 8;
/// The longest array kept in the store; a prefix with more paths (a route
/// server's) has a boxed slice of its own.
pub(crate) const MAX_POOLED: usize = 32;

/// A prefix's paths.
#[derive(Debug, Default)]
pub(crate) enum Paths {
    #[default]
    Empty,
    One(Path),
    /// 2 to [`MAX_POOLED`] paths, in the store.
    Many(Handle),
    /// More than [`MAX_POOLED`].
    Big(Box<[Path]>),
}

/// Where an array of the store is: its length (which names its kind of
/// chunk), its chunk and its place in the chunk; and how many paths it
/// holds, at its start (2 to `len`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Handle {
    chunk: u32,
    array: u16,
    len: u8,
    count: u8,
}

impl Handle {
    fn count(self) -> usize {
        usize::from(self.count)
    }
}

/// Whether an array of `len` keeps `count` paths rather than move to an
/// array of that length: while at most a quarter of it goes unused.
fn keeps(len: usize, count: usize) -> bool {
    count >= 2 && len - count <= len / 4
}

/// The arrays of every length from 2 to [`MAX_POOLED`].
#[derive(Default)]
pub(crate) struct Store {
    /// Arrays of `len` paths at `len - 2`, made as first needed.
    classes: Vec<Class>,
    /// Memory of chunks that went, for the next ones.
    spare: Vec<Box<[MaybeUninit<Path>]>>,
}

/// The chunks of arrays of one length.
#[derive(Default)]
struct Class {
    chunks: Vec<Option<Chunk>>,
    /// Places in `chunks` whose chunk went back to the allocator.
    vacant: Vec<u32>,
    /// Chunks with a free array; the last one is taken from first.
    open: Vec<u32>,
}

struct Chunk {
    /// Room for `arrays` arrays, one after the other; only those in use
    /// hold paths. Pages are touched as arrays are first handed out.
    paths: Box<[MaybeUninit<Path>]>,
    arrays: u16,
    /// Arrays handed out at least once: the first `handed`.
    handed: u16,
    /// Arrays handed out and given back, the last first to be taken again.
    free: Vec<u16>,
    used: u16,
    /// In its class's `open`.
    open: bool,
}

impl Chunk {
    fn full(&self) -> bool {
        self.free.is_empty() && self.handed == self.arrays
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("chunks", &self.chunks())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The paths held by `paths`.
    pub(crate) fn get<'a>(&'a self, paths: &'a Paths) -> &'a [Path] {
        match paths {
            Paths::Empty => &[],
            Paths::One(one) => std::slice::from_ref(one),
            Paths::Many(h) => {
                let held = &self.array(*h)[..h.count()];
                // SAFETY: the array `paths` names is in use: its first
                // `count` paths are initialised, and `&self` keeps them
                // from changing.
                unsafe { &*(ptr::from_ref(held) as *const [Path]) }
            }
            Paths::Big(big) => big,
        }
    }

    pub(crate) fn get_mut<'a>(&'a mut self, paths: &'a mut Paths) -> &'a mut [Path] {
        match paths {
            Paths::Empty => &mut [],
            Paths::One(one) => std::slice::from_mut(one),
            Paths::Many(h) => {
                let held = &mut self.array_mut(*h)[..h.count()];
                // SAFETY: as in `get`; `&mut self` makes the borrow unique.
                unsafe { &mut *(ptr::from_mut(held) as *mut [Path]) }
            }
            Paths::Big(big) => big,
        }
    }

    /// Add `path` at the end of `paths`.
    pub(crate) fn push(&mut self, paths: &mut Paths, path: Path) {
        *paths = match std::mem::take(paths) {
            Paths::Empty => Paths::One(path),
            Paths::One(one) => {
                let h = self.take(2, 2);
                let array = self.array_mut(h);
                array[0].write(one);
                array[1].write(path);
                Paths::Many(h)
            }
            Paths::Many(mut h) if h.count < h.len => {
                self.array_mut(h)[h.count()].write(path);
                h.count += 1;
                Paths::Many(h)
            }
            Paths::Many(old) if old.count() < MAX_POOLED => {
                let count = old.count();
                let new = self.take(count + 1, count + 1);
                let (from, to) = self.pair_mut(old, new);
                move_paths(&from[..count], &mut to[..count]);
                to[count].write(path);
                self.give_back(old);
                Paths::Many(new)
            }
            Paths::Many(old) => {
                let mut all = Vec::with_capacity(old.count() + 1);
                // SAFETY: `old` is in use; its paths are moved out, and
                // the array is given back at once, unread.
                all.extend(
                    self.array_mut(old)[..old.count()]
                        .iter()
                        .map(|p| unsafe { p.assume_init_read() }),
                );
                self.give_back(old);
                all.push(path);
                Paths::Big(all.into_boxed_slice())
            }
            Paths::Big(big) => {
                // Exactly one more: the boxed slice is made without the
                // reallocations `Vec::push` and shrinking back would cost.
                let mut all = Vec::with_capacity(big.len() + 1);
                all.extend(big.into_vec());
                all.push(path);
                Paths::Big(all.into_boxed_slice())
            }
        };
    }

    /// Remove the path at `at`, the last one taking its place.
    ///
    /// # Panics
    /// If `at` is out of bounds, as `Vec::swap_remove`.
    pub(crate) fn swap_remove(&mut self, paths: &mut Paths, at: usize) -> Path {
        let count = self.get(paths).len();
        assert!(
            at < count,
            "swap_remove index (is {at}) should be < len (is {count})"
        );
        let (rest, gone) = match std::mem::take(paths) {
            Paths::Empty => unreachable!("an empty prefix has no path at {at}"),
            Paths::One(one) => (Paths::Empty, one),
            Paths::Many(mut h) => {
                let len = usize::from(h.len);
                let array = self.array_mut(h);
                array.swap(at, count - 1);
                // SAFETY: `h` is in use and holds `count` paths; the last
                // is moved out, and `count` lowered to match, below.
                let gone = unsafe { array[count - 1].assume_init_read() };
                let left = count - 1;
                let rest = if left == 1 {
                    // SAFETY: as above; the array is given back at once.
                    let one = unsafe { array[0].assume_init_read() };
                    self.give_back(h);
                    Paths::One(one)
                } else if keeps(len, left) {
                    h.count -= 1;
                    Paths::Many(h)
                } else {
                    let new = self.take(left, left);
                    let (from, to) = self.pair_mut(h, new);
                    move_paths(&from[..left], to);
                    self.give_back(h);
                    Paths::Many(new)
                };
                (rest, gone)
            }
            Paths::Big(big) if big.len() - 1 <= MAX_POOLED => {
                let mut all = big.into_vec();
                let gone = all.swap_remove(at);
                let new = self.take(all.len(), all.len());
                for (to, p) in self.array_mut(new).iter_mut().zip(all) {
                    to.write(p);
                }
                (Paths::Many(new), gone)
            }
            Paths::Big(big) => {
                let mut all = big.into_vec();
                let gone = all.swap_remove(at);
                (Paths::Big(all.into_boxed_slice()), gone)
            }
        };
        *paths = rest;
        gone
    }

    /// Empty `paths`, giving its array back; what it held is dropped.
    pub(crate) fn clear(&mut self, paths: &mut Paths) {
        if let Paths::Many(h) = std::mem::take(paths) {
            // SAFETY: `h` is in use and holds `count` paths; no one names
            // it any more, and it is given back at once.
            unsafe { drop_paths(&mut self.array_mut(h)[..h.count()]) };
            self.give_back(h);
        }
    }

    /// Chunks held, of every length.
    pub(crate) fn chunks(&self) -> usize {
        self.classes
            .iter()
            .map(|c| c.chunks.iter().flatten().count())
            .sum()
    }

    /// An array of `len` paths no one names, uninitialised, to hold
    /// `count`.
    fn take(&mut self, len: usize, count: usize) -> Handle {
        debug_assert!((2..=MAX_POOLED).contains(&len));
        if self.classes.len() < len - 1 {
            self.classes.resize_with(len - 1, Class::default);
        }
        let class = &mut self.classes[len - 2];
        let chunk_at = match class.open.last() {
            Some(&c) => c,
            None => {
                let paths = self
                    .spare
                    .pop()
                    .unwrap_or_else(|| Box::new_uninit_slice(CHUNK_PATHS));
                class.add_chunk(len, paths)
            }
        };
        let chunk = class.chunks[chunk_at as usize]
            .as_mut()
            .expect("an open chunk is held");
        let array = chunk.free.pop().unwrap_or_else(|| {
            chunk.handed += 1;
            chunk.handed - 1
        });
        chunk.used += 1;
        if chunk.full() {
            chunk.open = false;
            class.open.pop();
        }
        Handle {
            chunk: chunk_at,
            array,
            len: len as u8,
            count: count as u8,
        }
    }

    /// Give back an array whose paths were moved out or dropped.
    fn give_back(&mut self, h: Handle) {
        let class = &mut self.classes[usize::from(h.len) - 2];
        let chunk = class.chunks[h.chunk as usize]
            .as_mut()
            .expect("a handle's chunk is held");
        chunk.free.push(h.array);
        chunk.used -= 1;
        if !chunk.open {
            chunk.open = true;
            class.open.push(h.chunk);
        }
        if chunk.used > 0 {
            return;
        }
        if let Some(gone) = class.chunks[h.chunk as usize].take() {
            class.vacant.push(h.chunk);
            class.open.retain(|&c| c != h.chunk);
            if self.spare.len() < SPARE_CHUNKS {
                self.spare.push(gone.paths);
            }
        }
    }

    fn array(&self, h: Handle) -> &[MaybeUninit<Path>] {
        let len = usize::from(h.len);
        let chunk = self.classes[len - 2].chunks[h.chunk as usize]
            .as_ref()
            .expect("a handle's chunk is held");
        let start = usize::from(h.array) * len;
        &chunk.paths[start..start + len]
    }

    fn array_mut(&mut self, h: Handle) -> &mut [MaybeUninit<Path>] {
        class_array_mut(&mut self.classes[usize::from(h.len) - 2], h)
    }

    /// Two arrays of different lengths, both writable.
    fn pair_mut(
        &mut self,
        a: Handle,
        b: Handle,
    ) -> (&mut [MaybeUninit<Path>], &mut [MaybeUninit<Path>]) {
        let (ia, ib) = (usize::from(a.len) - 2, usize::from(b.len) - 2);
        assert_ne!(ia, ib, "two arrays of one length");
        let (low, high) = self.classes.split_at_mut(ia.max(ib));
        let (first, second) = (&mut low[ia.min(ib)], &mut high[0]);
        let (class_a, class_b) = if ia < ib {
            (first, second)
        } else {
            (second, first)
        };
        (class_array_mut(class_a, a), class_array_mut(class_b, b))
    }
}

impl Class {
    /// A new chunk for arrays of `len` in `paths` (room for
    /// [`CHUNK_PATHS`]), open; its place.
    fn add_chunk(&mut self, len: usize, paths: Box<[MaybeUninit<Path>]>) -> u32 {
        let arrays = (CHUNK_PATHS / len).min(usize::from(u16::MAX));
        let chunk = Chunk {
            paths,
            arrays: arrays as u16,
            handed: 0,
            free: Vec::new(),
            used: 0,
            open: true,
        };
        let at = match self.vacant.pop() {
            Some(at) => {
                self.chunks[at as usize] = Some(chunk);
                at
            }
            None => {
                self.chunks.push(Some(chunk));
                u32::try_from(self.chunks.len() - 1).expect("fewer than 2^32 chunks")
            }
        };
        self.open.push(at);
        at
    }
}

fn class_array_mut(class: &mut Class, h: Handle) -> &mut [MaybeUninit<Path>] {
    let len = usize::from(h.len);
    let chunk = class.chunks[h.chunk as usize]
        .as_mut()
        .expect("a handle's chunk is held");
    let start = usize::from(h.array) * len;
    &mut chunk.paths[start..start + len]
}

/// Move the paths of `from` to `to`, of the same length: their bytes are
/// copied, and `from`'s are from now on taken as uninitialised (it is
/// given back, never read or dropped).
fn move_paths(from: &[MaybeUninit<Path>], to: &mut [MaybeUninit<Path>]) {
    assert_eq!(from.len(), to.len());
    // SAFETY: two slices of the same length, one borrowed mutably, so
    // they do not overlap; copying `MaybeUninit` bytes is always sound.
    unsafe { ptr::copy_nonoverlapping(from.as_ptr(), to.as_mut_ptr(), from.len()) };
}

/// Drop the paths of an array.
///
/// # Safety
/// Every element of `array` is initialised, and nothing reads or drops
/// them after.
unsafe fn drop_paths(array: &mut [MaybeUninit<Path>]) {
    // SAFETY: by the caller.
    unsafe { ptr::drop_in_place(ptr::from_mut(array) as *mut [Path]) };
}

/// A prefix's paths with the store they may live in: a slice of paths
/// that can also grow and shrink.
pub(crate) struct PathsMut<'a> {
    pub(super) paths: &'a mut Paths,
    pub(super) store: &'a mut Store,
}

impl PathsMut<'_> {
    pub(crate) fn push(&mut self, path: Path) {
        self.store.push(self.paths, path);
    }

    /// See [`Store::swap_remove`].
    pub(crate) fn swap_remove(&mut self, at: usize) -> Path {
        self.store.swap_remove(self.paths, at)
    }
}

impl Deref for PathsMut<'_> {
    type Target = [Path];

    fn deref(&self) -> &[Path] {
        self.store.get(self.paths)
    }
}

impl DerefMut for PathsMut<'_> {
    fn deref_mut(&mut self) -> &mut [Path] {
        self.store.get_mut(self.paths)
    }
}

#[cfg(test)]
mod tests;
