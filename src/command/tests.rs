use std::collections::HashMap;

use super::*;
use crate::envelope::{PythonImplementation, PythonVersion, SealOptions, SigningKey, WireTarget, seal};

const SECRET: &[u8] = b"derived from spark.authenticate.secret";
const HOSTILE: &[u8] = b"cos\nsystem\n(S'echo hi'\ntR.";

fn frame(pickle: &[u8], key: Option<SigningKey<'_>>) -> Vec<u8> {
    let options = SealOptions {
        python: PythonVersion {
            implementation: PythonImplementation::CPython,
            major: 3,
            minor: 99,
        },
        target: WireTarget::Native,
        protocol: 5,
        writer_version: "0.1.0",
        compression_threshold: None,
        compression_level: 3,
        key,
    };
    seal(pickle, &options).unwrap()
}

/// The pickle the driver hook sends: `load_sealed(frame)`, in protocol 0 for brevity.
fn sealed_command(frame: &[u8]) -> Vec<u8> {
    let mut command = b"cflightpickle.sealing\nload_sealed\nB".to_vec();
    command.extend((frame.len() as u32).to_le_bytes());
    command.extend(frame);
    command.extend([0x85, b'R', b'.']);
    command
}

fn key() -> Option<SigningKey<'static>> {
    Some(SigningKey {
        id: "spark",
        secret: SECRET,
    })
}

fn requiring_signature() -> OpenOptions<'static> {
    OpenOptions {
        keys: HashMap::from([("spark", SECRET)]),
        require_signature: true,
        ..OpenOptions::default()
    }
}

#[test]
fn a_plain_command_is_inspected_as_it_is() {
    let report = inspect_command(HOSTILE, &OpenOptions::default()).unwrap();
    assert!(report.sealed.is_none());
    assert_eq!(report.inspection.modules, ["os".to_string()].into());
}

#[test]
fn a_sealed_command_is_verified_and_its_body_inspected() {
    let command = sealed_command(&frame(HOSTILE, key()));
    let report = inspect_command(&command, &requiring_signature()).unwrap();
    let header = report.sealed.expect("sealed");
    assert_eq!(header.signature.map(|(id, _)| id), Some("spark".to_string()));
    // The body's imports, not the wrapper's flightpickle.sealing; and no Python check.
    assert_eq!(report.inspection.modules, ["os".to_string()].into());
}

#[test]
fn an_unsigned_sealed_command_is_refused_when_a_signature_is_required() {
    let command = sealed_command(&frame(HOSTILE, None));
    let error = inspect_command(&command, &requiring_signature()).unwrap_err();
    assert_eq!(error, CommandError::Envelope(EnvelopeError::SignatureMissing));
    assert!(inspect_command(&command, &OpenOptions::default()).is_ok());
}

#[test]
fn a_command_signed_with_another_key_is_refused() {
    let other = SigningKey {
        id: "spark",
        secret: b"another secret",
    };
    let command = sealed_command(&frame(HOSTILE, Some(other)));
    let error = inspect_command(&command, &requiring_signature()).unwrap_err();
    assert!(
        matches!(error, CommandError::Envelope(EnvelopeError::BadSignature { .. })),
        "{error}"
    );
}

#[test]
fn a_tampered_body_is_refused_by_its_digest() {
    let mut sealed = frame(HOSTILE, None);
    let last = sealed.len() - 3;
    sealed[last] ^= 1;
    let error = inspect_command(&sealed_command(&sealed), &OpenOptions::default()).unwrap_err();
    assert_eq!(error, CommandError::Envelope(EnvelopeError::DigestMismatch));
}

#[test]
fn unreadable_pickles_say_where_they_were() {
    let outer = inspect_command(b"\x80\x05garbage", &OpenOptions::default()).unwrap_err();
    assert!(
        outer.to_string().starts_with("the command is not a readable pickle"),
        "{outer}"
    );
    let inner = inspect_command(&sealed_command(&frame(b"\x80\x05\xff", None)), &OpenOptions::default()).unwrap_err();
    assert!(
        inner.to_string().contains("inside the command's sealed frame"),
        "{inner}"
    );
}

/// A command exactly as the Python driver hook writes it (see the JUnit fixtures'
/// make_fixtures.py), so the matcher is tested against the real shape.
fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/jvm/src/test/resources/io/flightpickle/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_driver_hooks_real_commands_are_recognised() {
    let junit_key = OpenOptions {
        keys: HashMap::from([("junit", &b"a key only the tests know"[..])]),
        require_signature: true,
        ..OpenOptions::default()
    };
    let signed = inspect_command(&fixture("signed.command"), &junit_key).unwrap();
    assert!(signed.sealed.is_some());
    assert!(
        signed.inspection.modules.contains("os"),
        "{:?}",
        signed.inspection.modules
    );
    let unsigned = inspect_command(&fixture("unsigned.command"), &junit_key).unwrap_err();
    assert_eq!(unsigned, CommandError::Envelope(EnvelopeError::SignatureMissing));
    let plain = inspect_command(&fixture("plain.command"), &junit_key).unwrap();
    assert!(plain.sealed.is_none());
}

/// PySpark's broadcast file of a large command: `pickle.dump(command, file, 5)`,
/// a large bytes object outside any frame.
fn broadcast_file(command: &[u8]) -> Vec<u8> {
    let mut file = vec![0x80, 5, 0x8e];
    file.extend((command.len() as u64).to_le_bytes());
    file.extend(command);
    file.extend([0x94, b'.']);
    file
}

#[test]
fn a_broadcast_sealed_command_gives_its_frame() {
    let sealed = frame(b"\x80\x05K\x01.", None);
    let file = broadcast_file(&sealed_command(&sealed));
    assert_eq!(sealed_frame_of_broadcast(&file).unwrap(), Some(&sealed[..]));
}

#[test]
fn a_broadcast_of_anything_else_gives_no_frame() {
    // A plain (unsealed) command, and a broadcast file that is not one bytes object.
    assert_eq!(sealed_frame_of_broadcast(&broadcast_file(HOSTILE)).unwrap(), None);
    assert_eq!(sealed_frame_of_broadcast(HOSTILE).unwrap(), None);
    // A sealed command not wrapped in bytes is not a broadcast file either.
    let sealed = frame(b"\x80\x05K\x01.", None);
    assert_eq!(sealed_frame_of_broadcast(&sealed_command(&sealed)).unwrap(), None);
}

#[test]
fn a_truncated_broadcast_file_is_an_error() {
    let file = broadcast_file(&sealed_command(&frame(b"\x80\x05K\x01.", None)));
    for end in [0, 3, 11, file.len() - 1] {
        assert!(sealed_frame_of_broadcast(&file[..end]).is_err(), "cut at {end}");
    }
}
