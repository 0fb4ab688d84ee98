"""Per-image annotator reliability: which clusters are real, and whose outlines are biased.

Detection model (Dawid & Skene 1979, binary form, as in STAPLE's per-structure votes):
each cluster ``c`` is real (``z_c = 1``) with probability ``pi``; annotator ``j`` draws a
real cluster with probability ``s_j`` (sensitivity) and a spurious one with probability
``f_j`` (the share of spurious clusters it drew), independently across annotators. EM
alternates the posterior

    P(z_c = 1 | d_c) ∝ pi * prod_j s_j^d_cj (1 - s_j)^(1 - d_cj)

against the spurious alternative, with MAP updates of ``pi``, ``s_j``, ``f_j`` under Beta
priors (means 0.8 and 0.3, strength 6 pseudo-clusters) that keep per-image estimates sane
when an image has few cells.

Size evidence. Within one image a good annotator's lone drawings (faint cells the others
missed) and a poor one's (debris, specks, split fragments) have the same vote pattern. What
tells them apart without the image is size: real cells are sized like the cells the
annotators agree on. :func:`size_evidence` adds that log likelihood ratio to each
cluster's votes (it lifted the 3-annotator consensus by about 0.05 AP@0.5 in simulation).

Weights are deliberately not used here. Moving the priors by per-annotator weights was
tried (log-odds shifts proportional to ``log(w_j / max w)``, priors as strong as 50
clusters): with five annotators it added 0.02-0.04 AP@0.5, with three it cost up to 0.02,
and with two it swung by +-0.07 from one simulated dataset to the next. Weights must never
make the consensus worse, so they only scale pixel votes (:mod:`qa.consensus.voting`).

Boundary bias and noise (the STAPLE idea of per-rater performance, applied to outlines):
from the pairwise offsets between annotators' signed-distance outlines over the clusters
they share, :func:`solve_outlines` estimates each annotator's systematic offset relative
to the others and the variance of its outline around it; :func:`anchor_biases` decides
where "no bias" lies: at the level gold-derived biases say (absolute), else at the
outlier-trimmed mean annotator, with annotations far off everybody else's
outlines on the image (smears) left out of the level and the outline vote.
"""

from __future__ import annotations

import numpy as np

