"""Tests for miniclip.weights.hub, against a small HTTP server on the loopback address."""

import hashlib
import http.server
import os
import socket
import threading

import numpy as np
import pytest

from miniclip.weights import hub

# A few chunks plus a partial one; seeded so every pytest-xdist worker collects the same ids.
CONTENT = np.random.default_rng(0).bytes(3 * 1024 * 1024 + 123)
SHA256 = hashlib.sha256(CONTENT).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves CONTENT at any path; ``server.truncate`` makes it stop halfway."""

    def do_GET(self):
        self.server.requests.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(CONTENT)))  # always the full length
        self.end_headers()
        self.wfile.write(CONTENT[: len(CONTENT) // 2] if self.server.truncate else CONTENT)

    def log_message(self, *args):  # keep the test output quiet
        pass


@pytest.fixture
def server():
    """A server on 127.0.0.1 with a free port, running in a background thread."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests, httpd.truncate = [], False
    # A short poll interval makes shutdown() at the end of each test quick.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_available_models_are_the_nine_releases():
    assert hub.available_models() == [
        "RN50", "RN101", "RN50x4", "RN50x16", "RN50x64",
        "ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336px",
    ]  # fmt: skip
    assert hub.model_url("ViT-B/32") == (
        "https://openaipublic.azureedge.net/clip/models/"
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt"
    )


def test_download_verifies_and_caches(server, tmp_path):
    url = f"{server.url}/files/model.pt"
    path = hub.download(url, root=tmp_path, expected_sha256=SHA256)
    assert path == os.path.join(tmp_path, "model.pt")
    assert open(path, "rb").read() == CONTENT
    assert hub.download(url, root=tmp_path, expected_sha256=SHA256) == path
    assert server.requests == ["/files/model.pt"]  # the second call used the cache
    assert os.listdir(tmp_path) == ["model.pt"]


def test_cache_folder_comes_from_the_environment(server, tmp_path, monkeypatch):
    monkeypatch.setenv("MINICLIP_CACHE", str(tmp_path / "cache"))
    path = hub.download(f"{server.url}/model.pt", expected_sha256=SHA256)
    assert path == os.path.join(tmp_path, "cache", "model.pt")


def test_wrong_hash_leaves_no_file(server, tmp_path):
    wrong = "0" * 64
    with pytest.raises(RuntimeError, match=f"model.pt.*expected {wrong}, got {SHA256}"):
        hub.download(f"{server.url}/model.pt", root=tmp_path, expected_sha256=wrong)
    assert os.listdir(tmp_path) == []


def test_named_model_is_fetched_from_base_url_and_checked(server, tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "BASE_URL", f"{server.url}/clip/models")
    file_name, sha256 = "RN50.pt", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"
    with pytest.raises(RuntimeError, match=f"expected {sha256}, got {SHA256}"):
        hub.download("RN50", root=tmp_path)  # our server's bytes are not the real RN50
    assert server.requests == [f"/clip/models/{sha256}/{file_name}"]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("expected_sha256", [SHA256, None], ids=["checked", "unchecked"])
def test_truncated_download_leaves_no_file(server, tmp_path, expected_sha256):
    server.truncate = True
    with pytest.raises(RuntimeError, match=f"{server.url}/model.pt.*closed after"):
        hub.download(f"{server.url}/model.pt", root=tmp_path, expected_sha256=expected_sha256)
    assert os.listdir(tmp_path) == []


def test_corrupt_cached_file_is_downloaded_again(server, tmp_path):
    (tmp_path / "model.pt").write_bytes(b"half a file")
    with pytest.warns(RuntimeWarning, match="downloading it again"):
        path = hub.download(f"{server.url}/model.pt", root=tmp_path, expected_sha256=SHA256)
    assert open(path, "rb").read() == CONTENT
    assert len(server.requests) == 1


def test_connection_errors_name_the_url(tmp_path):
    # Find a free loopback port, then leave it closed: connecting is refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/model.pt"
    with pytest.raises(RuntimeError, match=f"downloading {url} failed"):
        hub.download(url, root=tmp_path)
    assert os.listdir(tmp_path) == []


def test_a_failed_download_says_how_to_get_the_file_without_a_network(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/model.pt"
    with pytest.raises(RuntimeError) as failed:
        hub.download(url, root=tmp_path)
    message = str(failed.value)
    assert "download that URL on another machine" in message and "miniclip.load(PATH)" in message
    assert f"copy it to {tmp_path / 'model.pt'}" in message


def test_unknown_name_lists_the_models(tmp_path):
    with pytest.raises(ValueError, match="ViT-B/32"):
        hub.download("ViT-H/14", root=tmp_path)
