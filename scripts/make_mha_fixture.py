"""Make ``tests/fixtures/mha_torch_reference.npz``: PyTorch's ``nn.MultiheadAttention``
numbers that ``tests/test_attention.py`` compares miniclip's MultiheadAttention with.

Needs torch (a dev-time dependency only; the tests themselves read the .npz).
Run from the repository root:  python scripts/make_mha_fixture.py

Saved (all float64):
* ``state.<name>``: the layer's state dict (random biases, so that they are tested too);
* self-attention with a causal mask: ``self.x [N, L, D]``, ``self.mask [L, L]`` (additive),
  ``self.out``, ``self.weights [N, heads, L, L]``, and for the upstream gradient
  ``self.upstream`` the gradients ``self.grad.x`` and ``self.grad.<parameter name>``;
* cross-attention with one query (as in CLIP's attention pooling) and key = value:
  ``cross.query [N, 1, D]``, ``cross.kv [N, S, D]``, ``cross.out``, ``cross.weights``.
"""
import os

import numpy as np
import torch

EMBED_DIM, NUM_HEADS, BATCH, LENGTH, KV_LENGTH = 16, 4, 2, 5, 6
OUT_PATH = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                        "mha_torch_reference.npz")


def main():
    torch.manual_seed(0)
    attention = torch.nn.MultiheadAttention(EMBED_DIM, NUM_HEADS, batch_first=True,
                                            dtype=torch.float64)
    with torch.no_grad():  # PyTorch starts the biases at 0; random ones test them too
        attention.in_proj_bias.normal_()
        attention.out_proj.bias.normal_()
    arrays = {f"state.{name}": value.detach().numpy().copy()
              for name, value in attention.state_dict().items()}

    x = torch.randn(BATCH, LENGTH, EMBED_DIM, dtype=torch.float64, requires_grad=True)
    mask = torch.triu(torch.full((LENGTH, LENGTH), float("-inf"), dtype=torch.float64), 1)
    out, weights = attention(x, x, x, attn_mask=mask, need_weights=True,
                             average_attn_weights=False)
    upstream = torch.randn_like(out)
    (out * upstream).sum().backward()
    arrays.update({"self.x": x, "self.mask": mask, "self.out": out, "self.weights": weights,
                   "self.upstream": upstream, "self.grad.x": x.grad})
    arrays.update({f"self.grad.{name}": p.grad for name, p in attention.named_parameters()})

    query = torch.randn(BATCH, 1, EMBED_DIM, dtype=torch.float64)
    kv = torch.randn(BATCH, KV_LENGTH, EMBED_DIM, dtype=torch.float64)
    out, weights = attention(query, kv, kv, need_weights=True, average_attn_weights=False)
    arrays.update({"cross.query": query, "cross.kv": kv, "cross.out": out,
                   "cross.weights": weights})

    arrays = {k: v.detach().numpy() if isinstance(v, torch.Tensor) else v
              for k, v in arrays.items()}
    np.savez_compressed(OUT_PATH, **arrays)
    print(f"wrote {os.path.normpath(OUT_PATH)}: {sorted(arrays)}")


if __name__ == "__main__":
    main()
