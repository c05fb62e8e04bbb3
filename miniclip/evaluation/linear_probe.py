"""Linear probe: multinomial logistic regression on frozen image features.

The CLIP paper's second measure of a representation (section 3.2): freeze the image
encoder, and fit only a linear classifier on its features. Zero-shot asks whether the
text tower can *name* the classes; the probe asks whether the image features *separate*
them at all.

**The model.** Features ``X [N, D]`` (unit-length rows), labels ``y [N]`` in ``0..K-1``
with one-hot ``Y [N, K]``. Weights ``W [D, K]``, bias ``b [K]``::

    Z = X W + b                     logits           [N, K]
    P = softmax(Z) row by row       probabilities    [N, K]

**The objective** is the mean cross-entropy plus an L2 penalty on the weights (not on the
bias, which only shifts every logit of a class)::

    L(W, b) = -(1/N) sum_n log P[n, y_n]  +  (lambda / 2) ||W||_F^2

**Its gradient.** With ``log P[n, k] = Z[n, k] - log sum_j exp Z[n, j]``,
``d(-log P[n, y_n]) / dZ[n, k] = P[n, k] - Y[n, k]``. The chain rule through
``Z = X W + b`` gives::

    dL/dW = X^T (P - Y) / N + lambda W          [D, K]
    dL/db = sum_n (P - Y)[n, :] / N              [K]

``L`` is convex (log-sum-exp of linear functions, plus a convex quadratic) and, for
``lambda > 0``, strictly convex in ``W``, so any descent method reaches the one
minimum. We use **L-BFGS** (full batch, deterministic): it builds a quasi-Newton step from
the last few ``(step, gradient change)`` pairs without ever forming the ``DK x DK``
Hessian, with a backtracking line search that guarantees sufficient decrease.

**Choosing lambda.** A small ``lambda`` fits the training images closely, a large one
keeps the weights small; which generalises better depends on the data. As in the paper,
``lambda`` is chosen on a validation split carved from the training images (a
log-spaced grid, the best validation accuracy, ties broken by the lower validation loss),
then the probe is refitted on training + validation and scored once on the test set.
"""
import numpy as np

from .zeroshot import accuracy

#: lambda values tried: 1e-6, 1e-5, ..., 1e2, log-spaced as in the paper's sweep.
L2_GRID = tuple(10.0 ** exponent for exponent in range(-6, 3))


def unpack(params, dim, num_classes):
    """``params [(D + 1) * K]`` -> ``(W [D, K], b [K])`` (views, not copies)."""
    return params[:dim * num_classes].reshape(dim, num_classes), params[dim * num_classes:]


def logistic_loss_and_gradient(params, features, labels, num_classes, l2):
    """The objective ``L`` and its gradient, both with respect to ``params``.

    ``params`` is ``[(D + 1) * K]``: ``W [D, K]`` flattened, then ``b [K]``;
    ``features [N, D]``, ``labels [N]``. Returns ``(loss, gradient [(D + 1) * K])``.
    """
    num_samples = len(features)
    weights, bias = unpack(params, features.shape[1], num_classes)   # [D, K], [K]
    logits = features @ weights + bias                                # [N, K]
    logits = logits - logits.max(axis=1, keepdims=True)               # softmax is shift-invariant
    log_norm = np.log(np.exp(logits).sum(axis=1))                     # [N]
    rows = np.arange(num_samples)
    loss = (log_norm - logits[rows, labels]).mean() + 0.5 * l2 * (weights * weights).sum()
    residual = np.exp(logits - log_norm[:, None])                     # P [N, K]
    residual[rows, labels] -= 1.0                                     # P - Y
    residual /= num_samples
    grad_weights = features.T @ residual + l2 * weights               # [D, K]
    grad_bias = residual.sum(axis=0)                                  # [K]
    return float(loss), np.concatenate([grad_weights.ravel(), grad_bias])


def lbfgs_direction(gradient, history):
    """``-H g``: the quasi-Newton step of L-BFGS, by the two-loop recursion.

    ``H`` is the BFGS inverse-Hessian estimate built from the pairs ``history`` (oldest
    first; each ``(s, y, 1 / y.s)``), starting from ``H0 = (s.y / y.y) I`` of the newest
    pair, never formed as a matrix: ``O(memory * n)`` work instead of ``O(n^2)``. Each
    BFGS update is ``H <- V^T H V + rho s s^T`` with ``V = I - rho y s^T``.
    """
    direction = -gradient
    coefficients = []
    for s, y, rho in reversed(history):
        alpha = rho * (s @ direction)
        direction = direction - alpha * y
        coefficients.append(alpha)
    if history:  # scale as the Hessian's inverse along the newest pair
        s, y, _ = history[-1]
        direction = direction * ((s @ y) / (y @ y))
    for (s, y, rho), alpha in zip(history, reversed(coefficients)):
        direction = direction + (alpha - rho * (y @ direction)) * s
    return direction


