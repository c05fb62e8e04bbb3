"""Fuzz the checkpoint readers: damaged copies of the test fixtures, each loaded in a child
process with a time limit and an address-space limit (3 GB beyond what the child starts
with), and a table of what happened.

    python scripts/fuzz_checkpoints.py                      # 440 per format and strategy
    python scripts/fuzz_checkpoints.py --per-case 20 --workers 1 --seed 3

Formats (from tests/fixtures, plus a training run's checkpoint.npz made at start-up):
OpenAI-style TorchScript ``.pt``, two ``torch.save`` zips, an ``.npz``, a ``.safetensors``
file. Strategies: random bytes overwritten, the file cut short, one zip member damaged with
its CRC recomputed (so that only the reader can notice), a safetensors header edited
(shapes, offsets, dtypes, the length, names), integers of a PyTorch pickle changed (shapes,
strides, offsets, storage sizes, memo indices: the pickle stays well formed), an ``.npy``
header of an ``.npz`` edited (shape, element type, order). The CLIP fixtures are loaded with
``miniclip.load`` (reading and building the model), the small wrapped state dict with
``load_state_dict``, the training state with ``load_training_state``.

Outcomes:

* ``loaded``: the damage hit tensor bytes or padding, which no format checks;
* ``clear``: a ``CheckpointError`` whose message is one line (under 1,000 characters)
  naming the file;
* ``unclear``: any other exception, or one that does not name the file;
* ``memory``: ``MemoryError`` under the address-space limit;
* ``hang``: no answer within the time limit;
* ``crash``: the child died (a signal, or an exit without an answer).

The exit status is 1 if any case is unclear, memory, hang or crash. ``tests/test_weights_fuzz.py``
runs a few hundred seeded cases of the same campaign.
"""
import argparse
import ast
import collections
import io
import json
import multiprocessing
import multiprocessing.connection
import os
import pickletools
import random
import resource
import signal
import struct
import sys
import tempfile
import time
import zipfile

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # the children share 2 cores

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
FIXTURES = os.path.join(ROOT, "tests", "fixtures")

import numpy as np  # noqa: E402

import miniclip  # noqa: E402
from miniclip import nn  # noqa: E402
from miniclip.autograd import Tensor  # noqa: E402
from miniclip.optim import AdamW, GradScaler  # noqa: E402
from miniclip.training.state import load_training_state, save_training_state  # noqa: E402
from miniclip.weights import CheckpointError, load_state_dict  # noqa: E402

#: The fixtures, by format name: (file, loader name).
FORMATS = {
    "torchscript": ("rn_micro_jit.pt", "model"),
    "torch.save": ("rn_micro_state_dict.pt", "model"),
    "torch.save (wrapped)": ("wrapped_state_dict.pt", "state_dict"),
    "npz": ("vit_micro.npz", "model"),
    "safetensors": (os.path.join("vit_micro_hf", "model.safetensors"), "model"),
    "checkpoint.npz": (None, "training_state"),
}
ZIP_FORMATS = [name for name in FORMATS if name != "safetensors"]
TORCH_FORMATS = ["torchscript", "torch.save", "torch.save (wrapped)"]
NPZ_FORMATS = ["npz", "checkpoint.npz"]
STRATEGIES = {
    "overwrite": list(FORMATS),
    "truncate": list(FORMATS),
    "zip member": ZIP_FORMATS,
    "safetensors header": ["safetensors"],
    "pickle integers": TORCH_FORMATS,
    "npy header": NPZ_FORMATS,
}
OUTCOMES = ("loaded", "clear", "unclear", "memory", "hang", "crash")
BAD_OUTCOMES = ("unclear", "memory", "hang", "crash")


# ---------------------------------------------------------------------------- the files
def training_run():
    """A small model, optimiser and scaler after one step: what a run's checkpoint holds."""
    miniclip.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.LayerNorm(16), nn.Linear(16, 4))
    optimizer, scaler = AdamW(model.parameters(), lr=1e-3), GradScaler()
    model(Tensor(np.ones((2, 8), np.float32))).sum().backward()
    optimizer.step()
    return model, optimizer, scaler


def originals(folder):
    """``{format: bytes}`` of every undamaged file (the checkpoint is written into ``folder``)."""
    files = {}
    for name, (fixture, _) in FORMATS.items():
        if fixture is None:
            path = os.path.join(folder, "checkpoint.npz")
            model, optimizer, scaler = training_run()
            save_training_state(path, model, optimizer, step=1, scaler=scaler,
                                extra={"schedule": {"steps": 10, "warmup": 1}})
        else:
            path = os.path.join(FIXTURES, fixture)
        with open(path, "rb") as file:
            files[name] = file.read()
    return files


