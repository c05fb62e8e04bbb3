"""Regression tests: each damaged file that once gave an unclear error (the issue's fuzz
campaign quoted them: a parser's message naming neither the file nor the fix, or an
exception of an unexpected type) now gives one ``CheckpointError`` naming the file, the
part and the fix, with the parser's exception kept as its cause. Each file is made here,
small, from a fixture or by hand."""
import os
import pickle
import struct
import zipfile
import zlib

import numpy as np
import pytest
from crafted_checkpoints import Storage, rebuild_tensor, torch_zip

from miniclip.weights import CheckpointError, CheckpointPickleError, load_state_dict, read_npz
from miniclip.weights.errors import DAMAGED

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def with_member(source, target, member_suffix, change):
    """Copy the zip ``source`` to ``target`` with ``change`` applied to the bytes of the
    member ending in ``member_suffix``; zipfile writes its CRC-32 anew, so only the reader
    can notice."""
    with zipfile.ZipFile(os.path.join(FIXTURES, source)) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(target, "w") as archive:
        for info, data in members:
            archive.writestr(info, change(data) if info.filename.endswith(member_suffix) else data)
    return target


def pickle_zip(path, data):
    """A torch.save-style zip whose data.pkl is the raw bytes ``data``."""
    torch_zip(path, data, {})
    return path


def assert_clear(path, match, error_type=CheckpointError, cause=None, load=load_state_dict):
    """Loading ``path`` raises ``error_type`` naming the file and saying ``match``; the
    parser's exception (of type ``cause``) is kept."""
    with pytest.raises(error_type, match=match) as caught:
        load(path)
    assert str(caught.value).startswith(str(path)), str(caught.value)
    if cause is not None:
        assert isinstance(caught.value.__cause__, cause), repr(caught.value.__cause__)
    return caught.value


def test_a_pickle_with_a_damaged_first_opcode_is_a_damaged_pickle_naming_the_file(tmp_path):
    # was: UnpicklingError: invalid load key, 'w'.
    path = with_member("wrapped_state_dict.pt", tmp_path / "w.pt", "data.pkl", lambda d: b"w" + d[1:])
    error = assert_clear(path, r"member 'wrapped_state_dict/data.pkl': the pickle is damaged "
                         r"\(ValueError: at position 0, opcode b'w' unknown\); the file is damaged",
                         CheckpointPickleError)
    assert isinstance(error, pickle.UnpicklingError) and error.fix == DAMAGED


