"""A tight loop of one operation, for instruction counting under callgrind
when wall-clock time on a shared machine is too noisy to trust.

    valgrind --tool=callgrind python -m benchmarks.loop CASE LIBRARY OP N

OP is dumps, loads or first-loads (loads with nothing kept from earlier
loads: no code object reused, no class found tracked).

Instructions per call = (count at N - count at 0) / N: the difference
cancels the start-up, the imports and building the case.
"""

import sys

from benchmarks.cases import CASES_BY_NAME, LIBRARIES


def main(case_name, library_name, op, calls):
    case = CASES_BY_NAME[case_name]
    library = LIBRARIES[library_name]
    obj = case.build()
    payload, buffers = library.dump(obj, case.out_of_band)
    # Warm: lazy imports, caches, the class tracker. Twice, as flightpickle
    # keeps a code object from its second load on: the loads counted are
    # those of a worker that has loaded the function before.
    library.load(payload, buffers)
    library.load(payload, buffers)
    if op == "dumps":
        for _ in range(calls):
            library.dump(obj, case.out_of_band)
    elif op == "first-loads":
        # As `benchmarks.run`'s "first loads".
        for _ in range(calls):
            library.forget_loads()
            library.load(payload, buffers)
    else:
        for _ in range(calls):
            library.load(payload, buffers)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
