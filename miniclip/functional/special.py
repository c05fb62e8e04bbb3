"""Special functions on arrays (not Tensors): the error function, which the exact GELU needs.

NumPy has no ``erf``; CuPy has one in ``cupyx``. These run on the raw arrays of any
device, inside the forward and backward of the ops that use them (``activation.py``).
"""
from .. import backend


def erf(x):
    """The error function, elementwise, for any device's floating array.

    NumPy has no ``erf``; CuPy has one in ``cupyx``. For every other backend we use the
    rational approximation of W. J. Cody (1969), accurate to round-off, written with
    ``xp`` operations only so that it runs on any array module. It is evaluated in the
    input's accumulation dtype (float32 for float16 and float32, float64 for float64),
    so a float32 model never computes in float64.
    """
    xp = backend.get_array_module(x)
    if xp.__name__ == "cupy":
        from cupyx.scipy.special import erf as cupy_erf

        # CuPy computes float16 input in float64; float32 is as exact for float16 and half
        # the traffic. The result keeps the input's dtype, as every op's does.
        return cupy_erf(x.astype(backend.accumulation_dtype(x.dtype), copy=False)).astype(x.dtype,
                                                                                 copy=False)
    return _cody_erf(xp, x)


# Coefficients of Cody's rational approximations, "Rational Chebyshev approximations for
# the error function", Math. Comp. 23 (1969), for |x| < 0.5, 0.5 <= |x| < 4 and |x| >= 4.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346725e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)


def _cody_erf(xp, x):
    dtype = x.dtype
    x = x.astype(backend.accumulation_dtype(dtype), copy=False)
    ax = xp.abs(x)
    # |x| < 0.5: erf(x) = x * P(x^2) / Q(x^2)
    z = ax * ax
    num, den = _ERF_A[4] * z, z
    for i in range(3):
        num, den = (num + _ERF_A[i]) * z, (den + _ERF_B[i]) * z
    small = x * (num + _ERF_A[3]) / (den + _ERF_B[3])
    # 0.5 <= |x| < 4: erfc(|x|) = exp(-x^2) * R(|x|)
    num, den = _ERF_C[8] * ax, ax
    for i in range(7):
        num, den = (num + _ERF_C[i]) * ax, (den + _ERF_D[i]) * ax
    medium = xp.exp(-z) * (num + _ERF_C[7]) / (den + _ERF_D[7])
    # |x| >= 4: erfc(|x|) = exp(-x^2)/|x| * (1/sqrt(pi) + R(1/x^2)/x^2)
    inv = 1.0 / xp.maximum(z, 16.0)  # the clamp only keeps the unused lanes finite
    num, den = _ERF_P[5] * inv, inv
    for i in range(4):
        num, den = (num + _ERF_P[i]) * inv, (den + _ERF_Q[i]) * inv
    tail = inv * (num + _ERF_P[4]) / (den + _ERF_Q[4])
    large = xp.exp(-z) / xp.maximum(ax, 4.0) * (0.5641895835477562869 - tail)
    erfc_abs = xp.where(ax < 4.0, medium, large)
    big = xp.sign(x) * (1.0 - erfc_abs)
    return xp.where(ax < 0.5, small, big).astype(dtype)
