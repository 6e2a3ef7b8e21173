use std::thread;
use std::time::Duration;

use super::*;
use crate::transport::codec::{FrameKind, encode_u64_meta};

fn socket_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("fp-unix-{}-{name}.sock", std::process::id()))
}

#[test]
fn frames_cross_a_socket_both_ways() {
    let path = socket_path("echo");
    let _ = std::fs::remove_file(&path);
    let listener = Listener::bind(&path).unwrap();
    let server = thread::spawn(move || {
        let stream = listener.accept(Duration::from_secs(10)).unwrap().expect("a client");
        let (mut reader, mut writer) = split(stream, 1 << 20).unwrap();
        let frame = reader.recv(Duration::from_secs(10)).unwrap();
        writer
            .send(frame.kind, &frame.meta, frame.body.as_slice(), Duration::from_secs(10))
            .unwrap();
    });
    let stream = connect(&path, Duration::from_secs(10)).unwrap();
    let (mut reader, mut writer) = split(stream, 1 << 20).unwrap();
    let body = vec![7u8; 100_000];
    writer
        .send(FrameKind::Body, &encode_u64_meta(5), &body, Duration::from_secs(10))
        .unwrap();
    let echoed = reader.recv(Duration::from_secs(10)).unwrap();
    assert_eq!(
        (echoed.kind, echoed.meta, echoed.body.as_slice()),
        (FrameKind::Body, encode_u64_meta(5), &body[..])
    );
    server.join().unwrap();
    assert!(matches!(reader.recv(Duration::from_secs(10)), Err(WireError::Closed)));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn waiting_is_bounded() {
    let path = socket_path("idle");
    let _ = std::fs::remove_file(&path);
    let listener = Listener::bind(&path).unwrap();
    assert!(listener.accept(Duration::from_millis(20)).unwrap().is_none());
    let _client = connect(&path, Duration::from_secs(10)).unwrap();
    let stream = listener.accept(Duration::from_secs(10)).unwrap().unwrap();
    let (mut reader, _writer) = split(stream, 1 << 20).unwrap();
    assert!(matches!(
        reader.recv(Duration::from_millis(20)),
        Err(WireError::TimedOut)
    ));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_changed_timeout_applies_to_the_next_wait() {
    let path = socket_path("retimed");
    let _ = std::fs::remove_file(&path);
    let listener = Listener::bind(&path).unwrap();
    let client = connect(&path, Duration::from_secs(10)).unwrap();
    let stream = listener.accept(Duration::from_secs(10)).unwrap().unwrap();
    let (mut reader, _writer) = split(stream, 1 << 20).unwrap();
    assert!(matches!(
        reader.recv(Duration::from_millis(20)),
        Err(WireError::TimedOut)
    ));
    assert_eq!(socket_read_timeout(&reader), Some(Duration::from_millis(20)));
    // A longer wait than the last one is not cut short by it: a frame sent
    // after the old timeout passed still arrives.
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        let (_r, mut writer) = split(client, 1 << 20).unwrap();
        writer
            .send(FrameKind::Ready, &[], &[], Duration::from_secs(10))
            .unwrap();
    });
    assert_eq!(reader.recv(Duration::from_secs(10)).unwrap().kind, FrameKind::Ready);
    assert_eq!(socket_read_timeout(&reader), Some(Duration::from_secs(10)));
    sender.join().unwrap();
    std::fs::remove_file(&path).unwrap();
}

fn socket_read_timeout(reader: &FrameReader) -> Option<Duration> {
    reader.stream.get_ref().read_timeout().unwrap()
}

/// A connected pair: the reading half of one end, and the other end raw.
fn reader_and_raw_peer(name: &str) -> (FrameReader, UnixStream) {
    let path = socket_path(name);
    let _ = std::fs::remove_file(&path);
    let listener = Listener::bind(&path).unwrap();
    let peer = connect(&path, Duration::from_secs(10)).unwrap();
    let stream = listener.accept(Duration::from_secs(10)).unwrap().unwrap();
    std::fs::remove_file(&path).unwrap();
    (split(stream, 1 << 24).unwrap().0, peer)
}

