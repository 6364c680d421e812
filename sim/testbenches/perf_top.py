"""cocotb test: the accelerator's cycle model (:mod:`golden.perf_model`) against the top's
reply cycles, command by command and for products sent back to back, on random shapes and
sparsities with every stream at full rate.

Parameters (``SWAT_TB_PARAMS``): ``config``, ``jobs`` (how many rounds of commands),
``tolerance`` (relative), ``slack`` (cycles: a short command may be off by this much),
``out`` (a JSON file: per command its kind, shape, measured and predicted cycles).

The first THRESHOLD after reset also waits for the selector's histogram to be cleared
(``2**radix_bits`` cycles); a warm-up command takes that before the measurements.
"""

import json

import cocotb
import numpy as np

from golden import numerics, perf_model, topk
from golden import pe_array as golden_pe
from hw.top import RowMode

from ..drivers.accel import AccelDriver
from .util import start_clock_and_reset, tb_params, tb_rng


def _operand(np_rng, shape, width):
    """Integers whose rows have different scales (so top-K keeps different counts per row),
    with some exact zeros."""
    lo, hi = numerics.operand_range(width)
    x = np_rng.standard_normal(shape) * np_rng.lognormal(0, 0.6, size=(shape[0], 1))
    x = np.clip(np.rint(x * hi / 4), lo, hi).astype(np.int64)
    x[np_rng.random(shape) < 0.1] = 0
    return x


async def _setup(dut, name):
    """Reset, and a driver with every stream at full rate; the first THRESHOLD, which waits for
    the histogram clear after reset, is taken before any measurement."""
    params = tb_params()
    await start_clock_and_reset(dut)
    rng = tb_rng(name)
    drv = AccelDriver(dut, params["config"], rng, stall=0.0, short=0.0)
    await drv.threshold(0, [1], 1)
    return params, drv, drv.config, np.random.default_rng(rng.getrandbits(32))