# ---------------------------------------------------------------------------- damage
def overwrite(data, rng):
    """1 to 16 bytes anywhere replaced by random ones."""
    data = bytearray(data)
    for _ in range(rng.randint(1, 16)):
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def truncate(data, rng):
    """The file cut short anywhere (a third of the time near its end)."""
    if rng.random() < 1 / 3:
        return data[:len(data) - rng.randint(1, 200)]
    return data[:rng.randrange(len(data))]


def damage_bytes(data, rng):
    """A member's bytes damaged: overwritten (often in its first 128 bytes, where the
    headers are), cut short, or grown."""
    choice = rng.random()
    if choice < 0.15 and data:
        return data[:rng.randrange(len(data))]
    if choice < 0.2:
        return data + bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    data = bytearray(data)
    span = min(len(data), 128) if rng.random() < 0.6 else len(data)
    for _ in range(rng.randint(1, 8)):
        if span:
            data[rng.randrange(span)] = rng.randrange(256)
    return bytes(data)


def zip_member(data, rng):
    """One member damaged (the pickle half the time, when there is one) and the archive
    written again, so that its CRC-32 matches the damaged bytes."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    pickles = [i for i, (info, _) in enumerate(members) if info.filename.endswith("data.pkl")]
    target = rng.choice(pickles) if pickles and rng.random() < 0.5 else rng.randrange(len(members))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for i, (info, content) in enumerate(members):
            archive.writestr(info, damage_bytes(content, rng) if i == target else content)
    return out.getvalue()


def _edited_value(value, rng):
    """A plausible lie in place of a header number."""
    return rng.choice([0, 1, value + 1, max(value - 1, 0), value * 2, 2 ** 31, 2 ** 40,
                       2 ** 63, -1, str(value), float(value), None, [value]])


def safetensors_header(data, rng):
    """The JSON header edited: a shape, an offset, a dtype, a name, or the length field."""
    (length,) = struct.unpack("<Q", data[:8])
    header, body = json.loads(data[8:8 + length]), data[8 + length:]
    names = [name for name in header if name != "__metadata__"]
    name = rng.choice(names)
    entry = header[name]
    edit = rng.choice(["shape", "offsets", "dtype", "name", "length", "drop", "duplicate"])
    if edit == "shape" and entry["shape"]:
        dim = rng.randrange(len(entry["shape"]))
        entry["shape"][dim] = _edited_value(entry["shape"][dim], rng)
    elif edit == "shape":
        entry["shape"] = [rng.choice([0, 1, 2 ** 40])]
    elif edit == "offsets":
        which = rng.randrange(2)
        entry["data_offsets"][which] = _edited_value(entry["data_offsets"][which], rng)
    elif edit == "dtype":
        entry["dtype"] = rng.choice(["F64", "F16", "BF16", "I8", "BOOL", "U64", "f4", "", 7])
    elif edit == "name":
        header[name[:-1] + chr(rng.randrange(33, 127))] = header.pop(name)
    elif edit == "drop":
        del entry[rng.choice(list(entry))]
    text = json.dumps(header)
    if edit == "duplicate":  # the same name twice, which json.dumps cannot write
        text = text[:-1] + ", " + json.dumps(name) + ": " + json.dumps(entry) + "}"
    raw = text.encode()
    stated = len(raw)
    if edit == "length":
        stated = rng.choice([0, 1, stated - 1, stated + 1, stated + 8, 2 ** 32, 2 ** 63])
    return struct.pack("<Q", stated) + raw + body


# The pickle opcodes that carry a fixed-width integer (shapes, strides, offsets, storage
# sizes, memo indices), with the width and signedness of their argument.
_INTEGER_OPCODES = {"BININT1": (1, False), "BININT2": (2, False), "BININT": (4, True),
                    "BINPUT": (1, False), "LONG_BINPUT": (4, False), "BINGET": (1, False),
                    "LONG_BINGET": (4, False)}


def rewrite_member(data, choose, change):
    """The zip ``data`` with ``change`` applied to the member ``choose(names)`` picks; the
    archive is written again, so that its CRC-32 matches."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    target = choose([info.filename for info, _ in members])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for info, content in members:
            archive.writestr(info, change(content) if info.filename == target else content)
    return out.getvalue()


