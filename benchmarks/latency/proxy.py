"""A TCP proxy that delays every byte by a fixed one-way time in each direction.

Why a proxy of our own: the pipeline's three services all speak TLS over long-lived TCP
connections, so a plain byte relay in front of each is enough and TLS passes through
untouched (the client still checks the server's certificate against the address it
dialled: the proxy listens on the same host, only the port differs). ``tc netem`` on the
loopback device would delay every other user of this shared machine too, and no
maintained package on PyPI does this for raw TCP.

What is modelled: propagation delay. A chunk read from one side is written to the other
``one_way_s`` after it arrived, whatever came before it; chunks keep their order and
several may be under way at once (a delay line, not a rate limit), so a round trip
through the proxy costs ``2 x one_way_s`` more while the bandwidth stays that of the
loopback. Not modelled: the TCP handshake itself (the connection to the service is opened
as soon as the client connects; the pipeline's connections are long-lived), loss, jitter.

:class:`DelayLine` is the pure part (what is due when, and when the reader must wait),
tested on its own; :class:`DelayProxy` is the asyncio relay around it, and
:class:`ProxyThread` runs several proxies in one background thread for a benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

CHUNK_BYTES = 65_536
MAX_BUFFERED_BYTES = 64 * 1024 * 1024
"""Bytes one direction of one connection may hold before the proxy stops reading from the
sender: far above a round trip's worth of the pipeline's traffic at 50 ms, so it never
slows the benchmark, but it keeps a stalled receiver from filling the memory."""


class DelayLine:
    """Chunks in arrival order, each due ``delay_s`` after it arrived (the pure part of one direction).

    The clock is the caller's: ``push`` and ``pop_due`` take ``now``, so the order and
    timing rules are tested without sleeping.
    """

    def __init__(self, delay_s: float, max_buffered: int = MAX_BUFFERED_BYTES) -> None:
        if delay_s < 0:
            raise ValueError(f"a delay cannot be negative: {delay_s}")
        if max_buffered < 1:
            raise ValueError(f"the buffer must hold at least one byte: {max_buffered}")
        self.delay_s = delay_s
        self.max_buffered = max_buffered
        self._chunks: deque[tuple[float, bytes]] = deque()
        self.buffered = 0

    def push(self, now: float, chunk: bytes) -> None:
        """A chunk arrived at ``now``; it is due at ``now + delay_s`` (empty chunks are ignored)."""
        if chunk:
            self._chunks.append((now + self.delay_s, chunk))
            self.buffered += len(chunk)

    @property
    def full(self) -> bool:
        """Should the reader stop reading until some chunks are delivered?"""
        return self.buffered >= self.max_buffered

    def next_due(self) -> float | None:
        """When the oldest chunk is due (None if nothing is held)."""
        return self._chunks[0][0] if self._chunks else None

    def pop_due(self, now: float) -> bytes:
        """Every chunk due by ``now``, joined in arrival order (``b""`` if none is)."""
        out: list[bytes] = []
        while self._chunks and self._chunks[0][0] <= now:
            out.append(self._chunks.popleft()[1])
        data = b"".join(out)
        self.buffered -= len(data)
        return data

    def __len__(self) -> int:
        return len(self._chunks)


class Turns:
    """How often the client of one connection spoke again after the server had (the pure part).

    On a request-response connection each such turn is a round trip the client waited for:
    over a whole drain, the count per service says where the added latency goes. Requests
    sent back to back without waiting (Kafka's pipelining) count once, which is the point.
    """

    def __init__(self) -> None:
        self.client_turns = 0
        self._last: str | None = None

    def saw(self, side: str) -> None:
        """Bytes arrived from ``side`` (``"client"`` or ``"server"``)."""
        if side != self._last:
            self._last = side
            if side == "client":
                self.client_turns += 1


@dataclass(frozen=True, slots=True)
class Route:
    """One proxy: listen on ``listen_host:listen_port`` (0: any free port), relay to ``target``."""

    name: str
    listen_host: str
    listen_port: int
    target_host: str
    target_port: int


class DelayProxy:
    """An asyncio TCP relay that delays each direction by ``one_way_s`` (see the module docstring)."""

    def __init__(self, route: Route, one_way_s: float) -> None:
        if one_way_s < 0:
            raise ValueError(f"a delay cannot be negative: {one_way_s}")
        self.route = route
        self.one_way_s = one_way_s
        self.port = route.listen_port
        self.connections = 0
        """Client connections accepted so far (a test reads it to see traffic really went through)."""
        self.turns: list[Turns] = []
        """One per connection: see :class:`Turns`."""
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.route.listen_host, self.route.listen_port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    self.route.target_host, self.route.target_port
                )
            except OSError:
                return  # the client sees the connection closed, as it would see a refused one
            turns = Turns()
            self.turns.append(turns)
            relays = {
                asyncio.ensure_future(self._relay(client_reader, upstream_writer, lambda: turns.saw("client"))),
                asyncio.ensure_future(self._relay(upstream_reader, client_writer, lambda: turns.saw("server"))),
            }
            try:
                # Each direction ends on its own (a half-close); a broken one ends both.
                await asyncio.wait(relays, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for relay in relays:
                    relay.cancel()
                await asyncio.gather(*relays, return_exceptions=True)
                _close(upstream_writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            _close(client_writer)
            self._tasks.discard(task)

    @property
    def client_turns(self) -> int:
        """Round trips the clients of every connection so far waited for (see :class:`Turns`)."""
        return sum(t.client_turns for t in self.turns)

    async def _relay(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, arrived_from: Callable[[], None]
    ) -> None:
        """Copy ``source`` to ``sink`` through a :class:`DelayLine`; half-close ``sink`` at the end."""
        loop = asyncio.get_running_loop()
        line = DelayLine(self.one_way_s)
        arrived = asyncio.Event()
        room = asyncio.Event()
        room.set()
        ended = False

        async def read() -> None:
            nonlocal ended
            try:
                while chunk := await source.read(CHUNK_BYTES):
                    arrived_from()
                    line.push(loop.time(), chunk)
                    arrived.set()
                    if line.full:
                        room.clear()
                        await room.wait()
            finally:
                ended = True
                arrived.set()

        async def write() -> None:
            while True:
                due = line.next_due()
                if due is None:
                    if ended:
                        break
                    arrived.clear()
                    await arrived.wait()
                    continue
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                data = line.pop_due(loop.time())
                if data:
                    sink.write(data)
                    await sink.drain()
                if not line.full:
                    room.set()
            if sink.can_write_eof():
                with contextlib.suppress(OSError):
                    sink.write_eof()

        reader = asyncio.ensure_future(read())
        try:
            await write()
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await reader


def _close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()


class ProxyThread:
    """Several :class:`DelayProxy` in one background event loop; a context manager.

    ``ports`` maps each route's name to the port its proxy listens on (the chosen one
    when the route asked for port 0).
    """

    def __init__(self, routes: Sequence[Route], one_way_s: float) -> None:
        self.proxies = [DelayProxy(route, one_way_s) for route in routes]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="delay-proxy", daemon=True)

    @property
    def ports(self) -> dict[str, int]:
        return {p.route.name: p.port for p in self.proxies}

    def __enter__(self) -> ProxyThread:
        self._thread.start()
        try:
            for proxy in self.proxies:
                asyncio.run_coroutine_threadsafe(proxy.start(), self._loop).result(timeout=10)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._thread.is_alive():
            for proxy in self.proxies:
                asyncio.run_coroutine_threadsafe(proxy.stop(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()
