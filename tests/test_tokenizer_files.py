"""Damaged merges files and ``vocab.json`` files: each refused with one ``ValueError`` that
names the file (and the line, where there is one) and says what a merges file is."""
import gzip
import json
import os
import random

import pytest

from miniclip.tokenizer import BPETokenizer, load_tokenizer
from miniclip.tokenizer.bpe_tokenizer import MAX_MERGES_FILE_BYTES

MERGES = [("l", "o"), ("e", "s"), ("lo", "w"), ("es", "t")]


@pytest.fixture
def merges_gz(tmp_path):
    path = tmp_path / "merges.txt.gz"
    BPETokenizer(MERGES).save(path)
    return path


def assert_refused(path, match, load=load_tokenizer):
    with pytest.raises(ValueError, match=match) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message, message


def test_a_truncated_gzip_merges_file_names_the_file_and_says_to_download_it_again(merges_gz):
    merges_gz.write_bytes(merges_gz.read_bytes()[:-12])
    assert_refused(merges_gz, "a damaged or truncated gzip file .*; download it again")


def test_a_gzip_merges_file_with_damaged_bytes_names_the_file(merges_gz):
    data = bytearray(merges_gz.read_bytes())
    data[12:16] = b"\xff\xff\xff\xff"  # inside the deflate stream
    merges_gz.write_bytes(bytes(data))
    assert_refused(merges_gz, "damaged or truncated gzip|not UTF-8|expected a merges file")


def test_binary_garbage_names_the_file_and_what_a_merges_file_is(tmp_path):
    path = tmp_path / "merges.txt"
    path.write_bytes(random.Random(0).randbytes(4096))
    assert_refused(path, "expected a merges file: OpenAI's bpe_simple_vocab_16e6.txt.gz")


def test_text_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "merges.txt"
    path.write_bytes(b"#version: 0.2\nl o\n\xe9 s\n")
    assert_refused(path, r"line 3: not UTF-8 text \(byte b'\\xe9'\)")


def test_another_kind_of_text_file_names_the_line(tmp_path):
    path = tmp_path / "captions.csv"
    path.write_text("filename,caption\ncat.png,a tabby cat asleep\n", encoding="utf-8")
    assert_refused(path, "line 2: expected two symbols, got 'cat.png,a tabby cat asleep'; "
                   "expected a merges file")


def test_merges_that_bpe_cannot_have_learned_name_the_file(tmp_path):
    path = tmp_path / "merges.txt"
    path.write_text("#version: 0.2\nl o\nl o\n", encoding="utf-8")
    assert_refused(path, "produces 'lo' a second time; expected a merges file")


def test_an_empty_merges_file_is_refused_not_read_as_no_merges(tmp_path):
    path = tmp_path / "merges.txt"
    path.write_bytes(b"")
    assert_refused(path, "holds no merges")


def test_a_gzip_bomb_is_refused_after_reading_at_most_the_limit(tmp_path):
    path = tmp_path / "merges.txt.gz"
    path.write_bytes(gzip.compress(b"a b\n" * ((MAX_MERGES_FILE_BYTES >> 2) + 1), compresslevel=9))
    assert os.path.getsize(path) < 1 << 20
    assert_refused(path, "over 64 MiB of text")


def test_a_damaged_vocab_json_names_it(tmp_path):
    folder = tmp_path / "hf"
    folder.mkdir()
    BPETokenizer(MERGES).save(folder / "merges.txt")
    (folder / "vocab.json").write_bytes(b'{"l": 0, "o": ')
    assert_refused(folder / "vocab.json", "vocab.json: not a readable JSON vocabulary")
    (folder / "vocab.json").write_text(json.dumps(["l", "o"]), encoding="utf-8")
    assert_refused(folder / "vocab.json", "a JSON list, not the object")
