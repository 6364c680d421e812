"""What keeping the partial sums saves: ``python -m sim.bench_logic_product``.

Synthesises one registered ``width x width`` product built by :func:`hw.arith.logic_product`
(the products of ``--pe-lut-products``) with Yosys for ECP5 and iCE40, with its partial sums
kept (as the PE array builds them) and unmarked (Yosys then merges them into one carry-save
sum), and prints the cells of each.
"""

import sys

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.arith import logic_product

from golden.cli import OneLineParser
from rtl_gen.yosys import SynthesisFailed, synth_stats

__all__ = ["RegisteredProduct", "main"]


class RegisteredProduct(wiring.Component):
    """``product = a * b`` from :func:`hw.arith.logic_product`, between registers.

    Parameters
    ----------
    width : int
        Width of ``a`` and ``b``.
    keep : bool
        Passed to :func:`hw.arith.logic_product`.
    """

    def __init__(self, width, *, keep=True):
        self._keep = keep
        super().__init__({"a": In(signed(width)), "b": In(signed(width)),
                          "product": Out(signed(2 * width))})

    def elaborate(self, platform):
        m = Module()
        a, b = Signal.like(self.a), Signal.like(self.b)
        m.d.sync += [a.eq(self.a), b.eq(self.b),
                     self.product.eq(logic_product(m, a, b, keep=self._keep))]
        return m


def main(argv=None):
    parser = OneLineParser(
        prog="python -m sim.bench_logic_product",
        description="What keeping the partial sums saves: synthesises one registered width x "
                    "width logic product with Yosys for ECP5 and iCE40, with its partial sums "
                    "kept and merged, and prints the cells of each.")
    parser.add_argument("--widths", default="8,16",
                        help="operand widths, comma-separated (default: 8,16)")
    args = parser.parse_args(argv)
    try:
        widths = [int(w) for w in args.widths.split(",")]
    except ValueError:
        parser.error(f"--widths must be comma-separated integers, not {args.widths!r}")
    if any(not 2 <= w <= 32 for w in widths):
        parser.error(f"--widths must be between 2 and 32, not {args.widths!r}")
    print("| width | family | partial sums | LUTs | carry cells | FFs | flow |")
    print("|---|---|---|---|---|---|---|")
    for width in widths:
        for family in ("ecp5", "ice40"):
            for keep in (True, False):
                try:
                    stats = synth_stats(RegisteredProduct(width, keep=keep),
                                        f"logic_product_w{width}_{'kept' if keep else 'merged'}",
                                        family)
                except SynthesisFailed as e:
                    sys.exit(f"error: {str(e).splitlines()[0]}")
                print(f"| {width} | {family} | {'kept' if keep else 'merged'} | "
                      f"{stats['luts']} | {stats['carry']} | {stats['ffs']} | {stats['flow']} |",
                      flush=True)


if __name__ == "__main__":
    main()
