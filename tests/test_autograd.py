"""The autograd engine: how gradients flow, accumulate and are freed, one behaviour per test."""
import numpy as np
import pytest

import miniclip.functional as F
from miniclip import backend
from miniclip.autograd import Function, Tensor, enable_grad, no_grad
from miniclip.functional.gradcheck import GradcheckError, gradcheck


def tensor(values, device, dtype=np.float64, requires_grad=True):
    return Tensor(np.asarray(values, dtype=dtype), device=device, requires_grad=requires_grad)


def grad_of(t):
    return backend.to_numpy(t.grad)


# ------------------------------------------------------------------ accumulation and flow
def test_leaf_gradients_accumulate_across_backward_calls(device):
    x = tensor([1.0, 2.0], device)
    (x * 3).sum().backward()
    (x * 4).sum().backward()
    np.testing.assert_array_equal(grad_of(x), [7.0, 7.0])


def test_setting_grad_to_none_starts_afresh(device):
    x = tensor([1.0, 2.0], device)
    (x * 3).sum().backward()
    x.grad = None
    (x * 4).sum().backward()
    np.testing.assert_array_equal(grad_of(x), [4.0, 4.0])


def test_a_tensor_used_twice_receives_the_sum_of_both_gradients(device):
    x = tensor([1.0, -2.0, 3.0], device)
    (x * x + x).sum().backward()  # d/dx (x^2 + x) = 2x + 1
    np.testing.assert_array_equal(grad_of(x), [3.0, -3.0, 7.0])


def test_broadcasting_is_undone_by_summing_over_the_stretched_axes(device):
    row = tensor([1.0, 2.0, 3.0], device)                       # [3] -> [2, 3]
    column = tensor([[1.0], [2.0]], device)                     # [2, 1] -> [2, 3]
    (row * column).sum().backward()
    np.testing.assert_array_equal(grad_of(row), [3.0, 3.0, 3.0])    # sum of the column
    np.testing.assert_array_equal(grad_of(column), [[6.0], [6.0]])  # sum of the row


def test_gradients_take_the_dtype_of_their_tensor(device):
    x16 = tensor([1.0, 2.0], device, dtype=np.float16)
    w32 = tensor([3.0, 4.0], device, dtype=np.float32)
    (x16 * w32).sum().backward()  # the product is float32
    assert x16.grad.dtype == np.float16 and w32.grad.dtype == np.float32


def test_an_unused_output_of_a_multi_output_op_gets_a_zero_gradient(device):
    x = tensor([1.0, 2.0, 3.0, 4.0], device)
    first, _ = F.split(x, 2)
    (first * 5).sum().backward()
    np.testing.assert_array_equal(grad_of(x), [5.0, 5.0, 0.0, 0.0])


def test_retain_grad_keeps_the_gradient_of_an_intermediate_tensor(device):
    x = tensor([1.0, 2.0], device)
    hidden = (x * 2).retain_grad()
    (hidden * hidden).sum().backward()
    np.testing.assert_array_equal(grad_of(hidden), [4.0, 8.0])


def test_retain_grad_on_the_tensor_backward_starts_from(device):
    y = tensor([1.0, 2.0], device) * 2
    y.retain_grad()
    y.backward(y.device.to_device(np.array([3.0, 4.0])))
    np.testing.assert_array_equal(grad_of(y), [3.0, 4.0])


def test_leaf_gradients_can_be_edited_in_place_without_touching_other_tensors(device):
    a, b = tensor([1.0, 2.0], device), tensor([3.0, 4.0], device)
    (a + b).sum().backward()  # Add hands one (broadcast, read-only) array to both inputs
    a.grad *= 0.5
    np.testing.assert_array_equal(grad_of(a), [0.5, 0.5])
    np.testing.assert_array_equal(grad_of(b), [1.0, 1.0])


# ------------------------------------------------------------------ recording the graph
def test_no_grad_records_nothing(device):
    x = tensor([1.0, 2.0], device)
    with no_grad():
        y = x * 2
    assert y.grad_fn is None and not y.requires_grad


def test_enable_grad_records_again_inside_no_grad(device):
    x = tensor([1.0, 2.0], device)
    with no_grad():
        with enable_grad():
            y = x * 2
    assert y.requires_grad and y.grad_fn is not None


def test_detach_cuts_the_graph(device):
    x = tensor([1.0, 2.0], device)
    y = x * 3
    z = y.detach() * x                                          # only the second factor counts
    assert y.detach().grad_fn is None and not y.detach().requires_grad
    z.sum().backward()
    np.testing.assert_array_equal(grad_of(x), [3.0, 6.0])


