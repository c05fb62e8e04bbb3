"""Red-team tests of the checkpoint readers: files made to hurt, each of which must fail
safely, with one clear ``CheckpointError`` naming the file, never running code, never
reading outside the file, never taking memory the file does not hold, never hanging.

Memory is checked where it matters by loading in a forked child whose address space may
grow by at most 1 GiB (``load_under_memory_limit``): an allocation from a lying size then
fails there as a ``MemoryError`` instead of succeeding lazily."""
import copyreg
import io
import json
import multiprocessing
import os
import pickle
import resource
import signal
import struct
import zipfile

import numpy as np
import pytest
from crafted_checkpoints import Call, Global, Storage, pickled, rebuild_tensor, torch_zip

from miniclip.weights import (
    CheckpointError,
    CheckpointPickleError,
    ForbiddenGlobalError,
    load_safetensors,
    load_state_dict,
    read_npz,
    read_weights_file,
    save_safetensors,
)
from miniclip.weights.npz import read_npy_bytes

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
PROTOCOL_2, PROTOCOL_4, STOP = b"\x80\x02", b"\x80\x04", b"."


def refused(path, error_type=CheckpointError, match=None, load=load_state_dict):
    """Load ``path``, expecting ``error_type`` whose one-line message names the file."""
    with pytest.raises(error_type, match=match) as caught:
        load(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message and len(message) < 700, message
    return caught.value


def load_under_memory_limit(path, load=load_state_dict, limit=1 << 30):
    """``(type name, message)`` of what loading ``path`` raises in a forked child whose
    address space may grow by ``limit`` bytes (None if it loads; "hang" after 60 s)."""
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child():
        with open("/proc/self/status") as status:
            used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize"))
        resource.setrlimit(resource.RLIMIT_AS, (used + limit, used + limit))
        try:
            load(path)
            sender.send(None)
        except BaseException as error:  # report whatever it is to the parent
            sender.send((type(error).__name__, str(error)))

    process = context.Process(target=child)
    process.start()
    sender.close()
    result = receiver.recv() if receiver.poll(60) else ("hang", "no answer within 60 s")
    process.kill()
    process.join()
    return result


def zip_with(path, members, compression=zipfile.ZIP_STORED):
    """A zip archive of ``{name: bytes}``."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def npy(array_header, data=b""):
    """A version-1 ``.npy`` member with the header dict ``array_header`` (as text)."""
    text = array_header.encode("latin-1")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


def patch_central_directory(data, offset, value, size=4):
    """``data`` with the field at ``offset`` of its (only) central directory entry set."""
    at = data.rindex(b"PK\x01\x02") + offset
    return data[:at] + value.to_bytes(size, "little") + data[at + size:]


# ---------------------------------------------------------------------------- pickles
def test_a_forbidden_global_is_refused_as_both_an_unpickling_and_a_value_error(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "evil.pt"
    torch_zip(path, {"w": Call(os.system, f"touch {marker}")}, {})
    error = refused(path, ForbiddenGlobalError, match="refusing to load global posix.system")
    assert isinstance(error, pickle.UnpicklingError) and isinstance(error, ValueError)
    assert "member 'archive/data.pkl'" in str(error) and not marker.exists()


def test_a_forbidden_global_by_stack_global_of_protocol_4_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    exec_call = (b"\x8c\x08builtins\x8c\x04exec\x93" + b"\x8c\x0bprint('ran')\x85R")
    torch_zip(path, PROTOCOL_4 + exec_call + STOP, {})
    refused(path, ForbiddenGlobalError, match="refusing to load global builtins.exec")


def test_a_forbidden_global_by_the_inst_opcode_of_protocol_0_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch_zip(path, b"(S'touch pwned'\nios\nsystem\n.", {})
    refused(path, ForbiddenGlobalError, match="refusing to load global os.system")
    assert not (tmp_path / "pwned").exists()


def test_an_extension_code_is_refused_even_when_one_is_registered(tmp_path):
    path = tmp_path / "evil.pt"
    copyreg.add_extension("os", "system", 0xF0)
    try:
        torch_zip(path, PROTOCOL_2 + b"\x82\xf0" + b"X\x04\x00\x00\x00true\x85R" + STOP, {})
        refused(path, CheckpointPickleError, match="extension code")
    finally:
        copyreg.remove_extension("os", "system", 0xF0)


def test_reduce_of_an_allowed_function_with_the_wrong_arguments_is_a_damaged_pickle(tmp_path):
    path = tmp_path / "w.pt"
    torch_zip(path, {"w": Call(Global("torch._utils", "_rebuild_tensor_v2"), 1)}, {})
    error = refused(path, CheckpointPickleError, match="the pickle is damaged .TypeError")
    assert isinstance(error.__cause__, TypeError)


def test_a_pickle_cannot_change_how_the_next_file_is_read(tmp_path):
    # BUILD sets attributes on what a global names: here torch.FloatStorage's element type.
    poison = (b"ctorch\nFloatStorage\n" + b"N}X\x0a\x00\x00\x00dtype_nameX\x03\x00\x00\x00F16s\x86b")
    torch_zip(tmp_path / "evil.pt", PROTOCOL_2 + poison + STOP, {})
    refused(tmp_path / "evil.pt", CheckpointPickleError)
    torch_zip(tmp_path / "good.pt", {"t": rebuild_tensor(Storage("FloatStorage", "0", 4), 0, (4,), (1,))},
              {"0": np.arange(4, dtype="<f4").tobytes()})
    loaded = read_weights_file(tmp_path / "good.pt")["t"]
    assert loaded.dtype == np.float32 and loaded.tolist() == [0.0, 1.0, 2.0, 3.0]


def test_a_huge_declared_bytes_length_takes_no_memory(tmp_path):
    path = tmp_path / "w.pt"
    torch_zip(path, PROTOCOL_4 + b"\x8e" + struct.pack("<Q", 1 << 40) + b"x" * 16 + STOP, {})
    assert load_under_memory_limit(path)[0] == "CheckpointPickleError"
    torch_zip(path, PROTOCOL_4 + b"\x8e" + struct.pack("<Q", 3 << 30) + b"x" * 16 + STOP, {})
    assert load_under_memory_limit(path)[0] == "CheckpointPickleError"


def test_a_memo_index_far_beyond_the_pickle_is_refused_before_the_memo_grows(tmp_path):
    path = tmp_path / "w.pt"
    torch_zip(path, PROTOCOL_2 + b"}r" + struct.pack("<I", 0xFFFFFFF0) + STOP, {})
    name, message = load_under_memory_limit(path)
    assert name == "CheckpointPickleError" and "memo entry 4294967280" in message


def test_a_frame_longer_than_the_pickle_is_refused(tmp_path):
    path = tmp_path / "w.pt"
    torch_zip(path, PROTOCOL_4 + b"\x95" + struct.pack("<Q", 1 << 40) + b"}" + STOP, {})
    refused(path, CheckpointPickleError, match="frame at byte 2 declares")


def test_a_storage_declaring_more_elements_than_its_member_holds_is_refused(tmp_path):
    path = tmp_path / "w.pt"
    torch_zip(path, {"t": rebuild_tensor(Storage("FloatStorage", "0", 1 << 40), 0, (4,), (1,))},
              {"0": np.zeros(4, "<f4").tobytes()})
    refused(path, CheckpointPickleError, match="holds 4 elements, expected 1099511627776")


def test_a_storage_member_ending_inside_an_element_is_refused(tmp_path):
    path = tmp_path / "w.pt"
    torch_zip(path, {"t": rebuild_tensor(Storage("FloatStorage", "0", 1), 0, (1,), (1,))},
              {"0": b"\x00" * 6})
    refused(path, CheckpointPickleError, match="6 bytes, not a whole number of F32")


def test_a_tensor_of_zero_strides_and_a_huge_shape_takes_no_memory(tmp_path):
    path = tmp_path / "w.pt"
    torch_zip(path, {"t": rebuild_tensor(Storage("FloatStorage", "0", 1), 0, (10**6, 10**6), (0, 0))},
              {"0": np.zeros(1, "<f4").tobytes()})
    name, message = load_under_memory_limit(path)
    assert name == "CheckpointPickleError" and "storage of 1 elements" in message


def test_many_tensors_viewing_one_storage_are_refused_beyond_the_files_size(tmp_path):
    path = tmp_path / "w.pt"
    storage = Storage("FloatStorage", "0", 4096)
    torch_zip(path, {f"t{i}": rebuild_tensor(storage, 0, (4096,), (1,)) for i in range(200)},
              {"0": np.zeros(4096, "<f4").tobytes()})
    refused(path, CheckpointPickleError, match="more than 4 bytes per byte of the file")


def test_a_tensor_of_more_dimensions_than_numpy_allows_is_refused(tmp_path):
    path = tmp_path / "w.pt"
    torch_zip(path, {"t": rebuild_tensor(Storage("FloatStorage", "0", 1), 0, (1,) * 100, (1,) * 100)},
              {"0": np.zeros(1, "<f4").tobytes()})
    refused(path, CheckpointPickleError, match="invalid tensor layout")


def test_a_tensor_built_on_something_other_than_a_storage_is_refused(tmp_path):
    path = tmp_path / "w.pt"
    torch_zip(path, {"t": rebuild_tensor([1.0, 2.0], 0, (2,), (1,))}, {})
    refused(path, CheckpointPickleError, match="not a persistent storage reference")


def module_pickle(body):
    """A protocol-2 pickle of TorchScript module objects, ``body`` building them: ``M``
    pushes a new module object (memoized by the caller with ``q``)."""
    return PROTOCOL_2 + body.replace(b"M", b"c__torch__\nM\n)\x81") + STOP


def test_a_module_tree_that_contains_itself_is_refused(tmp_path):
    path = tmp_path / "w.pt"
    # m = M(); m.__setstate__({"self": m})
    torch_zip(path, module_pickle(b"Mq\x00}X\x04\x00\x00\x00selfh\x00sb"), {})
    name, message = load_under_memory_limit(path)  # a walk round the cycle would not end
    assert name == "CheckpointPickleError" and "cycle or shared many times" in message


def test_a_module_shared_exponentially_often_is_refused(tmp_path):
    # Each level holds the level below twice: 2**40 paths from 40 objects.
    body = b"M}bq\x00"  # a leaf module without attributes
    for level in range(1, 41):
        body += (b"M}(X\x01\x00\x00\x00ah" + bytes([level - 1]) + b"X\x01\x00\x00\x00bh"
                 + bytes([level - 1]) + b"ubq" + bytes([level]))
    path = tmp_path / "w.pt"
    torch_zip(path, module_pickle(body), {})
    name, message = load_under_memory_limit(path)  # a walk of 2**40 paths would not end
    assert name == "CheckpointPickleError" and "cycle or shared many times" in message


def chain_of_modules(path, depth):
    """A TorchScript-like file of ``depth`` modules, each the attribute "m" of its parent,
    the last holding a tensor "w"."""
    storage = Storage("FloatStorage", "0", 1)
    leaf = pickled({"w": rebuild_tensor(storage, 0, (1,), (1,))})[2:-1]  # the dict, no PROTO/STOP
    body = b"M" + leaf + b"b"
    for _ in range(depth):
        body = b"M}X\x01\x00\x00\x00m" + body + b"sb"
    torch_zip(path, module_pickle(body), {"0": np.ones(1, "<f4").tobytes()})


def test_a_nested_module_tree_is_read_under_dotted_names(tmp_path):
    chain_of_modules(tmp_path / "deep.pt", 100)
    assert list(read_weights_file(tmp_path / "deep.pt")) == ["m." * 100 + "w"]


def test_a_module_tree_deeper_than_pythons_recursion_limit_is_a_clear_error(tmp_path):
    chain_of_modules(tmp_path / "deep.pt", 5000)  # names of 10,000 characters, paths of 5,000
    refused(tmp_path / "deep.pt", CheckpointPickleError, match="names longer than the pickle")


def test_a_state_dict_key_that_is_not_a_string_is_refused(tmp_path):
    path = tmp_path / "w.pt"
    torch_zip(path, {7: rebuild_tensor(Storage("FloatStorage", "0", 1), 0, (1,), (1,))},
              {"0": np.zeros(1, "<f4").tobytes()})
    refused(path, CheckpointPickleError, match="entry 7 of the state dict")


def test_a_storage_key_that_climbs_out_of_the_archive_reads_nothing_outside_it(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(np.ones(4, "<f4").tobytes())
    path = tmp_path / "inner" / "w.pt"
    path.parent.mkdir()
    torch_zip(path, {"t": rebuild_tensor(Storage("FloatStorage", "../../secret", 4), 0, (4,), (1,))}, {})
    refused(path, CheckpointPickleError, match="no storage 'archive/data/../../secret'")


def test_members_named_to_climb_out_of_a_folder_are_never_written_anywhere(tmp_path):
    path = tmp_path / "inner" / "w.npz"
    path.parent.mkdir()
    zip_with(path, {"../../escaped.npy": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }",
                                              b"\x00" * 4)})
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert list(read_npz(path)) == ["../../escaped"]  # a name, read in memory
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


# ---------------------------------------------------------------------------- zip archives
def test_a_member_name_of_60000_characters_gives_a_short_message(tmp_path):
    path = tmp_path / "w.npz"
    zip_with(path, {"x" * 60_000 + ".txt": b"hello"})
    refused(path, match=r"member 'xxx.*\.\.\..*xxx\.txt', neither")  # refused() checks the length



def test_a_member_name_given_twice_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.npy", b"first")
        archive.writestr("a.npy", b"second")
    refused(path, match="member 'a.npy': appears 2 times")


def test_a_deflated_member_declaring_more_than_deflate_can_give_is_refused(tmp_path):
    path = tmp_path / "bomb.npz"
    zip_with(path, {"a.npy": b"\x00" * 1000}, zipfile.ZIP_DEFLATED)
    path.write_bytes(patch_central_directory(path.read_bytes(), 24, 0xFFFFFFF0))  # its size
    name, message = load_under_memory_limit(path)
    assert name == "CheckpointError" and "which its compression cannot give" in message


def test_members_that_overlap_are_refused(tmp_path):
    path = tmp_path / "w.npz"
    zip_with(path, {"a.npy": os.urandom(4000)})
    data = path.read_bytes()
    start, end = data.rindex(b"PK\x01\x02"), data.rindex(b"PK\x05\x06")
    entry = data[start:end]
    twin = entry.replace(b"a.npy", b"b.npy")  # a second entry for the same bytes
    record = bytearray(data[end:])
    struct.pack_into("<HHI", record, 8, 2, 2, 2 * len(entry))  # entries and directory size
    path.write_bytes(data[:end] + twin + bytes(record))
    refused(path, match="they overlap")


def test_an_encrypted_member_is_refused_as_unsupported(tmp_path):
    path = tmp_path / "w.npz"
    zip_with(path, {"a.npy": b"x" * 100})
    path.write_bytes(patch_central_directory(path.read_bytes(), 8, 1, size=2))  # flag bit 0
    refused(path, match="member 'a.npy': is encrypted; expected a zip archive")


def test_a_member_of_another_compression_method_is_refused_as_unsupported(tmp_path):
    path = tmp_path / "w.npz"
    zip_with(path, {"a.npy": b"x" * 100}, zipfile.ZIP_BZIP2)
    refused(path, match="compression method 12, not stored or deflate")


def test_a_stored_member_declaring_another_size_than_it_occupies_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    zip_with(path, {"a.npy": b"x" * 100})
    path.write_bytes(patch_central_directory(path.read_bytes(), 24, 50))
    refused(path, match="declares 50 bytes from 100 stored")


def test_a_member_said_to_lie_past_the_end_of_the_file_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    zip_with(path, {"a.npy": b"x" * 100})
    path.write_bytes(patch_central_directory(path.read_bytes(), 20, 1 << 31))  # compressed size
    name, message = load_under_memory_limit(path)
    assert name == "CheckpointError" and "past the end" in message


# ---------------------------------------------------------------------------- the file itself
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    path = tmp_path / "w.pt"
    os.mkfifo(path)

    def waited(signum, frame):
        raise TimeoutError("the reader waited for a writer")

    previous = signal.signal(signal.SIGALRM, waited)
    signal.alarm(10)  # a reader that waits would block forever
    try:
        refused(path, match="is not a regular file")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_device_that_never_ends_is_refused(tmp_path):
    refused("/dev/zero", match="/dev/zero: is not a regular file", load=read_weights_file)
    link = tmp_path / "w.safetensors"
    link.symlink_to("/dev/zero")
    refused(link, match="is not a regular file", load=load_safetensors)


def test_a_folder_given_as_a_weights_file_is_refused(tmp_path):
    refused(tmp_path, match="is a folder", load=read_weights_file)


def test_a_link_to_a_checkpoint_is_read_like_the_checkpoint(tmp_path):
    link = tmp_path / "w.npz"
    link.symlink_to(os.path.join(FIXTURES, "vit_micro.npz"))
    assert read_weights_file(link).keys() == read_weights_file(os.path.join(FIXTURES, "vit_micro.npz")).keys()


# ---------------------------------------------------------------------------- safetensors
def safetensors_with(path, header, body=b"", stated=None):
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if stated is None else stated) + raw + body)


def test_a_safetensors_header_length_beyond_the_file_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    safetensors_with(path, {}, stated=1 << 63)
    refused(path, match="header length: is 9223372036854775808 bytes")


def test_safetensors_offsets_that_overlap_are_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    entry = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    safetensors_with(path, {"a": entry, "b": entry}, np.zeros(4, "<f4").tobytes())
    refused(path, match="tensor 'b': its data_offsets .0, 16. overlap those of 'a'")


def test_safetensors_offsets_past_the_end_are_reported_as_truncated(tmp_path):
    path = tmp_path / "w.safetensors"
    safetensors_with(path, {"a": {"dtype": "F32", "shape": [1 << 30], "data_offsets": [0, 1 << 32]}})
    name, message = load_under_memory_limit(path)
    assert name == "CheckpointError" and "truncated" in message


def test_a_safetensors_shape_whose_product_overflows_int64_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    safetensors_with(path, {"a": {"dtype": "F32", "shape": [1 << 32, 1 << 32], "data_offsets": [0, 0]}})
    refused(path, match="needs 73786976294838206464")


def test_a_safetensors_name_given_twice_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    entry = json.dumps({"dtype": "F32", "shape": [1], "data_offsets": [0, 4]})
    safetensors_with(path, f'{{"a": {entry}, "a": {entry}}}'.encode(), b"\x00" * 4)
    refused(path, match="the name 'a' appears twice")


def test_a_deeply_nested_safetensors_header_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    safetensors_with(path, b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    refused(path, match="RecursionError")


def test_an_unknown_safetensors_dtype_is_refused_naming_the_known_ones(tmp_path):
    path = tmp_path / "w.safetensors"
    safetensors_with(path, {"a": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}}, b"\x00")
    refused(path, match="unsupported dtype 'F8_E4M3'; expected one of F64, F32")


def test_the_message_of_a_huge_malformed_entry_stays_short(tmp_path):
    path = tmp_path / "w.safetensors"
    safetensors_with(path, {"a": {"dtype": "F32", "shape": list(range(100_000)), "data_offsets": [0, 0]}})
    refused(path, match="malformed safetensors header entry 'a'")


def test_a_saved_safetensors_file_still_round_trips(tmp_path):
    path = tmp_path / "w.safetensors"
    save_safetensors(path, {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "e": np.zeros(0, np.int8)})
    loaded = load_safetensors(path)
    np.testing.assert_array_equal(loaded["a"], np.arange(6).reshape(2, 3))
    assert loaded["e"].shape == (0,)


# ---------------------------------------------------------------------------- .npz
HEADER = "{{'descr': '{}', 'fortran_order': {}, 'shape': {}, }}"


def test_an_npy_header_declaring_a_huge_shape_takes_no_memory(tmp_path):
    path = tmp_path / "w.npz"
    zip_with(path, {"a.npy": npy(HEADER.format("<f4", False, "(1099511627776,)"), b"\x00" * 8)})
    name, message = load_under_memory_limit(path, read_npz)
    assert name == "CheckpointError" and "declares 1099511627776 elements" in message


def test_npy_bytes_from_anywhere_are_read_only_when_the_header_fits_them():
    buffer = io.BytesIO()
    np.save(buffer, np.arange(6, dtype=np.int16).reshape(2, 3))
    np.testing.assert_array_equal(read_npy_bytes(buffer.getvalue(), "message"), np.arange(6).reshape(2, 3))
    lying = npy(HEADER.format("<f8", False, "(1099511627776,)"), b"\x00" * 8)
    with pytest.raises(CheckpointError, match="message, array: its header declares 1099511627776"):
        read_npy_bytes(lying, "message", "array")


def test_an_object_array_is_refused_without_unpickling_it(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "w.npz"
    payload = pickle.dumps(np.array([Call(os.system, f"touch {marker}")], dtype=object))
    zip_with(path, {"a.npy": npy(HEADER.format("|O", False, "(1,)"), payload)})
    refused(path, match="holds Python objects", load=read_npz)
    assert not marker.exists()


def test_a_structured_element_type_is_refused_as_unsupported(tmp_path):
    path = tmp_path / "w.npz"
    zip_with(path, {"a.npy": npy("{'descr': [('x', '<f4'), ('y', '<i4')], 'fortran_order': False, "
                                 "'shape': (1,), }", b"\x00" * 8)})
    refused(path, match="not numbers or text", load=read_npz)


def test_an_npy_header_over_numpys_limit_is_refused(tmp_path):
    path = tmp_path / "w.npz"
    zip_with(path, {"a.npy": b"\x93NUMPY\x02\x00" + struct.pack("<I", 1 << 20) + b" " * (1 << 20)})
    refused(path, match="declares a 1048576-byte .npy header", load=read_npz)


def test_a_fortran_ordered_array_is_read_with_its_values(tmp_path):
    path = tmp_path / "w.npz"
    values = np.asfortranarray(np.arange(6, dtype="<i4").reshape(2, 3))
    zip_with(path, {"a.npy": npy(HEADER.format("<i4", True, "(2, 3)"), values.tobytes(order="F"))})
    np.testing.assert_array_equal(read_npz(path)["a"], values)


def test_a_zip_of_other_files_is_refused_as_unsupported(tmp_path):
    path = tmp_path / "w.zip"
    zip_with(path, {"notes.txt": b"hello"})
    refused(path, match="member 'notes.txt', neither a PyTorch file .* expected a zip archive")


# ---------------------------------------------------------------------------- Hugging Face
@pytest.mark.parametrize("config, problem", [
    (b"{\"text_config\": ", "is not a valid JSON configuration"),
    (os.urandom(64) + b"\xff", "is not a valid JSON configuration"),
    (b"[1, 2]", "holds a JSON list, not an object"),
    (b'{"text_config": 3}', "field 'text_config': is a int"),
    (b'{"vision_config": {"hidden_size": "768"}}', "not positive integers"),
    (b'{"vision_config": {"num_attention_heads": 0}}', "not positive integers"),
], ids=["truncated", "binary", "list", "tower-number", "size-string", "zero-heads"])
def test_a_damaged_config_json_is_one_error_naming_it(tmp_path, config, problem):
    folder = tmp_path / "hf"
    folder.mkdir()
    (folder / "config.json").write_bytes(config)
    error = refused(folder, match=problem)
    assert str(folder / "config.json") in str(error)


# ---------------------------------------------------------------------------- the errors
@pytest.mark.parametrize("error_type", [CheckpointError, CheckpointPickleError, ForbiddenGlobalError])
def test_an_error_crosses_process_boundaries_whole(error_type):
    # multiprocessing and MPI ranks pickle an exception to report it
    error = error_type("w.pt", "member 'archive/data.pkl'", "refusing to load global os.system", "fix it")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is error_type and str(copy) == str(error) == (
        "w.pt, member 'archive/data.pkl': refusing to load global os.system; fix it")
    assert (copy.path, copy.part, copy.problem, copy.fix) == (error.path, error.part, error.problem, error.fix)
