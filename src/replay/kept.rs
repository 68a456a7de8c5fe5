//! [`Kept`]: the data a [`ReplayBody`](super::ReplayBody) keeps for its copies, in memory that
//! stays within the cap whatever the chunk sizes.
//!
//! A chunk is a [`Bytes`] that may be a window on a much larger buffer, and keeping the window
//! keeps the whole buffer. hyper's `Incoming` cuts each chunk out of its read buffer (8 KiB, and
//! up to about 400 KiB after large reads), so a client that sends one byte per TCP segment makes
//! 1-byte chunks that each hold a buffer of their own: kept as they came, a 64 KiB upload held
//! over 500 MB. A `Bytes` does not tell how large its buffer is, so the only bound that holds
//! whatever the chunks is to keep copies: chunks shorter than [`SHARE_FROM`] are copied, back to
//! back, into blocks that hold nothing else, and the buffers they came from are freed when the
//! reader is done with them. Chunks of [`SHARE_FROM`] or more are kept as they are (shared, not
//! copied): at the default cap only a single 64 KiB chunk can be, and with a larger cap they
//! come from reads at least that large, whose buffers are at most a few times larger (hyper's
//! stop at about 400 KiB). Empty chunks carry nothing and are not kept.

use bytes::{Bytes, BytesMut};

/// Chunks at least this long are kept as they are (shared, not copied); shorter ones are copied
/// into blocks.
///
/// Measured through the README's proxy pattern (hyper server, `Incoming` kept, see
/// `tests/replay/slow_client.rs`), a 64 KiB upload sent in one write reaches hyper as chunks of
/// 8, 16, 32 and 8 KiB cut from growing read buffers. Kept for it, beyond what the bare proxy
/// holds: 139 KB when chunks from 8 KiB on were shared, 74 KB from 16 KiB, 91 KB from 32 KiB,
/// and 66 KB (the 64 KiB and the list of blocks) when they are all copied; sent in 16 KiB
/// segments, 107, 98, 66 and 66 KB. So at the default cap nothing hyper hands out is shared
/// (a longer chunk would pass the cap). Copying costs at most the cap per body (each byte is
/// copied once, nothing past the cap): one `memcpy` of 64 KiB by default.
pub(super) const SHARE_FROM: usize = 64 * 1024;

/// The largest block short chunks are copied into. The first block is [`FIRST_BLOCK`] long
/// and each next one twice the one before, so that a short body does not hold a whole block;
/// once what is left under the cap (or under the body's announced length) fits in a block,
/// the block is that long, so that the blocks never hold more than the cap (a body that
/// outgrows its announced length gets doubling blocks, and at most one block more).
pub(super) const BLOCK: usize = 8 * 1024;

/// The first block short chunks are copied into.
const FIRST_BLOCK: usize = 512;

/// Where a copy is in the kept data: a segment, and how far into it (`segment ==
/// segments.len()` is the block being filled).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Cursor {
    segment: usize,
    offset: usize,
}

/// The kept data, in order: frozen segments (shared chunks and filled blocks), then the block
/// being filled.
#[derive(Debug, Default)]
pub(super) struct Kept {
    segments: Vec<Bytes>,
    /// Copied small chunks not yet frozen into a segment; its capacity is allocated for them.
    block: BytesMut,
    /// The size the last block was allocated with.
    block_size: usize,
    /// The most that will be kept: the cap, or the body's announced length when smaller.
    limit: usize,
    /// Data bytes kept.
    len: usize,
}

impl Kept {
    /// Nothing kept yet; at most `limit` bytes will be.
    pub(super) fn new(limit: usize) -> Self {
        Self {
            limit,
            ..Self::default()
        }
    }

    /// Data bytes kept.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Keeps `chunk` (the caller checked that it fits in the cap): shared if it is long, copied
    /// otherwise.
    pub(super) fn push(&mut self, chunk: &Bytes) {
        if chunk.is_empty() {
            return;
        }
        if chunk.len() >= SHARE_FROM {
            self.freeze_block();
            self.segments.push(chunk.clone());
            self.len += chunk.len();
            return;
        }
        let mut rest = &chunk[..];
        while !rest.is_empty() {
            let spare = self.block.capacity() - self.block.len();
            if spare == 0 {
                self.freeze_block();
                // Never more than the limit in blocks: once what is left under it fits in a
                // block, the block is that long (unless the body outgrew its announced
                // length: then blocks go on doubling, and the cap still bounds them).
                let left = self.limit.saturating_sub(self.len);
                self.block_size = if (rest.len()..=BLOCK).contains(&left) {
                    left
                } else {
                    (2 * self.block_size).clamp(FIRST_BLOCK, BLOCK)
                };
                self.block = BytesMut::with_capacity(self.block_size);
                continue;
            }
            let (now, later) = rest.split_at(spare.min(rest.len()));
            self.block.extend_from_slice(now);
            self.len += now.len();
            rest = later;
        }
    }

    /// Makes the block's bytes a segment of their own; later small chunks go to the rest of
    /// the block's capacity, if any.
    fn freeze_block(&mut self) {
        if self.block.is_empty() {
            return;
        }
        let filled = if self.block.len() == self.block.capacity() {
            std::mem::take(&mut self.block)
        } else {
            self.block.split()
        };
        self.segments.push(filled.freeze());
    }

    /// Frees everything kept.
    pub(super) fn clear(&mut self) {
        *self = Self::new(self.limit);
    }

    /// The cursor just past everything kept.
    pub(super) fn end(&self) -> Cursor {
        Cursor {
            segment: self.segments.len(),
            offset: self.block.len(),
        }
    }

    /// The kept bytes after `cursor`, up to the end of their segment, moving `cursor` past
    /// them; `None` when `cursor` is at the end.
    ///
    /// A segment is handed out shared; bytes of the block being filled are copied (it cannot be
    /// shared while it grows), which happens at most once per copy in a retry: when the retry
    /// replays what the failed attempt read last.
    pub(super) fn read(&self, cursor: &mut Cursor) -> Option<Bytes> {
        while let Some(segment) = self.segments.get(cursor.segment) {
            let offset = cursor.offset;
            *cursor = Cursor {
                segment: cursor.segment + 1,
                offset: 0,
            };
            if offset < segment.len() {
                return Some(segment.slice(offset..));
            }
        }
        if cursor.offset < self.block.len() {
            let chunk = Bytes::copy_from_slice(&self.block[cursor.offset..]);
            cursor.offset = self.block.len();
            return Some(chunk);
        }
        None
    }
}
