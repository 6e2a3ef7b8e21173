use super::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/src/pickle/testdata/{name}.pkl", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn global(module: &str, name: &str) -> GlobalName {
    GlobalName {
        module: module.into(),
        name: name.into(),
    }
}

fn names(globals: impl IntoIterator<Item = GlobalName>) -> Vec<String> {
    globals.into_iter().map(|g| g.qualified()).collect()
}

#[test]
fn protocol_0_global_call_is_listed_not_run() {
    // The classic hostile pickle: call os.system('echo hi') on load.
    let found = inspect(b"cos\nsystem\n(S'echo hi'\ntR.").unwrap();
    assert_eq!(found.globals, [(global("os", "system"), 1)].into());
    assert_eq!(found.calls, [(global("os", "system"), 1)].into());
    assert_eq!(found.modules, ["os".to_string()].into());
    assert_eq!(found.protocol, None);
}

#[test]
fn stack_global_names_come_from_the_stack_and_the_memo() {
    // Protocol 4: push 'builtins', memoize it, STACK_GLOBAL 'print', then reuse
    // the memoized module string for 'len' and call it.
    let mut pickle = vec![0x80, 4];
    pickle.extend([0x8c, 8]);
    pickle.extend(b"builtins");
    pickle.push(0x94); // MEMOIZE -> 0
    pickle.extend([0x8c, 5]);
    pickle.extend(b"print");
    pickle.push(0x93); // STACK_GLOBAL
    pickle.push(b'0'); // POP
    pickle.extend([b'h', 0]); // BINGET 0: 'builtins'
    pickle.extend([0x8c, 3]);
    pickle.extend(b"len");
    pickle.push(0x93);
    pickle.extend([0x8c, 2]);
    pickle.extend(b"ab");
    pickle.push(0x85); // TUPLE1
    pickle.push(b'R');
    pickle.push(b'.');
    let found = inspect(&pickle).unwrap();
    assert_eq!(found.protocol, Some(4));
    assert_eq!(names(found.globals.keys().cloned()), ["builtins.len", "builtins.print"]);
    assert_eq!(names(found.calls.keys().cloned()), ["builtins.len"]);
    assert_eq!(found.length, pickle.len());
}

#[test]
fn a_nested_code_object_is_a_call_but_not_an_item_of_its_own() {
    // `new_function((fields...), None)`: the shape of a code among another
    // code's constants, which belongs to the function that holds it.
    let mut pickle = vec![0x80, 5];
    pickle.extend([0x8c, 12]);
    pickle.extend(b"flightpickle");
    pickle.extend([0x8c, 13]);
    pickle.extend(b"_new_function");
    pickle.push(0x93); // STACK_GLOBAL
    pickle.extend([b'(', b'K', 1, b't']); // MARK BININT1 1 TUPLE: the fields
    pickle.extend([b'N', 0x86, b'R', b'.']); // NONE TUPLE2 REDUCE STOP
    let found = inspect(&pickle).unwrap();
    assert_eq!(found.calls, [(global("flightpickle", "_new_function"), 1)].into());
    assert!(found.by_value.is_empty(), "{:?}", found.by_value.len());
}

#[test]
fn closure_lists_its_reconstructors_and_imported_modules() {
    // The dense shape the native writer writes now, and the earlier one.
    let shapes = [
        ("closure.native", &["new_function"][..]),
        ("closure.native-v0", &["make_function", "function_setstate"][..]),
    ];
    for (name, expected) in shapes {
        let found = inspect(&fixture(name)).unwrap();
        let reconstructors: Vec<_> = names(found.calls.keys().cloned());
        for reconstructor in expected {
            let qualified = format!("flightpickle._reconstruct.{reconstructor}");
            assert!(reconstructors.contains(&qualified), "{name}: {reconstructors:?}");
        }
        // `json` is imported by name through subimport, not named as a global.
        assert!(found.modules.contains("json"), "{name}: {:?}", found.modules);
        assert!(!found.globals.keys().any(|g| g.module == "json"));
    }
}

