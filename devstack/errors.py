"""Errors the devstack CLI turns into one clear line."""

from __future__ import annotations


class DevstackError(Exception):
    """Something the user must fix or look at; the message says what and where."""