def test_retain_graph_allows_a_second_backward(device):
    x = tensor([1.0, 2.0], device)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(grad_of(x), [4.0, 8.0])


def test_a_second_backward_through_a_freed_graph_is_a_clear_error(device):
    x = tensor([1.0, 2.0], device)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_a_ten_thousand_op_chain_backprops_without_recursion_error(device):
    x = tensor([1.0], device)
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(grad_of(x), [1.0001 ** 10_000], rtol=1e-9)


# ------------------------------------------------------------------ graph orderings
def test_an_intermediate_tensor_feeding_two_consumers_sums_both_before_going_on(device):
    # h = x^2 feeds h * 3 and h * h: h's producer must run once, after both consumers
    # have handed it their gradients. d/dx (3 h + h^2) = (3 + 2 h) * 2 x.
    x = tensor([0.5, -1.5, 2.0], device)
    h = x * x
    ((h * 3).sum() + (h * h).sum()).backward()
    values = np.array([0.5, -1.5, 2.0])
    np.testing.assert_allclose(grad_of(x), (3 + 2 * values ** 2) * 2 * values, rtol=1e-12)


@pytest.mark.parametrize("order", ["f(h) + h", "h + f(h)"])
def test_a_residual_f_of_h_plus_h_gets_the_same_gradient_in_either_order(device, order):
    # The residual pattern of every transformer block: h reaches the sum directly and
    # through a chain of three ops. A depth-first order that visits h's producer before
    # the long branch has reached it would drop that branch's gradient.
    x = tensor([0.3, -0.7], device)
    w = tensor([1.5, 2.0], device)
    h = x * w

    def f(t):
        return ((t * t) * 2).tanh()

    y = f(h) + h if order == "f(h) + h" else h + f(h)
    y.sum().backward()
    hv = np.array([0.3, -0.7]) * np.array([1.5, 2.0])
    dy_dh = 1 + (1 - np.tanh(2 * hv ** 2) ** 2) * 4 * hv
    np.testing.assert_allclose(grad_of(x), dy_dh * np.array([1.5, 2.0]), rtol=1e-12)
    np.testing.assert_allclose(grad_of(w), dy_dh * np.array([0.3, -0.7]), rtol=1e-12)


# ------------------------------------------------------------------ user-defined ops
class Cube(Function):
    """The example of the autograd docstring: y = x^3, dy/dx = 3 x^2."""

    def forward(self, x):
        self.x = x
        return x ** 3

    def backward(self, grad_y):
        return grad_y * 3 * self.x ** 2


class WrongCube(Cube):
    def backward(self, grad_y):
        return grad_y * 2 * self.x ** 2  # a deliberate mistake: 2 instead of 3


def test_a_user_defined_function_gets_gradients_and_passes_gradcheck(device):
    x = tensor([[0.5, -1.0], [2.0, 1.5]], device)
    Cube()(x).sum().backward()
    np.testing.assert_allclose(grad_of(x), 3 * np.array([[0.5, -1.0], [2.0, 1.5]]) ** 2)
    assert gradcheck(lambda t: Cube()(t), [x]).passed


def test_gradcheck_catches_a_wrong_backward_and_names_the_worst_element(device):
    x = tensor([[0.5, -1.0], [2.0, 1.5]], device)
    with pytest.raises(GradcheckError) as failure:
        gradcheck(lambda t: WrongCube()(t).sum(), [x])
    entry = failure.value.report.entries[0]
    assert not entry.passed and entry.worst_index == (1, 0)  # the error x^2 is largest there


def test_gradcheck_in_directional_mode_also_catches_it(device):
    x = tensor([[0.5, -1.0], [2.0, 1.5]], device)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: WrongCube()(t), [x], mode="directional")


class NegatedCube(Cube):
    def backward(self, grad_y):
        return -grad_y * 3 * self.x ** 2  # a deliberate mistake: the wrong sign


@pytest.mark.parametrize("mode", ["exhaustive", "directional"])
def test_gradcheck_catches_a_backward_with_the_wrong_sign(device, mode):
    # Right magnitude, wrong sign: the easiest mistake in a hand-derived backward, and one
    # a check of |gradient| alone would miss.
    x = tensor([[0.5, -1.0], [2.0, 1.5]], device)
    with pytest.raises(GradcheckError):
        gradcheck(lambda t: NegatedCube()(t).sum(), [x], mode=mode)