#[test]
fn a_recursive_function_is_named_once_and_sized_with_its_state() {
    let pickle = fixture("recursive.native-v1");
    let found = inspect(&pickle).unwrap();
    assert!(
        found.calls.keys().any(|g| g.name == "fill_function"),
        "{:?}",
        found.calls
    );
    assert_eq!(found.by_value.len(), 1, "{:?}", found.by_value);
    assert_eq!(found.by_value[0].name.as_deref(), Some("fibonacci"));
    assert!(found.by_value[0].bytes > pickle.len() / 2);
}

#[test]
fn a_skeleton_filled_by_new_function_is_one_function() {
    let pickle = fixture("recursive.native");
    let found = inspect(&pickle).unwrap();
    let new_function = found.calls.iter().find(|(g, _)| g.name == "_new_function");
    assert_eq!(new_function.map(|(_, count)| *count), Some(2), "{:?}", found.calls);
    assert!(!found.calls.keys().any(|g| g.name.ends_with("fill_function")));
    assert_eq!(found.by_value.len(), 1, "{:?}", found.by_value);
    assert_eq!(found.by_value[0].name.as_deref(), Some("fibonacci"));
    assert!(found.by_value[0].bytes > pickle.len() / 2);
}

#[test]
fn a_flat_state_lists_its_modules() {
    // The module globals as a flat tuple `(global name, module name, ...)`;
    // in the blob shape the global's name is its index in `co_names`.
    for shape in ["native-flat", "native-blob"] {
        let found = inspect(&fixture(&format!("closure.{shape}"))).unwrap();
        assert!(found.modules.contains("json"), "{shape}: {:?}", found.modules);
        assert!(!found.globals.keys().any(|g| g.module == "json"), "{shape}");
        assert_eq!(
            names(found.calls.keys().cloned()),
            ["flightpickle._new_function"],
            "{shape}"
        );
        assert_eq!(found.by_value.len(), 1, "{shape}: {:?}", found.by_value);
        assert_eq!(
            found.by_value[0].name.as_deref(),
            Some("make_adder.<locals>.add"),
            "{shape}"
        );
    }
}

#[test]
fn a_function_recursive_through_its_own_global_is_one_call() {
    for shape in ["native-flat", "native-blob"] {
        let pickle = fixture(&format!("recursive.{shape}"));
        let found = inspect(&pickle).unwrap();
        let new_function = found.calls.iter().find(|(g, _)| g.name == "_new_function");
        assert_eq!(
            new_function.map(|(_, count)| *count),
            Some(1),
            "{shape}: {:?}",
            found.calls
        );
        assert_eq!(found.by_value.len(), 1, "{shape}: {:?}", found.by_value);
        assert_eq!(found.by_value[0].name.as_deref(), Some("fibonacci"), "{shape}");
        assert!(found.by_value[0].bytes > pickle.len() / 2, "{shape}");
    }
}

#[test]
fn by_value_function_is_named_and_sized() {
    for target in ["native", "native-v0", "cloudpickle"] {
        let pickle = fixture(&format!("closure.{target}"));
        let found = inspect(&pickle).unwrap();
        let functions: Vec<_> = found
            .by_value
            .iter()
            .filter(|i| i.kind == ByValueKind::Function)
            .collect();
        assert_eq!(functions.len(), 1, "{target}: {:?}", found.by_value);
        assert_eq!(
            functions[0].name.as_deref(),
            Some("make_adder.<locals>.add"),
            "{target}"
        );
        // Skeleton plus state: most of the pickle, never more than all of it.
        assert!(
            functions[0].bytes > pickle.len() / 2 && functions[0].bytes < pickle.len(),
            "{target}"
        );
    }
}

