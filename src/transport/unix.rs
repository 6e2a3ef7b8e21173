//! The local transport: frames over a Unix domain socket.
//!
//! Blocking sockets on plain threads rather than tokio: every executor
//! process serves one stream at a time with one interpreter lock, so there is
//! nothing to multiplex; a blocking read with a timeout is the whole event
//! loop, costs no runtime, and lets the Python side drop its lock around it.

use std::io::{self, BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use arrow_buffer::{Buffer, MutableBuffer};

use super::body_pool::PooledBody;
use super::codec::FrameKind;
use super::wire::{Frame, FrameSource, OutgoingFrame, WireError, read_frame, write_frame, write_frames};

/// How often a waiting `accept` looks again; the listener is non-blocking so
/// that several processes can share it and each can stop when asked.
const ACCEPT_POLL: Duration = Duration::from_millis(5);
/// Large enough that a frame's header and metadata arrive in one read.
const READ_BUFFER: usize = 64 * 1024;
/// Bytes a connection asks to have in flight towards its peer (`SO_SNDBUF`;
/// the kernel caps it at `net.core.wmem_max`). At the default of about
/// 200 KB a batch of a megabyte or more crosses in many slices, and the two
/// sides take turns waking each other for every one; with room for a whole
/// batch or more, a sender writes it while the peer is still busy with the
/// previous one, and the peer reads it in one go.
pub const SEND_BUFFER: usize = 4 << 20;

/// A listening socket, possibly shared by several processes.
pub struct Listener {
    inner: UnixListener,
}

impl Listener {
    pub fn bind(path: &Path) -> io::Result<Self> {
        let inner = UnixListener::bind(path)?;
        inner.set_nonblocking(true)?;
        Ok(Self { inner })
    }

    /// Adopts a listening socket inherited from a parent process.
    ///
    /// # Safety
    /// `fd` must be an open listening Unix socket that nothing else in this
    /// process owns.
    pub unsafe fn from_raw_fd(fd: RawFd) -> io::Result<Self> {
        // SAFETY: the caller guarantees that `fd` is an open socket owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let inner = UnixListener::from(owned);
        inner.local_addr()?;
        inner.set_nonblocking(true)?;
        Ok(Self { inner })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }

    /// The next connection, or `None` when none arrived within `timeout`.
    pub fn accept(&self, timeout: Duration) -> io::Result<Option<UnixStream>> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.inner.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false)?;
                    return Ok(Some(stream));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            thread::sleep(ACCEPT_POLL.min(deadline - now));
        }
    }
}

