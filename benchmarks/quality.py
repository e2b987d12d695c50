"""Quality measures of a 2-D (or k-D) embedding with a decoder.

Shared by ``run_all.py`` (the quality table) and ``ablation.py`` (the grid
search). Every measure is defined in ``benchmarks/RESULTS.md``:

* head acc -- the estimator's ``predict`` on the test split;
* 5-NN acc -- ``KNeighborsClassifier(5)`` fitted on train latents, scored
  on test latents;
* silhouette -- ``silhouette_score`` of the test latents with test labels;
* recon MSE -- mean squared error per pixel of the test set's
  reconstruction ``decode(encode(X_test))``;
* class-region generation acc -- for each class, decode its latent mean
  plus draws from a Gaussian fitted to the class's training latents; an
  independent judge (``MLPClassifier`` on pixels) must recognise the class;
* border share -- for each of the 45 class pairs, decode 21 points on the
  straight latent path between the two class means; the share of pairs
  whose whole path the judge labels only as one of those two classes.
"""

import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
from sklearn.metrics import silhouette_score  # noqa: E402
from sklearn.neighbors import KNeighborsClassifier  # noqa: E402
from sklearn.neural_network import MLPClassifier  # noqa: E402
from skorch.callbacks import Callback  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# $SKVAE_DATA when set, else the shared data beside the clone; never downloaded.
MNIST_HOME = Path(os.environ.get("SKVAE_DATA") or REPO.parent / "shared" / "data" / "mnist")

N_GENERATED = 50  # decoded samples per class (the mean + 49 draws)
N_PATH = 21  # decoded points per class-pair path


def load_dataset(name, data_home=None):
    """``(X_train, X_test, y_train, y_test)`` of the benchmark splits."""
    if name == "mnist":
        from skvae.datasets import mnist_standard_split

        home = data_home or os.environ.get("SKVAE_DATA") or MNIST_HOME
        return mnist_standard_split(home, download=False)
    if name == "digits":
        from sklearn.model_selection import train_test_split

        from skvae.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return train_test_split(X, y, test_size=0.2, stratify=y, random_state=0)
    raise ValueError(f"unknown dataset {name!r}")