#[test]
fn by_value_class_enum_and_module_are_named() {
    for target in ["native", "native-v0", "cloudpickle"] {
        let class = inspect(&fixture(&format!("class.{target}"))).unwrap();
        let kinds: Vec<_> = class.by_value.iter().map(|i| (i.kind, i.name.clone())).collect();
        assert!(
            kinds.contains(&(ByValueKind::Class, Some("Shape".into()))),
            "{target}: {kinds:?}"
        );
        assert!(
            kinds.contains(&(ByValueKind::Function, Some("Shape.area".into()))),
            "{target}: {kinds:?}"
        );

        let colour = inspect(&fixture(&format!("enum.{target}"))).unwrap();
        assert_eq!(colour.by_value[0].kind, ByValueKind::Enum);
        assert_eq!(colour.by_value[0].name.as_deref(), Some("Colour"));

        let module = inspect(&fixture(&format!("dynamic_module.{target}"))).unwrap();
        let modules: Vec<_> = module
            .by_value
            .iter()
            .filter(|i| i.kind == ByValueKind::Module)
            .collect();
        assert_eq!(modules.len(), 1, "{target}");
        assert_eq!(modules[0].name.as_deref(), Some("plugins"));
        assert!(module.modules.contains("plugins"));
    }
}

#[test]
fn cloudpickle_target_names_cloudpickle() {
    let found = inspect(&fixture("class.cloudpickle")).unwrap();
    assert!(found.modules.contains("cloudpickle.cloudpickle"));
    assert!(!found.modules.iter().any(|m| m.starts_with("flightpickle")));
}

#[test]
fn every_truncation_is_an_error_not_a_panic() {
    let pickle = fixture("class.native");
    for len in 0..pickle.len() {
        assert!(
            inspect(&pickle[..len]).is_err(),
            "a pickle cut at {len} bytes was accepted"
        );
    }
}

#[test]
fn byte_flips_never_panic() {
    for name in [
        "closure.native",
        "closure.native-v0",
        "class.cloudpickle",
        "dynamic_module.native",
    ] {
        let pickle = fixture(name);
        for at in 0..pickle.len() {
            for value in [0x00, 0x2e, 0x80, 0xff] {
                let mut mutated = pickle.clone();
                mutated[at] = value;
                let _ = inspect(&mutated);
            }
        }
    }
}

#[test]
fn unknown_opcode_names_its_offset() {
    let error = inspect(b"\x80\x05\xff.").unwrap_err();
    assert_eq!(error.offset, 2);
    assert!(error.message.contains("unknown opcode 0xff"));
}

#[test]
fn missing_memo_entry_and_underflow_are_errors() {
    assert!(inspect(b"\x80\x04h\x07.").unwrap_err().message.contains("memo entry 7"));
    assert!(inspect(b"\x80\x04R.").unwrap_err().message.contains("stack underflow"));
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let mut pickle = vec![0x80, 4, b')'];
    pickle.extend(std::iter::repeat_n(0x85, 1_000_000)); // TUPLE1, a million deep
    pickle.push(b'.');
    assert!(inspect(&pickle).is_ok());
}

#[test]
fn huge_declared_lengths_are_truncation() {
    let mut pickle = vec![0x80, 5, 0x8d]; // BINUNICODE8 claiming 2^63 bytes
    pickle.extend((1u64 << 63).to_le_bytes());
    assert!(inspect(&pickle).unwrap_err().message.contains("truncated"));
}

#[test]
fn repeated_state_does_not_inflate_sizes() {
    // Found by fuzzing: a pickle that applies function_setstate to the same
    // function again and again (through the memo) made its size exceed the pickle.
    let pickle = fixture("fuzz-repeated-setstate");
    let found = inspect(&pickle).unwrap();
    assert!(
        found.by_value.iter().all(|item| item.bytes <= found.length),
        "{:?}",
        found.by_value
    );
}

/// `load_sealed(frame)` (or `load_sealed(frame, cache)`) as Python's pickle
/// writes it at protocol 5.
fn load_sealed_call(module: &str, frame: &[u8], cache: Option<bool>) -> Vec<u8> {
    let mut pickle = vec![0x80, 5];
    for text in [module, "load_sealed"] {
        pickle.extend([0x8c, text.len() as u8]);
        pickle.extend(text.as_bytes());
        pickle.push(0x94);
    }
    pickle.extend([0x93, 0x94]);
    pickle.push(b'B');
    pickle.extend((frame.len() as u32).to_le_bytes());
    pickle.extend(frame);
    pickle.push(0x94);
    match cache {
        None => pickle.push(0x85),
        Some(flag) => pickle.extend([if flag { 0x88 } else { 0x89 }, 0x86]),
    }
    pickle.extend([0x94, b'R', 0x94, b'.']);
    pickle
}

