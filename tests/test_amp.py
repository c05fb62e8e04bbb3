"""Mixed precision: float16 forward/backward, float32 master weights, dynamic loss scaling."""
import numpy as np
import pytest

from miniclip import backend, nn
from miniclip import functional as F
from miniclip.autograd import Tensor
from miniclip.models.configs import create_model
from miniclip.optim import (
    AdamW,
    GradScaler,
    amp,
    clip_grad_norm_,
    float16_parameters,
    mixed_precision_step,
)
from miniclip.training.loss import LOGIT_SCALE_INIT, clamp_logit_scale_, clip_loss
from miniclip.training.recipe import paper_optimizer

BATCH, PIXELS, VOCAB, EMBED = 16, 12, 10, 8

# Overflowing float16 gradients are part of what is tested; NumPy warns about each one.
pytestmark = pytest.mark.filterwarnings("ignore:overflow encountered",
                                        "ignore:invalid value encountered")


class TinyCLIP(nn.Module):
    """Two small towers and a learned temperature: every kind of parameter CLIP has."""

    def __init__(self):
        super().__init__()
        self.visual = nn.Sequential(nn.Linear(PIXELS, 32), nn.LayerNorm(32), nn.GELU(),
                                    nn.Linear(32, EMBED))
        self.token_embedding = nn.Embedding(VOCAB, EMBED)
        self.text_projection = nn.Linear(EMBED, EMBED, bias=False)
        self.logit_scale = nn.Parameter(np.array(LOGIT_SCALE_INIT, np.float32))

    def forward(self, images, tokens):
        image_features = F.normalize(self.visual(images), dim=1)                  # [n, E]
        text = self.token_embedding(tokens).mean(dim=1)                           # [n, E]
        text_features = F.normalize(self.text_projection(text), dim=1)           # [n, E]
        logits_per_image = (image_features @ text_features.T) * self.logit_scale.exp()
        return logits_per_image, logits_per_image.T


def make_model(device, seed=0):
    nn.manual_seed(seed)
    return TinyCLIP().to(device)


