"""The errors a weights file or a training state can raise when it is damaged or unsupported.

Every reader of ``miniclip.weights`` (``read_weights_file``, ``load_state_dict``,
``miniclip.load``) and ``training.state.load_training_state`` raise one of these for any
file they cannot use, never a bare ``zipfile``, ``zlib``, ``pickle``, ``json`` or NumPy
error from deep inside a parser. The message is one line: the file, the part that is wrong
(a zip member, a tensor, a header field), the problem, and what to do::

    runs/a/checkpoint.npz, member 'model/conv1.weight.npy': its CRC-32 check fails; the
    file is damaged or incomplete: download or copy it again (or use another copy)

The exception a parser raised is kept as ``__cause__`` (``--debug`` shows it).

The hierarchy::

    ValueError
    └── CheckpointError                  any damaged or unsupported file
        └── CheckpointPickleError        the pickle inside a PyTorch file is damaged or
            │                            describes something other than tensors
            │   (also a pickle.UnpicklingError)
            └── ForbiddenGlobalError     the pickle names a global outside the tensor
                                         allow-list; it was refused, nothing of it ran

so ``except ValueError`` catches them all, and ``except pickle.UnpicklingError`` still
catches every problem found inside a pickle, as it did before these classes existed. A
missing file stays a ``FileNotFoundError``. ``docs/damaged-files.md`` describes what every
reader of a user's files checks.
"""
import contextlib
import pickle
import reprlib

__all__ = ["CheckpointError", "CheckpointPickleError", "DAMAGED", "ForbiddenGlobalError",
           "UNSUPPORTED", "parsing", "short_repr", "summary"]

#: The fix for a file whose bytes are wrong: nothing in it can be trusted.
DAMAGED = ("the file is damaged or incomplete: download or copy it again (or use another "
           "copy)")

#: The fix for a file that is intact but in no format miniclip reads.
UNSUPPORTED = ("expected a zip archive (OpenAI's TorchScript .pt, a torch.save file of "
               "PyTorch >= 1.6, an .npz) or a .safetensors file")


class CheckpointError(ValueError):
    """A weights file or training state that is damaged or unsupported.

    ``path`` is the file, ``part`` the piece of it that is wrong (``"member
    'archive/data/3'"``, ``"tensor 'visual.proj'"``, ``"header field 'data_offsets'"``, or
    None for the file as a whole), ``problem`` what is wrong and ``fix`` what to do.
    """

    def __init__(self, path, part, problem, fix=DAMAGED):
        self.path, self.part, self.problem, self.fix = str(path), part, problem, fix
        where = self.path if part is None else f"{self.path}, {part}"
        super().__init__(f"{where}: {problem}; {fix}")

    def __reduce__(self):
        # Exceptions pickle by their args; ours are built from four fields.
        return type(self), (self.path, self.part, self.problem, self.fix)


class CheckpointPickleError(CheckpointError, pickle.UnpicklingError):
    """The pickle inside a PyTorch file is damaged or holds more than tensors and
    containers (a ``CheckpointError`` and a ``pickle.UnpicklingError``)."""


class ForbiddenGlobalError(CheckpointPickleError):
    """A pickle names a function or class outside the tensor allow-list; it was refused
    before anything of it ran."""


@contextlib.contextmanager
def parsing(path, part, problem, fix=DAMAGED, error_type=CheckpointError):
    """Turn any exception that a parser (zipfile, zlib, pickle, json, ast) raises on
    untrusted bytes inside the block into an ``error_type`` saying ``problem`` and the
    parser's message, the exception kept as its cause.

    A ``CheckpointError`` passes unchanged, and so does ``MemoryError``: a reader must check
    sizes before allocating, and the fuzz tests look for this error to find one that does
    not.
    """
    try:
        yield
    except (CheckpointError, MemoryError):
        raise
    except Exception as error:  # parsers of damaged bytes raise nearly every kind
        raise error_type(path, part, f"{problem} ({summary(error)})", fix) from error


def summary(error: BaseException) -> str:
    """``"TypeName: message"`` of a parser's exception, cut to one short line."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:160]}{'...' if len(text) > 160 else ''}"


def short_repr(value) -> str:
    """A repr of untrusted data that stays short and on one line (and cannot recurse
    without end); an array's repr, for one, spans lines."""
    return _SHORT.repr(value).replace("\n", " ")


_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, 120, 120
