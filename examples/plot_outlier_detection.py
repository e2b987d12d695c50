"""
=====================================================
Outlier detection with the VAE's log-likelihood
=====================================================

*Story:* you train on the digits you know and want to flag, among new
images, those unlike any of them. :meth:`~skvae.DisentangledVAE.score_samples`
estimates each image's log-likelihood under the fitted VAE (the
importance-weighted bound of Burda et al., 2016, in nats; see
:doc:`/likelihood`), so ``-score_samples(X)`` is an outlier score, as it is
for :class:`~sklearn.mixture.GaussianMixture`.

We hold every "9" out of training, train on 80% of the other digits (with
their labels), and ask which of the remaining images -- the other 20% of the
known digits and all the 9s -- are outliers. The same split goes to
scikit-learn's :class:`~sklearn.ensemble.IsolationForest` and
:class:`~sklearn.neighbors.LocalOutlierFactor` (``novelty=True``), and each
method is judged by the ROC AUC of its outlier score.
"""

# %%
# ``OMP_WAIT_POLICY=PASSIVE`` keeps torch's idle threads from busy-waiting
# (set before torch is imported); ``SKVAE_EXAMPLES_FAST=1`` shortens the
# training for the test suite.
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
FAST = os.environ.get("SKVAE_EXAMPLES_FAST") == "1"

# %%
# Data: the 9s are the outliers
# -----------------------------
import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.metrics import RocCurveDisplay, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import LocalOutlierFactor

from skvae import DisentangledVAE
from skvae.datasets import load_digits

HELD_OUT = 9
X, y = load_digits(return_X_y=True)  # pixels scaled to [0, 1]
known = y != HELD_OUT
X_train, X_known_test, y_train, _ = train_test_split(
    X[known], y[known], test_size=0.2, stratify=y[known], random_state=0
)
X_test = np.vstack([X_known_test, X[~known]])
is_outlier = np.r_[np.zeros(len(X_known_test)), np.ones((~known).sum())]
print(f"train: {len(X_train)} digits 0-8; test: {len(X_known_test)} of them and {int(is_outlier.sum())} nines")

# %%
# Three detectors on the same split
# ---------------------------------
# A 16-D latent space gives the VAE room for the details of each digit; with
# nine classes in 16 dimensions each class gets its own prior centre
# (``class_spacing="auto"``), and ``score_samples`` uses their mixture as
# the prior, since a new image's class is unknown.
vae = DisentangledVAE(
    n_components=16, hidden_dims=(256,), max_epochs=5 if FAST else 100, random_state=0
).fit(X_train, y_train)
detectors = {
    "DisentangledVAE": -vae.score_samples(X_test),
    "IsolationForest": -IsolationForest(random_state=0).fit(X_train).score_samples(X_test),
    "LocalOutlierFactor": -LocalOutlierFactor(novelty=True).fit(X_train).score_samples(X_test),
}
for name, outlier_score in detectors.items():
    print(f"{name:19s} ROC AUC {roc_auc_score(is_outlier, outlier_score):.3f}")

# %%
# With the full training (100 epochs) this prints, on this project's
# machine::
#
#     DisentangledVAE     ROC AUC 0.906
#     IsolationForest     ROC AUC 0.674
#     LocalOutlierFactor  ROC AUC 0.904
#
# The VAE is on a par with the local outlier factor here and far ahead of
# the isolation forest; which of the first two wins depends on the digit
# held out (on 3: 0.916 against 0.949). Likelihoods from generative models
# are no universal outlier score: a VAE can give simple images it never
# saw a high likelihood (Nalisnick et al., 2019), so check it on outliers
# like yours.

fig, (ax_roc, ax_hist) = plt.subplots(1, 2, figsize=(10, 4))
for name, outlier_score in detectors.items():
    RocCurveDisplay.from_predictions(is_outlier, outlier_score, name=name, ax=ax_roc)
ax_roc.set_title(f"Digit {HELD_OUT} held out")
log_likelihood = -detectors["DisentangledVAE"]
bins = np.linspace(log_likelihood.min(), log_likelihood.max(), 40)
ax_hist.hist(log_likelihood[is_outlier == 0], bins=bins, alpha=0.6, label="digits 0-8 (test)")
ax_hist.hist(log_likelihood[is_outlier == 1], bins=bins, alpha=0.6, label=f"digit {HELD_OUT}")
ax_hist.set_xlabel("score_samples (nats)")
ax_hist.set_ylabel("images")
ax_hist.legend()
fig.tight_layout()

# %%
# The least likely test images
# ----------------------------
# The lowest log-likelihoods: mostly 9s, and known digits drawn unusually.
order = np.argsort(log_likelihood)[:8]
fig, axes = plt.subplots(1, 8, figsize=(10, 1.8))
for ax, index in zip(axes, order):
    ax.imshow(X_test[index].reshape(8, 8), cmap="gray_r")
    ax.set_title(f"{'9' if is_outlier[index] else 'known'}\n{log_likelihood[index]:.0f}", fontsize=9)
    ax.set_axis_off()
plt.show()
