"""What a fit prints: one progress bar at ``verbose=1``, the epoch table at ``verbose=2``.

skorch's own :class:`~skorch.callbacks.PrintLog` sizes its header by the
first epoch's columns (a term first recorded later, such as the border
term once the warm-up ends, shifts every later row) and colours the best
values with ANSI codes wherever the output goes; its
:class:`~skorch.callbacks.ProgressBar` draws a new bar for every epoch.

Both print to ``sys.stdout`` as it is when training starts, as
scikit-learn's estimators print their ``verbose`` output.
"""

import math
import re
import sys
import time

from skorch.callbacks import Callback, PrintLog
from tqdm.auto import tqdm

__all__ = ["EpochTable", "FitProgressBar", "TABLE_VERBOSITY"]

#: The smallest ``verbose`` that prints the epoch table instead of the bar.
TABLE_VERBOSITY = 2

#: Off a terminal, a line is printed every this fraction of the epochs.
LINE_EVERY = 0.1

_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


def _is_terminal(stream):
    return hasattr(stream, "isatty") and stream.isatty()


def _in_notebook():
    """Whether tqdm.auto chose its notebook widget (Jupyter with ipywidgets)."""
    return any(base.__module__ == "tqdm.notebook" for base in tqdm.__mro__)


def _redraws_lines(stream):
    """Whether ``stream`` shows a line redrawn with carriage returns as one line:
    a terminal, or a Jupyter output stream (without ipywidgets)."""
    return _is_terminal(stream) or type(stream).__module__.startswith("ipykernel")


class EpochTable(PrintLog):
    """skorch's epoch table with a fixed set of columns and no colours off a terminal.

    Prints at ``verbose >= TABLE_VERBOSITY`` only.

    Parameters
    ----------
    columns : sequence of str, default=()
        History keys shown from the first epoch on, empty until recorded,
        besides those the first epoch has.
    """

    def __init__(self, columns=(), **kwargs):
        super().__init__(**kwargs)
        self.columns = columns

    def _sorted_keys(self, keys):
        return super()._sorted_keys({*keys, *self.columns})

    def format_row(self, row, key, color):
        if key not in row:
            return ""
        formatted = super().format_row(row, key, color)
        if isinstance(formatted, str) and not _is_terminal(sys.stdout):
            formatted = _ANSI_CODE.sub("", formatted)
        return formatted

    def on_epoch_end(self, net, **kwargs):
        # Quiet epochs print nothing, and leave the header to the first loud one.
        if net.verbose >= TABLE_VERBOSITY:
            super().on_epoch_end(net, **kwargs)


def _progress_values(net):
    """The last epoch's loss and head accuracies, by short name, where recorded."""
    last = net.history[-1]
    names = {"train_loss": "loss", "train_accuracy": "accuracy", "valid_accuracy": "valid_accuracy"}
    return {short: last[key] for key, short in names.items() if key in last}


class FitProgressBar(Callback):
    """At ``verbose=1``, one bar for a whole training call, over its epochs.

    The bar's postfix shows the last epoch's loss and head accuracy. On a
    terminal it is tqdm's text bar, in Jupyter tqdm's widget (with
    ipywidgets; its text bar without). Where the output is a file or a
    pipe, a redrawn bar would only be noise: plain lines of the same
    values are printed instead, after the first epoch, every tenth of the
    epochs and after the last, with no control characters.
    """

    def on_train_begin(self, net, **kwargs):
        self.bar_ = self.line_every_ = None
        if net.verbose != 1:
            return
        stream = sys.stdout
        # A partial_fit call past max_epochs trains one more epoch.
        self.total_ = max(net.max_epochs, len(net.history) + 1)
        if _in_notebook() or _redraws_lines(stream):
            self.bar_ = tqdm(
                total=self.total_,
                initial=len(net.history),
                unit="epoch",
                leave=False,
                file=stream,
                dynamic_ncols=True,
            )
        else:
            self.line_every_ = max(1, math.ceil(self.total_ * LINE_EVERY))
            self.start_ = time.perf_counter()
            self.printed_ = None

    def on_epoch_end(self, net, **kwargs):
        values = _progress_values(net)
        if self.bar_ is not None:
            self.bar_.set_postfix({name: f"{value:.4g}" for name, value in values.items()}, refresh=False)
            self.bar_.update(1)
        elif self.line_every_ is not None:
            epoch = len(net.history)
            if epoch == 1 or epoch % self.line_every_ == 0:
                self._print_line(net, values)

    def on_train_end(self, net, **kwargs):
        if self.bar_ is not None:
            self.bar_.close()
        elif self.line_every_ is not None and len(net.history) and self.printed_ != len(net.history):
            self._print_line(net, _progress_values(net))

    def _print_line(self, net, values):
        epoch = len(net.history)
        shown = ", ".join(f"{name} {value:.4g}" for name, value in values.items())
        seconds = time.perf_counter() - self.start_
        print(f"epoch {epoch}/{self.total_}: {shown} ({seconds:.1f} s)", file=sys.stdout, flush=True)
        self.printed_ = epoch
