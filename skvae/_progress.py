"""What a fit prints with ``verbose=1``: one epoch table and one progress bar.

skorch's own :class:`~skorch.callbacks.PrintLog` sizes its header by the
first epoch's columns (a term first recorded later, such as the border
term once the warm-up ends, shifts every later row) and colours the best
values with ANSI codes wherever the output goes; its
:class:`~skorch.callbacks.ProgressBar` draws a new bar for every epoch.
"""

import re
import sys

from skorch.callbacks import Callback, PrintLog
from tqdm.auto import tqdm

__all__ = ["EpochTable", "FitProgressBar"]

_ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


def _is_terminal(stream):
    return hasattr(stream, "isatty") and stream.isatty()


class EpochTable(PrintLog):
    """skorch's epoch table with a fixed set of columns and no colours off a terminal.

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
        if net.verbose:
            super().on_epoch_end(net, **kwargs)

    def _sink(self, text, verbose):
        # Through tqdm, so that a progress bar on the terminal stays below the table.
        if verbose:
            tqdm.write(text, file=sys.stdout)


class FitProgressBar(Callback):
    """One bar for the whole training, over its epochs, on a terminal only.

    Redirected output gets the epoch table alone: a bar redrawn into a file
    is only noise.
    """

    def on_train_begin(self, net, **kwargs):
        self.bar_ = tqdm(
            total=net.max_epochs,
            initial=min(len(net.history), net.max_epochs),
            unit="epoch",
            leave=False,
            disable=not _is_terminal(sys.stderr),
        )

    def on_epoch_end(self, net, **kwargs):
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar_.close()
