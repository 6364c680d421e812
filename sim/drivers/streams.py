"""cocotb drivers and monitors for Amaranth ``lib.stream`` ports, with random stalls.

An Amaranth stream port ``x`` appears in Verilog as ``x__valid``, ``x__ready`` and
``x__payload``. :class:`StreamSource` drives one, :class:`StreamSink` receives one; both take a
stall probability and a seeded ``random.Random``. The sink also checks the stream rules every
cycle: once ``valid`` is high it stays high, with the payload unchanged, until ``ready``.

Payloads are plain integers (the packed bits); testbenches pack and unpack fields themselves.

Sampling discipline: values are driven right after a rising edge and sampled in the ``ReadOnly``
phase of the same time step, so a transfer seen there happens at the next rising edge.

Idle cycles cost no Python: a source with nothing queued sleeps until :meth:`StreamSource.send`,
a source whose beat is refused sleeps until ``ready`` rises, and a sink that never stalls sleeps
until ``valid`` rises. Cycle numbers therefore come from the simulation time.
"""

import collections
import random

import cocotb
from cocotb.triggers import Event, First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_time

from ..testbenches.util import CLOCK_PERIOD_NS

__all__ = ["StreamSource", "StreamSink", "ProtocolError"]


class ProtocolError(AssertionError):
    """A stream broke the valid/ready rules."""


def _port(dut, prefix, name, required=True):
    handle = getattr(dut, f"{prefix}__{name}", None)
    if handle is None and required:
        raise AttributeError(f"{dut._name} has no port {prefix}__{name}")
    return handle


def _unsigned(value):
    """The unsigned integer of a resolved cocotb value (a one-bit port gives a ``Logic``)."""
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


def current_cycle():
    """The clock cycle the simulation is in (``sim.testbenches.util``'s clock period)."""
    return int(get_sim_time("ns") // CLOCK_PERIOD_NS)


def _probability(name, value):
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), not {value}")
    return value


class StreamSource:
    """Drive a stream input of the design from a queue of integer payloads.

    Parameters
    ----------
    dut : cocotb handle
    prefix : str
        Port name (``"i"`` for ``i__valid`` / ``i__ready`` / ``i__payload``).
    clock : cocotb handle
    rng : random.Random
    stall : float
        Probability of holding ``valid`` low in a cycle when a payload is waiting.

    Attributes
    ----------
    cycles : list of int
        Cycle number (:func:`current_cycle`) in which each payload was taken.
    """

    def __init__(self, dut, prefix, clock, *, rng=None, stall=0.0):
        self.valid = _port(dut, prefix, "valid")
        self.ready = _port(dut, prefix, "ready", required=False)  # absent if always_ready
        self.payload = _port(dut, prefix, "payload")
        self.clock = clock
        self.rng = rng or random.Random(0)
        self.stall = _probability("stall", stall)
        self.width = len(self.payload)
        self.queue = collections.deque()
        self.sent = 0
        self.cycles = []
        self._idle = Event()
        self._idle.set()
        self._queued = Event()
        self.valid.value = 0
        self.payload.value = 0
        self._task = cocotb.start_soon(self._run())

    def send(self, payloads):
        """Queue integer payloads to send in order."""
        for p in payloads:
            value = int(p)
            if not 0 <= value < (1 << self.width):
                raise ValueError(f"payload {value} does not fit in {self.width} bits")
            self.queue.append(value)
        if self.queue:
            self._idle.clear()
            self._queued.set()

    async def wait_idle(self):
        """Wait until every queued payload has been accepted."""
        await self._idle.wait()

    async def _run(self):
        current = None
        fire = False
        while True:
            await RisingEdge(self.clock)
            if fire:
                self.sent += 1
                self.cycles.append(current_cycle() - 1)  # the cycle it was offered and taken
                current = None
                if not self.queue:
                    self._idle.set()
            if current is None and not self.queue:
                self.valid.value = 0
                self.payload.value = self.rng.getrandbits(self.width)
                fire = False
                self._queued.clear()
                await self._queued.wait()
                continue
            if current is None:
                if self.rng.random() >= self.stall:
                    current = self.queue.popleft()
                    self.valid.value = 1
                    self.payload.value = current
                else:
                    self.valid.value = 0
                    # Garbage on an idle bus catches a design that samples without valid.
                    self.payload.value = self.rng.getrandbits(self.width)
            await ReadOnly()
            fire = current is not None and (self.ready is None or self.ready.value == 1)
            if current is not None and not fire and self.ready.value == 0:
                # Refused: sleep until ready rises; the transfer is at the edge after that.
                await RisingEdge(self.ready)
                await ReadOnly()
                fire = self.ready.value == 1