def make_batch(device, seed=1):
    """Images whose first VOCAB pixels say which token their caption is made of."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(BATCH) % VOCAB
    images = rng.standard_normal((BATCH, PIXELS)).astype(np.float32)
    images[np.arange(BATCH), labels] += 3.0
    tokens = np.stack([labels, labels, (labels + 1) % VOCAB], axis=1)               # [n, 3]
    to_device = backend.get_device(device).to_device
    return Tensor(to_device(images)), Tensor(to_device(tokens))


def mixed_loss(model, images, tokens):
    with float16_parameters(model):
        logits_per_image, logits_per_text = model(images.half(), tokens)
    return clip_loss(logits_per_image, logits_per_text)


def train(device, mixed, steps, scaler=None):
    model = make_model(device)
    optimizer = AdamW(model.parameters(), lr=1e-2, betas=(0.9, 0.98), eps=1e-6)
    images, tokens = make_batch(device)
    scaler = scaler or GradScaler()
    losses, taken = [], []
    for _ in range(steps):
        if mixed:
            loss = mixed_loss(model, images, tokens)
            stepped, _ = mixed_precision_step(loss, optimizer, scaler, max_grad_norm=10.0)
        else:
            loss = clip_loss(*model(images, tokens))
            loss.backward()
            clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            optimizer.zero_grad()
            stepped = True
        losses.append(loss.item())
        taken.append(stepped)
    return model, optimizer, np.array(losses), np.array(taken)


def snapshot(model, optimizer):
    weights = {name: p.numpy() for name, p in model.named_parameters()}
    moments = {name: {k: backend.to_numpy(v) for k, v in optimizer.state[p].items()
                      if k != "step"} for name, p in model.named_parameters()}
    return weights, moments


# ------------------------------------------------------------------ training
def test_mixed_precision_tracks_the_float32_loss_curve(device):
    _, _, full, _ = train(device, mixed=False, steps=20)
    _, _, mixed, taken = train(device, mixed=True, steps=23)
    assert full[-1] < 0.1 * full[0]                             # it does learn
    # The first steps overflow at the initial scale 2^16 and are skipped while the scaler
    # backs off; after that, each update matches the float32 run's.
    skipped = int((~taken).sum())
    assert 1 <= skipped <= 4 and not taken[:skipped].any() and taken[skipped:].all()
    updates_so_far = np.cumsum(taken) - taken                   # [0, 0, 0, 0, 1, 2, ...]
    np.testing.assert_allclose(mixed, full[updates_so_far], atol=2e-2)


def test_a_micro_clip_trains_in_mixed_precision_like_in_float32(device):
    rng = np.random.default_rng(0)
    images = Tensor(backend.get_device(device).to_device(
        rng.standard_normal((8, 3, 32, 32)).astype(np.float32)))
    tokens = rng.integers(1, 99, (8, 8))
    tokens[:, -1] = 99                                          # the end-of-text token: the max
    curves = {}
    for mixed in (False, True):
        nn.manual_seed(0)
        model = create_model("tiny-vit", vocab_size=100, context_length=8, embed_dim=32,
                             vision_width=64, vision_layers=1, transformer_width=64,
                             transformer_layers=1).to(device)
        optimizer = paper_optimizer(model, lr=1e-3, tower="vit")
        scaler = GradScaler(init_scale=2.0 ** 10)
        curves[mixed] = []
        for _ in range(4):
            if mixed:
                with float16_parameters(model):
                    logits = model(images.half(), tokens)
                loss = clip_loss(*logits)
                assert mixed_precision_step(loss, optimizer, scaler, max_grad_norm=1.0)[0]
            else:
                loss = clip_loss(*model(images, tokens))
                loss.backward()
                clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad()
            clamp_logit_scale_(model)
            curves[mixed].append(loss.item())
        assert all(p.dtype == np.float32 for p in model.parameters())
    assert curves[False][-1] < 0.7 * curves[False][0]
    np.testing.assert_allclose(curves[True], curves[False], atol=5e-2)


def test_master_weights_and_their_gradients_stay_float32(device):
    model = make_model(device)
    images, tokens = make_batch(device)
    mixed_loss(model, images, tokens).backward()
    for name, p in model.named_parameters():
        assert p.dtype == np.float32, name
        assert p.grad is not None and p.grad.dtype == np.float32, name
    model, _, _, _ = train(device, mixed=True, steps=2)
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_forward_computes_in_float16_but_keeps_norms_temperature_and_loss_float32(device):
    model = make_model(device)
    images, tokens = make_batch(device)
    masters = dict(model.named_parameters())
    with float16_parameters(model):
        assert model.visual[0].weight.dtype == np.float16
        assert model.token_embedding.weight.dtype == np.float16
        assert model.visual[1].weight.dtype == np.float32        # LayerNorm gain
        assert model.logit_scale.dtype == np.float32
        features = model.visual(images.half())
        logits_per_image, _ = model(images.half(), tokens)
    assert features.dtype == np.float16
    assert logits_per_image.dtype == np.float32                 # scaled by the float32 exp(t)
    assert clip_loss(logits_per_image).dtype == np.float32
    assert dict(model.named_parameters()) == masters            # the originals are back


def test_a_shared_parameter_is_cast_once_and_gets_the_gradient_of_both_uses(device):
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 3)).to(device)
    model[1].weight = model[0].weight                           # tied weights
    x = Tensor(backend.get_device(device).to_device(np.ones((2, 3), np.float32)))
    with float16_parameters(model):
        assert model[0].weight is model[1].weight
        out = model(x.half())
    out.float().sum().backward()
    reference = model[0].weight.grad.copy()
    model.zero_grad()
    model(x).sum().backward()
    np.testing.assert_allclose(backend.to_numpy(reference),
                               backend.to_numpy(model[0].weight.grad), rtol=1e-2, atol=1e-2)


# ------------------------------------------------------------------ dynamic loss scaling
@pytest.mark.parametrize("overflow", ["inf injected into a gradient", "loss scale too large"])
def test_overflow_skips_the_step_and_halves_the_scale(device, overflow):
    model, optimizer, _, _ = train(device, mixed=True, steps=1, scaler=GradScaler(2.0 ** 8))
    before = snapshot(model, optimizer)
    steps_before = {name: optimizer.state[p]["step"] for name, p in model.named_parameters()}
    scale = 2.0 ** 100 if overflow == "loss scale too large" else 2.0 ** 10
    scaler = GradScaler(init_scale=scale)
    images, tokens = make_batch(device)

    scaler.scale(mixed_loss(model, images, tokens)).backward()
    if overflow == "inf injected into a gradient":
        model.visual[0].weight.grad = model.visual[0].weight.grad * np.float32(np.inf)
    assert scaler.step(optimizer) is False
    scaler.update()

    assert scaler.get_scale() == scale / 2
    after = snapshot(model, optimizer)
    for name in before[0]:
        np.testing.assert_array_equal(after[0][name], before[0][name], err_msg=name)
        for k in before[1][name]:
            np.testing.assert_array_equal(after[1][name][k], before[1][name][k],
                                          err_msg=f"{name} {k}")
    assert {n: optimizer.state[p]["step"] for n, p in model.named_parameters()} == steps_before


def test_scale_grows_after_a_run_of_good_steps_and_restarts_counting_after_an_overflow(device):
    model = make_model(device)
    optimizer = AdamW(model.parameters(), lr=1e-3)
    scaler = GradScaler(init_scale=2.0 ** 8, growth_interval=3)
    images, tokens = make_batch(device)
    history = []
    for step in range(7):
        loss = mixed_loss(model, images, tokens)
        scaler.scale(loss).backward()
        if step == 1:  # one overflow: good steps so far are forgotten
            model.logit_scale.grad = model.logit_scale.grad * np.float32(np.nan)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
        history.append(scaler.get_scale())
    assert history == [256, 128, 128, 128, 256, 256, 256]


def test_gradients_are_unscaled_before_clipping(device):
    model = make_model(device)
    images, tokens = make_batch(device)
    clip_loss(*model(images, tokens)).backward()                 # float32 reference
    true_norm = float(clip_grad_norm_(model.parameters(), max_norm=np.inf))
    model.zero_grad()

    optimizer = AdamW(model.parameters(), lr=1e-3)
    scaler = GradScaler(init_scale=2.0 ** 12)
    scaler.scale(mixed_loss(model, images, tokens)).backward()
    scaler.unscale_(optimizer)
    norm = float(clip_grad_norm_(model.parameters(), max_norm=true_norm / 2))
    assert norm == pytest.approx(true_norm, rel=1e-2)           # not 4096 times larger
    clipped = [p.grad.copy() for p in model.parameters()]
    assert scaler.step(optimizer) is True                       # must not unscale twice
    for g, p in zip(clipped, model.parameters()):
        np.testing.assert_array_equal(backend.to_numpy(p.grad), backend.to_numpy(g))
    scaler.update()


def test_mixed_precision_step_reports_the_unscaled_gradient_norm(device):
    model = make_model(device)
    images, tokens = make_batch(device)
    clip_loss(*model(images, tokens)).backward()
    true_norm = float(clip_grad_norm_(model.parameters(), max_norm=np.inf))
    model.zero_grad()
    optimizer = AdamW(model.parameters(), lr=1e-3)
    stepped, norm = mixed_precision_step(mixed_loss(model, images, tokens), optimizer,
                                         GradScaler(2.0 ** 10), max_grad_norm=1.0)
    assert stepped and float(norm) == pytest.approx(true_norm, rel=1e-2)
    assert all(p.grad is None for p in model.parameters())


def test_update_before_unscale_is_an_error():
    with pytest.raises(RuntimeError, match="before unscale_"):
        GradScaler().update()


def test_scaler_state_round_trips():
    scaler = GradScaler(init_scale=1024.0)
    scaler._good_steps = 5
    other = GradScaler()
    other.load_state_dict(scaler.state_dict())
    assert other.get_scale() == 1024.0 and other.state_dict() == {"scale": 1024.0,
                                                                  "good_steps": 5}


def test_a_disabled_scaler_is_plain_training(device):
    model = make_model(device)
    images, tokens = make_batch(device)
    optimizer = AdamW(model.parameters(), lr=1e-3)
    scaler = GradScaler(enabled=False)
    loss = clip_loss(*model(images, tokens))
    assert scaler.scale(loss) is loss and scaler.get_scale() == 1.0
    assert mixed_precision_step(loss, optimizer, scaler) == (True, None)


def test_default_policy_keeps_normalisation_layers_and_the_temperature_in_float32():
    assert amp.keeps_float32(nn.LayerNorm(3), "weight")
    assert amp.keeps_float32(nn.BatchNorm2d(3), "bias")
    assert amp.keeps_float32(TinyCLIP(), "logit_scale")
    assert not amp.keeps_float32(nn.Linear(3, 3), "weight")


def test_unscaling_an_optimizer_without_gradients_finds_nothing_to_skip(device):
    p = nn.Parameter(backend.get_device(device).to_device(np.ones(2, np.float32)))
    scaler = GradScaler()
    scaler.unscale_(AdamW([p]))   # no backward yet: no gradient anywhere
    assert scaler.step(AdamW([p])) is True and p.grad is None
