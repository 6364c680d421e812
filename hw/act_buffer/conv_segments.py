"""The segments of a conv read: which stored bits make each im2col row."""

from amaranth.hdl import Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["SegmentWalk"]


class SegmentWalk(wiring.Component):
    """Steps a conv read's features and output rows, and emits the stored bits each covers.

    The tensor holds ``X~`` (N, C, H, W), its planes in (channel, image) order, every plane's
    bits row by row with nothing between them (:mod:`golden.feature_maps`). For each feature
    ``(c, ky, kx)`` of the read, in order, and each output row ``r = n * out_h + oy`` of its
    range, the input row ``y = oy * stride + ky - padding`` gives a *segment* if it lies in the
    map: its bits from input column ``lo`` to ``hi`` (the columns the output columns reach
    inside the map; every second one at stride 2), the im2col column of its first bit, and the
    feature's row index. A row takes a cycle; a row in the padding gives nothing, and is passed
    over in the cycle of the row before it unless that is the feature's first row or it is
    the feature's last. A feature takes two set-up cycles (one more at a new ``ky``, and one
    more in a "same" stride-1 conv, below); one whose columns all lie in the padding takes the
    first two only.

    A "same" stride-1 conv (``stride`` 1, ``2 * padding == kernel - 1``: every output row and
    column has the index of its input's) takes a cycle per image instead of per row. A stored
    bit's im2col column is then its address less a constant over the whole feature, so the
    feature's rows of one image are one segment: from column ``lo`` of the input row of the
    image's first output row in the read (or of the map's first row) to column ``hi`` of the
    input row of its last (or of the map's last row). Its bits in columns out of ``lo .. hi``
    (the neighbouring rows' ends) are not elements: ``filter`` tells the scan to pass over
    them. An image whose rows give no input row in the map gives nothing. Every image after
    the feature's first has the same span relative to its planes, so the spans' first and last
    bits and columns step by ``height * width`` an image, each in its own register; the first
    image's (which may start mid-image) are set up in a cycle of their own.

    Nothing multiplies or divides in the loop: bit addresses step by ``stride * width`` per
    output row, ``height * width`` per image and ``images * height * width`` per channel. These
    products, and the checks of the command against the tensor, are computed once at the start
    by a shift-and-add multiplier (a cycle per bit of the smaller operand), and the first output
    row's image by repeated subtraction (a cycle per image before it).

    Refused, with ``error`` and no segment: ``kernel`` 0, ``stride`` other than 1 or 2,
    ``padding >= kernel``, any of ``images``, ``height``, ``width``, ``channels``, ``out_rows``
    0, ``out_h`` or ``out_w`` that is not the map's output size, channels past the tensor's
    ``n`` bits, output rows past ``images * out_h``, more rows (``channels * kernel**2``) than
    ``max_rows`` or columns (``out_rows * out_w``) than ``max_cols``.

    Parameters
    ----------
    geometry : :class:`hw.act_buffer.BufferGeometry`

    Attributes
    ----------
    start : Signal, in
        Begin a read of ``conv`` (held until the walk ends) over a tensor of ``n`` bits.
    conv : Signal(conv_layout), in
    n : Signal, in
    o : Out(stream.Signature(segment_layout))
        ``row`` (the feature's index in the read), ``start`` and ``end`` (its first and last
        bits, from the tensor's first), ``col`` (the im2col column of ``start``), ``lo`` and
        ``hi`` (the input columns it covers; ``start`` lies in column ``lo``) and ``filter``
        (the segment spans several rows: only its bits in columns ``lo .. hi`` are elements).
    busy : Signal, out
        The walk runs, or its last segment waits on ``o``.
    error : Signal, out
        The last read was refused (valid once ``busy`` falls).
    """

    def __init__(self, geometry):
        self.geometry = g = geometry
        max_n = g.max_rows * g.max_cols
        self.segment_layout = data.StructLayout({
            "row": range(g.max_rows),
            "start": range(max_n),
            "end": range(max_n),
            "col": range(g.max_cols),
            "filter": 1,
            "lo": range(g.max_cols),
            "hi": range(g.max_cols),
        })
        super().__init__({
            "start": In(1),
            "conv": In(g.conv_layout),
            "n": In(g.count_shape),
            "o": Out(stream.Signature(self.segment_layout)),
            "busy": Out(1),
            "error": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        conv, seg = self.conv, self.o.payload
        max_n = g.max_rows * g.max_cols
        # Products saturate at ``cap`` (above any limit they are checked against), so that
        # their registers stay a bit wider than a tensor's bit count.
        cap_bits = Shape.cast(range(max(max_n, 2 * g.max_cols + 8) + 1)).width + 1
        cap = 1 << cap_bits
        wide = cap_bits + 1

        def saturated(value):
            return Mux(value >= cap, cap, value)

        # The shift-and-add multiplier: product = a * b, a bit of b a cycle.
        mul_a = Signal(wide)
        mul_b = Signal(Shape.cast(range(max_n + 1)).width)
        product = Signal(wide)
        hw_bits = Signal(wide)      # H * W: one plane
        plane_set = Signal(wide)    # N * H * W: one channel's planes
        base = Signal(wide)         # c0 * N * H * W: the first channel's first bit
        span = Signal(wide)         # channels * N * H * W
        rows_total = Signal(wide)   # N * out_h
        kk = Signal(wide)           # kernel ** 2
        feats = Signal(wide)        # channels * kernel ** 2
        columns = Signal(wide)      # out_rows * out_w
        oy_w = Signal(wide)         # oy0 * W
        bad = Signal(16)            # one flag per check, registered
        sh = Signal()               # log2(stride)
        m.d.comb += sh.eq(conv.stride == 2)

        # The first output row's image and row (r0 = n0 * out_h + oy0), and n0 * H * W.
        rem = Signal.like(conv.first_out_row)
        n0 = Signal.like(conv.images)
        img_off0 = Signal(wide)

        # The loop's state. Bit offsets are signed: a row above the map has a negative one.
        sbits = signed(wide + 1)
        chan_base = Signal(sbits)   # bit of plane (c, 0)
        ky_off = Signal(sbits)      # (ky - padding) * W
        img_bit = Signal(sbits)     # bit of row ky - padding of the current image
        row_bit = Signal(sbits)     # bit of column 0 of input row y
        y = Signal(signed(Shape.cast(range(g.max_cols + 1)).width + 4))
        oy = Signal.like(conv.out_h)
        col_base = Signal(Shape.cast(range(max_n + g.max_cols + 1)).width)
        rows_left = Signal.like(conv.out_rows)
        ky = Signal(3)
        kx = Signal(3)
        c_left = Signal.like(conv.channels)
        f = Signal.like(seg.row)
        lo_x = Signal(signed(Shape.cast(range(g.max_cols + 1)).width + 2))
        hi_x = Signal.like(lo_x)
        first_ox = Signal(3)
        x0 = Signal(signed(5))      # kx - padding
        # A feature's columns from registers set once per read, so each of its set-up
        # registers is one adder or one comparison: the last column an output column reaches
        # is ``x0 + reach_off``, inside the map while ``x0 <= x0_max``.
        # (W can reach 2 * max_cols + 6 on a map the walk takes: wider than lo_x.)
        map_x = signed(Shape.cast(range(2 * g.max_cols + 8)).width + 1)
        reach_off = Signal(map_x)  # (out_w - 1) * stride
        x0_max = Signal(map_x)     # W - 1 - reach_off
        w_less_1 = Signal(map_x)   # W - 1
        # Whether kx, ky and the channel are the last, a register each (set with what it
        # compares), so that a feature's end decides its successor from flags.
        kx_last, ky_last, c_last = Signal(), Signal(), Signal()
        # The rows loop's constants, so that the next row and the one after it come from
        # registers through one adder or comparison each: set once per read (from the
        # geometry) or per feature row ky.
        oy_last = Signal(signed(len(oy) + 2))     # out_h - 1
        oy_penult = Signal(signed(len(oy) + 2))   # out_h - 2
        one_row = Signal()                        # out_h == 1
        row_step = Signal(sbits)                  # stride * W
        row_step2 = Signal(sbits)                 # 2 * stride * W
        hw_step = Signal(sbits)                   # H * W + stride * W
        y_low = Signal.like(y)                    # -stride
        y_high = Signal.like(y)                   # H - stride
        kyp = Signal.like(y)                      # ky - padding: an image's first row's y
        kyp_next = Signal.like(y)                 # and its second's
        kyp_pad = Signal()                        # an image's first row lies in the padding
        error = self.error
        # A "same" stride-1 conv (out_h == H, out_w == W): a feature's part in an image is one
        # span of bits, from its first input row to its last. Per feature: the offsets of the
        # span's first bit (when the image's first output row's input row lies above the map)
        # and of its last (up to the image's last row), from the image's row ``ky - padding``;
        # the read's last output row, shifted by ``ky - padding`` rows; and what a bit's address
        # less its column is.
        same = Signal()
        img_top = Signal(sbits)     # bit of row 0 of the current image
        hw_less_w = Signal(sbits)   # H * W - W, once per read
        cols_less_w = Signal(sbits)  # out_rows * W - W, once per read
        steady_off = Signal(sbits)  # an image's span's first bit, from its row ky - padding
        full_part = Signal(sbits)   # full_off - hi_x
        end_part = Signal(sbits)    # img_bit + hi_x (first image)
        full_off = Signal(sbits)    # H * W - W - max(0, (ky - padding) * W) + hi_x
        last_row = Signal(sbits)    # the read's last output row's input row's bit
        col_off = Signal(sbits)     # bit - col, over the whole feature
        col_step = Signal(sbits)    # steady_off - col_off
        end_read = Signal(sbits)    # last_row + hi_x: the read's last bit in this feature
        img_next = Signal(sbits)    # row ky - padding of the image after the current one
        span_start = Signal(sbits)  # the current image's span: first bit,
        span_end_full = Signal(sbits)  # last bit up to the image's last row,
        span_col = Signal(sbits)    # im2col column of the first bit
        # The spans loop's decisions for the current span, registered a cycle ahead, so that
        # no comparison lies between the loop's registers and its output: the span is not empty
        # up to the image's last row (``span_start <= span_end_full``) nor up to the read's
        # last row (``span_start <= end_read``); it ends at ``end_read``; the image is the last.
        # From the second image on, each is one comparison of ``img_next`` with a constant of
        # the feature.
        fits_full = Signal()
        fits_read = Signal()
        ends_at_read = Signal()
        last_image = Signal()
        steady_fits = Signal()          # steady_off <= full_off: every later span fits
        read_less_steady = Signal(sbits)  # end_read - steady_off
        read_less_full = Signal(sbits)    # end_read - full_off
        row_less_hw = Signal(sbits)       # last_row - H * W

        m.d.comb += [x0.eq(kx - conv.padding),
                     same.eq((conv.stride == 1) & ((conv.padding << 1) + 1 == conv.kernel))]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        advance = Signal()
        m.d.comb += advance.eq(~self.o.valid | self.o.ready)

        def multiply(state, dest, following, a, b):
            """A state multiplying into ``dest``; it sets up the next product ``a * b``."""
            with m.State(state):
                m.d.sync += [mul_b.eq(mul_b >> 1),
                             mul_a.eq(saturated(mul_a << 1))]
                with m.If(mul_b[0]):
                    m.d.sync += product.eq(saturated(product + mul_a))
                with m.If(mul_b == 0):
                    m.d.sync += [dest.eq(product), product.eq(0)]
                    if a is not None:
                        m.d.sync += [mul_a.eq(a(product)), mul_b.eq(b)]
                    m.next = following

        def row_setup(chan):
            """Point at the first output row of the read, for channel base ``chan``."""
            m.d.sync += [
                img_top.eq(chan + img_off0),
                img_bit.eq(chan + img_off0 + ky_off),
                row_bit.eq(chan + img_off0 + ky_off + Mux(sh, oy_w << 1, oy_w)),
                y.eq(Mux(sh, rem << 1, rem) + ky - conv.padding),
                oy.eq(rem),
                col_base.eq(0),
                rows_left.eq(conv.out_rows),
                kyp.eq(ky - conv.padding),
                kyp_next.eq(ky - conv.padding + conv.stride),
                kyp_pad.eq((ky < conv.padding) | (ky - conv.padding >= conv.height)),
            ]

        def next_feature():
            """Move to the feature after this one, or end."""
            m.d.sync += f.eq(f + 1)
            with m.If(~kx_last):
                m.d.sync += [kx.eq(kx + 1), kx_last.eq(kx + 2 == conv.kernel)]
                row_setup(chan_base)
                m.next = "FEATURE"
            with m.Elif(~ky_last):
                m.d.sync += [kx.eq(0), kx_last.eq(conv.kernel == 1),
                             ky.eq(ky + 1), ky_last.eq(ky + 2 == conv.kernel),
                             ky_off.eq(ky_off + conv.width)]
                m.next = "NEXT_KY"
            with m.Elif(~c_last):
                m.d.sync += [kx.eq(0), kx_last.eq(conv.kernel == 1),
                             ky.eq(0), ky_last.eq(conv.kernel == 1),
                             c_left.eq(c_left - 1), c_last.eq(c_left == 2),
                             chan_base.eq(chan_base + plane_set),
                             ky_off.eq(-Mux(conv.padding[1], conv.width << 1, 0)
                                       - Mux(conv.padding[0], conv.width, 0))]
                m.next = "NEXT_KY"
            with m.Else():
                m.next = "IDLE"

        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [mul_a.eq(conv.height), mul_b.eq(conv.width), product.eq(0),
                                 error.eq(0)]
                    m.next = "MUL_HW"
            multiply("MUL_HW", hw_bits, "MUL_PLANES", lambda p: p, conv.images)
            multiply("MUL_PLANES", plane_set, "MUL_BASE", lambda p: p, conv.first_channel)
            multiply("MUL_BASE", base, "MUL_SPAN", lambda p: plane_set, conv.channels)
            multiply("MUL_SPAN", span, "MUL_ROWS", lambda p: conv.out_h, conv.images)
            multiply("MUL_ROWS", rows_total, "MUL_KK", lambda p: conv.kernel, conv.kernel)
            multiply("MUL_KK", kk, "MUL_FEATS", lambda p: p, conv.channels)
            multiply("MUL_FEATS", feats, "MUL_COLS", lambda p: conv.out_w, conv.out_rows)
            multiply("MUL_COLS", columns, "CHECK", None, None)

            with m.State("CHECK"):
                h2 = conv.height + (conv.padding << 1)
                w2 = conv.width + (conv.padding << 1)
                checks = [
                    conv.kernel == 0, (conv.stride == 0) | (conv.stride == 3),
                    conv.padding >= conv.kernel,
                    (conv.images == 0) | (conv.height == 0) | (conv.width == 0),
                    (conv.channels == 0) | (conv.out_rows == 0),
                    (conv.out_h == 0) | (conv.out_w == 0),
                    (Mux(sh, (conv.out_h - 1) << 1, conv.out_h - 1) + conv.kernel > h2),
                    (h2 >= Mux(sh, conv.out_h << 1, conv.out_h) + conv.kernel),
                    (Mux(sh, (conv.out_w - 1) << 1, conv.out_w - 1) + conv.kernel > w2),
                    (w2 >= Mux(sh, conv.out_w << 1, conv.out_w) + conv.kernel),
                    base + span > self.n,
                    conv.first_out_row + conv.out_rows > rows_total,
                    feats > g.max_rows,
                    columns > g.max_cols,
                ]
                m.d.sync += [bad[i].eq(check) for i, check in enumerate(checks)]
                m.d.sync += [rem.eq(conv.first_out_row), n0.eq(0), img_off0.eq(0),
                             reach_off.eq(Mux(sh, (conv.out_w - 1) << 1, conv.out_w - 1)),
                             w_less_1.eq(conv.width - 1)]
                m.next = "VERDICT"

            with m.State("VERDICT"):
                with m.If(bad.any()):
                    m.d.sync += error.eq(1)
                    m.next = "IDLE"
                with m.Else():
                    m.next = "DIVIDE"

            with m.State("DIVIDE"):
                # r0 = n0 * out_h + oy0, by repeated subtraction (r0 < N * out_h was checked).
                with m.If(rem >= conv.out_h):
                    m.d.sync += [rem.eq(rem - conv.out_h), n0.eq(n0 + 1),
                                 img_off0.eq(img_off0 + hw_bits)]
                with m.Else():
                    m.d.sync += [mul_a.eq(conv.width), mul_b.eq(rem), product.eq(0)]
                    m.next = "MUL_OYW"
            multiply("MUL_OYW", oy_w, "FIRST", None, None)

            with m.State("FIRST"):
                m.d.sync += [chan_base.eq(base), c_left.eq(conv.channels), ky.eq(0), kx.eq(0),
                             c_last.eq(conv.channels == 1), ky_last.eq(conv.kernel == 1),
                             kx_last.eq(conv.kernel == 1), x0_max.eq(w_less_1 - reach_off),
                             f.eq(0), hw_less_w.eq(hw_bits - conv.width),
                             oy_last.eq(conv.out_h - 1), oy_penult.eq(conv.out_h - 2),
                             one_row.eq(conv.out_h == 1),
                             row_step.eq(Mux(sh, conv.width << 1, conv.width)),
                             row_step2.eq(Mux(sh, conv.width << 2, conv.width << 1)),
                             hw_step.eq(hw_bits + Mux(sh, conv.width << 1, conv.width)),
                             y_low.eq(-conv.stride), y_high.eq(conv.height - conv.stride),
                             cols_less_w.eq(columns - conv.width),
                             ky_off.eq(-Mux(conv.padding[1], conv.width << 1, 0)
                                       - Mux(conv.padding[0], conv.width, 0))]
                m.next = "NEXT_KY"

            with m.State("NEXT_KY"):
                # ky_off (or the channel) has moved: set the rows up from it.
                row_setup(chan_base)
                m.next = "FEATURE"

            with m.State("FEATURE"):
                # The columns of this kx: from the first inside the map (on the stride's
                # phase) to the last an output column reaches inside it.
                with m.If(x0 >= 0):
                    m.d.sync += [lo_x.eq(x0), first_ox.eq(0)]
                with m.Elif(sh):
                    m.d.sync += [lo_x.eq(x0[0]), first_ox.eq((x0[0] - x0) >> 1)]
                with m.Else():
                    m.d.sync += [lo_x.eq(0), first_ox.eq(-x0)]
                m.d.sync += hi_x.eq(Mux(x0 > x0_max, w_less_1, x0 + reach_off))
                m.next = "PHASE"

            with m.State("PHASE"):
                # At stride 2 the last column keeps the first's phase: one less where the
                # parities differ. Whether any column is left compares hi_x itself.
                back = Signal()
                m.d.comb += back.eq(sh & (hi_x[0] ^ x0[0]))
                m.d.sync += hi_x.eq(hi_x - back)
                with m.If(Mux(back, hi_x <= lo_x, hi_x < lo_x)):
                    next_feature()  # no column of this feature lies in the map
                with m.Elif(same):
                    # (At stride 1, hi_x is already the last column.) A row above the map
                    # (y < 0) starts its image's span at the map's first row.
                    m.d.sync += [
                        steady_off.eq(lo_x - Mux(ky_off[-1], ky_off, 0)),
                        full_part.eq(hw_less_w - Mux(ky_off[-1], 0, ky_off)),
                        end_part.eq(img_bit + hi_x),
                        last_row.eq(row_bit + cols_less_w),
                        col_off.eq(row_bit + x0),
                        img_next.eq(img_bit + hw_bits),
                        span_start.eq(Mux(y[-1], img_top, row_bit) + lo_x),
                    ]
                    m.next = "SPAN_SETUP"
                with m.Else():
                    m.next = "ROWS"

            with m.State("SPAN_SETUP"):
                # The first image's span, and the feature's constants.
                end_full_now = end_part + full_part
                end_read_now = last_row + hi_x
                m.d.sync += [
                    full_off.eq(full_part + hi_x),
                    span_end_full.eq(end_full_now),
                    end_read.eq(end_read_now),
                    span_col.eq(span_start - col_off),
                    col_step.eq(steady_off - col_off),
                    fits_full.eq(span_start <= end_full_now),
                    fits_read.eq(span_start <= end_read_now),
                    ends_at_read.eq(end_read_now < end_full_now),
                    last_image.eq(last_row < img_next),
                    steady_fits.eq(steady_off <= full_part + hi_x),
                    read_less_steady.eq(end_read_now - steady_off),
                    read_less_full.eq(last_row - full_part),
                    row_less_hw.eq(last_row - hw_bits),
                ]
                m.next = "SPANS"

            with m.State("SPANS"):
                # One segment per image: from the first output row's input row (or the map's
                # first row) to the image's last output row's (or the map's last row); the
                # columns out of lo_x .. hi_x between are filtered out by the scan.
                # Every register here is one compare or one adder from registers: the next
                # image's span is the image's row ky - padding plus the feature's offsets.
                with m.If(advance):
                    with m.If(fits_full & fits_read):
                        m.d.sync += [self.o.valid.eq(1), seg.row.eq(f),
                                     seg.start.eq(span_start),
                                     seg.end.eq(Mux(ends_at_read, end_read, span_end_full)),
                                     seg.col.eq(span_col),
                                     seg.filter.eq(1), seg.lo.eq(lo_x), seg.hi.eq(hi_x)]
                    with m.If(last_image):
                        next_feature()
                    with m.Else():
                        m.d.sync += [span_start.eq(img_next + steady_off),
                                     span_end_full.eq(img_next + full_off),
                                     span_col.eq(img_next + col_step),
                                     img_next.eq(img_next + hw_bits),
                                     fits_full.eq(steady_fits),
                                     fits_read.eq(img_next <= read_less_steady),
                                     ends_at_read.eq(read_less_full < img_next),
                                     last_image.eq(row_less_hw < img_next)]

            with m.State("ROWS"):
                # The row after this one, and the one after that (taken in the same cycle when
                # the next lies in the padding, so a padding row between two images costs no
                # cycle), each from registers through one adder and a choice.
                wrap = Signal()     # the next row is the next image's first
                wrap2 = Signal()    # the row after it is
                m.d.comb += [wrap.eq(oy == oy_last), wrap2.eq(oy == oy_penult)]
                img_on = img_bit + hw_bits          # the next image's first row
                img_on2 = img_bit + (hw_bits << 1)  # the image after it (one output row each)
                first = (Mux(wrap, 0, oy + 1), Mux(wrap, kyp, y + conv.stride),
                         Mux(wrap, img_on, row_bit + row_step), Mux(wrap, img_on, img_bit))
                second = (
                    Mux(wrap, Mux(one_row, 0, 1), Mux(wrap2, 0, oy + 2)),
                    Mux(wrap, Mux(one_row, kyp, kyp_next), Mux(wrap2, kyp, y + (conv.stride << 1))),
                    Mux(wrap, Mux(one_row, img_on2, img_bit + hw_step),
                        Mux(wrap2, img_on, row_bit + row_step2)),
                    Mux(wrap, Mux(one_row, img_on2, img_on),
                        Mux(wrap2, img_on, img_bit)))
                skip = Signal()  # the next row lies in the padding and is not the feature's end
                m.d.comb += skip.eq(Mux(wrap, kyp_pad, (y < y_low) | (y >= y_high))
                                    & (rows_left >= 3))
                with m.If(advance):
                    with m.If((y >= 0) & (y < conv.height)):
                        m.d.sync += [self.o.valid.eq(1), seg.row.eq(f),
                                     seg.start.eq(row_bit + lo_x), seg.end.eq(row_bit + hi_x),
                                     seg.col.eq(col_base + first_ox), seg.filter.eq(0),
                                     seg.lo.eq(lo_x), seg.hi.eq(hi_x)]
                    with m.If(skip):
                        m.d.sync += [rows_left.eq(rows_left - 2),
                                     col_base.eq(col_base + (conv.out_w << 1)),
                                     oy.eq(second[0]), y.eq(second[1]), row_bit.eq(second[2]),
                                     img_bit.eq(second[3])]
                    with m.Else():
                        m.d.sync += [rows_left.eq(rows_left - 1),
                                     col_base.eq(col_base + conv.out_w),
                                     oy.eq(first[0]), y.eq(first[1]), row_bit.eq(first[2]),
                                     img_bit.eq(first[3])]
                    with m.If(rows_left == 1):
                        next_feature()
        m.d.comb += self.busy.eq(~fsm.ongoing("IDLE") | self.o.valid)
        return m