class StreamSink:
    """Receive a stream output of the design, with random backpressure and protocol checks.

    Parameters
    ----------
    dut, prefix, clock, rng
        As for :class:`StreamSource`.
    stall : float
        Probability of holding ``ready`` low in a cycle.

    Attributes
    ----------
    received : list of int
        Payloads in the order they were transferred.
    cycles : list of int
        Cycle number (counted from this sink's start) of each transfer.
    cycle : int
        The current cycle number, in the same count.
    """

    def __init__(self, dut, prefix, clock, *, rng=None, stall=0.0):
        self.valid = _port(dut, prefix, "valid")
        self.ready = _port(dut, prefix, "ready", required=False)
        self.payload = _port(dut, prefix, "payload")
        self.name = prefix
        self.clock = clock
        self.rng = rng or random.Random(0)
        self.stall = _probability("stall", stall)
        self.received = []
        self.cycles = []
        self.cycle = 0
        self.errors = []
        self._arrival = Event()
        if self.ready is not None:
            self.ready.value = 0
        self._task = cocotb.start_soon(self._run())

    async def wait_for(self, count, *, timeout_cycles):
        """Wait until at least ``count`` payloads have been received.

        Raises
        ------
        AssertionError
            If they have not all arrived within ``timeout_cycles`` clock cycles: the design
            dropped data or deadlocked.
        """
        deadline = current_cycle() + timeout_cycles
        while len(self.received) < count and current_cycle() < deadline:
            self._arrival.clear()
            await First(self._arrival.wait(),
                        Timer((deadline - current_cycle()) * CLOCK_PERIOD_NS, "ns"))
        if len(self.received) < count:
            raise AssertionError(
                f"{self.name}: {len(self.received)} of {count} payloads arrived within "
                f"{timeout_cycles} cycles")

    def check(self):
        """Raise :class:`ProtocolError` if the stream broke a rule at any point."""
        if self.errors:
            raise ProtocolError("; ".join(self.errors[:5]))

    def _error(self, message):
        self.errors.append(message)
        raise ProtocolError(message)

    async def _run(self):
        pending = None  # payload offered but not yet taken
        woken = False
        while True:
            if not woken:
                await RisingEdge(self.clock)
            woken = False
            self.cycle = current_cycle()
            ready = self.rng.random() >= self.stall
            if self.ready is not None:
                self.ready.value = int(ready)
            else:
                ready = True
            await ReadOnly()
            valid = self.valid.value
            if not valid.is_resolvable:
                if pending is not None:
                    self._error(f"valid became {valid} while a payload was pending")
                continue
            if valid == 1:
                payload = self.payload.value
                if not payload.is_resolvable:
                    self._error(f"payload {payload} is not resolvable while valid")
                payload = _unsigned(payload)
                if pending is not None and payload != pending:
                    self._error(f"payload changed from {pending:#x} to {payload:#x} before ready")
                if ready:
                    self.received.append(payload)
                    self.cycles.append(self.cycle)
                    self._arrival.set()
                    pending = None
                else:
                    pending = payload
            elif pending is not None:
                self._error(f"valid dropped before ready while offering {pending:#x}")
            elif self.stall == 0.0:
                # Idle and never stalling: sleep until valid rises (at some clock edge).
                await RisingEdge(self.valid)
                woken = True