def pickle_integers(data, rng):
    """1 to 3 integers of the pickle (a shape, stride, offset, size or memo index) changed
    to plausible lies, the pickle still well formed, its CRC recomputed."""
    def change(pickled):
        spots = [(position, *_INTEGER_OPCODES[op.name]) for op, _, position
                 in pickletools.genops(pickled) if op.name in _INTEGER_OPCODES]
        pickled = bytearray(pickled)
        for position, width, signed in rng.sample(spots, min(len(spots), rng.randint(1, 3))):
            low, high = (-(1 << (8 * width - 1)), (1 << (8 * width - 1)) - 1) if signed \
                else (0, (1 << (8 * width)) - 1)
            old = int.from_bytes(pickled[position + 1:position + 1 + width], "little", signed=signed)
            new = min(max(rng.choice([0, 1, old + 1, old - 1, old * 2, old * 1000, high, low,
                                      rng.randint(low, high)]), low), high)
            pickled[position + 1:position + 1 + width] = new.to_bytes(width, "little", signed=signed)
        return bytes(pickled)

    return rewrite_member(data, lambda names: next(n for n in names if n.endswith("data.pkl")),
                          change)


def npy_header(data, rng):
    """One ``.npy`` member's header edited (its shape, element type or order), padded back
    to its length so the array data stays where it was, its CRC recomputed."""
    def change(member):
        length = int.from_bytes(member[8:10], "little")
        text = member[10:10 + length].decode("latin-1")
        header = ast.literal_eval(text)
        edit = rng.choice(["shape", "shape", "descr", "order", "text"])
        if edit == "shape":
            shape = list(header["shape"]) or [1]
            dim = rng.randrange(len(shape))
            shape[dim] = rng.choice([0, 1, shape[dim] + 1, shape[dim] * 2, 2 ** 31, 2 ** 40, 2 ** 62])
            if rng.random() < 0.3:
                shape.append(rng.choice([1, 2, 2 ** 20]))
            header["shape"] = tuple(shape)
        elif edit == "descr":
            header["descr"] = rng.choice(["<f8", "<f2", ">f4", "|b1", "<i8", "|O", "<U7", "|V4",
                                          "[('a', '<f4')]", "<c16", "x"])
        elif edit == "order":
            header["fortran_order"] = not header["fortran_order"]
        new = repr(header) if edit != "text" else text.replace(")", "", 1)
        new = new[:length - 1].ljust(length - 1) + "\n"
        return member[:10] + new.encode("latin-1") + member[10 + length:]

    return rewrite_member(data, lambda names: rng.choice(names), change)


DAMAGE = {"overwrite": overwrite, "truncate": truncate, "zip member": zip_member,
          "safetensors header": safetensors_header, "pickle integers": pickle_integers,
          "npy header": npy_header}

Case = collections.namedtuple("Case", "format strategy index")


def cases(per_case, formats=None):
    """Every (format, strategy, index) of a campaign, strategies interleaved."""
    combos = [(name, strategy) for strategy, names in STRATEGIES.items() for name in names
              if formats is None or name in formats]
    return [Case(name, strategy, index) for index in range(per_case) for name, strategy in combos]


def damaged(case, files, seed):
    """The damaged bytes of ``case``, the same for the same seed."""
    rng = random.Random(f"{seed}/{case.format}/{case.strategy}/{case.index}")
    return DAMAGE[case.strategy](files[case.format], rng)


# ---------------------------------------------------------------------------- loading
def load(case, path, run):
    """Load the file at ``path`` as ``case.format`` is loaded (module docstring)."""
    kind = FORMATS[case.format][1]
    if kind == "model":
        miniclip.load(path)
    elif kind == "state_dict":
        load_state_dict(path)
    else:
        load_training_state(path, *run)


def outcome(case, path, run):
    """``(outcome, detail)`` of loading ``path``, in this process."""
    try:
        load(case, path, run)
    except MemoryError as error:
        return "memory", repr(error)[:200]
    except CheckpointError as error:
        clear = str(path) in str(error) and "\n" not in str(error) and len(str(error)) < 1000
        return ("clear" if clear else "unclear"), f"{type(error).__name__}: {error}"[:300]
    except Exception as error:  # anything else is what the campaign is looking for
        return "unclear", f"{type(error).__name__}: {error}"[:300]
    return "loaded", ""


