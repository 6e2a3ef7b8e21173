use super::*;

const CPYTHON_311: PythonVersion = PythonVersion {
    implementation: PythonImplementation::CPython,
    major: 3,
    minor: 11,
};
const CPYTHON_312: PythonVersion = PythonVersion {
    implementation: PythonImplementation::CPython,
    major: 3,
    minor: 12,
};
const SECRET: &[u8] = b"a secret shared by driver and executors";

fn options(key: Option<SigningKey<'static>>, compression_threshold: Option<usize>) -> SealOptions<'static> {
    SealOptions {
        python: CPYTHON_311,
        target: WireTarget::Native,
        protocol: 5,
        writer_version: "0.1.0",
        compression_threshold,
        compression_level: DEFAULT_COMPRESSION_LEVEL,
        key,
    }
}

fn signing_key() -> Option<SigningKey<'static>> {
    Some(SigningKey {
        id: "spark",
        secret: SECRET,
    })
}

fn keyring() -> OpenOptions<'static> {
    OpenOptions {
        keys: HashMap::from([("spark", SECRET)]),
        require_signature: true,
        ..OpenOptions::default()
    }
}

fn pickle_of(len: usize) -> Vec<u8> {
    // Repetitive, like real pickles of code and data, so that it compresses.
    (0..len).map(|i| b"flightpickle"[i % 12]).collect()
}

#[test]
fn plain_round_trip_borrows_the_pickle() {
    let pickle = pickle_of(100);
    let frame = seal(&pickle, &options(None, None)).unwrap();
    let opened = open(&frame, &OpenOptions::default()).unwrap();
    assert_eq!(&*opened.pickle, &pickle[..]);
    assert!(matches!(opened.pickle, Cow::Borrowed(_)));
    assert_eq!(opened.header.python, CPYTHON_311);
    assert_eq!(opened.header.target, WireTarget::Native);
    assert_eq!(opened.header.writer_version, "0.1.0");
    assert_eq!(opened.header.digest[..], Sha256::digest(&pickle)[..]);
}

#[test]
fn compressed_round_trip_above_the_threshold_only() {
    let small = pickle_of(1000);
    let large = pickle_of(200_000);
    let small_frame = seal(&small, &options(None, Some(4096))).unwrap();
    let large_frame = seal(&large, &options(None, Some(4096))).unwrap();
    assert!(!parse(&small_frame).unwrap().compressed);
    assert!(parse(&large_frame).unwrap().compressed);
    assert!(large_frame.len() < large.len() / 10);
    assert_eq!(
        &*open(&large_frame, &OpenOptions::default()).unwrap().pickle,
        &large[..]
    );
}

#[test]
fn digest_does_not_depend_on_compression() {
    let pickle = pickle_of(100_000);
    let plain = parse(&seal(&pickle, &options(None, None)).unwrap()).unwrap();
    let compressed = parse(&seal(&pickle, &options(None, Some(0))).unwrap()).unwrap();
    assert_eq!(plain.digest, compressed.digest);
}

#[test]
fn signed_round_trip() {
    let pickle = pickle_of(300);
    let frame = seal(&pickle, &options(signing_key(), Some(100))).unwrap();
    let opened = open(&frame, &keyring()).unwrap();
    assert_eq!(&*opened.pickle, &pickle[..]);
    assert_eq!(opened.header.signature.as_ref().unwrap().0, "spark");
}

#[test]
fn every_single_byte_flip_of_a_signed_frame_is_refused() {
    for compression in [None, Some(0)] {
        let frame = seal(&pickle_of(500), &options(signing_key(), compression)).unwrap();
        for at in 0..frame.len() {
            for bit in [0x01, 0x80] {
                let mut tampered = frame.clone();
                tampered[at] ^= bit;
                assert!(
                    open(&tampered, &keyring()).is_err(),
                    "flip of bit {bit:#x} at byte {at} was accepted"
                );
            }
        }
    }
}

#[test]
fn every_truncation_is_refused_without_panicking() {
    let frame = seal(&pickle_of(200), &options(signing_key(), None)).unwrap();
    for len in 0..frame.len() {
        let error = open(&frame[..len], &keyring()).unwrap_err();
        assert!(
            matches!(error, EnvelopeError::Truncated { .. }),
            "cut at {len}: {error}"
        );
    }
}

#[test]
fn wrong_magic_is_not_a_sealed_payload() {
    let error = open(b"\x80\x05\x95not a frame", &OpenOptions::default()).unwrap_err();
    assert_eq!(error, EnvelopeError::NotSealed);
    assert!(error.to_string().contains("not a sealed flightpickle payload"));
}

#[test]
fn unknown_format_version_is_named() {
    let mut frame = seal(&pickle_of(10), &options(None, None)).unwrap();
    frame[4] = 2;
    let error = open(&frame, &OpenOptions::default()).unwrap_err();
    assert_eq!(error, EnvelopeError::UnknownFormatVersion(2));
    assert!(
        error
            .to_string()
            .contains("format version 2, this flightpickle reads version 1")
    );
}

#[test]
fn python_mismatch_is_refused_with_both_versions() {
    let frame = seal(
        &pickle_of(10),
        &SealOptions {
            python: CPYTHON_312,
            ..options(None, None)
        },
    )
    .unwrap();
    let reader = OpenOptions {
        expected_python: Some(CPYTHON_311),
        ..OpenOptions::default()
    };
    let error = open(&frame, &reader).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("pickled on CPython 3.12, this is CPython 3.11"),
        "{error}"
    );
}