_SENS_PRIOR = 0.8
_FP_PRIOR = 0.3
_PRIOR_STRENGTH = 6.0
_PI_PRIOR = (2.0, 2.0)
#: Largest boundary bias corrected (px); the distance-map crops leave room for it.
MAX_BIAS = 2.5
#: An annotation whose outlines sit more than ``[0]`` px from the others' (reliability-
#: weighted median) level on one image has less say in the level and the outline vote, and
#: none beyond ``[1]`` px: ordinary habits stay within ~1.7 px of the median annotator in
#: simulation, smeared uploads 3-4 px off.
OUTLIER_BIAS = (2.0, 3.0)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def detection_em(drawn: np.ndarray, *, initial: np.ndarray,
                 evidence: np.ndarray | None = None, n_iter: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Dawid–Skene EM over a cluster x annotator detection matrix.

    Parameters
    ----------
    drawn : ndarray of bool, shape (C, K)
        Whether annotator ``j`` contributed an instance to cluster ``c``.
    initial : ndarray of float, shape (C,)
        Initial posterior of each cluster being real.
    evidence : ndarray of float, shape (C,), optional
        Extra log likelihood ratio (real vs spurious) per cluster from its own features,
        added to the annotators' votes (see :func:`size_evidence`).
    n_iter : int
        Maximum EM iterations (stops earlier once posteriors move less than 1e-6).

    Returns
    -------
    posterior : ndarray of float64, shape (C,)
    sensitivity : ndarray of float64, shape (K,)
    false_positive_rate : ndarray of float64, shape (K,)
    prior_real : float
    """
    d = drawn.astype(np.float64)
    c, k = d.shape
    a_s, b_s = _PRIOR_STRENGTH * _SENS_PRIOR, _PRIOR_STRENGTH * (1 - _SENS_PRIOR)
    a_f, b_f = _PRIOR_STRENGTH * _FP_PRIOR, _PRIOR_STRENGTH * (1 - _FP_PRIOR)
    t = np.asarray(initial, dtype=np.float64).copy()
    extra = np.zeros(c) if evidence is None else np.asarray(evidence, np.float64)
    sens, fpr, pi = np.full(k, _SENS_PRIOR), np.full(k, _FP_PRIOR), 0.5
    for _ in range(n_iter):
        real, fake = t.sum(), (1 - t).sum()
        pi = (real + _PI_PRIOR[0] - 1) / (c + sum(_PI_PRIOR) - 2)
        sens = (t @ d + a_s) / (real + a_s + b_s)
        fpr = ((1 - t) @ d + a_f) / (fake + a_f + b_f)
        log_real = np.log(pi) + d @ np.log(sens) + (1 - d) @ np.log1p(-sens)
        log_fake = np.log1p(-pi) + d @ np.log(fpr) + (1 - d) @ np.log1p(-fpr)
        new = _sigmoid(log_real - log_fake + extra)
        done = np.max(np.abs(new - t), initial=0.0) < 1e-6
        t = new
        if done:
            break
    return t, np.asarray(sens, np.float64), np.asarray(fpr, np.float64), float(pi)


def size_evidence(log_area: np.ndarray, confirmed: np.ndarray) -> np.ndarray:
    """Log likelihood ratio (real vs spurious) of each cluster's size.

    Parameters
    ----------
    log_area : ndarray of float, shape (C,)
        Mean log pixel area of each cluster's member instances.
    confirmed : ndarray of bool, shape (C,)
        Clusters drawn by enough annotators to be taken as real cells.

    Returns
    -------
    ndarray of float64, shape (C,)
        ``log N(x; mu, s) - log U(x)``, clipped to [-3, 1]: real cells are sized like the
        confirmed ones (median ``mu``, robust spread ``s`` >= 0.15), spurious instances
        (debris, specks, split fragments) anywhere in the observed range. All zeros when
        fewer than five clusters are confirmed. The upper clip keeps a cell-sized blob
        from being rescued on its size; the lower one lets a lone speck go.
    """
    out = np.zeros(log_area.shape[0])
    ref = log_area[confirmed]
    if ref.size < 5:
        return out
    mu = float(np.median(ref))
    spread = max(1.4826 * float(np.median(np.abs(ref - mu))), 0.15)
    span = float(log_area.max() - log_area.min()) + 1.0
    log_real = -0.5 * ((log_area - mu) / spread) ** 2 - np.log(spread * np.sqrt(2 * np.pi))
    return np.clip(log_real + np.log(span), -3.0, 1.0)


def solve_outlines(stats) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-annotator relative boundary bias and outline noise from pairwise outline offsets.

    Parameters
    ----------
    stats : qa.consensus.voting.OutlineStats
        Per-cluster offsets between the outlines of every pair of annotators.

    Returns
    -------
    bias : ndarray of float64, shape (K,)
        Systematic offset per annotator in px (positive = draws larger than the others),
        pinned by ``sum_j bias_j = 0`` over the annotators that share a cluster, not
        clipped; 0 for an annotator that shares no cluster. Only differences are
        meaningful: :func:`anchor_biases` sets the level.
    noise : ndarray of float64, shape (K,)
        Variance (px^2) of the annotator's outline around its own biased mean, at least
        0.05; the median of the others for an annotator that shares no cluster.
    shared : ndarray of bool, shape (K,)
        Annotators that share at least one cluster with another one.

    Notes
    -----
    For annotators ``j``, ``k`` with per-cluster offsets ``d_jkc`` (mean of
    ``sdf_j - sdf_k`` near the outline), ``median_c d_jkc = beta_j - beta_k`` and
    ``median_c mean((d - median_c d_jkc)^2) ~ sigma_j^2 + sigma_k^2`` (per-cell jitter and
    wobble both count as noise).
    Both are solved by least squares over the pairs (exactly determined with three
    annotators; with two the noise is split evenly).
    """
    k = stats.k
    if not stats.pairs:
        return np.zeros(k), np.ones(k), np.zeros(k, bool)
    has = np.zeros(k, bool)
    rows = np.zeros((len(stats.pairs), k))
    rel = np.zeros(len(stats.pairs))
    spread = np.zeros(len(stats.pairs))
    for p, ((j, kk), off, sq) in enumerate(zip(stats.pairs, stats.offsets, stats.squares,
                                                strict=True)):
        has[j] = has[kk] = True
        rows[p, j], rows[p, kk] = 1.0, -1.0
        rel[p] = _median(off)
        spread[p] = _median(sq - 2 * rel[p] * off + rel[p] ** 2)
    var, *_ = np.linalg.lstsq(np.abs(rows)[:, has], spread, rcond=None)
    noise = np.full(k, 0.0)
    noise[has] = np.clip(var, 0.05, None)
    noise[~has] = np.median(noise[has])
    a = np.vstack([rows[:, has], np.full(int(has.sum()), 10.0 / has.sum())])
    b = np.concatenate([rel, [0.0]])
    sol, *_ = np.linalg.lstsq(a, b, rcond=None)
    bias = np.zeros(k)
    bias[has] = sol - sol.mean()
    return bias, noise, has


def _median(x: np.ndarray) -> float:
    """``np.median`` of a non-empty 1-D array without NaN (the same value, ~8x faster on the
    few dozen per-cluster offsets of a pair)."""
    s = np.sort(x)
    h = s.size // 2
    return float(s[h]) if s.size % 2 else float((s[h - 1] + s[h]) / 2)


def _trust(distance: np.ndarray) -> np.ndarray:
    """1 up to ``OUTLIER_BIAS[0]`` px from the level, falling linearly to 0 at ``[1]``."""
    lo, hi = OUTLIER_BIAS
    return np.clip((hi - np.abs(distance)) / (hi - lo), 0.0, 1.0)


def _weighted_median(x: np.ndarray, w: np.ndarray) -> float:
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(w[order])
    i = int(np.searchsorted(cum, 0.5 * cum[-1]))
    if np.isclose(cum[i], 0.5 * cum[-1]) and i + 1 < x.size:
        return float(0.5 * (x[order][i] + x[order][i + 1]))
    return float(x[order][i])


def anchor_biases(relative: np.ndarray, shared: np.ndarray, *,
                  gold: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Absolute boundary biases from relative ones: where "no bias" lies on this image.

    Parameters
    ----------
    relative : ndarray of float, shape (K,)
        Relative biases from :func:`solve_outlines` (only differences count).
    shared : ndarray of bool, shape (K,)
        Annotators whose relative bias was estimated.
    gold : ndarray of float, shape (K,), optional
        Absolute biases measured against gold truth (NaN = unknown), see
        :func:`qa.consensus.estimate_boundary_bias`.

    Returns
    -------
    bias : ndarray of float64, shape (K,)
        ``relative + level``, clipped to +-``MAX_BIAS``; for an annotator without a relative
        estimate its gold bias, else 0.
    trust : ndarray of float64, shape (K,)
        0..1: how well annotator ``j``'s relative bias fits the others' on this image: 1
        within 2 px of their median, 0 from 3 px on. A smeared upload, 3-4 px off
        everybody else's outlines, gets 0. (With two annotators more than 6 px apart
        nobody can be told off: all keep 1.)
    level : float
        The offset added to the relative biases.

    Notes
    -----
    Without gold the level is the ``trust``-weighted mean of the relative biases: the mean
    annotator, except that one annotation far from all others on this image (a smear) no
    longer drags everybody's correction along (with the plain mean it moved every other
    annotator's correction by a third of its offset with three annotators). Other levels
    were measured with ``bench/consensus_bench.py`` (all panels, 3 seeds) and lost: the
    precision-weighted mean follows a precise but eroding annotator (three-annotator
    panel, seed 1000: -0.019 IoU against the expert on shared cells, against -0.002),
    the median follows the dilating majority of the five-annotator panel (-0.022 and
    -0.014 on two seeds, against +0.004 and +0.012). Reliability
    weights are left out on purpose: reliabilities measured by agreement penalise the
    annotators whose outlines differ from the majority's, so weighting the level by them
    pulls it further toward a dilating majority (gated training labels of the five-
    annotator gating panel: area ratio 1.067 -> 1.076 in simulation). With gold,
    each trusted annotator with a known bias says where the level is
    (``relative_j - gold_j``); the level is their trust-weighted median, so the one
    annotation whose outlines are off on this image cannot move it either.
    """
    k = relative.shape[0]
    bias = np.zeros(k)
    trust = np.ones(k)
    known = np.zeros(k, bool) if gold is None else np.isfinite(gold)
    if not shared.any():
        if gold is not None:
            bias[known] = gold[known]
        return np.clip(bias, -MAX_BIAS, MAX_BIAS), trust, 0.0
    r = relative[shared]
    t = _trust(r - float(np.median(r)))
    if t.sum() <= 0:  # two annotators far apart: no telling who is off
        t = np.ones_like(t)
    level = float(np.sum(t * r) / np.sum(t))
    trust[shared] = t
    anchored = known & shared & (trust > 0)
    if anchored.any():
        level = _weighted_median(relative[anchored] - gold[anchored], trust[anchored])
    bias[shared] = relative[shared] - level
    if gold is not None:
        only_gold = known & ~shared
        bias[only_gold] = gold[only_gold]
    return np.clip(bias, -MAX_BIAS, MAX_BIAS), trust, -level
