"""Solution regions: the lines between ``# BEGIN SOLUTION <label>`` and ``# END SOLUTION``
(same indentation) are what a student writes, and a *student edition* replaces each region
by a stub that raises ``NotImplementedError``.

One parser serves all three places that have solution regions: the notebook sources
(``scripts/build_notebooks.py``), the reference solutions of the assignments (whose student
edition is the starter file, ``miniclip.grading.assignment``), and miniclip's own source,
where the regions mark the library functions the assignments ask for
(``export_student_edition``). In Python source the markers are comments, so the solution
edition runs as it is.
"""
import pathlib
import re
import shutil

_BEGIN_SOLUTION = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION (?P<label>\S.*?)\s*$")
_END_SOLUTION = re.compile(r"^(?P<indent>\s*)# END SOLUTION\s*$")


def student_code(text, where, stub="exercise {label}"):
    """``text`` with every solution region replaced by
    ``raise NotImplementedError(<stub with the region's label>)`` at the region's indentation;
    ``where`` names the text in the errors that malformed regions raise (ValueError)."""
    lines, region = [], None
    for number, line in enumerate(text.splitlines(), 1):
        begin, end = _BEGIN_SOLUTION.match(line), _END_SOLUTION.match(line)
        if region is None and begin:
            region = begin
            message = stub.format(label=begin["label"])
            lines.append(f"{begin['indent']}raise NotImplementedError({message!r})")
        elif region is None and end:
            raise ValueError(f"{where}, line {number}: '# END SOLUTION' without a BEGIN")
        elif region is None:
            lines.append(line)
        elif begin:
            raise ValueError(f"{where}, line {number}: a solution region inside another")
        elif end:
            if end["indent"] != region["indent"]:
                raise ValueError(f"{where}, line {number}: '# END SOLUTION' is not indented "
                                 "like its BEGIN")
            region = None
        elif line.strip() and not line.startswith(region["indent"]):
            raise ValueError(f"{where}, line {number}: a solution line left of its markers")
    if region is not None:
        raise ValueError(f"{where}: solution region {region['label']!r} is never closed")
    return "\n".join(lines)


#: What a stub of miniclip's student edition says when it is called.
PACKAGE_STUB = "{label}: left out of the student edition of miniclip (write it in your submission)"


def export_student_edition(out_dir):
    """Copy the installed miniclip package to ``out_dir/miniclip`` with every solution region
    of its source cut to a stub (``PACKAGE_STUB``); return the paths of the files cut.

    Only the marked function bodies change, so the copy imports and everything unmarked
    runs; a student given this copy finds no answer to an assignment in the library.
    """
    package = pathlib.Path(__file__).resolve().parent.parent
    target = pathlib.Path(out_dir) / "miniclip"
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    cut = []
    for path in sorted(target.rglob("*.py")):
        text = path.read_text("utf-8")
        student = student_code(text, str(path.relative_to(target.parent)), PACKAGE_STUB) + "\n"
        if student != text:
            path.write_text(student, "utf-8")
            cut.append(path)
    return cut