def test_a_pickle_cut_short_is_a_damaged_pickle_naming_the_file(tmp_path):
    # was: UnpicklingError: pickle data was truncated
    path = with_member("rn_micro_state_dict.pt", tmp_path / "w.pt", "data.pkl", lambda d: d[:len(d) // 2])
    assert_clear(path, "data.pkl': the pickle is damaged", CheckpointPickleError)


def test_a_stray_mark_is_a_damaged_pickle_naming_the_file(tmp_path):
    # was: UnpicklingError: unexpected MARK found
    assert_clear(pickle_zip(tmp_path / "w.pt", b"\x80\x02(."), "unexpected MARK found",
                 CheckpointPickleError)


def test_a_storage_shorter_than_its_tensor_names_the_file_and_member(tmp_path):
    # was: UnpicklingError: storage '0' holds 512 elements, expected 744 (without the file)
    path = tmp_path / "w.pt"
    torch_zip(path, {"t": rebuild_tensor(Storage("FloatStorage", "0", 744), 0, (744,), (1,))},
              {"0": np.zeros(512, "<f4").tobytes()})
    assert_clear(path, "member 'archive/data.pkl': storage '0' holds 512 elements, expected 744",
                 CheckpointPickleError)


def test_a_damaged_persistent_id_names_the_file(tmp_path):
    # was: UnpicklingError: unsupported persistent id ('stoUage', <...>, '0', 'cpu', 24)
    path = tmp_path / "w.pt"
    torch_zip(path, {"t": rebuild_tensor(Storage("FloatStorage", "0", 24), 0, (24,), (1,))},
              {"0": np.zeros(24, "<f4").tobytes()})
    with_member(path, tmp_path / "d.pt", "data.pkl", lambda d: d.replace(b"storage", b"stoUage"))
    assert_clear(tmp_path / "d.pt", r"unsupported persistent id \('stoUage'", CheckpointPickleError)


def test_an_npy_header_with_a_damaged_key_names_the_member(tmp_path):
    # was: ValueError: Cannot parse header: "{'desÄr': '<f4', ..." (NumPy's reader)
    path = with_member("vit_micro.npz", tmp_path / "w.npz", "ln_final.weight.npy",
                       lambda d: d.replace(b"'descr'", "'desÄr'".encode("latin-1")))
    assert_clear(path, r"member 'ln_final.weight.npy': its .npy header \{'desÄr'")


def test_an_npy_member_cut_short_names_the_member_and_the_sizes(tmp_path):
    # was: ValueError: EOF: reading array data, expected 12288 bytes got 9659
    path = with_member("vit_micro.npz", tmp_path / "w.npz", "attn.in_proj_weight.npy",
                       lambda d: d[:-2629])
    assert_clear(path, r"in_proj_weight.npy': its header declares 12288 elements of 4 bytes "
                 r"\(shape \(192, 64\)\), the member holds 46523 bytes of data")


def test_a_storage_ending_inside_an_element_names_the_file(tmp_path):
    # was: ValueError: buffer size must be a multiple of element size
    path = with_member("rn_micro_state_dict.pt", tmp_path / "w.pt", "data/0", lambda d: d[:-3])
    assert_clear(path, "not a whole number of F32 elements", CheckpointPickleError)


def test_a_damaged_integer_in_a_pickle_names_the_file(tmp_path):
    # was: ValueError: invalid literal for int() with base 10: '\x1aK'
    assert_clear(pickle_zip(tmp_path / "w.pt", b"\x80\x02L\x1aK\n."), "the pickle is damaged "
                 r"\(ValueError", CheckpointPickleError, cause=ValueError)


def test_an_unregistered_extension_code_names_the_file(tmp_path):
    # was: ValueError: unregistered extension code 113
    assert_clear(pickle_zip(tmp_path / "w.pt", b"\x80\x02\x82\x71."), "names an extension code",
                 CheckpointPickleError)


def test_a_damaged_deflate_stream_names_the_member(tmp_path):
    # was: error: Error -3 while decompressing data: invalid distance too far back (zlib)
    source = tmp_path / "small.npz"
    np.savez_compressed(source, w=np.arange(4096, dtype=np.float32))
    data = source.read_bytes()
    start = data.index(b"w.npy") + len(b"w.npy")  # the deflate stream follows the name
    for position in range(start + 40, len(data) - 200):  # the first spot zlib refuses
        damaged = data[:position] + bytes([data[position] ^ 0xFF]) + data[position + 1:]
        try:
            zlib.decompress(damaged[start:], -15)
        except zlib.error:
            break
    path = tmp_path / "w.npz"
    path.write_bytes(damaged)
    assert_clear(path, r"member 'w.npy': cannot be read \(error: Error -3", load=read_npz,
                 cause=zlib.error)


def test_text_that_is_not_utf8_in_a_pickle_names_the_file(tmp_path):
    # was: UnicodeDecodeError from deep inside the unpickler
    assert_clear(pickle_zip(tmp_path / "w.pt", b"\x80\x02X\x02\x00\x00\x00\xff\xfe."),
                 "UnicodeDecodeError", CheckpointPickleError, cause=UnicodeDecodeError)


def test_a_container_called_with_a_number_names_the_file(tmp_path):
    # was: TypeError: 'int' object is not iterable
    assert_clear(pickle_zip(tmp_path / "w.pt", b"\x80\x02ccollections\nOrderedDict\nK\x05\x85R."),
                 "TypeError: 'int' object is not iterable", CheckpointPickleError, cause=TypeError)


def test_state_set_on_a_number_names_the_file(tmp_path):
    # was: AttributeError: 'int' object has no attribute '__dict__'
    assert_clear(pickle_zip(tmp_path / "w.pt", b"\x80\x02K\x05}b."), "AttributeError",
                 CheckpointPickleError, cause=AttributeError)


def test_an_unknown_zip_compression_method_is_refused_as_unsupported(tmp_path):
    # was: NotImplementedError: That compression method is not supported
    path = tmp_path / "w.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.npy", b"x" * 100)
    data = bytearray(path.read_bytes())
    struct.pack_into("<H", data, 8, 99)  # the local header's method
    struct.pack_into("<H", data, data.rindex(b"PK\x01\x02") + 10, 99)  # the directory's
    path.write_bytes(bytes(data))
    assert_clear(path, "compression method 99, not stored or deflate; expected a zip archive")


def test_an_npy_header_that_ends_inside_a_bracket_names_the_member(tmp_path):
    # was: tokenize.TokenError from NumPy's header filter
    path = with_member("vit_micro.npz", tmp_path / "w.npz", "ln_final.bias.npy",
                       lambda d: d.replace(b"), }", b"   }"))
    assert_clear(path, r"member 'ln_final.bias.npy': its .npy header cannot be parsed")


def test_a_zip_member_failing_its_crc_names_the_member_and_the_fix(tmp_path):
    # was: BadZipFile: Bad CRC-32 for file 'model/token_embedding.weight.npy'
    data = bytearray(open(os.path.join(FIXTURES, "vit_micro.npz"), "rb").read())
    with zipfile.ZipFile(os.path.join(FIXTURES, "vit_micro.npz")) as archive:
        info = archive.getinfo("token_embedding.weight.npy")
    data[info.header_offset + 200:info.header_offset + 208] = b"\xff" * 8  # inside its data
    path = tmp_path / "w.npz"
    path.write_bytes(bytes(data))
    assert_clear(path, "member 'token_embedding.weight.npy': fails its CRC-32 check; the file "
                 "is damaged or incomplete: download or copy it again", cause=zipfile.BadZipFile)


def test_a_persistent_id_holding_a_tensor_gives_a_one_line_message(tmp_path):
    # found by scripts/fuzz_checkpoints.py (pickle integers): a memo index pointing at a
    # tensor put an array, whose repr spans lines, into the message
    inner = rebuild_tensor(Storage("FloatStorage", "0", 24), 0, (24,), (1,))
    path = tmp_path / "w.pt"
    torch_zip(path, {"t": rebuild_tensor(Storage("FloatStorage", inner, 4), 0, (4,), (1,))},
              {"0": np.zeros(24, "<f4").tobytes()})
    error = assert_clear(path, r"unsupported persistent id \('storage'", CheckpointPickleError)
    assert "\n" not in str(error)
