"""Make ``tests/fixtures/ops_torch_reference.npz``: PyTorch's outputs and gradients for the
ops of ``miniclip.functional`` that have a ``torch.nn.functional`` counterpart, which
``tests/test_ops_torch_reference.py`` compares miniclip with.

Needs torch (a dev-time dependency only; the tests themselves read the .npz).
Run from the repository root:  python scripts/make_ops_fixture.py

Because miniclip's functional API follows PyTorch's names and argument order, each case
is recorded as an op name, its positional arguments and keyword settings, and the test
makes the same call on ``miniclip.functional``. Saved per case ``<name>`` (float64):

* ``<name>.arg<i>``: the positional tensor arguments (integer ids/labels stay int64);
* ``<name>.out``, ``<name>.upstream`` (dL/d(out)) and ``<name>.grad<i>`` for each
  differentiable argument;
* ``<name>.after<i>``: for batch_norm, the running statistics after the call;
* ``cases``: a JSON string {name: {"op", "nargs", "literals" (non-tensor positional
  arguments by position), "kwargs", "differentiable" (positions that get gradients)}}.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as TF

OUT_PATH = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                        "ops_torch_reference.npz")


def randn(*shape):
    return torch.randn(*shape, dtype=torch.float64)


def positive(*shape):
    return torch.rand(*shape, dtype=torch.float64) + 0.5


# name: (op, positional args, keyword settings, indices of the args that get gradients)
def cases():
    ids = torch.tensor([[0, 3, 3], [4, 1, 0]])
    labels = torch.tensor([2, 0, 1, 2, 1])
    return {
        "relu": ("relu", [randn(3, 4)], {}, [0]),
        "gelu": ("gelu", [randn(3, 4) * 2], {}, [0]),
        "sigmoid": ("sigmoid", [randn(3, 4) * 3], {}, [0]),
        "tanh": ("tanh", [randn(3, 4)], {}, [0]),
        "softmax": ("softmax", [randn(2, 3, 4)], {"dim": 1}, [0]),
        "log_softmax": ("log_softmax", [randn(3, 5) * 4], {"dim": -1}, [0]),
        "linear": ("linear", [randn(2, 3, 4), randn(5, 4), randn(5)], {}, [0, 1, 2]),
        "embedding": ("embedding", [ids, randn(5, 3)], {}, [1]),
        "layer_norm": ("layer_norm", [randn(2, 3, 6) * 3 + 1, [6], randn(6), randn(6)], {},
                       [0, 2, 3]),
        "batch_norm_train": ("batch_norm", [randn(4, 3, 3, 2) * 2 + 1, randn(3), positive(3),
                                            randn(3), randn(3)],
                             {"training": True, "momentum": 0.2}, [0, 3, 4]),
        "batch_norm_eval": ("batch_norm", [randn(4, 3, 3, 2), randn(3), positive(3),
                                           randn(3), randn(3)], {"training": False}, [0, 3, 4]),
        "normalize": ("normalize", [randn(4, 5)], {"dim": 1}, [0]),
        "normalize_p1": ("normalize", [randn(3, 4)], {"p": 1.0, "dim": 0}, [0]),
        "conv2d_stride_padding": ("conv2d", [randn(2, 3, 7, 6), randn(4, 3, 3, 3), randn(4)],
                                  {"stride": 2, "padding": 1}, [0, 1, 2]),
        "conv2d_rectangular": ("conv2d", [randn(1, 2, 5, 7), randn(3, 2, 2, 3)],
                               {"stride": (1, 2), "padding": (0, 1)}, [0, 1]),
        "avg_pool2d": ("avg_pool2d", [randn(2, 3, 5, 4)], {"kernel_size": 2}, [0]),
        "avg_pool2d_overlap": ("avg_pool2d", [randn(1, 2, 7, 6)],
                               {"kernel_size": 3, "stride": 2}, [0]),
        "max_pool2d": ("max_pool2d", [randn(2, 3, 7, 6)],
                       {"kernel_size": 3, "stride": 2, "padding": 1}, [0]),
        "adaptive_avg_pool2d": ("adaptive_avg_pool2d", [randn(2, 3, 7, 5)],
                                {"output_size": (3, 2)}, [0]),
        "cross_entropy": ("cross_entropy", [randn(5, 4) * 3, labels], {}, [0]),
    }


def main():
    torch.manual_seed(0)
    arrays, index = {}, {}
    for name, (op, args, kwargs, differentiable) in cases().items():
        args = [a.clone().requires_grad_(i in differentiable) if isinstance(a, torch.Tensor)
                else a for i, a in enumerate(args)]
        literals = {}  # non-tensor positional arguments (a normalized_shape), kept in the JSON
        for i, a in enumerate(args):
            if isinstance(a, torch.Tensor):
                arrays[f"{name}.arg{i}"] = a.detach().numpy().copy()
            else:
                literals[i] = a
        out = getattr(TF, op)(*args, **kwargs)
        upstream = torch.randn_like(out)
        (out * upstream).sum().backward()
        arrays[f"{name}.out"], arrays[f"{name}.upstream"] = out.detach().numpy(), upstream.numpy()
        for i in differentiable:
            arrays[f"{name}.grad{i}"] = args[i].grad.numpy()
        if op == "batch_norm":  # arguments 1 and 2 are the running statistics
            arrays[f"{name}.after1"] = args[1].detach().numpy()
            arrays[f"{name}.after2"] = args[2].detach().numpy()
        index[name] = {"op": op, "nargs": len(args), "literals": literals, "kwargs": kwargs,
                       "differentiable": differentiable}
    arrays["cases"] = np.array(json.dumps(index))
    np.savez_compressed(OUT_PATH, **arrays)
    print(f"wrote {os.path.normpath(OUT_PATH)}: {len(index)} cases")


if __name__ == "__main__":
    main()
