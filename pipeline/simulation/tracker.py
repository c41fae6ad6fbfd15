"""The tracker's sessionization rule, in one small pure place.

A web tracker (the JavaScript on the shop's pages) decides the ``session_id`` before the
event leaves the browser: a user's session ends after 30 minutes without an event, and
the next event starts a new session. The simulation applies exactly this rule to the
events it simulates, so the session ids it emits are what a real tracker would send,
and the session-metrics code downstream can be tested against them.

The boundary is strict: a gap of *more than* 30 minutes starts a new session; a gap of
exactly 30 minutes (1,800,000 ms) continues the current one.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable
from typing import Final

import msgspec

SESSION_TIMEOUT: Final = _dt.timedelta(minutes=30)
SESSION_TIMEOUT_MS: Final = SESSION_TIMEOUT // _dt.timedelta(milliseconds=1)


def starts_new_session(previous_ms: int | None, current_ms: int) -> bool:
    """True when an event at ``current_ms`` opens a new session after one at ``previous_ms``."""
    return previous_ms is None or current_ms - previous_ms > SESSION_TIMEOUT_MS


class Attribution(msgspec.Struct, frozen=True, gc=False):
    """Where a session came from; carried unchanged on every event of the session.

    A ``gc=False`` Struct rather than a NamedTuple: every user's session state holds one,
    and a tuple that contains a GC-tracked object stays tracked itself. With a million
    remembered users that difference decides how long each full garbage collection takes.
    """

    channel: str
    referrer: str | None
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None


DIRECT: Final = Attribution("direct", None, None, None, None)


SessionState = tuple[int, str, Attribution]
"""(time of the user's latest event in ms, current session id, the session's attribution)."""


def advance(
    state: SessionState | None, at_ms: int, landing: Attribution | None, new_session_id: Callable[[], str]
) -> SessionState:
    """The tracker rule itself: a user's session state after an event at ``at_ms``.

    ``landing`` is the attribution of a new visit's first event: it is used only if that
    event actually starts a session; an event continuing a session keeps the session's
    attribution, and a session reopened mid-visit after an idle gap is direct (no
    referrer, no campaign), which is what a tracker sees on a page left open.
    """
    if state is None or at_ms - state[0] > SESSION_TIMEOUT_MS:
        return (at_ms, new_session_id(), landing or DIRECT)
    if at_ms < state[0]:
        raise ValueError("events of one user must be offered in time order")
    return (at_ms, state[1], state[2])


class SessionTracker:
    """Session state per user, as the in-browser tracker keeps it (pure, in memory).

    ``assign`` applies ``advance`` for one event. A caller that produces many events of
    one user in a row (the engine, during a visit) may ``checkout`` the user's state,
    apply ``advance`` itself, and ``checkin`` the result afterwards: same rule, one dict
    access per visit instead of per event.

    State is kept only for users active in the last ``SESSION_TIMEOUT``; ``prune``
    forgets the rest, so memory stays bounded by the number of recently active users.
    """

    def __init__(self, new_session_id: Callable[[], str]) -> None:
        self.new_session_id = new_session_id
        # Tuples of immutable values fall out of the cyclic GC's tracking; millions of
        # small mutable objects would not.
        self._users: dict[str, SessionState] = {}

    def assign(self, user_id: str, at_ms: int, landing: Attribution | None) -> tuple[str, Attribution]:
        """The (session_id, attribution) for an event of ``user_id`` at ``at_ms``."""
        state = advance(self._users.get(user_id), at_ms, landing, self.new_session_id)
        self._users[user_id] = state
        return state[1], state[2]

    def checkout(self, user_id: str) -> SessionState | None:
        """Take a user's state out (None if unknown or forgotten) while the caller advances it."""
        return self._users.pop(user_id, None)

    def checkin(self, user_id: str, state: SessionState) -> None:
        """Put back the state returned by the caller's last ``advance``."""
        self._users[user_id] = state

    def last_seen_ms(self, user_id: str) -> int | None:
        """When the user's latest event happened, if the tracker still remembers them."""
        state = self._users.get(user_id)
        return None if state is None else state[0]

    def prune(self, now_ms: int) -> None:
        """Forget users whose next event would open a new session anyway."""
        cutoff = now_ms - SESSION_TIMEOUT_MS
        stale = [user for user, state in self._users.items() if state[0] < cutoff]
        for user in stale:
            del self._users[user]

    def __len__(self) -> int:
        return len(self._users)
