"""A module the matrix registers for pickling by value: the loading side
never has it."""

RATE = 7


def scaled(x):
    return x * RATE


class Meter:
    def __init__(self, value):
        self.value = value

    def reading(self):
        return scaled(self.value)
