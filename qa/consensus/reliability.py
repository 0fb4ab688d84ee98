"""Per-image annotator reliability: which clusters are real, and whose outlines are biased.

Detection model (Dawid & Skene 1979, binary form, as in STAPLE's per-structure votes):
each cluster ``c`` is real (``z_c = 1``) with probability ``pi``; annotator ``j`` draws a
real cluster with probability ``s_j`` (sensitivity) and a spurious one with probability
``f_j`` (the share of spurious clusters it drew), independently across annotators. EM
alternates the posterior

    P(z_c = 1 | d_c) ∝ pi * prod_j s_j^d_cj (1 - s_j)^(1 - d_cj)

against the spurious alternative, with MAP updates of ``pi``, ``s_j``, ``f_j`` under Beta
priors. The priors keep the per-image estimates sane when an image has few cells; with
per-annotator ``weights`` their means move with the annotator's relative weight (clipped to
0.25..4 times the mean weight), so prior knowledge helps most where one image says least
(two annotators) and hardly matters where the image itself is informative.

Boundary bias (the STAPLE idea of per-rater performance, applied to outlines): annotator
``j``'s outline in cluster ``c`` lies on average ``b_jc`` px outside the weighted mean
signed-distance outline of the others. With ``beta`` the true biases,
``b_jc = beta_j - sum_k m_ck beta_k`` where ``m_ck`` are the others' weight shares; the
median of ``b_jc`` over clusters gives one equation per annotator, and ``sum_j w_j beta_j = 0``
(the weighted mean annotator defines the outline) fixes the offset. Least squares solves it.
"""

from __future__ import annotations

import numpy as np

_SENS_PRIOR = 0.8
_FP_PRIOR = 0.3
_PRIOR_STRENGTH = 6.0
_PI_PRIOR = (2.0, 2.0)


def _logit(p: np.ndarray | float) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    return np.log(p) - np.log1p(-p)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def detection_em(drawn: np.ndarray, *, initial: np.ndarray, relative_weight: np.ndarray,
                 n_iter: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Dawid–Skene EM over a cluster x annotator detection matrix.

    Parameters
    ----------
    drawn : ndarray of bool, shape (C, K)
        Whether annotator ``j`` contributed an instance to cluster ``c``.
    initial : ndarray of float, shape (C,)
        Initial posterior of each cluster being real.
    relative_weight : ndarray of float, shape (K,)
        Weight of each annotator relative to the mean weight (1 = neutral prior).
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
    shift = np.log(np.clip(relative_weight, 0.25, 4.0))
    ms = _sigmoid(_logit(_SENS_PRIOR) + shift)
    mf = _sigmoid(_logit(_FP_PRIOR) - shift)
    a_s, b_s = _PRIOR_STRENGTH * ms, _PRIOR_STRENGTH * (1 - ms)
    a_f, b_f = _PRIOR_STRENGTH * mf, _PRIOR_STRENGTH * (1 - mf)
    t = np.asarray(initial, dtype=np.float64).copy()
    sens, fpr, pi = ms, mf, 0.5
    for _ in range(n_iter):
        real, fake = t.sum(), (1 - t).sum()
        pi = (real + _PI_PRIOR[0] - 1) / (c + sum(_PI_PRIOR) - 2)
        sens = (t @ d + a_s) / (real + a_s + b_s)
        fpr = ((1 - t) @ d + a_f) / (fake + a_f + b_f)
        log_real = np.log(pi) + d @ np.log(sens) + (1 - d) @ np.log1p(-sens)
        log_fake = np.log1p(-pi) + d @ np.log(fpr) + (1 - d) @ np.log1p(-fpr)
        new = _sigmoid(log_real - log_fake)
        done = np.max(np.abs(new - t), initial=0.0) < 1e-6
        t = new
        if done:
            break
    return t, np.asarray(sens, np.float64), np.asarray(fpr, np.float64), float(pi)


def solve_bias(observed: list[list[float]], shares: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per-annotator boundary bias from relative offsets against the others.

    Parameters
    ----------
    observed : list of K lists of float
        ``observed[j]``: offsets (px) of annotator ``j``'s outline against the others'
        mean outline, one per cluster it shares with at least one other annotator.
    shares : ndarray of float, shape (K, K)
        ``shares[j, k]``: mean weight share of annotator ``k`` in the reference of
        ``j``'s observations (rows sum to 1 where ``observed[j]`` is non-empty).
    weights : ndarray of float, shape (K,)
        Annotator weights; the solution satisfies ``sum(weights * bias) = 0``.

    Returns
    -------
    ndarray of float64, shape (K,)
        Estimated bias per annotator in px (positive = draws too large), clipped to +-3 px;
        0 for an annotator with no shared clusters.
    """
    k = len(observed)
    rows, rhs = [], []
    for j in range(k):
        if observed[j]:
            row = -shares[j].copy()
            row[j] += 1.0
            rows.append(row)
            rhs.append(float(np.median(observed[j])))
    if not rows:
        return np.zeros(k)
    has = np.array([bool(o) for o in observed])
    w = np.where(has, weights, 0.0)
    if w.sum() <= 0:
        w = has.astype(np.float64)
    rows.append(10.0 * w / w.sum())
    rhs.append(0.0)
    bias, *_ = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)
    bias[~has] = 0.0
    return np.clip(bias, -3.0, 3.0)
