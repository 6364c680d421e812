import re

from sim import model_vs_bench


def test_model_agrees_with_the_measured_benchmark(capsys):
    """The README's figure: the cycle model within 2 % on every one of the 168 benchmark jobs."""
    assert model_vs_bench.main([]) == 0
    out = capsys.readouterr().out
    within, total = map(int, re.search(r"within 2 %: (\d+) of (\d+) jobs", out).groups())
    assert total == 168 and within == 168
