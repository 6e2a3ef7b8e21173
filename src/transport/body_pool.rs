//! Memory for large received bodies, used again once every array over it
//! is gone.
//!
//! A body of a megabyte or more got fresh memory from `malloc` for every
//! batch, and whether that memory was already mapped depended on glibc's
//! sliding mmap and trim thresholds: in some runs of the same stream a worker
//! took 90–140 page faults per 1.4 MB batch (the kernel zeroing each page
//! before the socket's copy overwrote it), in others none. A block here goes
//! back to a small process-wide pool when the last [`Buffer`] over it is
//! dropped (for a batch handed to Python, when pyarrow releases the arrays),
//! so a stream of large batches keeps reading into memory already mapped.

use std::alloc::{Layout, alloc, dealloc};
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

use arrow_buffer::Buffer;

use super::codec::BODY_ALIGNMENT;

/// Smaller bodies keep `malloc`'s memory: it reuses small blocks well, and
/// the pool would only hold memory for them.
pub const POOLED_FROM: usize = 256 << 10;
/// Larger bodies are rare enough that holding their memory is not worth it.
const POOLED_UP_TO: usize = 8 << 20;
/// What the pool may hold while no body uses it, in bytes: a few blocks of
/// the largest pooled size. Every process that receives batches keeps this
/// much at most until it exits (a Spark executor's JVM among them), so it is
/// kept to what a stream's window of batches in flight needs.
const POOL_BYTES: usize = 16 << 20;
/// New blocks are rounded up to this, so bodies of nearly one size share.
const BLOCK_GRANULE: usize = 64 << 10;

static POOL: Mutex<Vec<Block>> = Mutex::new(Vec::new());

/// Memory of `capacity` bytes, aligned for a frame's body, owned alone.
struct Block {
    start: NonNull<u8>,
    capacity: usize,
}

// SAFETY: a block is memory that nothing else points into while it is in
// the pool, and only its one owner writes into it while it is being filled.
unsafe impl Send for Block {}
// SAFETY: once it backs a `Buffer` it is only read.
unsafe impl Sync for Block {}

impl Block {
    fn layout(capacity: usize) -> Layout {
        Layout::from_size_align(capacity, BODY_ALIGNMENT).expect("a body's size, checked against the body limit")
    }

    fn allocate(len: usize) -> Self {
        let capacity = len.next_multiple_of(BLOCK_GRANULE);
        let layout = Self::layout(capacity);
        // SAFETY: `capacity` is at least `POOLED_FROM`, never zero.
        let start = unsafe { alloc(layout) };
        let start = NonNull::new(start).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Self { start, capacity }
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: allocated by `Block::allocate` with this layout, once.
        unsafe { dealloc(self.start.as_ptr(), Self::layout(self.capacity)) }
    }
}

/// The owner of a block while buffers point into it: dropped with the last
/// of them, it gives the block back to the pool, or frees it when the pool
/// is full.
struct Lent(Option<Block>);

impl Drop for Lent {
    fn drop(&mut self) {
        let Some(block) = self.0.take() else { return };
        let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let held: usize = pool.iter().map(|b| b.capacity).sum();
        if held + block.capacity <= POOL_BYTES {
            pool.push(block);
        }
    }
}

/// Memory for a body of `len` bytes, `POOLED_FROM..=POOLED_UP_TO` of them,
/// from the pool when it holds a block big enough and not more than twice
/// as big, else new.
pub struct PooledBody {
    block: Block,
    len: usize,
}

impl PooledBody {
    /// Whether bodies of `len` bytes come from the pool.
    pub fn suits(len: usize) -> bool {
        (POOLED_FROM..=POOLED_UP_TO).contains(&len)
    }

    pub fn take(len: usize) -> Self {
        debug_assert!(Self::suits(len));
        let reused = {
            let mut pool = POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let fits = pool
                .iter()
                .position(|b| b.capacity >= len && b.capacity <= len.saturating_mul(2));
            fits.map(|index| pool.swap_remove(index))
        };
        let block = reused.unwrap_or_else(|| Block::allocate(len));
        Self { block, len }
    }

    /// The body's `len` bytes, to be written before [`Self::into_buffer`];
    /// their contents are whatever the block last held.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.block.start.as_ptr()
    }

    /// The body as a buffer, once all of its `len` bytes were written.
    pub fn into_buffer(self) -> Buffer {
        let Self { block, len } = self;
        let start = block.start;
        // SAFETY: the block holds at least `len` bytes, all written by the
        // reader before this call, and the `Lent` owner keeps it alive and
        // unchanged until the last buffer over it is dropped.
        unsafe { Buffer::from_custom_allocation(start, len, Arc::new(Lent(Some(block)))) }
    }
}

#[cfg(test)]
#[path = "body_pool_tests.rs"]
mod tests;