def fit_judge(X_train, y_train, random_state=0, quick=False):
    """The independent classifier on real pixels that judges decoded images.

    ``quick`` trains a small, rough one (for smoke tests only).
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    hidden, max_iter = ((32,), 30) if quick else ((256,), 200)
    judge = MLPClassifier(hidden_layer_sizes=hidden, max_iter=max_iter, random_state=random_state)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return judge.fit(X_train, y_train)


class HeadAccuracy(Callback):
    """skorch callback: the latent head's accuracy on held-out data, per epoch.

    Records ``head_acc`` in the net's history at the end of every epoch;
    ``y`` must be the class indices the net trains on (``0..n_classes-1``).
    """

    def __init__(self, X, y):
        self.X = X
        self.y = y

    def on_epoch_end(self, net, **kwargs):
        import torch

        module = net.module_
        was_training = module.training
        module.eval()
        with torch.inference_mode():
            X = torch.as_tensor(np.asarray(self.X, dtype=np.float32), device=net.device)
            logits = module.classifier(module.encoder(X)[0])
            acc = float((logits.argmax(1).cpu().numpy() == np.asarray(self.y)).mean())
        module.train(was_training)
        net.history.record("head_acc", acc)


def generation_accuracy(Z_train, y_train, decode, judge, random_state=0):
    """Class-region generation accuracy (see the module docstring)."""
    rng = np.random.RandomState(random_state)
    classes = np.unique(y_train)
    hits = []
    for c in classes:
        Zc = Z_train[y_train == c]
        mean = Zc.mean(0)
        cov = np.atleast_2d(np.cov(Zc, rowvar=False)) + 1e-9 * np.eye(Zc.shape[1])
        draws = rng.multivariate_normal(mean, cov, size=N_GENERATED - 1)
        Z = np.vstack([mean, draws])
        hits.append(judge.predict(decode(Z)) == c)
    return float(np.mean(hits))


def judged_paths(Z_train, y_train, decode, judge, pairs):
    """The judge's labels of ``N_PATH`` decoded points on the straight latent
    path from the training mean of ``a`` to that of ``b``, for each pair
    ``(a, b)``: an array of shape (n_pairs, N_PATH)."""
    t = np.linspace(0, 1, N_PATH)[:, None]
    means = {c: Z_train[y_train == c].mean(0) for c in {c for pair in pairs for c in pair}}
    paths = [means[a] + t * (means[b] - means[a]) for a, b in pairs]
    return judge.predict(decode(np.vstack(paths))).reshape(len(pairs), N_PATH)


def border_share(Z_train, y_train, decode, judge):
    """Share of class pairs whose straight latent path stays within the pair."""
    classes = np.unique(y_train)
    pairs = [(classes[a], classes[b]) for a in range(len(classes)) for b in range(a + 1, len(classes))]
    labels = judged_paths(Z_train, y_train, decode, judge, pairs)
    ok = [np.isin(row, pair).all() for row, pair in zip(labels, pairs)]
    return float(np.mean(ok))


def evaluate(encode, decode, data, judge, predict=None):
    """All quality measures of one fitted embedding.

    Parameters
    ----------
    encode : callable X -> Z
    decode : callable Z -> X, or None when the method cannot decode
    data : tuple (X_train, X_test, y_train, y_test)
    judge : fitted classifier on pixels, or None to skip the judged
        measures (generation accuracy, border share)
    predict : callable X -> labels, or None when the method has no head
    """
    X_train, X_test, y_train, y_test = data
    Z_train, Z_test = encode(X_train), encode(X_test)
    row = {
        "head_acc": float(np.mean(predict(X_test) == y_test)) if predict else np.nan,
        "knn5_acc": float(KNeighborsClassifier(5).fit(Z_train, y_train).score(Z_test, y_test)),
        "silhouette": float(silhouette_score(Z_test, y_test)),
    }
    if decode is None:
        row.update(recon_mse=np.nan, generation_acc=np.nan, border_share=np.nan)
    else:
        row["recon_mse"] = float(np.mean((decode(Z_test) - X_test) ** 2))
        if judge is not None:
            row["generation_acc"] = generation_accuracy(Z_train, y_train, decode, judge)
            row["border_share"] = border_share(Z_train, y_train, decode, judge)
    return row


def evaluate_vae(vae, data, judge, supervised=True):
    """Fit a DisentangledVAE (with a per-epoch head callback) and evaluate it."""
    from sklearn.base import clone

    X_train, X_test, y_train, y_test = data
    vae = clone(vae)
    if supervised:
        classes = np.unique(y_train)
        callback = HeadAccuracy(X_test, np.searchsorted(classes, y_test))
        vae.set_params(callbacks=[*(vae.callbacks or []), callback])
    start = time.perf_counter()
    vae.fit(X_train, y_train) if supervised else vae.fit(X_train)
    fit_s = time.perf_counter() - start
    row = evaluate(vae.transform, vae.inverse_transform, data, judge,
                   vae.predict if supervised else None)
    row["fit_s"] = fit_s
    if supervised:
        trace = np.asarray(vae.history_[:, "head_acc"])
        row["head_best"] = float(trace.max())
        row["head_drop"] = float(trace.max() - trace[-1])
        row["best_epoch"] = int(trace.argmax()) + 1
        row["head_trace"] = [round(float(a), 4) for a in trace]
    return row, vae


def make_judged_scorers(judge):
    """GridSearchCV scorers for generation accuracy and border share.

    In a grid search a scorer only sees the validation fold, so the class
    Gaussians and class means come from the validation latents.
    """
    from skvae.metrics import latent_estimator

    def generation(estimator, X, y):
        vae, Xt = latent_estimator(estimator, X)
        return generation_accuracy(vae.transform(Xt), np.asarray(y), vae.inverse_transform, judge)

    def border(estimator, X, y):
        vae, Xt = latent_estimator(estimator, X)
        return border_share(vae.transform(Xt), np.asarray(y), vae.inverse_transform, judge)

    return {"generation": generation, "border": border}
