"""What a notebook user would define and ship: functions and classes that
must travel by value.

The harness registers this module for by-value pickling with both
flightpickle and cloudpickle, which then treat it as they treat
``__main__``: every function and class here is pickled by value, its
globals by name.
"""

import dataclasses
import enum
import math

SCALE = 2.5
OFFSET = 3
LABELS = ("low", "high")
THRESHOLD = 10.0

square = lambda x: x * x  # noqa: E731


def score(x):
    y = math.sqrt(abs(x)) * SCALE + OFFSET
    return LABELS[y > THRESHOLD], round(y, 2)


def make_closure(base, factor):
    def scaled(x):
        return (x + base) * factor * SCALE

    return scaled


closure = make_closure(4, 0.5)


def top_words(text, count=3):
    """A comprehension and a key lambda inside: code objects nested in the
    function's own, as many UDFs have."""
    words = [word.lower() for word in text.split() if word.isalpha()]
    return sorted(set(words), key=lambda word: (-words.count(word), word))[:count]


def fibonacci(n):
    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)


class Account:
    """A small class with the usual kinds of attributes."""

    currency = "EUR"

    def __init__(self, owner, balance=0.0):
        self.owner = owner
        self._balance = balance

    @property
    def balance(self):
        return self._balance

    @classmethod
    def empty(cls, owner):
        return cls(owner)

    @staticmethod
    def rounded(amount):
        return round(amount, 2)

    def deposit(self, amount):
        self._balance += amount
        return self

    def __repr__(self):
        return f"Account({self.owner!r}, {self.balance})"


class Color(enum.Enum):
    RED = 1
    GREEN = 2
    BLUE = 3

    def describe(self):
        return f"{self.name.lower()} ({self.value})"


@dataclasses.dataclass
class Point:
    x: float
    y: float
    label: str = ""

    def norm(self):
        return math.hypot(self.x, self.y)
