"""The course site (scripts/build_site.py) builds, and works offline in a real browser:
every page renders, every internal link resolves, every figure loads, the math is
typeset, and nothing is fetched from another host. Skips where MkDocs (the docs extra) or
Chromium is not installed."""
import functools
import html
import http.server
import importlib.util
import json
import pathlib
import re
import shutil
import subprocess
import threading
import urllib.parse

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
BROWSERS = ("chromium", "chromium-browser", "google-chrome")

#: Loads every page in a frame, then writes what it found into <pre id="results">.
CHECK_PAGE = """<!doctype html><html><body><pre id="results">pending</pre><script>
const pages = %s, results = {};
function inspect(page, frame) {
  const doc = frame.contentDocument, origin = location.origin;
  const images = [...doc.querySelectorAll("img")];
  results[page] = {
    title: doc.title,
    text: (doc.querySelector("article") || doc.body).innerText.length,
    broken_images: images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    images: images.length,
    math: doc.querySelectorAll(".arithmatex").length,
    typeset: doc.querySelectorAll(".arithmatex .katex").length,
    math_errors: doc.querySelectorAll(".katex-error").length,
    links: [...doc.querySelectorAll("a[href]")].map(a => a.href)
             .filter(h => h.startsWith(origin)).map(h => h.split("#")[0]),
  };
}
async function run() {
  for (const page of pages) {
    const frame = document.createElement("iframe");
    document.body.appendChild(frame);
    await new Promise(done => { frame.onload = done; frame.src = page; });
    await new Promise(done => setTimeout(done, 1500));       // KaTeX, on document$
    inspect(page, frame);
    frame.remove();
  }
  document.getElementById("results").textContent = JSON.stringify(results);
}
run();
</script></body></html>"""


def browser():
    found = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
    if found is None:
        pytest.skip("no Chromium to check the site with (Debian: apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason='MkDocs is not installed: pip install -e ".[docs]"')
    pytest.importorskip("material", reason='mkdocs-material is not installed: pip install -e '
                                           '".[docs]"')
    spec = importlib.util.spec_from_file_location("build_site",
                                                  ROOT / "scripts" / "build_site.py")
    build_site = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build_site)
    work = tmp_path_factory.mktemp("site")
    return build_site.build(work / "site", work)


def test_the_site_has_every_notebook_page_tutorial_and_the_syllabus(site):
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    expected = {f"course/{p.stem}.html" for p in (ROOT / "docs" / "course").glob("*.md")}
    expected |= {f"tutorials/{p.stem}.html" for p in (ROOT / "tutorials").glob("*.md")}
    assert expected | {"index.html", "syllabus.html"} <= pages


def test_no_page_loads_a_script_stylesheet_or_font_from_another_host(site):
    remote = re.compile(r"<(script|link|img)[^>]*(src|href)=\"(https?:)?//", re.IGNORECASE)
    for page in site.rglob("*.html"):
        tags = [m[0] for m in remote.finditer(page.read_text("utf-8"))
                if not m[0].lower().startswith("<link") or "stylesheet" in m[0].lower()
                or "preload" in m[0].lower()]
        assert not tags, f"{page.relative_to(site)} fetches from the network: {tags}"
    for sheet in site.rglob("*.css"):
        assert not re.search(r"url\((['\"]?)(https?:)?//|@import", sheet.read_text("utf-8")), \
            sheet.relative_to(site)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True


def serve(site, check_page):
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/__check__.html":
                body = check_page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            super().do_GET()

        def log_request(self, code="-", size="-"):
            requests.append((urllib.parse.urlparse(self.path).path, int(code)))

        def log_message(self, *args):
            pass

    server = _Server(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, requests


def test_every_page_renders_links_resolve_figures_load_and_math_is_typeset(site, tmp_path):
    chromium = browser()
    pages = sorted(p.relative_to(site).as_posix() for p in site.rglob("*.html")
                   if p.name != "404.html")
    server, requests = serve(site, CHECK_PAGE % json.dumps(["/" + p for p in pages]))
    try:
        done = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=600000", "--dump-dom",
             f"http://127.0.0.1:{server.server_address[1]}/__check__.html"],
            capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
    found = re.search(r'<pre id="results">(.*?)</pre>', done.stdout, re.DOTALL)
    assert found and found[1] != "pending", f"the check page did not finish: {done.stderr[-2000:]}"
    results = json.loads(html.unescape(found[1]))
    assert sorted(results) == ["/" + p for p in pages]
    origin = f"http://127.0.0.1:{server.server_address[1]}"
    for page, seen in results.items():
        assert seen["title"] and seen["text"] > 200, f"{page} renders empty"
        assert not seen["broken_images"], f"{page}: figures that do not load {seen['broken_images']}"
        assert seen["typeset"] == seen["math"] and not seen["math_errors"], \
            f"{page}: {seen['typeset']} of {seen['math']} formulas typeset"
        for link in seen["links"]:
            target = site / urllib.parse.unquote(link[len(origin):]).lstrip("/")
            assert target.is_file() or (target / "index.html").is_file(), f"{page} -> {link}"
    figures = sum(page.read_text("utf-8").count("](figures/")
                  for page in (ROOT / "docs" / "course").glob("*.md"))
    assert sum(seen["images"] for seen in results.values()) >= figures > 0
    assert sum(seen["typeset"] for seen in results.values()) >= 20      # and their math
    failed = [(path, code) for path, code in requests
              if code >= 400 and path != "/favicon.ico"]
    assert not failed, f"requests that failed: {failed}"
    assert any(path.endswith(".woff2") for path, _ in requests), "KaTeX's fonts were not loaded"
