"""The memo's table of objects by address.

The writer finds an object met before in a dump by its address, in a table
of its own (open addressing, emptied between dumps by a generation number,
kept per thread for the next dump). For plain data its bytes are the C
pickler's, memo reads included, so `pickle.dumps` is the reference: with
few and with many more objects than the table first has room for, with
objects made and dropped during the dump (their addresses must not be
reused while the table holds them), across dumps that reuse the table,
and when a `Pickler` hands the table on to its next dump.
"""

import io
import pickle

import pytest

import flightpickle

PROTOCOLS = [2, 3, 4, 5]


def _shared_graph(count):
    """`count` lists, each met twice, and tuples holding some of them."""
    items = [[number, str(number)] for number in range(count)]
    pairs = [(items[number], items[-1 - number]) for number in range(0, count, 3)]
    return [items, items[::-1], pairs, pairs[::2]]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("count", [1, 10, 100, 700, 1500])
def test_shared_objects_are_read_back_as_the_c_pickler_does(protocol, count):
    graph = _shared_graph(count)
    payload = flightpickle.dumps(graph, protocol=protocol)
    assert payload == pickle.dumps(graph, protocol=protocol)
    loaded = pickle.loads(payload)
    assert loaded == graph
    assert loaded[0][0] is loaded[1][-1]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_large_dump_then_a_small_one_remember_nothing_of_each_other(protocol):
    # The first leaves a grown table (or none, when it is too large to keep
    # for the next dump); the second must find none of its addresses.
    large = _shared_graph(1500)
    small = _shared_graph(20)
    for graph in [large, small, large, small, _shared_graph(20)]:
        assert flightpickle.dumps(graph, protocol=protocol) == pickle.dumps(graph, protocol=protocol)


class Remade:
    """Reduced to arguments made anew at each reduction, held by nothing
    but the pickle being written: once written, their addresses are free
    for the next ones unless the memo keeps them."""

    def __init__(self, number, parts=None):
        self.number = number

    def __reduce__(self):
        return Remade, (self.number, [self.number, (self.number,)])

    def __eq__(self, other):
        return isinstance(other, Remade) and other.number == self.number

    __hash__ = None


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_objects_made_during_a_dump_lend_no_address(protocol):
    values = [Remade(number) for number in range(3000)]
    payload = flightpickle.dumps(values, protocol=protocol)
    assert payload == pickle.dumps(values, protocol=protocol)
    assert pickle.loads(payload) == values


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_objects_changed_between_dumps_are_written_as_they_are_now(protocol):
    graph = _shared_graph(300)
    first = flightpickle.dumps(graph, protocol=protocol)
    graph[0][5].append("changed")
    graph[2] = graph[2][:10]
    second = flightpickle.dumps(graph, protocol=protocol)
    assert second != first
    assert second == pickle.dumps(graph, protocol=protocol)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("count", [10, 1500])
def test_a_picklers_next_dump_refers_back_to_the_first(protocol, count):
    graph = _shared_graph(count)
    later = [graph[0][0], graph[2][-1], graph[0][count // 2]]

    def both(pickler_class):
        buffer = io.BytesIO()
        pickler = pickler_class(buffer, protocol=protocol)
        pickler.dump(graph)
        pickler.dump(later)
        return buffer.getvalue()

    payload = both(flightpickle.Pickler)
    assert payload == both(pickle.Pickler)
    unpickler = pickle.Unpickler(io.BytesIO(payload))
    loaded_graph, loaded_later = unpickler.load(), unpickler.load()
    assert loaded_later[0] is loaded_graph[0][0]
    assert loaded_later[2] is loaded_graph[0][count // 2]


@pytest.mark.parametrize("protocol", [2, 5])
def test_a_memo_past_the_tables_most_slots_moves_into_a_map_and_reads_back_alike(protocol):
    # 40,000 lists and their 40,000 strings are more objects than the
    # table keeps in slots (it moves them into a map past 32,768), and each
    # list is met twice. Protocol 2 has no frames, so its bytes are pickle's
    # whatever the size; at 5 the loaded graph must keep every sharing.
    graph = _shared_graph(40_000)
    payload = flightpickle.dumps(graph, protocol=protocol)
    if protocol == 2:
        assert payload == pickle.dumps(graph, protocol=protocol)
    loaded = pickle.loads(payload)
    assert loaded == graph
    assert all(first is second for first, second in zip(loaded[0], reversed(loaded[1])))
    assert loaded[2][5][0] is loaded[0][15]
    # The next dump starts from an emptied table, in slots again.
    small = _shared_graph(10)
    assert flightpickle.dumps(small, protocol=protocol) == pickle.dumps(small, protocol=protocol)
