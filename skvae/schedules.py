"""Loss-weight schedules.

A schedule maps the optimizer step ``step`` out of ``total_steps`` to the
weight of a loss term. Schedules are small scikit-learn style objects: their
parameters are plain ``__init__`` arguments, so ``clone``, ``get_params`` and
``set_params`` work, and a grid search can tune them through the estimator,
e.g. ``{"classification_weight__midpoint": [0.2, 0.5]}``.
"""

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator

__all__ = [
    "BaseSchedule",
    "Constant",
    "CosineDecay",
    "LinearDecay",
    "SigmoidDecay",
    "as_schedule",
    "check_schedule",
]


class BaseSchedule(BaseEstimator):
    """Base class for loss-weight schedules.

    Subclasses implement :meth:`weight_at`, the weight at a fraction
    ``t`` in ``[0, 1]`` of training.
    """

    def __call__(self, step, total_steps):
        """Weight at optimizer step ``step`` of ``total_steps``.

        Steps past ``total_steps`` (for instance when training is continued)
        keep the final weight.
        """
        t = min(max(step / max(total_steps, 1), 0.0), 1.0)
        return float(self.weight_at(t))

    def weight_at(self, t):
        """Weight at the fraction ``t`` in ``[0, 1]`` of training."""
        raise NotImplementedError

    def plot(self, total_steps=1000, *, ax=None, **line_kwargs):
        """Draw the weight over training on a matplotlib axes.

        Parameters
        ----------
        total_steps : int, default=1000
            Number of optimizer steps the x axis spans.
        ax : matplotlib Axes, default=None
            Axes to draw on; a new figure is created when None.
        **line_kwargs : dict
            Passed to ``ax.plot``.

        Returns
        -------
        line : matplotlib Line2D
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots()
        steps = np.arange(total_steps + 1)
        weights = [self(step, total_steps) for step in steps]
        line_kwargs.setdefault("label", repr(self))
        (line,) = ax.plot(steps, weights, **line_kwargs)
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("weight")
        if min(weights) > 0 and max(weights) / min(weights) > 100:
            ax.set_yscale("log")
        return line


class Constant(BaseSchedule):
    """The same weight at every step.

    Parameters
    ----------
    value : float, default=1.0
        The weight.
    """

    def __init__(self, value=1.0):
        self.value = value

    def weight_at(self, t):
        return self.value


class SigmoidDecay(BaseSchedule):
    """A weight that decays from ``start`` to ``end`` along a sigmoid.

    ``w(t) = end + (start - end) * sigmoid(-steepness * (t - midpoint))``,
    with ``t`` the fraction of training done.

    Parameters
    ----------
    start : float, default=100.0
        Weight at the beginning of training (approached for small ``t``).
    end : float, default=0.01
        Weight at the end of training (approached for large ``t``).
    midpoint : float, default=0.5
        Fraction of training at which the weight is halfway between
        ``start`` and ``end``.
    steepness : float, default=10.0
        How sharp the transition is, per unit of training fraction.
    """

    def __init__(self, start=100.0, end=0.01, midpoint=0.5, steepness=10.0):
        self.start = start
        self.end = end
        self.midpoint = midpoint
        self.steepness = steepness

    def weight_at(self, t):
        x = self.steepness * (t - self.midpoint)
        # Written to avoid overflow of exp() for large |x|.
        if x >= 0:
            s = math.exp(-x) / (1.0 + math.exp(-x))
        else:
            s = 1.0 / (1.0 + math.exp(x))
        return self.end + (self.start - self.end) * s


class _SharedDefault(SigmoidDecay):
    """The estimator's default schedule, one object shared by every instance.

    It refuses changes in place, which would change every other estimator's
    default; the estimator swaps in a private copy before a nested
    ``set_params(classification_weight__...)``. It prints as the
    :class:`SigmoidDecay` it equals.
    """

    def __init__(self, start=100.0, end=0.01, midpoint=0.5, steepness=10.0):
        super().__init__(start=start, end=end, midpoint=midpoint, steepness=steepness)
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(
                f"This schedule is the default classification_weight of every "
                f"DisentangledVAE, so it cannot be changed in place (setting {name!r}). "
                f"Use estimator.set_params(classification_weight__{name}=...), or pass "
                "classification_weight=SigmoidDecay(...) of your own."
            )
        super().__setattr__(name, value)

    def unshared(self):
        """A :class:`SigmoidDecay` equal to this one that may be changed."""
        return SigmoidDecay(**self.get_params())

    def __repr__(self, N_CHAR_MAX=700):
        return repr(self.unshared())


class _StartEndDecay(BaseSchedule):
    """A weight that goes from ``start`` to ``end``; subclasses give the curve."""

    def __init__(self, start=100.0, end=0.01):
        self.start = start
        self.end = end

    def weight_at(self, t):
        return self.end + (self.start - self.end) * self._fraction_left(t)

    def _fraction_left(self, t):
        """How much of the way from ``end`` back to ``start`` is left at ``t``: 1 at 0, 0 at 1."""
        raise NotImplementedError


class LinearDecay(_StartEndDecay):
    """A weight that goes linearly from ``start`` to ``end``.

    Parameters
    ----------
    start : float, default=100.0
        Weight at the beginning of training.
    end : float, default=0.01
        Weight at the end of training.
    """

    def _fraction_left(self, t):
        return 1.0 - t


class CosineDecay(_StartEndDecay):
    """A weight that goes from ``start`` to ``end`` along half a cosine.

    Parameters
    ----------
    start : float, default=100.0
        Weight at the beginning of training.
    end : float, default=0.01
        Weight at the end of training.
    """

    def _fraction_left(self, t):
        return 0.5 * (1.0 + math.cos(math.pi * t))


class _CallableSchedule(BaseSchedule):
    """Adapter for a plain callable ``f(step, total_steps) -> weight``."""

    def __init__(self, func):
        self.func = func

    def __call__(self, step, total_steps):
        return float(self.func(step, total_steps))


def as_schedule(value, name="classification_weight"):
    """Turn a schedule, a number or a callable into a schedule.

    Parameters
    ----------
    value : BaseSchedule, float or callable
        A schedule is returned as is, a number becomes :class:`Constant`,
        a callable ``f(step, total_steps)`` is wrapped.
    name : str
        Parameter name used in the error message.

    Returns
    -------
    schedule : BaseSchedule
    """
    if isinstance(value, BaseSchedule):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return Constant(float(value))
    if callable(value):
        return _CallableSchedule(value)
    raise TypeError(
        f"{name} must be a schedule from skvae.schedules, a number or a "
        f"callable f(step, total_steps) -> float; got {value!r}."
    )


def check_schedule(schedule, steps, total_steps, name="classification_weight"):
    """Check that ``schedule`` gives a finite weight >= 0 at every step.

    Parameters
    ----------
    schedule : callable
        ``f(step, total_steps) -> weight``.
    steps : iterable of int
        Optimizer steps to check.
    total_steps : int
        The schedule's horizon.
    name : str
        Parameter name used in the error message.

    Returns
    -------
    weights : list of float
        The weight at each step.

    Raises
    ------
    ValueError
        At the first step whose weight is negative, NaN, infinite or not a
        number.
    """
    weights = []
    for step in steps:
        weight = schedule(step, total_steps)
        try:
            valid = math.isfinite(weight) and weight >= 0
        except TypeError:
            valid = False
        if not valid:
            raise ValueError(
                f"The {name} schedule returns {weight!r} at optimizer step {step} of "
                f"{total_steps}; every weight must be a finite number >= 0. Nothing "
                "was trained: fix the schedule and fit again."
            )
        weights.append(weight)
    return weights
