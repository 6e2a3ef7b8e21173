"""Strings written by text are looked up by the hash `str` keeps in them.

Inside a function's or class's by-value parts a str is memoized by its
text: the memo's text table finds an equal text written earlier. The table
is probed with the hash `str` itself gives the string, read from the str
where CPython keeps it once made (made by the writer when it is not yet).
Whatever that hash is, equal texts must meet at one memo index and unequal
ones never: whether the hash was made before the dump or not, whatever the
string's kind (ASCII, Latin-1, two or four bytes a character), for lone
surrogates, and for a str subclass whose own `__hash__` says anything.
"""

import pickle
import pytest

import flightpickle

PROTOCOLS = [2, 3, 4, 5]
TARGETS = [{}, {"target": "cloudpickle"}]

TEXTS = [
    "plain ascii text",
    "caf\u00e9 cr\u00e8me",  # one byte a character, not ASCII
    "\u4e2d\u6587 name",  # two bytes a character
    "emoji \U0001f600 text",  # four bytes a character
    "\ud800 lone surrogate",
]


def _fresh(text):
    """An equal str that is not the same object, its hash not made yet."""
    copy = "".join([text[:1], text[1:]])
    assert copy == text and copy is not text
    return copy


def _hashed(text):
    copy = _fresh(text)
    hash(copy)
    return copy


# One class for every dump of a test: two classes of one definition get
# different tracking ids, so only the same class pickles to the same bytes.
HOLDER = type("Holder", (), {"__module__": __name__, "__qualname__": "Holder.<by value>"})


def _holder(values):
    """The class that travels by value, with `values` as its body."""
    for name in [name for name in vars(HOLDER) if name.startswith("attr_")]:
        delattr(HOLDER, name)
    for number, value in enumerate(values):
        setattr(HOLDER, f"attr_{number:05}", value)
    return HOLDER


def _body(loaded):
    return [value for name, value in sorted(vars(loaded).items()) if name.startswith("attr_")]


def _encoded(text):
    return text.encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("target", TARGETS)
def test_strings_hashed_or_not_pickle_alike(protocol, target):
    hashed = flightpickle.dumps(_holder([_hashed(text) for text in TEXTS * 2]), protocol=protocol, **target)
    fresh = flightpickle.dumps(_holder([_fresh(text) for text in TEXTS * 2]), protocol=protocol, **target)
    mixed = flightpickle.dumps(
        _holder([_hashed(text) for text in TEXTS] + [_fresh(text) for text in TEXTS]), protocol=protocol, **target
    )
    assert hashed == fresh == mixed
    assert _body(pickle.loads(fresh)) == TEXTS * 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("text", TEXTS)
def test_equal_texts_of_every_kind_are_written_once(protocol, text):
    copies = [_fresh(text), _hashed(text), _fresh(text)]
    payload = flightpickle.dumps(_holder(copies), protocol=protocol)
    assert payload.count(_encoded(text)) == 1
    assert _body(pickle.loads(payload)) == [text] * 3


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_texts_that_differ_in_one_character_stay_apart(protocol):
    # Neighbours in every kind: a table that confused texts by their hash
    # would read one back for the other.
    texts = [_fresh(text) for base in TEXTS for text in (base, base[:-1] + "\u0101", base + " ")]
    texts += [_fresh(text) for text in texts]
    loaded = _body(pickle.loads(flightpickle.dumps(_holder(texts), protocol=protocol)))
    assert loaded == texts


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_hashes_made_by_one_dump_give_the_next_the_same_bytes(protocol):
    values = [_fresh(text) for text in TEXTS * 2]
    holder = _holder(values)
    first = flightpickle.dumps(holder, protocol=protocol)
    # Every string's hash is made now; the next dump only reads them.
    assert flightpickle.dumps(holder, protocol=protocol) == first


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_many_texts_pickle_as_their_copies(protocol):
    # More texts than the table first has room for: it grows, the hashes
    # are kept, and every text is still found again.
    texts = ["name number %d \u00e9\u4e2d" % number for number in range(700)]
    shared = [_fresh(text) for text in texts] + [_hashed(text) for text in texts[::3]]
    by_copies = flightpickle.dumps(_holder(shared), protocol=protocol)
    again = flightpickle.dumps(_holder([_hashed(text) for text in shared]), protocol=protocol)
    assert by_copies == again
    assert _body(pickle.loads(by_copies)) == shared
    assert by_copies.count(_encoded(texts[0])) == 1


class OddlyHashed(str):
    """A str whose own `__hash__` changes at every call."""

    calls = 0

    def __hash__(self):
        OddlyHashed.calls += 1
        return OddlyHashed.calls


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_str_subclasses_with_their_own_hash_stay_apart_from_strs(protocol):
    # A subclass is reduced, not written by text: its own `__hash__` must
    # neither be asked for the text table nor make it confuse the texts.
    values = []
    for text in TEXTS:
        values += [_fresh(text), OddlyHashed(text), _hashed(text), OddlyHashed(text)]
    payload = flightpickle.dumps(_holder(values), protocol=protocol)
    loaded = _body(pickle.loads(payload))
    assert loaded == values
    assert [type(value) for value in loaded] == [type(value) for value in values]
    calls = OddlyHashed.calls
    assert flightpickle.dumps(_holder(values), protocol=protocol) == payload
    assert OddlyHashed.calls == calls