def address_space():
    """This process's address space in bytes (Linux), 0 where it cannot be told."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
    except (OSError, StopIteration):
        return 0


class _Timeout(BaseException):
    """Raised by the alarm in a child whose load takes too long."""


def _on_alarm(signum, frame):
    raise _Timeout()


def child(connection, batch, files, seed, folder, run, seconds, memory_bytes):
    """Load each case of ``batch`` under the limits, sending ``(index, outcome, detail)``;
    the address space may grow by ``memory_bytes`` beyond what the child inherits."""
    limit = address_space() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _on_alarm)
    path = os.path.join(folder, f"damaged-{os.getpid()}")
    for index, case in batch:
        with open(path, "wb") as file:
            file.write(damaged(case, files, seed))
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            result = outcome(case, path, run)
        except _Timeout:
            result = ("hang", f"over {seconds} s")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        connection.send((index, *result))
    connection.close()


def campaign(all_cases, seed=0, workers=2, seconds=10.0, memory_gb=3.0, batch_size=1,
             progress=None):
    """Run ``all_cases`` in child processes, ``workers`` at a time, ``batch_size`` cases per
    child. Returns ``[(case, outcome, detail)]`` in case order."""
    context = multiprocessing.get_context("fork")
    memory_bytes = int(memory_gb * 2 ** 30)
    results = [None] * len(all_cases)
    with tempfile.TemporaryDirectory() as folder:
        files, run = originals(folder), training_run()  # the children inherit both
        pending = collections.deque(enumerate(all_cases))
        running = {}  # connection -> [process, batch, results received, started]

        def start():
            batch = [pending.popleft() for _ in range(min(batch_size, len(pending)))]
            receiver, sender = context.Pipe(duplex=False)
            process = context.Process(target=child, args=(sender, batch, files, seed, folder,
                                                          run, seconds, memory_bytes))
            process.start()
            sender.close()
            running[receiver] = [process, batch, 0, time.monotonic()]

        while pending or running:
            while pending and len(running) < workers:
                start()
            ready = multiprocessing.connection.wait(list(running), timeout=1.0)
            for receiver in list(running):
                process, batch, received, started = running[receiver]
                finished = False
                if receiver in ready:
                    try:
                        index, result, detail = receiver.recv()
                        results[index] = (all_cases[index], result, detail)
                        running[receiver][2:] = [received + 1, time.monotonic()]
                        finished = received + 1 == len(batch)
                        if progress:
                            progress(sum(r is not None for r in results), len(all_cases))
                    except EOFError:  # the child died during a case
                        process.join()
                        index, case = batch[received]
                        results[index] = (case, "crash", f"exit code {process.exitcode}")
                        pending.extendleft(reversed(batch[received + 1:]))
                        finished = True
                elif time.monotonic() - started > 2 * seconds + 5:  # stuck outside Python
                    process.kill()
                    index, case = batch[received]
                    results[index] = (case, "hang", f"killed after {2 * seconds + 5} s")
                    pending.extendleft(reversed(batch[received + 1:]))
                    finished = True
                if finished:
                    process.join()
                    receiver.close()
                    del running[receiver]
    return results


def table(results):
    """The outcome counts as a Markdown table, and per format and strategy."""
    counts = collections.Counter(result for _, result, _ in results)
    lines = ["| outcome | files |", "|---|---|"]
    labels = {"loaded": "loaded (the damage hit tensor bytes or padding)",
              "clear": "a CheckpointError naming the file, the part and the fix",
              "unclear": "an unclear error (another type, or not naming the file)",
              "memory": "MemoryError (under the address-space limit)", "hang": "hang",
              "crash": "crash"}
    lines += [f"| {labels[name]} | {counts[name]:,} |" for name in OUTCOMES]
    lines += [f"| **total** | **{len(results):,}** |", "",
              "| format | strategy | " + " | ".join(OUTCOMES) + " |",
              "|---|---|" + "---|" * len(OUTCOMES)]
    by_combo = collections.defaultdict(collections.Counter)
    for case, result, _ in results:
        by_combo[case.format, case.strategy][result] += 1
    for (name, strategy), combo in by_combo.items():
        lines.append(f"| {name} | {strategy} | " + " | ".join(str(combo[o]) for o in OUTCOMES) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-case", type=int, default=440,
                        help="damaged files per format and strategy (default 440: 10,120 files)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="children at a time (at most 2 here)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per file")
    parser.add_argument("--memory-gb", type=float, default=3.0,
                        help="how far a child's address space may grow, in GB")
    args = parser.parse_args(argv)
    all_cases = cases(args.per_case)
    begin = time.monotonic()

    def progress(done, total):
        if done % 500 == 0 or done == total:
            print(f"{done:,}/{total:,} files, {time.monotonic() - begin:.0f} s", file=sys.stderr)

    results = campaign(all_cases, args.seed, args.workers, args.timeout, args.memory_gb,
                       progress=progress)
    print(table(results))
    print(f"\n{len(results):,} damaged files, seed {args.seed}, {args.workers} workers, "
          f"{time.monotonic() - begin:.0f} s")
    bad = [(case, result, detail) for case, result, detail in results if result in BAD_OUTCOMES]
    for case, result, detail in bad[:30]:
        print(f"{result}: {case.format} / {case.strategy} #{case.index}: {detail}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
