"""float32 tolerances that follow from the dtype and the magnitudes compared, not from one
machine's last digits (each BLAS kernel sums a matrix product in its own order)."""
import numpy as np

EPS32 = float(np.finfo(np.float32).eps)


def assert_same_update(after, expected, before, err_msg=""):
    """Weights ``after`` one SGD step agree with ``expected`` (the same step computed another
    way, from the same weights ``before``) to what float32 allows.

    The two gradients are float32 sums taken in different orders (two half batches and an
    all-reduce against one batch, and each BLAS kernel blocks its sums its own way), so the
    updates lr·g agree to a few eps of the largest update: 15 eps at worst measured over
    five OpenBLAS kernels with 1 and 2 threads (``scripts/check_portability.sh``); 64 are
    allowed. Adding the update to a weight then rounds to within an ulp, eps·|weight|.
    """
    after, expected, before = (np.asarray(a, dtype=np.float64) for a in (after, expected, before))
    largest_update = np.abs(expected - before).max()
    np.testing.assert_allclose(after, expected, rtol=EPS32, atol=64 * EPS32 * largest_update,
                               err_msg=err_msg)
