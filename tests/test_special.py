"""The error function of the exact GELU (``miniclip/functional/special.py``), on every device."""
import math

import numpy as np
import pytest

from miniclip import backend
from miniclip.functional.special import erf


def test_erf_matches_the_standard_library_to_float64_round_off(device):
    x = np.linspace(-6, 6, 1201)
    got = backend.to_numpy(erf(backend.move(x, device)))
    assert np.max(np.abs(got - [math.erf(v) for v in x])) < 1e-15


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_erf_keeps_the_dtype_of_its_input(device, dtype):
    x = backend.move(np.linspace(-3, 3, 7).astype(dtype), device)
    assert erf(x).dtype == dtype
