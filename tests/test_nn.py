"""miniclip.nn: the Module machinery (registration, state dicts, modes, devices) and the
basic layers, each gradchecked as a module in float64 with its parameters."""
import collections

import numpy as np
import pytest

from miniclip import nn
from miniclip.autograd import Tensor
from miniclip.functional.gradcheck import gradcheck, randn_away_from


class Block(nn.Module):
    """A small nested model for the machinery tests: parameters, a buffer, submodules."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(3, np.float32))
        self.fc = nn.Linear(4, 3)
        self.register_buffer("steps", np.zeros((), np.int64))
        self.inner = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm2d(2))

    def forward(self, x):
        return self.fc(x) * self.scale


def tensor(values, device, dtype=np.float64, requires_grad=False):
    return Tensor(np.asarray(values, dtype=dtype), device=device, requires_grad=requires_grad)


# ------------------------------------------------------------------ registration
def test_attribute_assignment_registers_parameters_submodules_and_buffers():
    block = Block()
    assert list(block._parameters) == ["scale"]
    assert list(block._modules) == ["fc", "inner"]
    assert list(block._buffers) == ["steps"]
    assert block.steps.requires_grad is False and block.scale.requires_grad is True


def test_named_parameters_are_dotted_and_in_registration_order():
    names = [name for name, _ in Block().named_parameters()]
    assert names == ["scale", "fc.weight", "fc.bias", "inner.0.weight", "inner.0.bias",
                     "inner.1.weight", "inner.1.bias"]


def test_named_parameters_prefix_is_prepended():
    names = [name for name, _ in nn.Linear(2, 2).named_parameters(prefix="head")]
    assert names == ["head.weight", "head.bias"]


def test_named_buffers_and_named_modules_walk_the_whole_tree():
    block = Block()
    assert [name for name, _ in block.named_buffers()] == [
        "steps", "inner.1.running_mean", "inner.1.running_var", "inner.1.num_batches_tracked"]
    assert [name for name, _ in block.named_modules()] == ["", "fc", "inner", "inner.0",
                                                          "inner.1"]


def test_children_are_the_direct_submodules_only():
    block = Block()
    assert [name for name, _ in block.named_children()] == ["fc", "inner"]
    assert list(block.children()) == [block.fc, block.inner]


def test_a_shared_parameter_is_listed_once():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    model[1].weight = model[0].weight
    assert len(list(model.parameters())) == 3
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.weight", "1.bias"]


def test_assigning_a_plain_tensor_to_a_parameter_name_is_an_error():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="'weight'.*Parameter or None"):
        layer.weight = Tensor(np.zeros((2, 2), np.float32))


def test_assigning_to_a_buffer_name_keeps_it_a_buffer():
    bn = nn.BatchNorm2d(2)
    bn.running_mean = np.full(2, 5.0, np.float32)
    assert isinstance(bn.running_mean, Tensor)
    assert bn.state_dict()["running_mean"].tolist() == [5.0, 5.0]


def test_delattr_unregisters_parameters_buffers_and_submodules():
    block = Block()
    del block.scale, block.steps, block.inner
    assert [name for name, _ in block.named_parameters()] == ["fc.weight", "fc.bias"]
    assert list(block.named_buffers()) == []
    with pytest.raises(AttributeError):
        _ = block.inner


def test_register_buffer_rejects_a_name_that_is_already_an_attribute():
    block = Block()
    with pytest.raises(KeyError, match="'fc' already exists"):
        block.register_buffer("fc", np.zeros(1))


def test_parameter_is_a_tensor_that_requires_grad_and_says_so_in_its_repr():
    p = nn.Parameter(np.array([1.0, 2.0], np.float32))
    assert isinstance(p, Tensor) and p.requires_grad
    assert repr(p) == "Parameter containing:\ntensor([1., 2.], requires_grad=True)"


def test_non_persistent_buffer_is_not_saved_but_moves_with_the_module():
    model = nn.Module()
    model.register_buffer("mask", np.zeros((2, 2), np.float32), persistent=False)
    assert "mask" not in model.state_dict()
    model.to("cuda")
    assert model.mask.device.name == "cuda"


def test_num_parameters_counts_every_trainable_number():
    assert nn.Linear(4, 3).num_parameters() == 4 * 3 + 3


# ------------------------------------------------------------------ state dicts
def test_state_dict_holds_host_copies_of_parameters_and_buffers(device):
    block = Block().to(device)
    state = block.state_dict()
    assert list(state) == ["scale", "steps", "fc.weight", "fc.bias", "inner.0.weight",
                           "inner.0.bias", "inner.1.weight", "inner.1.bias",
                           "inner.1.running_mean", "inner.1.running_var",
                           "inner.1.num_batches_tracked"]
    assert all(type(value) is np.ndarray for value in state.values())
    block.scale.data[...] = 7.0
    assert state["scale"].tolist() == [1.0, 1.0, 1.0]


def test_state_dict_round_trip_restores_the_outputs(device):
    np.random.seed(0)
    source, target = Block().to(device), Block().to(device)
    x = tensor(np.random.randn(2, 4), device, np.float32)
    target.load_state_dict(source.state_dict())
    np.testing.assert_array_equal(target(x).numpy(), source(x).numpy())
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)


def test_load_state_dict_copies_into_the_same_parameter_objects(device):
    layer = nn.Linear(2, 2).to(device)
    weight, weight_array = layer.weight, layer.weight.data
    layer.load_state_dict({"weight": np.eye(2), "bias": np.zeros(2)})
    assert layer.weight is weight and layer.weight.data is weight_array
    np.testing.assert_array_equal(layer.weight.numpy(), np.eye(2))


def test_load_state_dict_converts_to_each_tensors_dtype_and_device(device):
    layer = nn.Linear(2, 2).to(device)
    state = {"weight": np.eye(2, dtype=np.float64),                       # host, float64
             "bias": Tensor(np.array([1.0, 2.0], np.float16), device="cuda")}  # other device
    layer.load_state_dict(state)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    assert layer.weight.device.name == device and layer.bias.device.name == device
    assert layer.bias.tolist() == [1.0, 2.0]


def test_load_state_dict_error_names_every_missing_unexpected_and_misshaped_key():
    block = Block()
    before = block.state_dict()
    state = dict(before)
    del state["fc.bias"], state["inner.1.running_var"]
    state["fc.extra"] = np.zeros(1)
    state["scale"] = np.zeros(4)
    with pytest.raises(RuntimeError) as error:
        block.load_state_dict(state)
    message = str(error.value)
    assert "missing key(s): fc.bias, inner.1.running_var" in message
    assert "unexpected key(s): fc.extra" in message
    assert "scale: expected shape (3,), got (4,)" in message
    for name, value in block.state_dict().items():  # nothing was loaded
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_non_strict_returns_missing_and_unexpected_keys():
    layer = nn.Linear(2, 2)
    result = layer.load_state_dict({"weight": np.eye(2), "other": np.zeros(3)}, strict=False)
    assert result == (["bias"], ["other"])
    assert result.missing_keys == ["bias"] and result.unexpected_keys == ["other"]
    np.testing.assert_array_equal(layer.weight.numpy(), np.eye(2))


def test_load_state_dict_non_strict_still_rejects_a_shape_mismatch():
    with pytest.raises(RuntimeError, match=r"weight: expected shape \(2, 2\), got \(2, 3\)"):
        nn.Linear(2, 2).load_state_dict({"weight": np.zeros((2, 3))}, strict=False)


def test_batch_norm_state_may_lack_num_batches_tracked():
    bn = nn.BatchNorm2d(2)
    state = bn.state_dict()
    del state["num_batches_tracked"]
    assert bn.load_state_dict(state) == ([], [])


# ------------------------------------------------------------------ modes, devices, dtypes
def test_train_and_eval_reach_every_submodule():
    block = Block()
    assert block.eval() is block
    assert not any(module.training for module in block.modules())
    block.train()
    assert all(module.training for module in block.modules())


def test_to_dtype_casts_parameters_grads_and_float_buffers_but_not_integer_ones(device):
    block = Block().to(device)
    block.fc.weight.grad = block.fc.weight.data * 0
    same_weight = block.fc.weight
    assert block.to(np.float64) is block
    assert block.fc.weight is same_weight
    assert block.fc.weight.dtype == np.float64 and block.fc.weight.grad.dtype == np.float64
    assert block.inner[1].running_var.dtype == np.float64
    assert block.steps.dtype == np.int64 and block.inner[1].num_batches_tracked.dtype == np.int64


def test_half_float_and_double_cast_the_parameters():
    layer = nn.Linear(2, 2)
    assert layer.half().weight.dtype == np.float16
    assert layer.double().weight.dtype == np.float64
    assert layer.float().weight.dtype == np.float32


def test_to_device_moves_parameters_grads_and_buffers(device):
    block = Block()
    block.fc.weight.grad = np.ones((3, 4), np.float32)
    expected = block.state_dict()
    block.to(device)
    tensors = list(block.parameters()) + list(block.buffers()) + [Tensor(block.fc.weight.grad)]
    assert {t.device.name for t in tensors} == {device}
    for name, value in block.state_dict().items():
        np.testing.assert_array_equal(value, expected[name], err_msg=name)


def test_zero_grad_sets_every_gradient_to_none(device):
    layer = nn.Linear(2, 2).to(device)
    layer(tensor(np.ones((1, 2)), device, np.float32)).sum().backward()
    assert layer.weight.grad is not None
    layer.zero_grad()
    assert layer.weight.grad is None and layer.bias.grad is None


def test_requires_grad_false_freezes_every_parameter():
    block = Block().requires_grad_(False)
    assert not any(p.requires_grad for p in block.parameters())


def test_apply_visits_children_before_their_parent():
    block = Block()
    visited = []
    assert block.apply(lambda m: visited.append(type(m).__name__)) is block
    assert visited == ["Linear", "Linear", "BatchNorm2d", "Sequential", "Block"]


def test_repr_is_nested_like_pytorch():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.LayerNorm(3)))
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Linear(in_features=4, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        "  (2): Sequential(\n"
        "    (0): LayerNorm((3,), eps=1e-05)\n"
        "  )\n"
        ")")


def test_calling_a_module_runs_its_forward():
    assert nn.Identity()(5) == 5


# ------------------------------------------------------------------ containers
def test_sequential_is_indexable_and_applies_its_modules_in_order(device):
    double, add_one = nn.Linear(1, 1, bias=False), nn.Linear(1, 1)
    double.weight.data[...] = 2.0
    add_one.weight.data[...], add_one.bias.data[...] = 1.0, 1.0
    model = nn.Sequential(double, add_one).to(device)
    assert model[0] is double and model[-1] is add_one and len(model) == 2
    assert list(model[1:]._modules) == ["1"]
    assert model(tensor([[3.0]], device, np.float32)).item() == 7.0


def test_sequential_takes_the_names_of_an_ordered_dict():
    model = nn.Sequential(collections.OrderedDict([("c_fc", nn.Linear(2, 4)),
                                                   ("gelu", nn.QuickGELU())]))
    assert [name for name, _ in model.named_parameters()] == ["c_fc.weight", "c_fc.bias"]
    assert isinstance(model.gelu, nn.QuickGELU)


def test_module_list_registers_its_modules_as_0_1_2():
    layers = nn.ModuleList([nn.Linear(2, 2)])
    layers.append(nn.Linear(2, 3)).extend([nn.Linear(3, 1)])
    assert len(layers) == 3 and layers[-1].out_features == 1
    assert [layer.out_features for layer in layers] == [2, 3, 1]
    assert [name for name, _ in layers.named_parameters()][::2] == ["0.weight", "1.weight",
                                                                    "2.weight"]
    layers[1] = nn.Identity()
    assert [name for name, _ in layers.named_parameters()] == ["0.weight", "0.bias",
                                                               "2.weight", "2.bias"]


# ------------------------------------------------------------------ initialisation
def test_manual_seed_makes_a_model_reproducible():
    nn.manual_seed(3)
    first = Block().state_dict()
    nn.manual_seed(3)
    second = Block().state_dict()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name])


def test_linear_and_conv_default_init_is_uniform_in_one_over_sqrt_fan_in():
    np.random.seed(0)
    linear, conv = nn.Linear(50, 400), nn.Conv2d(2, 300, kernel_size=5)
    for param, fan_in in [(linear.weight, 50), (linear.bias, 50), (conv.weight, 50),
                          (conv.bias, 50)]:
        values = param.numpy()
        assert values.dtype == np.float32
        assert np.abs(values).max() <= 1 / np.sqrt(fan_in)
        assert np.abs(values).max() > 0.95 / np.sqrt(fan_in)  # the whole range is used


def test_xavier_uniform_bound_uses_fan_in_plus_fan_out():
    np.random.seed(0)
    weight = nn.init.xavier_uniform_(nn.Parameter(np.zeros((300, 100), np.float32)))
    bound = np.sqrt(6 / (100 + 300))
    assert bound * 0.95 < np.abs(weight.numpy()).max() <= bound


def test_fan_in_and_fan_out_of_a_conv_weight_include_the_kernel_area():
    assert nn.init.fan_in_and_fan_out((8, 3, 5, 5)) == (75, 200)


def test_init_fills_in_place_on_the_tensors_device(device):
    param = nn.Parameter(Tensor(np.zeros((2, 3), np.float32), device=device))
    array = param.data
    assert nn.init.ones_(param) is param and param.data is array
    assert param.numpy().tolist() == [[1.0] * 3] * 2


# ------------------------------------------------------------------ layers
def test_linear_computes_x_times_w_transposed_plus_b(device):
    layer = nn.Linear(3, 2).to(device)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    expected = x @ layer.weight.numpy().T + layer.bias.numpy()
    np.testing.assert_allclose(layer(tensor(x, device, np.float32)).numpy(), expected, rtol=1e-6)


def test_layer_norm_starts_as_plain_standardisation(device):
    layer = nn.LayerNorm(4).to(device)
    x = np.random.default_rng(0).standard_normal((2, 4))
    y = layer.double()(tensor(x, device)).numpy()
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-10)


def test_conv2d_output_shape_follows_stride_and_padding(device):
    conv = nn.Conv2d(3, 5, kernel_size=3, stride=2, padding=1).to(device)
    assert conv.weight.shape == (5, 3, 3, 3)
    assert conv(tensor(np.zeros((2, 3, 8, 8)), device, np.float32)).shape == (2, 5, 4, 4)


def test_batch_norm_in_training_updates_running_stats_and_counts_batches(device):
    bn = nn.BatchNorm2d(2).to(device)
    x = np.random.default_rng(0).standard_normal((4, 2, 3, 3)).astype(np.float32) * 2 + 1
    y = bn(tensor(x, device, np.float32)).numpy()
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    unbiased = var * x[:, 0].size / (x[:, 0].size - 1)
    np.testing.assert_allclose(bn.running_mean.numpy(), 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(bn.running_var.numpy(), 0.9 + 0.1 * unbiased, rtol=1e-5)
    assert bn.num_batches_tracked.item() == 1
    expected = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)
    bn(tensor(x, device, np.float32))
    assert bn.num_batches_tracked.item() == 2


def test_batch_norm_in_eval_uses_running_stats_and_updates_nothing(device):
    bn = nn.BatchNorm2d(2).to(device).eval()
    bn.running_mean = Tensor(np.array([1.0, -1.0], np.float32), device=device)
    bn.running_var = Tensor(np.array([4.0, 0.25], np.float32), device=device)
    x = np.random.default_rng(0).standard_normal((2, 2, 2, 2)).astype(np.float32)
    y = bn(tensor(x, device, np.float32)).numpy()
    expected = (x - np.array([1.0, -1.0])[:, None, None]) / np.sqrt(
        np.array([4.0, 0.25])[:, None, None] + 1e-5)
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    assert bn.running_mean.tolist() == [1.0, -1.0] and bn.num_batches_tracked.item() == 0


def test_embedding_looks_up_rows_and_starts_standard_normal(device):
    np.random.seed(0)
    table = nn.Embedding(1000, 20)
    assert abs(table.weight.numpy().std() - 1) < 0.02
    table.to(device)
    rows = table(np.array([[3, 0], [3, 999]]))
    assert rows.shape == (2, 2, 20)
    np.testing.assert_array_equal(rows.numpy()[1, 1], table.weight.numpy()[999])


def test_dropout_drops_in_training_and_is_the_identity_in_eval(device):
    drop = nn.Dropout(0.5)
    x = tensor(np.ones((100, 100)), device, np.float32)
    y = drop(x).numpy()
    assert set(np.unique(y)) == {0.0, 2.0} and 0.45 < (y == 0).mean() < 0.55
    assert drop.eval()(x) is x


# ------------------------------------------------------------------ gradchecks (float64)
def _gradcheck_module(module, x, device, **kwargs):
    module.double().to(device)
    x = tensor(x, device, requires_grad=True)
    gradcheck(module, [x], params=list(module.parameters()), **kwargs)


def test_linear_gradcheck(device):
    _gradcheck_module(nn.Linear(3, 2), np.random.default_rng(0).standard_normal((2, 3)), device)


def test_linear_without_bias_gradcheck(device):
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None and len(list(layer.parameters())) == 1
    _gradcheck_module(layer, np.random.default_rng(1).standard_normal((2, 3)), device)


def test_layer_norm_gradcheck(device):
    layer = nn.LayerNorm(4)
    layer.weight.data[...] = np.random.default_rng(2).standard_normal(4)
    _gradcheck_module(layer, np.random.default_rng(3).standard_normal((2, 4)), device)


def test_conv2d_gradcheck(device):
    conv = nn.Conv2d(2, 2, kernel_size=3, stride=2, padding=1)
    _gradcheck_module(conv, np.random.default_rng(4).standard_normal((1, 2, 4, 4)), device)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_gradcheck(device, training):
    bn = nn.BatchNorm2d(2).train(training)
    bn.weight.data[...] = [1.5, -0.5]
    bn.running_var.data[...] = [2.0, 0.5]
    _gradcheck_module(bn, np.random.default_rng(5).standard_normal((3, 2, 2, 2)), device)


def test_embedding_gradcheck(device):
    table = nn.Embedding(5, 3).double().to(device)
    ids = np.array([[0, 4], [4, 2]])  # a repeated id collects both gradients
    gradcheck(lambda: table(ids), [], params=list(table.parameters()))


def test_dropout_gradcheck(device):
    drop = nn.Dropout(0.3)
    x = tensor(np.random.default_rng(6).standard_normal((3, 4)), device, requires_grad=True)

    def fixed_mask_dropout(x):
        nn.manual_seed(0)  # the same mask on every call, so the function is deterministic
        return drop(x)

    gradcheck(fixed_mask_dropout, [x])


@pytest.mark.parametrize("make", [nn.ReLU, nn.GELU, nn.QuickGELU])
def test_activation_modules_gradcheck(device, make):
    _gradcheck_module(make(), randn_away_from((2, 3), seed=7), device)


def test_sequential_gradcheck(device):
    model = nn.Sequential(nn.Linear(3, 4), nn.QuickGELU(), nn.LayerNorm(4), nn.Linear(4, 2))
    _gradcheck_module(model, np.random.default_rng(8).standard_normal((2, 3)), device)



def test_skip_random_init_leaves_random_weights_zero_but_runs_constant_ones():
    with nn.init.skip_random_init():
        layer = nn.Linear(3, 2)
        norm = nn.LayerNorm(2)
    assert not layer.weight.numpy().any() and not layer.bias.numpy().any()
    assert norm.weight.numpy().tolist() == [1.0, 1.0]
    assert nn.Linear(3, 2).weight.numpy().any()  # outside the block, weights are random again