#[test]
fn a_body_larger_than_the_read_buffer_arrives_whole_and_aligned_across_many_reads() {
    let (mut reader, peer) = reader_and_raw_peer("large");
    // Not a multiple of anything, with every byte position distinguishable,
    // sent in pieces so that the body is read partly from the reader's
    // buffer and partly straight from the socket, over several reads.
    let body: Vec<u8> = (0..3 * READ_BUFFER + 4321).map(|i| (i % 251) as u8).collect();
    let mut wire = Vec::new();
    crate::transport::wire::write_frame(&mut wire, FrameKind::Body, b"m", &body).unwrap();
    let sender = thread::spawn(move || {
        use std::io::Write;
        let mut peer = peer;
        for piece in wire.chunks(50_000) {
            peer.write_all(piece).unwrap();
            thread::sleep(Duration::from_millis(5));
        }
        peer
    });
    let frame = reader.recv(Duration::from_secs(10)).unwrap();
    assert_eq!(frame.body.as_slice(), &body[..]);
    assert_eq!(frame.body.as_ptr() as usize % 64, 0);
    drop(sender.join().unwrap());
    assert!(matches!(reader.recv(Duration::from_secs(10)), Err(WireError::Closed)));
}

#[test]
fn a_body_cut_short_by_the_peer_is_a_truncated_frame() {
    let (mut reader, peer) = reader_and_raw_peer("cut");
    let mut wire = Vec::new();
    crate::transport::wire::write_frame(&mut wire, FrameKind::Body, b"", &vec![1u8; 2 * READ_BUFFER]).unwrap();
    {
        use std::io::Write;
        let mut peer = peer;
        peer.write_all(&wire[..wire.len() - 10]).unwrap();
    }
    assert!(matches!(
        reader.recv(Duration::from_secs(10)),
        Err(WireError::Codec(crate::transport::codec::CodecError::Truncated(_)))
    ));
}

#[test]
fn a_body_that_stops_coming_times_out() {
    let (mut reader, peer) = reader_and_raw_peer("stalled");
    let mut wire = Vec::new();
    crate::transport::wire::write_frame(&mut wire, FrameKind::Body, b"", &vec![1u8; 2 * READ_BUFFER]).unwrap();
    {
        use std::io::Write;
        (&peer).write_all(&wire[..READ_BUFFER + 100]).unwrap();
    }
    assert!(matches!(
        reader.recv(Duration::from_millis(50)),
        Err(WireError::TimedOut)
    ));
    drop(peer);
}

#[test]
fn a_timed_out_wait_lasts_at_least_its_timeout() {
    let (mut reader, _peer) = reader_and_raw_peer("whole-timeout");
    // Not a whole number of milliseconds: rounding it down would end the
    // wait before a deadline the caller sized it to reach.
    let timeout = Duration::from_micros(20_700);
    let started = std::time::Instant::now();
    assert!(matches!(reader.recv(timeout), Err(WireError::TimedOut)));
    assert!(started.elapsed() >= timeout);
}

/// The send buffer the kernel reports for `fd` (Linux reports twice what
/// was asked for, the rest being its own bookkeeping).
fn send_buffer(fd: RawFd) -> usize {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are live and `len` is `value`'s size.
    let done = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, (&raw mut value).cast(), &mut len) };
    assert_eq!(done, 0, "getsockopt: {}", io::Error::last_os_error());
    value as usize
}

#[test]
fn a_connection_asks_for_room_to_send_a_whole_batch_ahead() {
    let (ours, _theirs) = UnixStream::pair().unwrap();
    let (_reader, writer) = split(ours, 1 << 20).unwrap();
    let allowed = std::fs::read_to_string("/proc/sys/net/core/wmem_max")
        .ok()
        .and_then(|max| max.trim().parse::<usize>().ok())
        .unwrap_or(SEND_BUFFER);
    assert_eq!(send_buffer(writer.stream.as_raw_fd()), 2 * allowed.min(SEND_BUFFER));
}
