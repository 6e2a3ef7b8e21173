"""Open text files travel by content, as in cloudpickle."""

import pickle
import sys

import cloudpickle
import pytest

import flightpickle


def test_text_file_by_content_keeps_position_and_name(tmp_path, load_fresh, protocol):
    path = tmp_path / "notes.txt"
    path.write_text("first\nsecond\n")
    with open(path) as file:
        file.readline()
        data = flightpickle.dumps(file, protocol=protocol)
        assert file.tell() == 6
    check = "result = (type(obj).__name__, obj.read(), obj.name)"
    assert load_fresh(data, check) == ("StringIO", "second\n", str(path))


def test_standard_streams_travel_by_name(run_python):
    script = """
    import pickle, sys, flightpickle
    out, err = pickle.loads(flightpickle.dumps((sys.stdout, sys.stderr)))
    print(out is sys.stdout, err is sys.stderr)
    """
    assert run_python(script).split() == [b"True", b"True"]


def refusal(lib, file):
    with pytest.raises(pickle.PicklingError) as error:
        lib.dumps(file)
    return str(error.value)


def test_refusals_match_cloudpickle(tmp_path):
    # Ours name where the file is, then say what cloudpickle says.
    path = tmp_path / "out.txt"
    with open(path, "w") as write_only:
        assert refusal(flightpickle, write_only) == "Could not pickle obj: " + refusal(cloudpickle, write_only)
        assert "not opened for reading: w" in refusal(flightpickle, write_only)
    closed = open(path)
    closed.close()
    assert refusal(cloudpickle, closed) == "Cannot pickle closed files"
    assert refusal(flightpickle, closed) == "Could not pickle obj: Cannot pickle closed files"
    with open(path) as fake_stdin:
        old, sys.stdin = sys.stdin, fake_stdin
        try:
            assert refusal(flightpickle, fake_stdin) == "Could not pickle obj: Cannot pickle standard input"
        finally:
            sys.stdin = old