#[test]
fn a_load_sealed_call_gives_its_frame() {
    let frame = b"\x89FPK any bytes at all";
    let call = load_sealed_call("flightpickle.sealing", frame, None);
    assert_eq!(sealed_frame(&call).unwrap(), Some(&frame[..]));
    let uncached = load_sealed_call("flightpickle.sealing", frame, Some(false));
    assert_eq!(sealed_frame(&uncached).unwrap(), Some(&frame[..]));
}

#[test]
fn a_protocol_0_global_load_sealed_call_gives_its_frame() {
    let mut pickle = b"cflightpickle.sealing\nload_sealed\nC\x03abc\x85R.".to_vec();
    assert_eq!(sealed_frame(&pickle).unwrap(), Some(&b"abc"[..]));
    pickle[1] = b'g'; // another module
    assert_eq!(sealed_frame(&pickle).unwrap(), None);
}

#[test]
fn pickles_that_do_more_than_open_a_frame_are_not_sealed_calls() {
    // Another callee with the same shape.
    assert_eq!(sealed_frame(&load_sealed_call("os.sealing", b"x", None)).unwrap(), None);
    // A sealed call nested inside something else: the outer call could do anything.
    let inner = load_sealed_call("flightpickle.sealing", b"x", None);
    let mut nested = b"cos\nsystem\n".to_vec();
    nested.extend(&inner[2..inner.len() - 1]);
    nested.extend([0x85, b'R', b'.']);
    assert_eq!(sealed_frame(&nested).unwrap(), None);
    // Two arguments besides the flag, or text instead of bytes.
    assert_eq!(
        sealed_frame(b"cflightpickle.sealing\nload_sealed\nC\x01aC\x01b\x86R.").unwrap(),
        None
    );
    assert_eq!(
        sealed_frame(b"cflightpickle.sealing\nload_sealed\n\x8c\x01a\x85R.").unwrap(),
        None
    );
    // A plain pickle, and the classic hostile one.
    assert_eq!(sealed_frame(&fixture("closure.native")).unwrap(), None);
    assert_eq!(sealed_frame(b"cos\nsystem\n(S'echo hi'\ntR.").unwrap(), None);
}

#[test]
fn a_truncated_sealed_call_is_an_error_not_a_frame() {
    let call = load_sealed_call("flightpickle.sealing", b"frame", None);
    for end in 0..call.len() {
        assert!(sealed_frame(&call[..end]).is_err(), "cut at {end}");
    }
}

#[test]
fn a_pickle_of_one_bytes_object_gives_its_bytes() {
    assert_eq!(
        pickled_bytes(b"\x80\x05\x95\x0c\x00\x00\x00\x00\x00\x00\x00C\x03abc\x94.").unwrap(),
        Some(&b"abc"[..])
    );
    assert_eq!(
        pickled_bytes(b"\x80\x05\x8e\x02\x00\x00\x00\x00\x00\x00\x00hi\x94.").unwrap(),
        Some(&b"hi"[..])
    );
    // Anything more, or text instead of bytes, is not.
    assert_eq!(pickled_bytes(b"C\x01aC\x01b\x86.").unwrap(), None);
    assert_eq!(pickled_bytes(b"\x8c\x01a.").unwrap(), None);
    assert_eq!(pickled_bytes(b"cos\nsystem\n(S'echo hi'\ntR.").unwrap(), None);
}

#[test]
fn make_descriptor_lists_the_builtin_it_calls() {
    // make_descriptor(kind, *parts) calls staticmethod, classmethod or property
    // for kind 0, 1 or 2: a policy sees that call, though no global names it.
    for (kind, wrapper) in [(0, "staticmethod"), (1, "classmethod"), (2, "property")] {
        let pickle = format!("cflightpickle._reconstruct\nmake_descriptor\n(I{kind}\ncbuiltins\nlen\ntR.");
        let found = inspect(pickle.as_bytes()).unwrap();
        let expected = [
            (global("builtins", wrapper), 1),
            (global("flightpickle._reconstruct", "make_descriptor"), 1),
        ];
        assert_eq!(found.calls, expected.into());
        assert!(!found.globals.contains_key(&global("builtins", wrapper)));
    }
}

