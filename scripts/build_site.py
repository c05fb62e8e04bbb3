"""Build the course site: the syllabus, the rendered notebook pages, the tutorials and the
reference, as a static site that works offline.

    python -m pip install -e ".[docs]"
    python scripts/build_site.py [--out build/site]

MkDocs with the Material theme builds it from a staging copy of ``docs/`` and
``tutorials/`` (MkDocs reads one folder). Nothing is fetched from the network when the site
is read: the theme's web fonts are off, and the math is typeset by KaTeX, vendored in
``site/assets/katex/`` (``npm pack katex@0.16.47``: ``katex.min.js``,
``contrib/auto-render.min.js``, the woff2 fonts, and ``katex.min.css`` with its font list
cut to those). Pages link to one another as ``page.html`` files, so the site also opens
from disk. ``tests/test_course_site.py`` builds it and checks it in headless Chromium.

The rendered notebook pages are the solution edition: this is the self-learner's and the
instructor's site, as the repository is.
"""
import argparse
import pathlib
import shutil
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent

HOME = """\
# miniclip: the course

OpenAI's CLIP rebuilt from scratch on NumPy, as a course: sixteen notebooks, tutorials
and six graded assignments. Start with the [syllabus](syllabus.md): the order, what each
unit needs and teaches, how long its notebook takes to run, and which notebook and
tutorial prepare each assignment.

* [Syllabus](syllabus.md)
* Notebooks, rendered with their output: from [1. Autograd](course/01_autograd.md) to
  [16. The paper's findings, small](course/16_papers_findings.md)
* Tutorials: from [the course's exercises](tutorials/exercises.md) to
  [setting auto-graded assignments](tutorials/assignments.md)
* [Reference](reference.md): the package, module by module

Built by `python scripts/build_site.py`.
"""

MATH_JS = """\
// Typeset the math that pymdownx.arithmatex marked, on every page (Material's document$).
document$.subscribe(function () {
  renderMathInElement(document.body, {
    delimiters: [
      {left: "\\\\[", right: "\\\\]", display: true},
      {left: "\\\\(", right: "\\\\)", display: false}
    ],
    throwOnError: false
  });
});
"""


def page_title(path):
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem.replace("-", " ")


def stage(staging):
    """Copy the pages into ``staging``; return the navigation."""
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(ROOT / "docs", staging)
    shutil.copytree(ROOT / "tutorials", staging / "tutorials")
    shutil.copytree(ROOT / "site" / "assets", staging / "assets")
    (staging / "index.md").write_text(HOME, "utf-8")
    (staging / "assets" / "math.js").write_text(MATH_JS, "utf-8")
    notebooks = sorted((staging / "course").glob("*.md"))
    tutorials = sorted((staging / "tutorials").glob("*.md"))
    return [
        {"Home": "index.md"},
        {"Syllabus": "syllabus.md"},
        {"Notebooks": [{page_title(p): f"course/{p.name}"} for p in notebooks]},
        {"Tutorials": [{page_title(p): f"tutorials/{p.name}"} for p in tutorials]},
        {"Reference": "reference.md"},
    ]


def config(staging, out, nav):
    return {
        "site_name": "miniclip: the course",
        "docs_dir": str(staging),
        "site_dir": str(out),
        "use_directory_urls": False,
        "nav": nav,
        "theme": {"name": "material", "font": False,
                  "features": ["navigation.sections", "navigation.footer"]},
        "plugins": ["search"],
        "markdown_extensions": ["tables", "fenced_code", "toc", "admonition",
                                {"pymdownx.arithmatex": {"generic": True}},
                                "pymdownx.superfences"],
        "extra_css": ["assets/katex/katex.min.css"],
        "extra_javascript": ["assets/katex/katex.min.js",
                             "assets/katex/contrib/auto-render.min.js", "assets/math.js"],
        "validation": {"links": {"not_found": "warn", "absolute_links": "warn",
                                 "unrecognized_links": "warn"}},
    }


def build(out, work):
    """Build the site into ``out``, staging in ``work``; return ``out``."""
    import json
    out, work = pathlib.Path(out).resolve(), pathlib.Path(work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    staging = work / "site-src"
    settings = config(staging, out, stage(staging))
    config_file = work / "mkdocs.yml"
    config_file.write_text(json.dumps(settings, indent=1), "utf-8")    # JSON is YAML
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "--config-file", str(config_file)], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"mkdocs build failed:\n{done.stdout}{done.stderr}")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "build" / "site"),
                        help="where to write the site (default: build/site)")
    args = parser.parse_args(argv)
    try:
        import material  # noqa: F401
        import mkdocs  # noqa: F401
    except ImportError:
        raise SystemExit('the course site needs MkDocs: python -m pip install -e ".[docs]"') \
            from None
    out = build(args.out, pathlib.Path(args.out).parent / "site-work")
    print(f"wrote {out / 'index.html'}")


if __name__ == "__main__":
    main()