# ------------------------------------------------------------------ errors that explain
def test_backward_on_a_non_scalar_without_a_gradient_names_the_shape(device):
    y = tensor([[1.0, 2.0, 3.0]], device) * 2
    with pytest.raises(RuntimeError, match=r"scalar.*\(1, 3\)"):
        y.backward()


def test_backward_on_a_tensor_that_needs_no_grad_is_an_error(device):
    with pytest.raises(RuntimeError, match="does not require grad"):
        (tensor([1.0], device, requires_grad=False) * 2).sum().backward()


def test_ops_on_tensors_of_two_devices_name_the_devices():
    a, b = tensor([1.0], "cpu"), tensor([2.0], "cuda")
    with pytest.raises(RuntimeError, match=r"\['cpu', 'cuda'\]"):
        a + b


def test_cross_entropy_with_float_labels_names_the_dtype(device):
    logits = tensor(np.zeros((2, 3)), device)
    labels = Tensor(np.array([0.0, 2.0], np.float32), device=device)
    with pytest.raises(TypeError, match="float32"):
        F.cross_entropy(logits, labels)


# ------------------------------------------------------------------ devices and values
def test_moving_to_cuda_and_back_is_differentiable():
    x = tensor([1.0, 2.0], "cpu")
    y = (x.to("cuda") * 3).to("cpu")
    assert y.device.name == "cpu"
    y.sum().backward()
    assert x.grad.__class__ is np.ndarray
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])


def test_python_numbers_on_either_side_of_an_operator(device):
    x = tensor([1.0, 2.0], device)
    np.testing.assert_allclose((2 - x).numpy(), [1.0, 0.0])
    np.testing.assert_allclose((2 / x).numpy(), [2.0, 1.0])
    np.testing.assert_allclose((2 ** x).numpy(), [2.0, 4.0])
    np.testing.assert_allclose((x - 1).numpy(), [0.0, 1.0])
    np.testing.assert_allclose((x ** 2).numpy(), [1.0, 4.0])
    (2 ** x).sum().backward()  # d/dx 2^x = 2^x ln 2
    np.testing.assert_allclose(grad_of(x), np.array([2.0, 4.0]) * np.log(2))


def test_reflected_division_and_subtraction_have_the_right_gradients(device):
    x = tensor([1.0, 2.0], device)
    (2 / x - (3 - x)).sum().backward()  # d/dx (2/x - 3 + x) = -2/x^2 + 1
    np.testing.assert_allclose(grad_of(x), [-1.0, 0.5])


def test_a_python_number_takes_the_dtype_of_the_tensor(device):
    x = tensor([1.0, 2.0], device, dtype=np.float16)
    assert (x * 2.5).dtype == np.float16 and (1.0 - x).dtype == np.float16


def test_numpy_returns_a_host_copy_from_any_device(device):
    x = tensor([1.0, 2.0], device)
    host = x.numpy()
    assert type(host) is np.ndarray
    host[0] = 100.0
    np.testing.assert_array_equal(x.numpy(), [1.0, 2.0])


def test_item_returns_a_python_number(device):
    value = tensor([[2.5]], device).item()
    assert type(value) is float and value == 2.5
    assert type(tensor([1.0, 2.0], device).sum().item()) is float


def test_item_on_several_elements_names_the_shape(device):
    with pytest.raises(ValueError, match=r"\(2,\)"):
        tensor([1.0, 2.0], device).item()


def test_full_reductions_give_0d_arrays_not_numpy_scalars(device):
    total = tensor([1.0, 2.0], device).sum()
    assert total.shape == () and backend.device_of(total.data).name == device
    assert not isinstance(total.data, np.generic)


def test_comparing_with_a_python_number_works_on_every_device(device):
    x = tensor([0.1, 0.5, 2.0], device)  # float64: 0.1 is compared as float64, not float32
    np.testing.assert_array_equal((x >= 0.1).numpy(), [True, True, True])
    np.testing.assert_array_equal((x < 1).numpy(), [True, True, False])


def test_an_integer_tensor_times_a_float_is_not_truncated(device):
    ids = Tensor(np.array([1, 2, 3], dtype=np.int32), device=device)
    np.testing.assert_allclose((ids * 0.5).numpy(), [0.5, 1.0, 1.5])



def test_backward_frees_the_graph_so_a_kept_loss_does_not_hold_activations():
    import gc
    import weakref

    x = Tensor(np.ones((3, 3)), requires_grad=True)
    hidden = x.exp()
    activation = weakref.ref(hidden)
    loss = (hidden * 2.0).sum()
    del hidden
    loss.backward()
    gc.collect()
    assert activation() is None  # only `loss` is left, and it no longer reaches `hidden`
