"""Benchmarks of flightpickle against cloudpickle 3.1.2 and plain pickle.

Run them with ``make bench`` (see README.md beside this file).
"""
