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



def assert_close_to_round_off(actual, expected, rtol=1e-5, err_msg=""):
    """Two computations of the same values in different orders (another batch or sequence
    shape, another BLAS kernel, another library) agree to round-off relative to the size of
    the values they sum, not to each result: an element near zero, where a sum cancelled,
    keeps the absolute error of its terms. So the largest error is held to ``rtol`` of the
    largest value. For float32, 1e-5 is 84 eps: room for the eps · sqrt(K) of sums of
    thousands of terms carried through a few layers.
    """
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (err_msg, actual.shape, expected.shape)
    scale = np.abs(expected).max(initial=0.0)
    error = np.abs(actual - expected).max(initial=0.0)
    assert error <= rtol * scale + 1e-12, \
        f"{err_msg}: max error {error:.3g} against the largest value {scale:.3g} (rtol {rtol:g})"