/// Connects to a listening socket, giving up after `timeout`.
pub fn connect(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let deadline = Instant::now() + timeout;
    loop {
        match UnixStream::connect(path) {
            Ok(stream) => return Ok(stream),
            // A full backlog refuses for a moment; anything else is final.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                thread::sleep(ACCEPT_POLL);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The receiving half of a connection.
pub struct FrameReader {
    stream: BufReader<UnixStream>,
    body_limit: u64,
    /// The socket's read timeout as last set, so that the usual case (the
    /// same timeout on every call) costs no `setsockopt` per frame.
    timeout: Option<Duration>,
}

/// The sending half of a connection.
pub struct FrameWriter {
    stream: UnixStream,
    /// The socket's write timeout as last set (see `FrameReader::timeout`).
    timeout: Option<Duration>,
}

/// Splits a connection so that one thread can send while another receives.
pub fn split(stream: UnixStream, body_limit: u64) -> io::Result<(FrameReader, FrameWriter)> {
    widen_send_buffer(stream.as_raw_fd(), SEND_BUFFER)?;
    let writer = FrameWriter {
        stream: stream.try_clone()?,
        timeout: None,
    };
    let reader = FrameReader {
        stream: BufReader::with_capacity(READ_BUFFER, stream),
        body_limit,
        timeout: None,
    };
    Ok((reader, writer))
}

/// Asks for `bytes` of send buffer on `fd`. On a Unix stream socket only the
/// sender's buffer bounds what is in flight (the receiver's is not
/// consulted), so both ends set theirs. A smaller cap than asked for is not
/// an error: the kernel quietly gives what `net.core.wmem_max` allows.
fn widen_send_buffer(fd: RawFd, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `value` is a live `c_int` and the length given is its size.
    let done = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn at_least_a_millisecond(timeout: Duration) -> Duration {
    timeout.max(Duration::from_millis(1))
}

/// Sets a socket timeout through `set` unless `current` already is `timeout`.
fn set_timeout_once(
    current: &mut Option<Duration>,
    timeout: Duration,
    set: impl FnOnce(Option<Duration>) -> io::Result<()>,
) -> io::Result<()> {
    let timeout = Some(at_least_a_millisecond(timeout));
    if *current != timeout {
        // Forgotten first: if setting fails, the next call tries again.
        *current = None;
        set(timeout)?;
        *current = timeout;
    }
    Ok(())
}

impl FrameSource for BufReader<UnixStream> {
    /// The body read straight into its memory, which is never zeroed: zeroing a batch of a megabyte or more
    /// is a pass over all of it that the read overwrites at once. Large
    /// bodies get memory from [`PooledBody`], which is already mapped.
    fn read_body(&mut self, len: usize) -> io::Result<Buffer> {
        if PooledBody::suits(len) {
            let mut body = PooledBody::take(len);
            let start = body.as_mut_ptr();
            // SAFETY: the body's `len` bytes are its own to write.
            unsafe { fill(self, start, len)? };
            return Ok(body.into_buffer());
        }
        let mut body = MutableBuffer::with_capacity(len);
        // SAFETY: `body` has capacity for `len` bytes, allocated and its own;
        // `set_len` counts them only once `fill` has written every one.
        unsafe {
            fill(self, body.as_mut_ptr(), len)?;
            body.set_len(len);
        }
        Ok(body.into())
    }
}

/// Writes the next `len` bytes of `reader`'s stream to `start`: those it
/// buffered with the header, then the rest straight from the socket.
///
/// # Safety
/// `start` must be valid for writes of `len` bytes that nothing else reads
/// or writes meanwhile.
unsafe fn fill(reader: &mut BufReader<UnixStream>, start: *mut u8, len: usize) -> io::Result<()> {
    let buffered = reader.buffer();
    let mut filled = buffered.len().min(len);
    // SAFETY: the caller gives `len` writable bytes; `filled <= len`.
    unsafe { std::ptr::copy_nonoverlapping(buffered.as_ptr(), start, filled) };
    reader.consume(filled);
    let fd = reader.get_ref().as_raw_fd();
    while filled < len {
        // SAFETY: `filled < len`, so the rest lies inside what the caller gave.
        filled += unsafe { read_some(fd, start.add(filled), len - filled)? };
    }
    Ok(())
}

/// One `read(2)` of at most `room` bytes to `at`: how many it wrote (none
/// when a signal interrupted it).
///
/// # Safety
/// `at` must be valid for writes of `room` bytes.
unsafe fn read_some(fd: RawFd, at: *mut u8, room: usize) -> io::Result<usize> {
    // SAFETY: the caller gives `room` writable bytes at `at`.
    let got = unsafe { libc::read(fd, at.cast(), room) };
    match got {
        0 => Err(io::ErrorKind::UnexpectedEof.into()),
        n if n > 0 => Ok(n as usize),
        _ => match io::Error::last_os_error() {
            e if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            e => Err(e),
        },
    }
}

impl FrameReader {
    /// Waits at most `timeout` for the next frame to start (and as long again
    /// between its parts).
    pub fn recv(&mut self, timeout: Duration) -> Result<Frame, WireError> {
        let stream = self.stream.get_ref();
        set_timeout_once(&mut self.timeout, timeout, |t| stream.set_read_timeout(t))?;
        if self.stream.buffer().is_empty() && !wait_readable(stream.as_raw_fd(), timeout)? {
            return Err(WireError::TimedOut);
        }
        read_frame(&mut self.stream, self.body_limit)
    }
}

/// Waits until `fd` has bytes to read (or its peer closed it) for at most
/// `timeout`; false when it timed out.
///
/// Why not simply block in `read`: a thread asleep in `read` on a Unix socket
/// is also woken each time the peer consumes what this side wrote (the kernel
/// signals "room to write" on the same wait queue), finds nothing, and goes
/// back to sleep. That happens once on most round trips whose peer reads its
/// next message only after this side has gone to wait for the answer, as a
/// worker running a function does. `poll` for input is woken only by input.
fn wait_readable(fd: RawFd, timeout: Duration) -> io::Result<bool> {
    // Rounded up, as the kernel rounds a socket timeout: a wait cut short by
    // a fraction of a millisecond would end before a deadline it was sized to reach.
    let millis = i32::try_from(timeout.as_nanos().div_ceil(1_000_000).max(1)).unwrap_or(i32::MAX);
    let mut entry = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: `entry` is one valid `pollfd` that outlives the call.
        match unsafe { libc::poll(&mut entry, 1, millis) } {
            0 => return Ok(false),
            n if n > 0 => return Ok(true),
            _ => match io::Error::last_os_error() {
                // A signal cut the wait short; waiting the whole timeout again
                // errs on the long side, as a read restarted after a signal would.
                e if e.kind() == io::ErrorKind::Interrupted => {}
                e => return Err(e),
            },
        }
    }
}

impl FrameWriter {
    /// Sends a frame; a peer that takes nothing for `timeout` fails it.
    pub fn send(&mut self, kind: FrameKind, meta: &[u8], body: &[u8], timeout: Duration) -> Result<(), WireError> {
        self.set_timeout(timeout)?;
        write_frame(&mut self.stream, kind, meta, body)
    }

    /// Sends frames in one write (a result and the acknowledgement that
    /// goes with it, say), so that the peer wakes up once for all of them.
    pub fn send_frames(&mut self, frames: &[OutgoingFrame<'_>], timeout: Duration) -> Result<(), WireError> {
        self.set_timeout(timeout)?;
        write_frames(&mut self.stream, frames)
    }

    /// Sends bytes that need not be a frame (to test peers against garbage).
    pub fn send_raw(&mut self, data: &[u8], timeout: Duration) -> Result<(), WireError> {
        use std::io::Write;
        self.set_timeout(timeout)?;
        self.stream.write_all(data)?;
        Ok(())
    }

    fn set_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        let stream = &self.stream;
        set_timeout_once(&mut self.timeout, timeout, |t| stream.set_write_timeout(t))
    }

    /// Tells the peer nothing more will be sent.
    pub fn close(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// The socket's descriptor, for waiting on it from elsewhere (a worker
    /// watches for its caller hanging up); valid while this writer lives.
    pub fn raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}

#[cfg(test)]
#[path = "unix_tests.rs"]
mod tests;
