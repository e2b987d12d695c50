"""Quality measures of a 2-D (or k-D) embedding with a decoder.

Shared by ``run_all`` (the quality table), ``ablation`` (the grid search),
``borders``, ``front`` and ``time_to_quality``. Every measure is defined
in ``benchmarks/RESULTS.md``:

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

import time
import warnings

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from skorch.callbacks import Callback

from benchmarks.common import timed
from skvae.metrics import latent_estimator

N_GENERATED = 50  # decoded samples per class (the mean + 49 draws)
N_PATH = 21  # decoded points per class-pair path

#: Parameters that give back the recipe of the first release (before issue 5),
#: with the later additions turned off.
ORIGINAL_RECIPE = dict(
    reconstruction="mse",
    kl="abs",
    class_spacing=None,
    warmup_steps=100,
    classifier_hidden=(10, 10),
    input_dropout=0.0,
)


def original_recipe():
    """The original recipe's parameters, its classification weight included (a new schedule per call)."""
    from skvae.schedules import SigmoidDecay

    return dict(ORIGINAL_RECIPE, classification_weight=SigmoidDecay(start=100.0, end=0.01))


def fit_judge(X_train, y_train, random_state=0, quick=False):
    """The independent classifier on real pixels that judges decoded images.

    ``quick`` trains a small, rough one (for smoke tests only).
    """
    hidden, max_iter = ((32,), 30) if quick else ((256,), 200)
    judge = MLPClassifier(hidden_layer_sizes=hidden, max_iter=max_iter, random_state=random_state)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        return judge.fit(X_train, y_train)


class HeldOutQuality(Callback):
    """skorch callback: head accuracy and reconstruction error on held-out rows after every epoch.

    Records ``test_head`` (the latent head's accuracy; ``y`` must be the
    class indices the net trains on, ``0..n_classes-1``), ``test_recon``
    (mean squared error per feature of the decoded latent means) and
    ``train_elapsed`` (seconds of training so far, this callback's own time
    left out) in the net's history.
    """

    def __init__(self, X, y):
        self.X = X
        self.y = y

    def on_train_begin(self, net, **kwargs):
        self.start_ = time.perf_counter()
        self.seconds_ = 0.0

    def on_epoch_end(self, net, **kwargs):
        import torch

        start = time.perf_counter()
        module = net.module_
        was_training = module.training
        module.eval()
        with torch.inference_mode(), net.autocast():
            X = torch.as_tensor(np.asarray(self.X, dtype=np.float32), device=net.device)
            mu = module.encoder(X)[0]
            head = float((module.classifier(mu).argmax(1).cpu().numpy() == np.asarray(self.y)).mean())
            recon = float(((module.decode(mu).float() - X) ** 2).mean())
        module.train(was_training)
        net.history.record("test_head", head)
        net.history.record("test_recon", recon)
        net.history.record("train_elapsed", start - self.start_ - self.seconds_)
        self.seconds_ += time.perf_counter() - start


def generation_accuracy(Z_train, y_train, decode, judge, random_state=0):
    """Class-region generation accuracy (see the module docstring)."""
    rng = np.random.RandomState(random_state)
    hits = []
    for c in np.unique(y_train):
        Zc = Z_train[y_train == c]
        mean = Zc.mean(0)
        cov = np.atleast_2d(np.cov(Zc, rowvar=False)) + 1e-9 * np.eye(Zc.shape[1])
        draws = rng.multivariate_normal(mean, cov, size=N_GENERATED - 1)
        hits.append(judge.predict(decode(np.vstack([mean, draws]))) == c)
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
    return float(np.mean([np.isin(row, pair).all() for row, pair in zip(labels, pairs)]))


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
        # Any encoder and decoder (PCA, UMAP, a VAE), so not skvae.metrics'
        # reconstruction_scorer, which needs a DisentangledVAE.
        row["recon_mse"] = float(np.mean((decode(Z_test) - X_test) ** 2))
        if judge is not None:
            row["generation_acc"] = generation_accuracy(Z_train, y_train, decode, judge)
            row["border_share"] = border_share(Z_train, y_train, decode, judge)
    return row


def evaluate_vae(vae, data, judge, supervised=True):
    """Fit a copy of a DisentangledVAE and evaluate it: the measures, ``fit_s`` and,
    when supervised, ``head_drop`` (best epoch's test head accuracy minus the last one's)."""
    X_train, X_test, y_train, y_test = data
    vae = clone(vae)
    if supervised:
        callback = HeldOutQuality(X_test, np.searchsorted(np.unique(y_train), y_test))
        vae.set_params(callbacks=[*(vae.callbacks or []), callback])
        _, fit_s = timed(lambda: vae.fit(X_train, y_train))
    else:
        _, fit_s = timed(lambda: vae.fit(X_train))
    row = evaluate(vae.transform, vae.inverse_transform, data, judge, vae.predict if supervised else None)
    row["fit_s"] = fit_s
    if supervised:
        trace = np.asarray(vae.history_[:, "test_head"])
        row["head_drop"] = float(trace.max() - trace[-1])
    return row


def make_judged_scorers(judge):
    """GridSearchCV scorers for generation accuracy and border share.

    In a grid search a scorer only sees the validation fold, so the class
    Gaussians and class means come from the validation latents.
    """

    def generation(estimator, X, y):
        vae, Xt = latent_estimator(estimator, X)
        return generation_accuracy(vae.transform(Xt), np.asarray(y), vae.inverse_transform, judge)

    def border(estimator, X, y):
        vae, Xt = latent_estimator(estimator, X)
        return border_share(vae.transform(Xt), np.asarray(y), vae.inverse_transform, judge)

    return {"generation": generation, "border": border}
