import numpy as np

from golden import networks, synthetic, topk


def test_quantize_saturates_outliers_and_fills_the_range():
    x = np.concatenate([np.linspace(-1, 1, 10000), [50.0]])
    q = synthetic.quantize_max(x, 8)
    assert q.max() == 127 and q.min() >= -128
    assert len(np.unique(q)) > 200


def test_weight_rows_keep_very_different_counts():
    rng = np.random.default_rng(0)
    w = synthetic.weights(rng, 64, 64, 3, 8)
    kept = topk.topk_mask(w, 0.1).reshape(64, -1).sum(axis=1)
    assert kept.std() / kept.mean() > 0.5  # irregular: what makes balancing matter


def test_activations_are_post_relu():
    x = synthetic.activations(np.random.default_rng(0), 2, 8, 4, 8)
    assert x.min() == 0 and 0.2 < (x == 0).mean() < 0.8


def test_gemm_tile_shapes_and_mask():
    layer = networks.ConvShape("c", 8, 16, 3, 1, 1, 4)
    for gemm in networks.GEMMS:
        rng = np.random.default_rng(1)
        s, mask, d = synthetic.gemm_tile(rng, layer, gemm, 0.2, depth=32, columns=8, width=8)
        rows, reduction, _ = layer.gemm(gemm, 1)
        assert s.shape == mask.shape == (rows, min(32, s.shape[1]))
        assert d.shape[0] == s.shape[1] and d.shape[1] <= 8
        assert 0 < mask.mean() < 0.6
