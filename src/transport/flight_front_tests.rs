//! The front against a stand-in worker on a Unix socket and a Rust Flight
//! client on loopback: what the caller sees when the worker answers, and
//! when it dies.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixListener;
use std::path::Path;

use arrow_flight::flight_service_client::FlightServiceClient;
use base64::Engine;
use serde_json::json;
use tokio_stream::StreamExt;

use super::*;
use crate::transport::batch::encode_schema;
use crate::transport::codec::{self, Open};
use arrow_schema::{DataType, Field, Schema};

const WAIT: Duration = Duration::from_secs(20);

fn int_schema() -> Schema {
    Schema::new(vec![Field::new("x", DataType::Int64, true)])
}

/// A worker that reads `Open`, answers `Ready`, then either ends with an ok
/// status or, when `die` is set, closes without one.
fn stand_in_worker(path: &Path, die: bool) -> thread::JoinHandle<Open> {
    let listener = UnixListener::bind(path).unwrap();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let (mut reader, mut writer) = unix::split(stream, 1 << 20).unwrap();
        let open = reader.recv(WAIT).unwrap();
        assert_eq!(open.kind, FrameKind::Open);
        writer.send(FrameKind::Ready, &[], &[], WAIT).unwrap();
        let end = reader.recv(WAIT).unwrap();
        assert_eq!(end.kind, FrameKind::End);
        if !die {
            writer
                .send(
                    FrameKind::Status,
                    &codec::encode_status_meta(StatusCode::Ok, ""),
                    &[],
                    WAIT,
                )
                .unwrap();
        }
        writer.close();
        Open::decode(&open.meta).unwrap()
    })
}

fn start_front(dir: &Path, token: Option<&str>) -> Front {
    let config = FrontConfig {
        worker_socket: dir.join("worker.sock"),
        body_limit: 1 << 20,
        idle_timeout: WAIT,
        token: token.map(String::from),
        tls: None,
    };
    Front::start(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).unwrap()
}

fn open_message() -> FlightData {
    let mut output = vec![0xff; 4];
    let flatbuffer = encode_schema(&int_schema()).unwrap();
    output.extend_from_slice(&(flatbuffer.len() as i32).to_le_bytes());
    output.extend_from_slice(&flatbuffer);
    let document = json!({"version": 1, "kind": "map_arrow", "digest": "d", "window": 2,
        "output_schema": base64::engine::general_purpose::STANDARD.encode(output)});
    FlightData {
        flight_descriptor: Some(FlightDescriptor::new_cmd(document.to_string())),
        data_header: encode_schema(&int_schema()).unwrap().into(),
        ..Default::default()
    }
}

fn end_message() -> FlightData {
    let mut meta = vec![7u8];
    meta.extend_from_slice(&0u64.to_le_bytes());
    FlightData {
        app_metadata: meta.into(),
        ..Default::default()
    }
}

/// Runs one exchange; the app_metadata of every reply, then how the call ended.
fn exchange(port: u16, token: Option<&str>) -> (Vec<Vec<u8>>, Result<(), Status>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap();
        let mut client = FlightServiceClient::new(channel.connect().await.unwrap());
        let mut request = Request::new(tokio_stream::iter(vec![open_message(), end_message()]));
        if let Some(token) = token {
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        let mut replies = match client.do_exchange(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return (Vec::new(), Err(status)),
        };
        let mut seen = Vec::new();
        while let Some(reply) = replies.next().await {
            match reply {
                Ok(data) => seen.push(data.app_metadata.to_vec()),
                Err(status) => return (seen, Err(status)),
            }
        }
        (seen, Ok(()))
    })
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fp-front-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn an_exchange_is_forwarded_to_a_worker_and_back() {
    let dir = scratch_dir("ok");
    let worker = stand_in_worker(&dir.join("worker.sock"), false);
    let mut front = start_front(&dir, None);
    let (seen, end) = exchange(front.port(), None);
    end.unwrap();
    // The schema message (no app_metadata), Ready, then the ok status.
    assert_eq!(seen, vec![vec![], vec![4], vec![8, 0]]);
    let open = worker.join().unwrap();
    assert_eq!(
        (open.kind, open.window, open.digest.as_str()),
        (codec::EvalKind::MapArrow, 2, "d")
    );
    assert!(front.shutdown(WAIT));
}

#[test]
fn a_worker_that_dies_ends_the_call_as_aborted() {
    let dir = scratch_dir("dies");
    let worker = stand_in_worker(&dir.join("worker.sock"), true);
    let front = start_front(&dir, None);
    let (seen, end) = exchange(front.port(), None);
    worker.join().unwrap();
    assert_eq!(end.unwrap_err().code(), tonic::Code::Aborted);
    assert_eq!(seen.last().unwrap()[..2], [8, StatusCode::WorkerLost as u8]);
}

#[test]
fn a_missing_or_wrong_token_is_unauthenticated() {
    let dir = scratch_dir("token");
    let front = start_front(&dir, Some("s3cret"));
    for presented in [None, Some("guess")] {
        let (seen, end) = exchange(front.port(), presented);
        assert!(seen.is_empty());
        assert_eq!(end.unwrap_err().code(), tonic::Code::Unauthenticated);
    }
}

#[test]
fn tokens_compare_whole() {
    assert!(same_bytes(b"Bearer a", b"Bearer a"));
    assert!(!same_bytes(b"Bearer a", b"Bearer b"));
    assert!(!same_bytes(b"Bearer a", b"Bearer ab"));
}
