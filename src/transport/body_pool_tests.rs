//! The pool lends a block again only once every buffer over it is gone.

use super::*;

/// A body of `len` bytes filled with `byte`, as a reader fills one.
fn body_of(len: usize, byte: u8) -> Buffer {
    let mut body = PooledBody::take(len);
    // SAFETY: the body's `len` bytes are its own to write.
    unsafe { std::ptr::write_bytes(body.as_mut_ptr(), byte, len) };
    body.into_buffer()
}

fn pooled_starts() -> Vec<usize> {
    POOL.lock().unwrap().iter().map(|b| b.start.as_ptr() as usize).collect()
}

#[test]
fn a_block_returns_to_the_pool_only_with_its_last_buffer_and_keeps_its_bytes_until_then() {
    // Other tests of this process may use the pool too: only this test's
    // sizes and addresses are asserted on.
    let len = POOLED_FROM + 12_345;
    let first = body_of(len, 7);
    let start = first.as_ptr() as usize;
    assert_eq!(start % BODY_ALIGNMENT, 0);
    let column = first.slice_with_length(100, 1000);
    drop(first);
    assert!(
        !pooled_starts().contains(&start),
        "lent again while a slice of it lives"
    );
    assert!(column.iter().all(|&b| b == 7));
    drop(column);
    assert!(
        pooled_starts().contains(&start),
        "the block went back with its last buffer"
    );
}

#[test]
fn only_bodies_in_the_pooled_range_suit_and_blocks_are_aligned() {
    assert!(!PooledBody::suits(POOLED_FROM - 1));
    assert!(PooledBody::suits(POOLED_FROM));
    assert!(PooledBody::suits(POOLED_UP_TO));
    assert!(!PooledBody::suits(POOLED_UP_TO + 1));
    let bodies: Vec<Buffer> = (0..3).map(|i| body_of(POOLED_FROM * (i + 1), i as u8)).collect();
    for (i, body) in bodies.iter().enumerate() {
        assert_eq!(body.len(), POOLED_FROM * (i + 1));
        assert_eq!(body.as_ptr() as usize % BODY_ALIGNMENT, 0);
        assert!(body.iter().all(|&b| b == i as u8));
    }
}
