//! The blocking client over Flight against the real Flight front, in
//! process, whose worker is the stand-in service of the client's own tests:
//! the same stream behaviour as over a Unix socket, and clear errors when
//! the pool refuses the token, is down, or loses the worker mid-stream.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::thread;

use super::*;
use crate::transport::client::tests::{
    Service, TIMEOUT, assert_a_cancel_ends_the_wait, assert_doubles_in_order, batch, echo_one_then_measured_ok, spec,
    values,
};
use crate::transport::client::{Endpoint, Stream};
use crate::transport::codec::{StatusCode, StreamStats, encode_status_meta, encode_u64_meta};
use crate::transport::flight_front::{Front, FrontConfig};

/// A front on loopback whose one worker connection is served by `serve`.
struct Pool {
    front: Front,
    worker: Option<thread::JoinHandle<()>>,
    dir: PathBuf,
}

impl Pool {
    fn start(name: &str, token: Option<&str>, serve: impl FnOnce(Service) + Send + 'static) -> Self {
        Self::start_with(name, token, None, serve)
    }

    /// With `tls`, the PEM certificate chain and key the front serves.
    fn start_with(
        name: &str,
        token: Option<&str>,
        tls: Option<(Vec<u8>, Vec<u8>)>,
        serve: impl FnOnce(Service) + Send + 'static,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!("fp-flight-client-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let listener = UnixListener::bind(dir.join("worker.sock")).unwrap();
        let worker = thread::spawn(move || {
            if let Ok((stream, _)) = listener.accept() {
                serve(Service::accept(stream));
            }
        });
        let config = FrontConfig {
            worker_socket: dir.join("worker.sock"),
            body_limit: 1 << 20,
            idle_timeout: TIMEOUT,
            token: token.map(String::from),
            tls,
        };
        let front = Front::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).unwrap();
        Self {
            front,
            worker: Some(worker),
            dir,
        }
    }

    fn endpoint(&self, token: Option<&str>) -> Endpoint {
        let uri = format!("grpc://127.0.0.1:{}", self.front.port());
        Endpoint::parse(&uri, token.map(String::from), None).unwrap()
    }

    /// Waits for the worker's side to finish (its assertions included).
    fn join_worker(&mut self) {
        self.worker.take().unwrap().join().unwrap();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.front.shutdown(Duration::ZERO);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Doubles every batch, acknowledging each with its result, then says ok.
fn doubler(mut service: Service) {
    while let Some((seq, input)) = service.next_batch() {
        let doubled: Vec<i64> = values(&input).iter().map(|v| v * 2).collect();
        service.send_result(seq, &batch(&doubled));
        service.send(FrameKind::Ack, &encode_u64_meta(seq));
    }
    service.send(FrameKind::Status, &encode_status_meta(StatusCode::Ok, ""));
}

#[test]
fn batches_go_through_a_pool_in_order_and_the_function_is_sent_when_asked() {
    let mut pool = Pool::start("ok", Some("s3cret"), doubler);
    let mut stream = Stream::connect(&pool.endpoint(Some("s3cret")), spec(2)).unwrap();
    assert_doubles_in_order(&mut stream, 7);
    pool.join_worker();
}

/// The front forwards the worker's stats only to callers that ask; the
/// client asks, and reads them as a Unix caller does.
#[test]
fn the_workers_stats_reach_the_caller_through_the_pool() {
    let measured = StreamStats {
        function_nanos: 31_000,
        function_cached: true,
    };
    let mut pool = Pool::start("stats", None, move |service| {
        echo_one_then_measured_ok(service, measured)
    });
    let mut stream = Stream::connect(&pool.endpoint(None), spec(4)).unwrap();
    stream.push(&batch(&[3])).unwrap();
    stream.finish().unwrap();
    assert_eq!(values(&stream.pull().unwrap().unwrap()), [3]);
    assert_eq!(stream.pull().unwrap(), None);
    assert_eq!(stream.stats(), Some(measured));
    pool.join_worker();
}

#[test]
fn a_failing_function_ends_the_stream_with_its_traceback() {
    let mut pool = Pool::start("udf-error", None, |mut service| {
        service.next_batch().unwrap();
        let traceback = "Traceback (most recent call last):\nValueError: seven";
        service.send(FrameKind::Status, &encode_status_meta(StatusCode::UdfError, traceback));
    });
    let mut stream = Stream::connect(&pool.endpoint(None), spec(4)).unwrap();
    stream.push(&batch(&[7])).unwrap();
    let error = stream.pull().unwrap_err();
    assert_eq!(error.kind(), "udf_error");
    assert!(error.to_string().contains("ValueError: seven"), "{error}");
    pool.join_worker();
}

#[test]
fn a_worker_that_dies_mid_stream_is_a_lost_worker() {
    let mut pool = Pool::start("dies", None, |mut service| {
        service.next_batch().unwrap();
        // Returning drops the connection, as a dying worker's does.
    });
    let mut stream = Stream::connect(&pool.endpoint(None), spec(4)).unwrap();
    stream.push(&batch(&[1])).unwrap();
    pool.join_worker();
    let error = stream.pull().unwrap_err();
    assert_eq!(error.kind(), "worker_lost", "{error}");
}

#[test]
fn a_wrong_or_missing_token_is_refused_clearly() {
    let pool = Pool::start("token", Some("s3cret"), |_| {});
    for presented in [Some("guess"), None] {
        let error = Stream::connect(&pool.endpoint(presented), spec(1))
            .err()
            .expect("refused");
        assert_eq!(error.kind(), "unauthenticated", "{error}");
        assert!(
            error.to_string().contains("refused this caller's bearer token"),
            "{error}"
        );
    }
}

#[test]
fn a_pool_that_is_down_is_reported_as_unreachable() {
    let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = Endpoint::parse(&format!("grpc://127.0.0.1:{port}"), None, None).unwrap();
    let error = Stream::connect(&endpoint, spec(1)).err().expect("unreachable");
    assert_eq!(error.kind(), "io", "{error}");
    assert!(
        error
            .to_string()
            .contains("cannot reach the executor pool at grpc://127.0.0.1:"),
        "{error}"
    );
}

#[test]
fn a_cancelled_stream_stops_waiting_at_once_and_says_so() {
    let mut pool = Pool::start("cancel", None, |mut service| {
        // Takes the batch and never answers, like a function that runs for minutes.
        service.next_batch().unwrap();
        assert!(
            service.reader.recv(TIMEOUT).is_err(),
            "the front drops the worker's stream on cancel"
        );
    });
    let mut stream = Stream::connect(&pool.endpoint(None), spec(1)).unwrap();
    assert_a_cancel_ends_the_wait(&mut stream);
    pool.join_worker();
}

#[test]
fn a_silent_pool_times_out() {
    let mut pool = Pool::start("silent", None, |mut service| {
        service.next_batch().unwrap();
        let _ = service.reader.recv(TIMEOUT);
    });
    let mut quick = spec(1);
    quick.timeout = Duration::from_millis(300);
    let mut stream = Stream::connect(&pool.endpoint(None), quick).unwrap();
    stream.push(&batch(&[1])).unwrap();
    let error = stream.pull().unwrap_err();
    assert_eq!(error.kind(), "timeout", "{error}");
    drop(stream);
    pool.join_worker();
}

#[test]
fn pool_addresses_are_checked_before_any_connection() {
    let refused = |uri: &str, ca: Option<Vec<u8>>| Endpoint::parse(uri, None, ca).expect_err(uri).to_string();
    assert!(refused("grpc://127.0.0.1", None).contains("no port"));
    assert!(refused("grpc://:8815", None).contains("host:port"));
    assert!(refused("grpc://host:0", None).contains("host:port"));
    assert!(refused("grpc://host:8815/path", None).contains("no path"));
    assert!(refused("grpc+tls://host:8815", None).contains("needs the CA"));
    assert!(refused("grpc://host:8815", Some(b"pem".to_vec())).contains("not grpc+tls"));
    assert!(refused("http://host:8815", None).contains("not an executor address"));
    let token = Endpoint::parse("grpc://h:1", Some("a\nb".into()), None).err().unwrap();
    assert!(token.to_string().contains("control characters"));
    assert!(
        matches!(Endpoint::parse("unix:///tmp/x.sock", None, None), Ok(Endpoint::Unix(p)) if p == Path::new("/tmp/x.sock"))
    );
    let shown = format!(
        "{:?}",
        Endpoint::parse("grpc://h:1", Some("s3cret".into()), None).unwrap()
    );
    assert!(!shown.contains("s3cret"), "{shown}");
}

/// A CA and a certificate for 127.0.0.1 that it signs, made with the
/// `openssl` command: the CA's PEM, and the leaf's certificate and key.
fn certificates(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let run = |args: &[&str]| {
        let status = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("the openssl command");
        assert!(status.success(), "openssl {args:?}");
    };
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=flightpickle test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "leaf.pem",
    ]);
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    (read("ca.pem"), read("leaf.pem"), read("leaf.key"))
}

