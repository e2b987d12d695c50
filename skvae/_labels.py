"""Class labels and their indices: the one label encoding of skvae.

Fitting, ``partial_fit``, the class-region methods, the scorers and the
displays all turn labels into indices of ``classes_`` here, with
``unlabeled_label`` (when set) mapped to -1, the code the loss skips.
"""

import numpy as np
from sklearn.utils.multiclass import check_classification_targets

__all__ = ["UNLABELED", "check_classes", "check_unlabeled_label", "classes_of", "encode_labels"]

#: Code of an unlabeled sample.
UNLABELED = -1


def _check_enough_classes(classes, where):
    if len(classes) < 2:
        raise ValueError(
            f"DisentangledVAE needs samples of at least 2 classes to train its latent "
            f"classifier; got 1 class ({classes.tolist()[0]!r}){where}. Pass labels of "
            "several classes, or fit without y for a plain VAE."
        )


def check_unlabeled_label(y, unlabeled_label):
    """Refuse an ``unlabeled_label`` of a type that no value of ``y`` has.

    A string marker never equals a number, nor a number a string: such a
    marker would mark no sample, and the samples it was meant for would
    silently become a class of their own (e.g. ``"-1"`` with ``-1`` in an
    int ``y``).
    """
    if unlabeled_label is None:
        return
    y = np.asarray(y)
    if y.dtype.kind == "O":
        text = [isinstance(value, str) for value in y.tolist()]
        has_text, has_numbers = any(text), not all(text)
    else:
        has_text = y.dtype.kind in "US"
        has_numbers = not has_text
    if isinstance(unlabeled_label, str) and not has_text:
        try:
            advice = f"Pass unlabeled_label={int(unlabeled_label)} to mark the samples labeled {int(unlabeled_label)}"
        except ValueError:
            advice = "Pass the number that marks unlabeled samples in y, e.g. unlabeled_label=-1"
        raise ValueError(
            f"unlabeled_label={unlabeled_label!r} is a string, but the labels in y are "
            f"numbers (dtype {y.dtype}), so it would mark no sample as unlabeled. {advice}."
        )
    if not isinstance(unlabeled_label, str) and not has_numbers:
        raise ValueError(
            f"unlabeled_label={unlabeled_label!r} is a number, but the labels in y are "
            f"strings, so it would mark no sample as unlabeled. Pass "
            f"unlabeled_label={str(unlabeled_label)!r} if y marks them with that string, or "
            f"mark them with the number {unlabeled_label!r} in a y of dtype object, as "
            "scikit-learn's semi-supervised estimators do."
        )


def classes_of(y, unlabeled_label=None):
    """The sorted classes of ``y``, leaving out ``unlabeled_label``.

    Raises a ValueError when no sample is labeled or fewer than 2 classes
    remain.
    """
    y = np.asarray(y)
    labeled = np.ones(len(y), dtype=bool) if unlabeled_label is None else y != unlabeled_label
    if not labeled.any():
        raise ValueError(
            f"All {len(y)} samples are unlabeled (y == {unlabeled_label!r}), so the "
            "latent classifier has nothing to learn from. Label some samples, or call "
            "fit(X) without y for a plain VAE."
        )
    check_classification_targets(y[labeled])
    classes = np.unique(y[labeled])
    _check_enough_classes(classes, "" if labeled.all() else " among the labeled samples")
    return classes


def check_classes(classes, unlabeled_label=None):
    """``classes`` as given to ``partial_fit``: sorted, unique, at least 2."""
    classes = np.asarray(classes)
    check_classification_targets(classes)
    classes = np.unique(classes)
    if unlabeled_label is not None and unlabeled_label in classes.tolist():
        raise ValueError(
            f"classes contains unlabeled_label={unlabeled_label!r}, which marks "
            "unlabeled samples and is no class; leave it out of classes."
        )
    _check_enough_classes(classes, " in classes")
    return classes


def encode_labels(classes, labels, *, unlabeled_label=None, input_name="y"):
    """Indices of ``labels`` in ``classes``; ``unlabeled_label`` becomes -1.

    A bool is a label only of classes that are bools, although ``True == 1``
    and ``False == 0``: ``(True, False)`` does not name the classes 1 and 0.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,)
        The fitted ``classes_``.
    labels : array-like of shape (n_samples,)
        Class labels.
    unlabeled_label : int, str or None
        The value marking an unlabeled sample, if any.
    input_name : str
        Name of ``labels`` in error messages.

    Returns
    -------
    codes : ndarray of shape (n_samples,), dtype int64

    Raises
    ------
    ValueError
        For a label that is not in ``classes``.
    """
    lookup = {label: code for code, label in enumerate(classes.tolist())}
    if unlabeled_label is not None:
        lookup[unlabeled_label] = UNLABELED
    # A list keeps its bools (np.asarray would turn [True, 3] into [1, 3]).
    if isinstance(labels, (list, tuple)):
        values = [value.item() if isinstance(value, np.generic) else value for value in labels]
    else:
        values = np.asarray(labels).tolist()
    bool_classes = all(isinstance(label, bool) for label in classes.tolist())

    def known(value):
        if value not in lookup:
            return False
        return lookup[value] == UNLABELED or isinstance(value, bool) == bool_classes

    # By repr: True and 1 are one key of a set or dict.
    unknown = {repr(value): value for value in values if not known(value)}
    if unknown:
        names = sorted(unknown, key=str)
        if bool_classes:
            hint = " (the classes are bools, which 0 and 1 do not stand for)"
        elif any(isinstance(value, bool) for value in unknown.values()):
            hint = " (True and False do not stand for the classes 1 and 0)"
        else:
            hint = ""
        raise ValueError(
            f"Unknown class label{'s' if len(names) > 1 else ''} {', '.join(names[:10])} "
            f"in {input_name}{hint}: the classes of this DisentangledVAE are "
            f"{classes.tolist()!r} (classes_)"
            + ("" if unlabeled_label is None else f", and {unlabeled_label!r} marks unlabeled samples")
            + "."
        )
    return np.fromiter((lookup[value] for value in values), dtype=np.int64, count=len(values))
