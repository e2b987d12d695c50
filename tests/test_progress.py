"""What a fit prints: nothing at verbose=0, one bar (or plain lines off a terminal) at 1, the epoch table at 2."""

import io
import re

import pytest

from skvae import _progress
from tiny import tiny_vae


def _fit_verbose(digits, verbose, **params):
    X, y = digits
    return tiny_vae(max_epochs=6, verbose=verbose, class_neighbors=[(0, 8)], warmup_steps=0.4, **params).fit(X, y)


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_epoch_table_at_verbose_2_is_aligned_and_plain_off_a_terminal(digits, capsys):
    _fit_verbose(digits, 2)
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
    assert len(lines) == 8  # the table alone: no bar, no progress lines
    assert "\x1b[" not in out + err  # no colour codes in a file or pipe
    assert "\r" not in out + err and "it/s" not in err  # no progress bars either


def test_verbose_1_off_a_terminal_prints_plain_lines_now_and_then(digits, capsys):
    X, y = digits
    tiny_vae(max_epochs=25, verbose=1).fit(X, y)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    # After the first epoch, every tenth of the epochs (3 of 25) and after the last.
    epochs = [int(re.match(r"epoch (\d+)/25: loss \S+, accuracy [01]\S* \(\d+\.\d s\)$", line)[1]) for line in lines]
    assert epochs == [1, 3, 6, 9, 12, 15, 18, 21, 24, 25]
    assert "\x1b[" not in out + err and "\r" not in out + err and err == ""


def test_verbose_1_on_a_terminal_draws_one_bar_with_loss_and_accuracy(digits, monkeypatch):
    bars = []

    class CountingBar(_progress.tqdm):
        def __init__(self, *args, **kwargs):
            # Redrawn at every epoch, not at most every 0.1 s, to see every postfix.
            super().__init__(*args, **kwargs, mininterval=0, miniters=1)
            bars.append(self)

    terminal = _Terminal()
    monkeypatch.setattr(_progress, "tqdm", CountingBar)
    monkeypatch.setattr(_progress.sys, "stdout", terminal)
    _fit_verbose(digits, 1)
    assert len(bars) == 1 and bars[0].total == 6 and bars[0].n == 6
    assert re.fullmatch(r"loss=\S+, accuracy=0\.\d+", bars[0].postfix)
    drawn = terminal.getvalue()
    # One line, redrawn, and cleared at the end.
    assert "6/6" in drawn and "loss=" in drawn and "accuracy=" in drawn and "\n" not in drawn
    assert "train_loss" not in drawn  # no epoch table at verbose=1


def test_warm_started_fit_continues_the_bar_and_may_turn_it_on(digits, monkeypatch):
    bars = []

    class CountingBar(_progress.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(_progress, "tqdm", CountingBar)
    monkeypatch.setattr(_progress.sys, "stdout", _Terminal())
    X, y = digits
    vae = tiny_vae(max_epochs=2, warm_start=True).fit(X, y)
    assert bars == []
    vae.set_params(max_epochs=5, verbose=1).fit(X, y)
    assert len(bars) == 1 and bars[0].total == 5 and bars[0].n == 5


@pytest.mark.parametrize("verbose", [0, False])
def test_quiet_fit_prints_nothing(digits, capsys, verbose):
    X, y = digits
    tiny_vae(verbose=verbose).fit(X, y)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_the_bar_is_a_widget_in_jupyter_and_text_where_carriage_returns_redraw(monkeypatch):
    notebook = pytest.importorskip("tqdm.notebook")
    assert not _progress._in_notebook()  # no Jupyter kernel here
    # What tqdm.auto is in Jupyter with ipywidgets.
    monkeypatch.setattr(_progress, "tqdm", type("AutoBar", (notebook.tqdm_notebook,), {}))
    assert _progress._in_notebook()
    # Jupyter's output streams (ipykernel) show a line redrawn with "\r" as one line.
    kernel_stream = type("OutStream", (io.StringIO,), {"__module__": "ipykernel.iostream"})()
    assert _progress._redraws_lines(kernel_stream) and _progress._redraws_lines(_Terminal())
    assert not _progress._redraws_lines(io.StringIO())