@cocotb.test()
async def model_matches_rtl(dut):
    params, drv, cfg, np_rng = await _setup(dut, "perf_top")
    report = []

    def record(kind, measured, predicted, **shape):
        report.append({"kind": kind, **shape, "measured": int(measured),
                       "predicted": int(predicted)})

    max_features = min(cfg.pe_max_rows, cfg.act_max_rows)
    for job in range(params["jobs"]):
        density = float(np_rng.choice([0.05, 0.1, 0.2, 0.5, 1.0]))
        rows = int(np_rng.integers(1, max_features + 1))
        depth = int(np_rng.integers(1, cfg.tile_depth + 1))
        n = int(np_rng.integers(1, cfg.pe_max_tiles * cfg.pe_cols + 1))
        tiles = -(-n // cfg.pe_cols)
        s = _operand(np_rng, (rows, depth), cfg.width)
        d = _operand(np_rng, (depth, n), cfg.width)

        # Threshold refresh and save of the (feature-major) activations.
        k = topk.topk_k(s.size, density)
        reply = await drv.threshold(0, s, k)
        record("threshold", reply["cycles"], perf_model.threshold_cycles(cfg, s.size),
               n=s.size)
        mask = topk.sent_mask(s, topk.topk_mask(s, density))  # what reaches the PE array
        reply = await drv.save_act(0, 0, s)
        assert not reply["error"], reply
        record("save", reply["cycles"], perf_model.save_act_cycles(cfg, s.size, mask),
               n=s.size)

        shape = {"rows": rows, "depth": depth, "tiles": tiles, "density": density}
        reply, _ = await drv.gemm(s, d, slot=0)
        assert not reply["error"], reply
        record("gemm", reply["cycles"], perf_model.gemm_cycles(cfg, mask, tiles),
               mask=mask.astype(int).tolist(), **shape)
        if job % 3 == 1:
            # The same product with its rows sent longest first: same results, under the
            # operand's own rows, and the cycles of the sorted rows.
            reply, got = await drv.gemm(s, d, slot=0, longest_first=True)
            assert not reply["error"], reply
            want = numerics.gemm(np.where(mask, s, 0), d, cfg.width)
            assert np.array_equal(drv.results_matrix(got, rows, n), want), "longest first"
            order = golden_pe.longest_first(mask.sum(axis=1))
            record("gemm_longest_first", reply["cycles"],
                   perf_model.gemm_cycles(cfg, mask[order], tiles),
                   mask=mask[order].astype(int).tolist(), **shape)
        if job % 3 == 0:
            reply, _ = await drv.gemm(s, d, mode=RowMode.DENSE)
            assert not reply["error"], reply
            record("gemm_dense", reply["cycles"],
                   perf_model.gemm_cycles(cfg, mask, tiles, dense=True),
                   mask=mask.astype(int).tolist(), **shape)
        # The weight gradient's product: the saved rows (feature-major) times ``d``.
        reply, _ = await drv.gemm_saved(0, rows, d, feature_major=True)
        assert not reply["error"], reply
        record("gemm_saved", reply["cycles"],
               perf_model.gemm_saved_cycles(cfg, mask, tiles),
               mask=mask.astype(int).tolist(), **shape)
        await drv.free(0)

    for r in report:
        r["error"] = abs(r["predicted"] - r["measured"]) / r["measured"]
    with open(params["out"], "w") as f:
        json.dump(report, f)
    bad = [r for r in report if r["error"] > params["tolerance"]
           and abs(r["predicted"] - r["measured"]) > params["slack"]]
    worst = max(report, key=lambda r: r["error"])
    cocotb.log.info(f"worst model error {worst['error']:.2%}: {worst['kind']} "
                    f"{worst['measured']} measured, {worst['predicted']} predicted")
    assert not bad, f"model off on {len(bad)} commands, e.g. " + str(
        {k: v for k, v in bad[0].items() if k != "mask"})


@cocotb.test()
async def overlapped_products_match_model(dut):
    """Products sent back to back (sparse, dense and saved-operand ones): each result against
    golden, and each reply's cycle, counted from the first command's transfer, against
    :func:`golden.perf_model.product_sequence`."""
    params, drv, cfg, np_rng = await _setup(dut, "perf_top_overlap")
    max_features = min(cfg.pe_max_rows, cfg.act_max_rows)
    worst, overlapped = 0.0, 0
    for round_ in range(max(1, params["jobs"] // 5)):
        density = float(np_rng.choice([0.05, 0.1, 0.2, 0.5]))
        rows = int(np_rng.integers(1, max_features + 1))
        depth = int(np_rng.integers(1, cfg.tile_depth + 1))
        s = _operand(np_rng, (rows, depth), cfg.width)
        assert not (await drv.threshold(0, s, topk.topk_k(s.size, density)))["error"]
        assert not (await drv.save_act(0, 0, s))["error"]
        mask = topk.sent_mask(s, topk.topk_mask(s, density))
        products, sent, wants = [], [], []
        for _ in range(int(np_rng.integers(2, 6))):
            n = int(np_rng.integers(1, cfg.pe_max_tiles * cfg.pe_cols + 1))
            tiles = -(-n // cfg.pe_cols)
            d = _operand(np_rng, (depth, n), cfg.width)
            kind = np_rng.choice(["gemm", "gemm", "gemm_dense", "gemm_saved"])
            if kind == "gemm":
                sent.append(drv.send_gemm(s, d, slot=0))
                products.append(("gemm", mask, tiles, False))
                wants.append(numerics.gemm(np.where(mask, s, 0), d, cfg.width))
            elif kind == "gemm_dense":
                sent.append(drv.send_gemm(s, d, mode=RowMode.DENSE))
                products.append(("gemm", mask, tiles, True))
                wants.append(numerics.gemm(s, d, cfg.width))
            else:
                sent.append(drv.send_gemm_saved(0, rows, d, feature_major=True))
                products.append(("gemm_saved", mask, tiles, None))
                wants.append(numerics.gemm(np.where(mask, s, 0), d, cfg.width))
        for j, (product, want) in enumerate(zip(sent, wants)):
            reply, got = await drv.finish(product)
            assert not reply["error"], f"round {round_}: product {j}: {reply}"
            assert (drv.results_matrix(got, *want.shape) == want).all(), \
                f"round {round_}: product {j} differs from golden"
        start = drv.cmd.cycles[sent[0].index]
        measured = [drv.reply.cycles[p.index] - start for p in sent]
        predicted = perf_model.product_sequence(cfg, products)
        alone = sum(perf_model.gemm_cycles(cfg, m, t, dense=x) if k == "gemm"
                    else perf_model.gemm_saved_cycles(cfg, m, t) for k, m, t, x in products)
        cocotb.log.info(f"round {round_}: {[k for k, *_ in products]}, replies at {measured}, "
                        f"model {predicted}; one at a time {alone}")
        # Each product's own prediction may be ``slack`` cycles off on a short product; a
        # reply's cycle adds up the products before it.
        for i, (got_cycle, want_cycle) in enumerate(zip(measured, predicted)):
            error = abs(got_cycle - want_cycle) / got_cycle
            worst = max(worst, error)
            assert (error <= params["tolerance"]
                    or abs(got_cycle - want_cycle) <= params["slack"] * (i + 1)), \
                f"round {round_}: reply at {got_cycle}, model {want_cycle}"
        assert measured[-1] <= alone, "the products took longer sent together"
        taken = [drv.cmd.cycles[p.index] for p in sent]
        replied = [drv.reply.cycles[p.index] for p in sent]
        overlapped += sum(t < r for t, r in zip(taken[1:], replied[:-1]))
        await drv.free(0)
    cocotb.log.info(f"worst sequence model error {worst:.2%}; {overlapped} products taken "
                    "before the reply of the one ahead")
    assert overlapped, "no product was taken before the reply of the one ahead"
