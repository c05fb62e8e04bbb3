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
import ast
import fnmatch
import pathlib
import re
import shutil

_BEGIN_SOLUTION = re.compile(r"^(?P<indent>\s*)# BEGIN SOLUTION (?P<label>\S.*?)\s*$")
_END_SOLUTION = re.compile(r"^(?P<indent>\s*)# END SOLUTION\s*$")


def student_code(text, where, stub="exercise {label}", keep=lambda label: False):
    """``text`` with every solution region replaced by
    ``raise NotImplementedError(<stub with the region's label>)`` at the region's indentation,
    except the regions whose label ``keep`` accepts, which stay without their markers;
    ``where`` names the text in the errors that malformed regions raise (ValueError)."""
    lines, region = [], None
    for number, line in enumerate(text.splitlines(), 1):
        begin, end = _BEGIN_SOLUTION.match(line), _END_SOLUTION.match(line)
        if region is None and begin:
            region = begin
            if not keep(begin["label"]):
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
        elif keep(region["label"]):
            lines.append(line)
    if region is not None:
        raise ValueError(f"{where}: solution region {region['label']!r} is never closed")
    return "\n".join(lines)


#: What a stub of miniclip's student edition says when it is called.
PACKAGE_STUB = "{label}: left out of the student edition of miniclip (write it in your submission)"


def cut_definitions(text, where, patterns, stub=PACKAGE_STUB, matched=None):
    """``text`` (Python source) with the body of every function or method whose qualified
    name (``Tensor.backward``, ``_run_backward``) matches one of the ``fnmatch``
    ``patterns`` replaced by ``raise NotImplementedError(<stub>)``; a class that matches has
    every method cut. The names stay defined, so the module still imports, but their code
    is not in the text. ``where`` names the text in the stub's label; the patterns that
    matched are added to the set ``matched``, if given."""
    tree = ast.parse(text)
    lines = text.splitlines()
    bodies = []                                   # (first line, last line, column), 0-based

    def visit(nodes, prefix, inside_match):
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = prefix + node.name
                hits = {p for p in patterns if fnmatch.fnmatchcase(name, p)}
                if matched is not None:
                    matched.update(hits)
                if isinstance(node, ast.ClassDef):
                    visit(node.body, name + ".", inside_match or bool(hits))
                elif inside_match or hits:
                    first = node.body[0]
                    bodies.append((first.lineno - 1, node.end_lineno - 1, first.col_offset,
                                   name))
    visit(tree.body, "", False)
    for first, last, column, name in sorted(bodies, reverse=True):
        message = stub.format(label=f"{where}:{name}")
        head = lines[first][:column] if column and lines[first][:column].strip() else \
            " " * column
        lines[first:last + 1] = [f"{head}raise NotImplementedError({message!r})"]
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def released(assignments):
    """A ``keep`` for ``student_code``: the package's regions of the named assignments,
    whose labels read ``assignment NAME, PART: ...``."""
    names = set(assignments)
    return lambda label: label.startswith("assignment ") and \
        label[len("assignment "):].split(",")[0] in names


def export_student_edition(out_dir, absent=(), keep=lambda label: False):
    """Copy the installed miniclip package to ``out_dir/miniclip`` with every solution region
    of its source cut to a stub (``PACKAGE_STUB``); return the paths of the files cut.

    ``absent`` lists more definitions to cut, as ``"package.module:pattern"`` (a package
    stands for each of its modules; ``pattern`` as in ``cut_definitions``): the grader
    cuts the op an assignment asks for, the engine that would differentiate it and the
    finite differences, so that a submission finds neither the answer nor a way to it.

    ``keep`` (``released``) leaves the regions it accepts in place: the answers to
    assignments already due, which the notebooks' later checks and training runs use.

    Only the marked bodies change, so the copy imports and everything unmarked runs; a
    student given this copy finds no answer to an assignment in the library.
    """
    package = pathlib.Path(__file__).resolve().parent.parent
    target = pathlib.Path(out_dir) / "miniclip"
    shutil.copytree(package, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    cut, matched = [], set()
    for path in sorted(target.rglob("*.py")):
        text = path.read_text("utf-8")
        module = ".".join(path.relative_to(target.parent).with_suffix("").parts)
        module = module.removesuffix(".__init__")
        entries = [a for a in absent if module == a.partition(":")[0]
                   or module.startswith(a.partition(":")[0] + ".")]
        patterns = [entry.partition(":")[2] for entry in entries]
        student = student_code(text, str(path.relative_to(target.parent)), PACKAGE_STUB,
                               keep) + "\n"
        if patterns:
            found = set()
            student = cut_definitions(student, module, patterns, matched=found)
            matched |= {entry for entry in entries if entry.partition(":")[2] in found}
        if student != text:
            path.write_text(student, "utf-8")
            cut.append(path)
    stale = [entry for entry in absent if entry not in matched]
    if stale:                                   # a rubric that names what no longer exists
        raise ValueError(f"nothing in miniclip matches {', '.join(stale)}: update the list")
    return cut
