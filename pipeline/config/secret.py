"""A string that will not print itself.

Credentials travel through the program wrapped in ``Secret`` so that a stray log line,
f-string, repr or exception message shows ``'***'`` instead of the value; code that
really needs the value calls ``reveal()`` at the last moment.
"""

from __future__ import annotations


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)
