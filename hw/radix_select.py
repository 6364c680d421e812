"""Exact k-th largest key of a streamed tensor, by radix select over histogram passes."""

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .arith import popcount, sum_tree
from .memory import SimpleDualPortMemory
from .validate import check_int

__all__ = ["RadixSelect", "radix_digits"]


def radix_digits(key_width, radix_bits):
    """``[(lo, hi), ...]``: the key bits each pass ranks, most significant first.

    The first pass takes what is left over at the top, the others ``radix_bits`` each, so a
    16-bit key takes two 8-bit passes and an 8-bit key one.
    """
    passes = -(-key_width // radix_bits)
    digits, hi = [], key_width
    for p in range(passes):
        width = key_width - radix_bits * (passes - 1) if p == 0 else radix_bits
        digits.append((hi - width, hi))
        hi -= width
    return digits


class RadixSelect(wiring.Component):
    """Find the k-th largest of a stream of unsigned keys, exactly, in bounded memory.

    The tensor is streamed ``passes`` times (``ceil(key_width / radix_bits)``). Each pass builds
    a histogram of one digit of the keys, most significant first, over the keys whose higher
    digits equal the ones already found; a scan from the top bin down then finds the bin that
    holds the k-th largest key and how many keys lie above it. After the last pass the digits
    found are the k-th largest key itself. Ties need no special case: the result is a key
    value, and every key equal to it is kept by the comparison that follows.

    Each lane has its own histogram bank (a one-read, one-write memory), so a pass takes
    ``lanes`` keys per cycle with no stall; a bin's count is read, registered, and written back
    plus one two cycles later, with the two increments still in flight forwarded, so repeated
    keys need no stall either. The scan reads the banks bin by
    bin, adds them, and clears each bin behind it, so the next selection starts from zero. It
    takes ``2**digit_bits + 5`` cycles per pass. After reset the banks are cleared once
    (``2**digit_bits`` cycles) before the first command is accepted.

    Parameters
    ----------
    key_width : int
        Width of the unsigned keys (magnitudes), at least 1.
    lanes : int
        Keys per beat, at least 1.
    max_len : int
        Longest tensor, in keys. Counters are wide enough for it; a longer tensor sets
        ``error``.
    radix_bits : int
        Digit width per pass (the histogram has ``2**radix_bits`` bins), 1 to 12.

    Attributes
    ----------
    cmd : In(stream.Signature(cmd_layout))
        ``k``: how many of the largest keys to keep; ``first_pass``: the first digit to rank.
        Keys known to fit in fewer bits skip the passes over their zero top digits, so a
        selector whose keys are sometimes narrow (magnitudes) and sometimes wide (kernel-slice
        norms) shares one radix select. One command per selection.
    keys : In(stream.Signature(keys_layout))
        ``keys``: an array of ``lanes`` keys; ``valid``: one bit per lane (any lanes, none
        allowed); ``last``: the last beat of the tensor. The tensor is sent
        ``passes - first_pass`` times per command.
    result : Out(stream.Signature(result_layout))
        ``threshold``: the k-th largest key (0 when ``keep_none``); ``keep_none``: ``k == 0``
        (keep nothing);
        ``error``: ``k > n``, a tensor longer than ``max_len``, or passes of different
        lengths; ``n``: the tensor length.
    passes : int
        Times the tensor is streamed per selection.
    """

    def __init__(self, *, key_width, lanes, max_len, radix_bits=8):
        check_int("key_width", key_width, 1)
        check_int("lanes", lanes, 1)
        check_int("max_len", max_len, 1)
        check_int("radix_bits", radix_bits, 1, 12)
        self.key_width = key_width
        self.lanes = lanes
        self.max_len = max_len
        self.radix_bits = radix_bits
        self.digits = radix_digits(key_width, radix_bits)
        self.passes = len(self.digits)
        self.digit_bits = max(hi - lo for lo, hi in self.digits)
        self.bins = 1 << self.digit_bits
        # Counts up to max_len need this many bits; one more catches a longer tensor.
        self.count_width = max_len.bit_length() + 1
        self.cmd_layout = data.StructLayout({
            "k": unsigned(max_len.bit_length()),
            "first_pass": range(max(2, self.passes)),  # (never an empty vector)
        })
        self.keys_layout = data.StructLayout({
            "keys": data.ArrayLayout(unsigned(key_width), lanes),
            "valid": unsigned(lanes),
            "last": 1,
        })
        self.result_layout = data.StructLayout({
            "threshold": unsigned(key_width),
            "keep_none": 1,
            "error": 1,
            "n": unsigned(max_len.bit_length()),
        })
        super().__init__({
            "cmd": In(stream.Signature(self.cmd_layout)),
            "keys": In(stream.Signature(self.keys_layout)),
            "result": Out(stream.Signature(self.result_layout)),
        })

    def elaborate(self, platform):
        m = Module()
        cw = self.count_width
        lanes = self.lanes

        banks = []
        for lane in range(lanes):
            mem = SimpleDualPortMemory(shape=unsigned(cw), depth=self.bins)
            m.submodules[f"bank{lane}"] = mem
            wp = mem.write_port()
            rp = mem.read_port()
            banks.append((rp, wp))

        k_zero = Signal()
        k_rem = Signal(cw)  # rank still to find among the keys matching the prefix
        prefix = Signal(self.key_width)  # digits found so far, in place
        pass_index = Signal(range(max(self.passes, 2)))
        first_pass = Signal.like(pass_index)
        n = Signal(cw)
        n_pass = Signal(cw)
        error = Signal()  # a tensor longer than max_len, or passes of different lengths
        missing = Signal()  # fewer than k keys: k > n
        m.d.comb += [
            self.result.payload.threshold.eq(Mux(k_zero, 0, prefix)),
            self.result.payload.keep_none.eq(k_zero),
            self.result.payload.error.eq(error | (missing & ~k_zero)),
            self.result.payload.n.eq(n),
        ]

        # -- histogram pass: read bin (cycle 0), its count registered (cycle 1), bin + 1
        # written (cycle 2). The memories' outputs are slow, so they only feed registers; the
        # two increments still in flight when a bin is read are forwarded to its write.
        hist_valid = Signal(lanes)
        hist_addr = [Signal(self.digit_bits, name=f"hist_addr{lane}") for lane in range(lanes)]
        keys_fire = self.keys.valid & self.keys.ready
        for lane, (rp, wp) in enumerate(banks):
            key = self.keys.payload.keys[lane]
            digit = Signal(self.digit_bits, name=f"digit{lane}")
            match = Signal(name=f"match{lane}")
            with m.Switch(pass_index):
                for p, (lo, hi) in enumerate(self.digits):
                    with m.Case(p):
                        m.d.comb += digit.eq(key[lo:hi])
                        m.d.comb += match.eq(1 if hi == self.key_width
                                             else key[hi:] == prefix[hi:])
            m.d.comb += rp.addr.eq(digit)
            m.d.sync += [
                hist_valid[lane].eq(keys_fire & self.keys.payload.valid[lane] & match),
                hist_addr[lane].eq(digit),
            ]
        read_data = [Signal(cw, name=f"read_data{lane}") for lane in range(lanes)]
        inc_valid = Signal(lanes)
        inc_addr = [Signal(self.digit_bits, name=f"inc_addr{lane}") for lane in range(lanes)]
        m.d.sync += [read_data[lane].eq(rp.data) for lane, (rp, _) in enumerate(banks)]
        m.d.sync += inc_valid.eq(hist_valid)
        m.d.sync += [inc_addr[lane].eq(hist_addr[lane]) for lane in range(lanes)]
        # The increments written one and two cycles ago (not yet seen by the read).
        written = [[(Signal(name=f"w{age}_valid{lane}"),
                     Signal(self.digit_bits, name=f"w{age}_addr{lane}"),
                     Signal(cw, name=f"w{age}_data{lane}")) for age in (1, 2)]
                   for lane in range(lanes)]
        inc_data = [Signal(cw, name=f"inc_data{lane}") for lane in range(lanes)]
        for lane in range(lanes):
            (v1, a1, d1), (v2, a2, d2) = written[lane]
            base = Mux(v1 & (a1 == inc_addr[lane]), d1,
                       Mux(v2 & (a2 == inc_addr[lane]), d2, read_data[lane]))
            m.d.comb += inc_data[lane].eq(base + 1)
            m.d.sync += [v1.eq(inc_valid[lane]), a1.eq(inc_addr[lane]), d1.eq(inc_data[lane]),
                         v2.eq(v1), a2.eq(a1), d2.eq(d1)]

        # -- scan: read bin b (cycle 0); clear it, register its counts (cycle 1); add the
        # banks (cycle 2); check the sum (cycle 3) -------------------------------------------
        scan_addr = Signal(self.digit_bits)
        scan_valid = Signal()
        scan_bin = Signal(self.digit_bits)
        scan_sum = Signal(cw + lanes.bit_length())
        cum = Signal(cw + lanes.bit_length())
        found = Signal()
        found_bin = Signal(self.digit_bits)
        found_rem = Signal(cw)
        read_valid = Signal()
        read_bin = Signal(self.digit_bits)
        sum_valid = Signal()
        sum_bin = Signal(self.digit_bits)
        m.d.sync += [read_valid.eq(scan_valid), read_bin.eq(scan_bin),
                     scan_sum.eq(sum_tree(read_data)), sum_valid.eq(read_valid),
                     sum_bin.eq(read_bin)]

        clear_addr = Signal(self.digit_bits)
        clearing = Signal()

        for lane, (rp, wp) in enumerate(banks):
            with m.If(clearing):
                m.d.comb += [wp.en.eq(1), wp.addr.eq(clear_addr), wp.data.eq(0)]
            with m.Elif(scan_valid):
                m.d.comb += [wp.en.eq(1), wp.addr.eq(scan_bin), wp.data.eq(0)]
            with m.Else():
                m.d.comb += [
                    wp.en.eq(inc_valid[lane]),
                    wp.addr.eq(inc_addr[lane]),
                    wp.data.eq(inc_data[lane]),
                ]

        m.d.sync += scan_valid.eq(0)
        with m.If(sum_valid):
            with m.If(~found & (cum + scan_sum >= k_rem)):
                m.d.sync += [
                    found.eq(1),
                    found_bin.eq(sum_bin),
                    found_rem.eq(k_rem - cum),
                ]
            with m.Else():
                m.d.sync += cum.eq(cum + scan_sum)

        with m.FSM(init="CLEAR"):
            with m.State("CLEAR"):
                m.d.comb += clearing.eq(1)
                m.d.sync += clear_addr.eq(clear_addr + 1)
                with m.If(clear_addr == self.bins - 1):
                    m.next = "IDLE"

            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [
                        k_rem.eq(self.cmd.payload.k),
                        k_zero.eq(self.cmd.payload.k == 0),
                        prefix.eq(0),
                        pass_index.eq(self.cmd.payload.first_pass),
                        first_pass.eq(self.cmd.payload.first_pass),
                        n.eq(0),
                        n_pass.eq(0),
                        error.eq(0),
                        missing.eq(0),
                    ]
                    m.next = "PASS"

            with m.State("PASS"):
                m.d.comb += self.keys.ready.eq(1)
                with m.If(self.keys.valid):
                    count = popcount(self.keys.payload.valid)
                    m.d.sync += n_pass.eq(n_pass + count)
                    with m.If(n_pass + count > self.max_len):
                        m.d.sync += error.eq(1)
                    with m.If(self.keys.payload.last):
                        m.next = "DRAIN"

            with m.State("DRAIN"):
                # The last beat's counts are read in this cycle.
                m.next = "DRAIN_WRITE"

            with m.State("DRAIN_WRITE"):
                # The last beat's increments are written in this cycle.
                m.d.sync += [
                    scan_addr.eq(self.bins - 1),
                    cum.eq(0),
                    found.eq(0),
                    n_pass.eq(0),
                ]
                with m.If(pass_index == first_pass):
                    m.d.sync += n.eq(n_pass)
                with m.Elif(n_pass != n):
                    m.d.sync += error.eq(1)
                m.next = "SCAN"

            with m.State("SCAN"):
                for rp, _ in banks:
                    m.d.comb += rp.addr.eq(scan_addr)
                m.d.sync += [
                    scan_valid.eq(1),
                    scan_bin.eq(scan_addr),
                    scan_addr.eq(scan_addr - 1),
                ]
                with m.If(scan_addr == 0):
                    m.next = "SCAN_END"

            with m.State("SCAN_END"):
                # Bin 0's counts are registered, added and checked in this state's cycles;
                # the outcome is ready in the next state.
                with m.If(sum_valid & (sum_bin == 0)):
                    m.next = "NEXT_PASS"

            with m.State("NEXT_PASS"):
                with m.If(~found):
                    m.d.sync += missing.eq(1)
                with m.Switch(pass_index):
                    for p, (lo, hi) in enumerate(self.digits):
                        with m.Case(p):
                            m.d.sync += prefix[lo:hi].eq(found_bin[:hi - lo])
                m.d.sync += [
                    k_rem.eq(found_rem),
                    pass_index.eq(pass_index + 1),
                ]
                with m.If(pass_index == self.passes - 1):
                    m.next = "RESULT"
                with m.Else():
                    m.next = "PASS"

            with m.State("RESULT"):
                m.d.comb += self.result.valid.eq(1)
                with m.If(self.result.ready):
                    m.next = "IDLE"

        return m