#[test]
fn a_tls_pool_is_reached_with_its_ca_and_refused_without_it() {
    let dir = std::env::temp_dir().join(format!("fp-flight-client-certs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, leaf, key) = certificates(&dir);
    let mut pool = Pool::start_with("tls", None, Some((leaf.clone(), key)), doubler);
    let uri = format!("grpc+tls://127.0.0.1:{}", pool.front.port());
    // Trusting another CA (the leaf itself is not one): the handshake fails, and says where.
    let untrusted = Endpoint::parse(&uri, None, Some(leaf)).unwrap();
    let error = Stream::connect(&untrusted, spec(1)).err().expect("untrusted");
    assert_eq!(error.kind(), "io", "{error}");
    assert!(
        error.to_string().contains(&uri) && error.to_string().contains("certificate"),
        "{error}"
    );
    let mut stream = Stream::connect(&Endpoint::parse(&uri, None, Some(ca)).unwrap(), spec(1)).unwrap();
    stream.push(&batch(&[21])).unwrap();
    stream.finish().unwrap();
    assert_eq!(values(&stream.pull().unwrap().unwrap()), vec![42]);
    assert_eq!(stream.pull().unwrap(), None);
    pool.join_worker();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_channel_cache_stays_bounded_and_reuses_a_pools_channel() {
    let runtime = runtime().unwrap();
    // Ports nothing listens on: channels connect lazily, so none is dialled.
    let pool = |port: u32| FlightEndpoint::parse(&format!("grpc://127.0.0.1:{port}"), None, None).unwrap();
    for port in 0..(2 * CACHED_CHANNELS as u32) {
        channel(&pool(40_000 + port), runtime, TIMEOUT).unwrap();
        // Other tests add channels of their own at the same time: the
        // bound holds whatever they do, since both sides hold the lock.
        assert!(cached_channels().len() <= CACHED_CHANNELS);
    }
    let key = |port: u32| (pool(port).channel_uri, None, TIMEOUT);
    channel(&pool(49_999), runtime, TIMEOUT).unwrap();
    assert!(cached_channels().contains_key(&key(49_999)));
    assert!(!cached_channels().contains_key(&(pool(49_999).channel_uri, None, TIMEOUT * 2)));
}