def minimize_lbfgs(objective, start, max_iterations=500, tolerance=1e-6, memory=10):
    """Minimise a smooth function with L-BFGS; returns the final point.

    ``objective(x) -> (f, gradient)``. Each iteration turns the gradient ``g`` into the
    direction ``-H g`` (:func:`lbfgs_direction`), where ``H`` approximates the inverse
    Hessian from the last ``memory`` pairs ``s = x_new - x``, ``y = g_new - g`` (Nocedal &
    Wright, algorithm 7.4), then halves the step from 1 until the Armijo condition
    ``f(x + t d) <= f(x) + 1e-4 t g.d`` holds. A pair is kept only if ``s.y > 0`` (always
    so for a strictly convex objective such as the probe's), which keeps ``H`` positive
    definite. Stops when ``max |g| < tolerance``.
    """
    x = np.asarray(start, dtype=np.float64)
    value, gradient = objective(x)
    history = []  # (s, y, 1 / y.s), oldest first
    for _ in range(max_iterations):
        if np.abs(gradient).max() < tolerance:
            break
        direction = lbfgs_direction(gradient, history)
        slope = gradient @ direction
        if slope >= 0:  # not a descent direction (rounding): fall back to the gradient
            direction, slope, history = -gradient, -(gradient @ gradient), []
        step = 1.0
        while True:
            new_x = x + step * direction
            new_value, new_gradient = objective(new_x)
            if new_value <= value + 1e-4 * step * slope or step < 1e-12:
                break
            step /= 2
        s, y = new_x - x, new_gradient - gradient
        if s @ y > 1e-12:  # curvature condition: keeps H positive definite
            history = (history + [(s, y, 1.0 / (s @ y))])[-memory:]
        else:  # (only off a convex objective) the old pairs would keep H stale: forget them
            history = []
        x, value, gradient = new_x, new_value, new_gradient
    return x


class LogisticRegression:
    """Multinomial logistic regression with an L2 penalty ``l2`` on the weights (see the
    module docstring for the objective). ``fit(X, y)``, then ``predict_scores(X) -> [N, K]``
    logits."""

    def __init__(self, num_classes, l2, max_iterations=500):
        self.num_classes, self.l2, self.max_iterations = num_classes, l2, max_iterations

    def fit(self, features, labels):
        features = np.asarray(features, dtype=np.float64)           # [N, D]
        labels = np.asarray(labels, dtype=np.int64)                 # [N]
        self.params = minimize_lbfgs(
            lambda p: logistic_loss_and_gradient(p, features, labels, self.num_classes, self.l2),
            np.zeros((features.shape[1] + 1) * self.num_classes), self.max_iterations)
        return self

    def predict_scores(self, features):
        features = np.asarray(features, dtype=np.float64)           # [N, D]
        weights, bias = unpack(self.params, features.shape[1], self.num_classes)
        return features @ weights + bias                            # [N, K]

    def loss(self, features, labels):
        """Mean cross-entropy on ``(features, labels)``, without the penalty."""
        features = np.asarray(features, dtype=np.float64)
        return logistic_loss_and_gradient(self.params, features, np.asarray(labels),
                                          self.num_classes, 0.0)[0]


def stratified_split(labels, fraction, seed=0):
    """Split indices into ``(rest, held_out)``, holding out ``fraction`` of every class.

    Each class's indices are shuffled with ``seed`` and ``round(fraction * n_class)`` of
    them held out, but never all of them, so every class keeps a training example. Both
    index arrays are sorted.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"the split fraction must be between 0 and 1, got {fraction}")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held_out = []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held_out.extend(members[:min(int(round(fraction * len(members))), len(members) - 1)])
    held_out = np.sort(np.array(held_out, dtype=np.int64))
    return np.setdiff1d(np.arange(len(labels)), held_out), held_out


def linear_probe(train_features, train_labels, test_features, test_labels, num_classes,
                 l2_grid=L2_GRID, validation_fraction=0.2, seed=0, max_iterations=500):
    """Fit a linear probe on the training features and score it on the test features.

    ``lambda`` is chosen from ``l2_grid`` on a seeded, stratified validation split of the
    training set (:func:`stratified_split`), then the probe is refitted on all of it.

    Returns a dict: ``top1`` (test accuracy), ``l2`` (the chosen lambda),
    ``validation_top1`` (``{lambda: accuracy}`` for the grid), ``train_size``, ``test_size``.
    """
    train_labels = np.asarray(train_labels, dtype=np.int64)
    test_labels = np.asarray(test_labels, dtype=np.int64)
    fit_part, validation_part = stratified_split(train_labels, validation_fraction, seed)
    if not len(validation_part):
        raise ValueError("the linear probe needs a class with at least 2 training images, "
                         "to hold one out for choosing the L2 strength")
    validation = (train_features[validation_part], train_labels[validation_part])
    scores = {}
    for l2 in l2_grid:
        probe = LogisticRegression(num_classes, l2, max_iterations).fit(
            train_features[fit_part], train_labels[fit_part])
        scores[l2] = (accuracy(probe.predict_scores(validation[0]), validation[1]),
                      -probe.loss(*validation))
    best_l2 = max(l2_grid, key=lambda l2: scores[l2])  # accuracy first, then loss
    probe = LogisticRegression(num_classes, best_l2, max_iterations).fit(
        train_features, train_labels)
    return {"top1": accuracy(probe.predict_scores(test_features), test_labels), "l2": best_l2,
            "validation_top1": {l2: top1 for l2, (top1, _) in scores.items()},
            "train_size": len(train_labels), "test_size": len(test_labels)}