#[test]
fn corrupted_body_fails_the_digest() {
    let mut frame = seal(&pickle_of(100), &options(None, None)).unwrap();
    let last = frame.len() - 1;
    frame[last] ^= 0xff;
    assert_eq!(
        open(&frame, &OpenOptions::default()).unwrap_err(),
        EnvelopeError::DigestMismatch
    );
}

#[test]
fn missing_signature_is_refused_when_required() {
    let frame = seal(&pickle_of(10), &options(None, None)).unwrap();
    assert_eq!(open(&frame, &keyring()).unwrap_err(), EnvelopeError::SignatureMissing);
}

#[test]
fn unknown_key_is_refused_when_keys_are_given() {
    let other = Some(SigningKey {
        id: "other",
        secret: SECRET,
    });
    let frame = seal(&pickle_of(10), &options(other, None)).unwrap();
    assert_eq!(
        open(&frame, &keyring()).unwrap_err(),
        EnvelopeError::UnknownKey("other".into())
    );
    let lenient = OpenOptions {
        require_signature: false,
        ..keyring()
    };
    assert_eq!(
        open(&frame, &lenient).unwrap_err(),
        EnvelopeError::UnknownKey("other".into())
    );
}

#[test]
fn wrong_key_is_a_bad_signature() {
    let impostor = Some(SigningKey {
        id: "spark",
        secret: b"not the shared secret",
    });
    let frame = seal(&pickle_of(10), &options(impostor, None)).unwrap();
    assert_eq!(
        open(&frame, &keyring()).unwrap_err(),
        EnvelopeError::BadSignature { key_id: "spark".into() }
    );
}

#[test]
fn declared_size_over_the_limit_is_refused_before_decompressing() {
    let frame = seal(&pickle_of(100_000), &options(None, Some(0))).unwrap();
    let reader = OpenOptions {
        max_payload_len: 99_999,
        ..OpenOptions::default()
    };
    let error = open(&frame, &reader).unwrap_err();
    assert_eq!(
        error,
        EnvelopeError::TooLarge {
            declared: 100_000,
            limit: 99_999
        }
    );
}

#[test]
fn body_that_expands_past_its_declared_size_is_refused() {
    // A real zstd frame of 10 MB of zeros, declared as 1 KB: a decompression bomb
    // must not get more memory than it declared. Unsigned, so only the sizes guard it.
    let bomb = zstd::bulk::compress(&vec![0u8; 10_000_000], 3).unwrap();
    let header = Header {
        compressed: true,
        python: CPYTHON_311,
        target: WireTarget::Native,
        protocol: 5,
        writer_version: "0.1.0".into(),
        payload_len: 1024,
        body_len: bomb.len() as u64,
        digest: [0; DIGEST_LEN],
        signature: None,
    };
    let mut frame = header.signed_part(None);
    frame.extend_from_slice(&bomb);
    assert!(matches!(
        open(&frame, &OpenOptions::default()).unwrap_err(),
        EnvelopeError::Decompression(_)
    ));
}

#[test]
fn trailing_bytes_are_refused() {
    let mut frame = seal(&pickle_of(10), &options(None, None)).unwrap();
    frame.extend_from_slice(b"xyz");
    assert_eq!(
        open(&frame, &OpenOptions::default()).unwrap_err(),
        EnvelopeError::TrailingBytes { extra: 3 }
    );
}

#[test]
fn seal_refuses_unusable_keys() {
    let empty_id = Some(SigningKey { id: "", secret: SECRET });
    let empty_secret = Some(SigningKey { id: "k", secret: b"" });
    assert!(matches!(
        seal(b"x", &options(empty_id, None)),
        Err(EnvelopeError::InvalidSealRequest(_))
    ));
    assert!(matches!(
        seal(b"x", &options(empty_secret, None)),
        Err(EnvelopeError::InvalidSealRequest(_))
    ));
}

#[test]
fn the_layout_matches_format_md() {
    let frame = seal(b"PICKLE", &options(None, None)).unwrap();
    assert_eq!(&frame[..4], b"\x89FPK");
    assert_eq!(frame[4], FORMAT_VERSION);
    assert_eq!(frame[5], 0, "flags");
    let header_len = u16::from_le_bytes([frame[6], frame[7]]) as usize;
    assert_eq!(header_len, 14 + 5 + 8 + 8 + 32);
    assert_eq!(
        &frame[8..13],
        &[0, 3, 11, 0, 5],
        "implementation, major, minor, target, protocol"
    );
    assert_eq!(frame[13] as usize, "0.1.0".len());
    assert_eq!(&frame[header_len..], b"PICKLE");
}

#[test]
fn wire_target_names_round_trip() {
    for target in [WireTarget::Native, WireTarget::Cloudpickle, WireTarget::Pyspark] {
        assert_eq!(WireTarget::from_name(target.name()), Some(target));
    }
    assert_eq!(WireTarget::from_name("pickle"), None);
}

#[test]
fn absurd_body_length_is_truncation_not_overflow() {
    // Found by fuzzing: a declared body length near u64::MAX overflowed the
    // arithmetic that reports how many bytes were needed.
    let header = Header {
        compressed: false,
        python: CPYTHON_311,
        target: WireTarget::Native,
        protocol: 5,
        writer_version: "0.1.0".into(),
        payload_len: 0,
        body_len: u64::MAX,
        digest: [0; DIGEST_LEN],
        signature: None,
    };
    let frame = header.signed_part(None);
    let error = open(&frame, &OpenOptions::default()).unwrap_err();
    assert_eq!(
        error,
        EnvelopeError::Truncated {
            needed: usize::MAX,
            available: frame.len()
        }
    );
}
