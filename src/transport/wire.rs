//! Whole frames to and from any byte stream (`Read`/`Write`), so the same code
//! serves sockets and in-memory tests.

use std::fmt;
use std::io::{self, Cursor, IoSlice, Read, Write};

use arrow_buffer::{Buffer, MutableBuffer};

use super::codec::{BODY_ALIGNMENT, CodecError, FrameHeader, FrameKind, HEADER_LEN};

/// One frame: its kind, its metadata and its 64-byte aligned body.
#[derive(Debug)]
pub struct Frame {
    pub kind: FrameKind,
    pub meta: Vec<u8>,
    pub body: Buffer,
}

impl Frame {
    pub fn new(kind: FrameKind, meta: Vec<u8>) -> Self {
        Self {
            kind,
            meta,
            body: Buffer::from_vec(Vec::<u8>::new()),
        }
    }
}

/// Why a frame could not be read or written.
#[derive(Debug)]
pub enum WireError {
    /// The peer closed the stream between frames.
    Closed,
    /// No byte arrived (or could be sent) before the deadline.
    TimedOut,
    Codec(CodecError),
    Io(io::Error),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Closed => write!(f, "the peer closed the connection"),
            Self::TimedOut => write!(f, "deadline passed waiting on the connection"),
            Self::Codec(e) => write!(f, "{e}"),
            Self::Io(e) => write!(f, "connection failed: {e}"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<CodecError> for WireError {
    fn from(e: CodecError) -> Self {
        Self::Codec(e)
    }
}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Self::TimedOut,
            io::ErrorKind::UnexpectedEof => Self::Codec(CodecError::Truncated("frame")),
            _ => Self::Io(e),
        }
    }
}

/// Where frames are read from. A body is read into 64-byte aligned memory
/// (`MutableBuffer`), so that Arrow arrays decoded from it point into it
/// instead of copying. By default that memory is zeroed first; a socket
/// overrides `read_body` to fill fresh memory directly (`unix.rs`), which
/// saves writing every byte of a large body twice.
pub trait FrameSource: Read {
    fn read_body(&mut self, len: usize) -> io::Result<Buffer> {
        let mut body = MutableBuffer::from_len_zeroed(len);
        self.read_exact(body.as_slice_mut())?;
        Ok(body.into())
    }
}

impl<T: AsRef<[u8]>> FrameSource for Cursor<T> {}

/// Reads one frame; `Closed` only when the stream ends exactly between frames.
pub fn read_frame(reader: &mut impl FrameSource, body_limit: u64) -> Result<Frame, WireError> {
    let mut header_bytes = [0u8; HEADER_LEN];
    let first = loop {
        match reader.read(&mut header_bytes) {
            Ok(n) => break n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    };
    if first == 0 {
        return Err(WireError::Closed);
    }
    reader.read_exact(&mut header_bytes[first..])?;
    let header = FrameHeader::decode(&header_bytes, body_limit)?;
    let mut meta = vec![0u8; header.meta_len as usize];
    reader.read_exact(&mut meta)?;
    let mut padding = [0u8; BODY_ALIGNMENT];
    reader.read_exact(&mut padding[..header.padding_len()])?;
    let body_len = usize::try_from(header.body_len).map_err(|_| CodecError::Invalid("body too large".into()))?;
    let body = reader.read_body(body_len)?;
    Ok(Frame {
        kind: header.kind,
        meta,
        body,
    })
}

/// One frame to send: its kind, metadata and body. The body is given in
/// parts that go on the wire one after the other, so that a record batch's
/// body can be its arrays' own buffers (and the padding between them)
/// rather than a copy of them in one vector.
#[derive(Clone, Copy, Debug)]
pub struct OutgoingFrame<'a> {
    pub kind: FrameKind,
    pub meta: &'a [u8],
    pub body: &'a [&'a [u8]],
}

impl OutgoingFrame<'_> {
    fn body_len(&self) -> usize {
        self.body.iter().map(|part| part.len()).sum()
    }
}

/// Writes one frame: header, metadata, padding and body in one gathered write.
pub fn write_frame(writer: &mut impl Write, kind: FrameKind, meta: &[u8], body: &[u8]) -> Result<(), WireError> {
    let body = [body];
    write_frames(
        writer,
        &[OutgoingFrame {
            kind,
            meta,
            body: &body,
        }],
    )
}

/// Writes frames one after the other in one gathered write, so that a peer
/// waiting for them wakes up once, not once per frame.
pub fn write_frames(writer: &mut impl Write, frames: &[OutgoingFrame<'_>]) -> Result<(), WireError> {
    let prefixes = frames.iter().map(frame_prefix).collect::<Result<Vec<_>, _>>()?;
    // Each body right after its prefix; two writes for one frame would let
    // the reader wake up for the prefix alone and then wait for the body.
    let mut slices: Vec<IoSlice<'_>> = prefixes
        .iter()
        .zip(frames)
        .flat_map(|(prefix, frame)| {
            std::iter::once(IoSlice::new(prefix)).chain(frame.body.iter().map(|part| IoSlice::new(part)))
        })
        .collect();
    write_all_gathered(writer, &mut slices)?;
    writer.flush()?;
    Ok(())
}

/// A frame's header, metadata and padding.
fn frame_prefix(frame: &OutgoingFrame<'_>) -> Result<Vec<u8>, WireError> {
    let meta_len = u32::try_from(frame.meta.len()).map_err(|_| CodecError::MetaTooLarge(u32::MAX))?;
    let header = FrameHeader {
        kind: frame.kind,
        meta_len,
        body_len: frame.body_len() as u64,
    };
    let mut prefix = Vec::with_capacity(HEADER_LEN + frame.meta.len() + BODY_ALIGNMENT);
    prefix.extend_from_slice(&header.encode());
    prefix.extend_from_slice(frame.meta);
    prefix.resize(prefix.len() + header.padding_len(), 0);
    Ok(prefix)
}

fn write_all_gathered(writer: &mut impl Write, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match writer.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