#[test]
fn builtins_class_is_listed_as_the_builtin_it_names_and_called_as_it() {
    // builtins_class('type') then a call of what it returns: the policy sees
    // the global builtins.type and a call of it, as if the pickle had named it.
    let pickle = b"cflightpickle\n_builtins_class\n(\x8c\x04typetR(\x8c\x01X)}tR.";
    let found = inspect(pickle).unwrap();
    assert_eq!(
        found.globals.get(&global("builtins", "type")),
        Some(&1),
        "{:?}",
        found.globals
    );
    assert!(found.modules.contains("builtins"), "{:?}", found.modules);
    let expected = [
        (global("builtins", "type"), 1),
        (global("flightpickle", "_builtins_class"), 1),
    ];
    assert_eq!(found.calls, expected.into());
    // Elsewhere, or without a name, it is a call like any other.
    for pickle in [
        &b"celsewhere\n_builtins_class\n(\x8c\x04typetR."[..],
        b"cflightpickle\n_builtins_class\n(K\x01tR.",
    ] {
        let found = inspect(pickle).unwrap();
        assert!(
            !found.globals.contains_key(&global("builtins", "type")),
            "{:?}",
            found.globals
        );
    }
}

#[test]
fn reconstructors_are_recognised_in_the_package_where_pickles_name_them_now() {
    // `flightpickle._<name>` since the package became their home; the older
    // `flightpickle._reconstruct.<name>` is recognised by the tests above.
    let pickle = b"cflightpickle\n_subimport\n(\x8c\x04jsontR.";
    let found = inspect(pickle).unwrap();
    assert!(found.modules.contains("json"), "{:?}", found.modules);
    let pickle = b"cflightpickle\n_make_descriptor\n(I2\ncbuiltins\nlen\ntR.";
    let found = inspect(pickle).unwrap();
    assert_eq!(
        found.calls.get(&global("builtins", "property")),
        Some(&1),
        "{:?}",
        found.calls
    );
    // The package's other names (its API) are not reconstructors.
    let pickle = b"cflightpickle\nsubimport\n(\x8c\x04jsontR.";
    let found = inspect(pickle).unwrap();
    assert!(!found.modules.contains("json"), "{:?}", found.modules);
}

#[test]
fn make_descriptor_of_an_unknown_kind_or_module_calls_no_builtin() {
    for pickle in [
        "cflightpickle._reconstruct\nmake_descriptor\n(I9\ncbuiltins\nlen\ntR.",
        "cflightpickle._reconstruct\nmake_descriptor\n(S'2'\ncbuiltins\nlen\ntR.",
        "celsewhere\nmake_descriptor\n(I2\ncbuiltins\nlen\ntR.",
    ] {
        let found = inspect(pickle.as_bytes()).unwrap();
        assert_eq!(found.calls.len(), 1, "{pickle}: {:?}", found.calls);
    }
}

#[test]
fn a_native_class_body_calls_its_descriptors_through_one_reconstructor() {
    // Written where the reconstructors live now; their earlier home is
    // checked by the tests of `flightpickle._reconstruct` above.
    let found = inspect(&fixture("descriptors.native")).unwrap();
    let calls = names(found.calls.keys().cloned());
    for name in [
        "flightpickle._make_descriptor",
        "builtins.property",
        "builtins.classmethod",
        "builtins.staticmethod",
    ] {
        assert!(calls.contains(&name.to_string()), "{name}: {calls:?}");
    }
    assert!(
        !found.globals.keys().any(|g| g.module == "builtins"),
        "{:?}",
        found.globals
    );
    assert_eq!(
        found.by_value.first().and_then(|item| item.name.as_deref()),
        Some("Tool")
    );
}
