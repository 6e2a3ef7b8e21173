"""Strings written by text, found again by their address.

Inside a function's or class's by-value parts a str is memoized by its
text. The writer remembers, for the rest of a dump, the address of each str
it wrote that way, and reads a second meeting of that very object back at
its text's index without hashing the text again. That road must give the
bytes the text alone gives: the same str object met many times, and equal
copies of it, pickle alike; a string freed during the dump cannot lend its
address to another; and nothing is remembered from one dump to the next.
"""

import pickle
import sys

import pytest

import flightpickle

PROTOCOLS = [2, 3, 4, 5]
TARGETS = [{}, {"target": "cloudpickle"}]


def _copy(text):
    """An equal str that is not the same object."""
    copy = "".join([text[:1], text[1:]])
    assert copy == text and copy is not text
    return copy


class Tagged(str):
    """A str subclass: reduced, never written by text."""


class Fresh:
    """Reduced to a str made anew at each reduction, dropped after it."""

    def __init__(self, number):
        self.number = number

    def __reduce__(self):
        return str, ("fresh text number %d" % self.number,)


def _holder():
    """A class that travels by value, its body to be set by each test."""
    return type("Holder", (), {"__module__": __name__, "__qualname__": "Holder.<by value>"})


def _set_body(holder, values):
    for name in [name for name in vars(holder) if name.startswith("attr_")]:
        delattr(holder, name)
    for number, value in enumerate(values):
        setattr(holder, f"attr_{number:05}", value)


def _body(loaded):
    return [value for name, value in sorted(vars(loaded).items()) if name.startswith("attr_")]


def _shared_and_copied(texts, repeats):
    shared = [text for text in texts for _ in range(repeats)]
    copied = [_copy(text) for text in shared]
    return shared, copied


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("target", TARGETS)
def test_one_str_met_many_times_pickles_as_equal_copies(protocol, target):
    holder = _holder()
    texts = [_copy("a value met again"), _copy("another"), _copy("x"), _copy("\u00e9t\u00e9 \u4e2d")]
    shared, copied = _shared_and_copied(texts, 5)
    _set_body(holder, shared)
    by_one_object = flightpickle.dumps(holder, protocol=protocol, **target)
    _set_body(holder, copied)
    by_copies = flightpickle.dumps(holder, protocol=protocol, **target)
    assert by_one_object == by_copies
    assert _body(pickle.loads(by_one_object)) == shared


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_interned_strings_pickle_as_copies(protocol):
    holder = _holder()
    texts = [sys.intern("interned_name_for_the_test"), sys.intern("Holder")]
    shared, copied = _shared_and_copied(texts, 3)
    _set_body(holder, shared)
    interned = flightpickle.dumps(holder, protocol=protocol)
    _set_body(holder, copied)
    assert flightpickle.dumps(holder, protocol=protocol) == interned


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_lone_surrogates_met_again_pickle_as_copies(protocol):
    holder = _holder()
    texts = ["\ud800 lone", "\udfff", _copy("plain")]
    shared, copied = _shared_and_copied(texts, 4)
    _set_body(holder, shared)
    by_one_object = flightpickle.dumps(holder, protocol=protocol)
    _set_body(holder, copied)
    assert flightpickle.dumps(holder, protocol=protocol) == by_one_object
    assert _body(pickle.loads(by_one_object)) == shared


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_str_subclasses_keep_their_type_next_to_equal_strs(protocol):
    holder = _holder()
    text = _copy("tagged or not")
    tagged = Tagged(text)
    values = [text, tagged, text, tagged, _copy(text)]
    _set_body(holder, values)
    loaded = _body(pickle.loads(flightpickle.dumps(holder, protocol=protocol)))
    assert loaded == values
    assert [type(value) for value in loaded] == [str, Tagged, str, Tagged, str]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_strings_freed_during_a_dump_lend_no_address(protocol):
    # Each reduction makes a str, written by text, that nothing but the
    # writer holds: were it let go, the next one could be made at its
    # address and be read back as its text.
    holder = _holder()
    _set_body(holder, [Fresh(number) for number in range(300)])
    loaded = _body(pickle.loads(flightpickle.dumps(holder, protocol=protocol)))
    assert loaded == ["fresh text number %d" % number for number in range(300)]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_many_strings_met_again_pickle_as_copies(protocol):
    # More strings than the table of addresses has slots: some are evicted,
    # and found again by their text.
    holder = _holder()
    texts = [_copy("name number %d" % number) for number in range(500)]
    shared = texts + texts[::-1] + texts[::7]
    _set_body(holder, shared)
    by_one_object = flightpickle.dumps(holder, protocol=protocol)
    _set_body(holder, [_copy(text) for text in shared])
    assert flightpickle.dumps(holder, protocol=protocol) == by_one_object
    assert _body(pickle.loads(by_one_object)) == shared


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nothing_is_remembered_between_dumps(protocol):
    def func(a="first default", b="second default"):
        return a, b

    first = flightpickle.dumps(func, protocol=protocol)
    # Other strings, some perhaps made where the first dump's were freed.
    func.__defaults__ = (_copy("third default"), _copy("fourth default"))
    second = flightpickle.dumps(func, protocol=protocol)
    assert pickle.loads(second)() == ("third default", "fourth default")
    func.__defaults__ = (_copy("first default"), _copy("second default"))
    assert flightpickle.dumps(func, protocol=protocol) == first
    assert pickle.loads(first)() == ("first default", "second default")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_str_met_by_text_then_by_identity_pickles_as_before(protocol):
    # Outside by-value parts a str is memoized by identity only: the table
    # of addresses must not answer there, even for a str it holds.
    def func():
        return "outside and inside"

    text = func.__code__.co_consts[1]
    payload = flightpickle.dumps([func, text, text, _copy(text)], protocol=protocol)
    loaded = pickle.loads(payload)
    assert loaded[1:] == [text, text, text]
    assert loaded[1] is loaded[2] and loaded[3] is not loaded[1]
    # In the function, then once for the object met twice, then the copy.
    assert payload.count(text.encode()) == 3
