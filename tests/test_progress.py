"""What a fit prints with verbose=1: an aligned epoch table, one bar per fit on a terminal."""

import re

import pytest

from skvae import _progress
from tiny import tiny_vae


def _fit_verbose(digits, **params):
    X, y = digits
    return tiny_vae(max_epochs=6, verbose=1, class_neighbors=[(0, 8)], warmup_steps=0.4, **params).fit(X, y)


def test_epoch_table_is_aligned_and_plain_off_a_terminal(digits, capsys):
    _fit_verbose(digits)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    header, rule, rows = lines[0], lines[1], lines[2:8]
    assert "train_border" in header  # recorded only after the warm-up, shown from the start
    columns = [match.span() for match in re.finditer(r"-+", rule)]
    assert len(columns) == len(header.split())
    for row in rows:
        # Every value ends where its column's rule ends, also once the border term appears.
        assert len(row) == len(rule), row
        for value in re.finditer(r"\S+", row):
            assert any(start <= value.start() and value.end() == end for start, end in columns), row
    assert "\x1b[" not in out + err  # no colour codes in a file or pipe
    assert "\r" not in out + err and "it/s" not in err  # no progress bars either


def test_one_progress_bar_per_fit_on_a_terminal(digits, capsys, monkeypatch):
    bars = []

    class CountingBar(_progress.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(_progress, "tqdm", CountingBar)
    monkeypatch.setattr(_progress, "_is_terminal", lambda stream: True)
    _fit_verbose(digits)
    assert len(bars) == 1 and bars[0].total == 6 and bars[0].n == 6


@pytest.mark.parametrize("verbose", [0])
def test_quiet_fit_prints_nothing(digits, capsys, verbose):
    X, y = digits
    tiny_vae(verbose=verbose).fit(X, y)
    out, err = capsys.readouterr()
    assert out == ""
