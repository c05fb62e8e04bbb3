"""The package layout the README states ("What is where"), checked against the imports.

miniclip is a numeric stack, in which each layer imports only the layers below it, plus
leaves that import nothing of the stack. The tables below mirror the README's; the tests
parse every module's imports with ``ast`` (nothing is imported or run) and check them.
"""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "miniclip"

#: The numeric stack, bottom first: a module may import its own layer and those below.
STACK = [
    ("arrays", ["miniclip.backend"]),
    ("autograd", ["miniclip.autograd"]),
    ("ops", ["miniclip.functional"]),
    ("modules", ["miniclip.nn"]),
    ("models", ["miniclip.models"]),
    ("objective and optimisation", ["miniclip.training.loss", "miniclip.training.siglip",
                                    "miniclip.training.bag_of_words",
                                    "miniclip.training.captioning", "miniclip.optim"]),
    ("training and evaluation", ["miniclip.training", "miniclip.train", "miniclip.evaluation",
                                 "miniclip.distributed"]),
    ("experiments", ["miniclip.experiments"]),
    ("grading", ["miniclip.grading", "miniclip.grade"]),
]

#: Independent leaves: anything may import them, and they import only other leaves.
LEAVES = ["miniclip.system", "miniclip.tokenizer", "miniclip.weights", "miniclip.data"]

#: Imports that point up the stack, each stated in the README. They must be deferred (made
#: inside a function, at call time), or the package could not be imported at all.
DEFERRED_UPWARD = {
    # Tensor's operators (a + b, a @ b, a.sum()) are methods of autograd.Tensor that run
    # the ops of functional, which are built on Tensor.
    ("miniclip.autograd", "miniclip.functional"),
}


def module_name(path):
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path):
    """``(imported module, names, deferred)`` for every import of miniclip in ``path``;
    ``deferred`` is True for an import inside a function."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside_functions = {id(node) for function in ast.walk(tree)
                        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef))
                        for node in ast.walk(function)}
    found = []
    for node in ast.walk(tree):
        deferred = id(node) in inside_functions
        if isinstance(node, ast.Import):
            found += [(alias.name, [], deferred) for alias in node.names
                      if alias.name.startswith("miniclip")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            if target.startswith("miniclip"):
                for alias in node.names:  # `from . import nn` imports the module miniclip.nn
                    submodule = f"{target}.{alias.name}"
                    is_module = (PACKAGE.parent / (submodule.replace(".", "/") + ".py")).exists() \
                        or (PACKAGE.parent / submodule.replace(".", "/")).is_dir()
                    found.append((submodule if is_module else target, [alias.name], deferred))
    return found


def layer_of(module):
    """``("stack", rank)`` or ``("leaf", None)`` by the longest matching prefix."""
    matches = [(len(prefix), ("stack", rank)) for rank, (_, prefixes) in enumerate(STACK)
               for prefix in prefixes if module == prefix or module.startswith(prefix + ".")]
    matches += [(len(prefix), ("leaf", None)) for prefix in LEAVES
                if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise AssertionError(f"{module} is in no layer of tests/test_layout.py (nor the README)")
    return max(matches)[1]


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_a_layer():
    for path in MODULES:
        if module_name(path) != "miniclip":  # the package root is the public API: it imports all
            layer_of(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_no_module_imports_a_layer_above_it_and_leaves_import_no_part_of_the_stack(path):
    importer = module_name(path)
    if importer == "miniclip":
        return
    kind, rank = layer_of(importer)
    for imported, _, deferred in imports(path):
        if imported == "miniclip" or imported == importer:
            continue
        imported_kind, imported_rank = layer_of(imported)
        if imported_kind == "leaf":
            continue
        assert kind == "stack", f"{importer} is a leaf but imports {imported} of the numeric stack"
        if imported_rank > rank:
            assert (importer, imported) in DEFERRED_UPWARD and deferred, \
                f"{importer} ({STACK[rank][0]}) imports {imported} ({STACK[imported_rank][0]}), " \
                "a layer above it"


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_no_module_imports_a_private_name_of_another(path):
    for imported, names, _ in imports(path):
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{module_name(path)} imports private {private} from {imported}; " \
                            "make it public in a module of its own"


#: The programs' entry points (``python -m ...``): thin shims that nothing imports.
PROGRAMS = ["miniclip.train", "miniclip.grade", "miniclip.evaluation.__main__"]
NOTEBOOK_SOURCES = sorted((PACKAGE.parent / "notebooks" / "src").glob("*.py"))


@pytest.mark.parametrize("path", MODULES + NOTEBOOK_SOURCES,
                         ids=[p.name if p in NOTEBOOK_SOURCES else module_name(p)
                              for p in MODULES + NOTEBOOK_SOURCES])
def test_no_module_or_notebook_imports_a_programs_entry_point(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module and not node.level}
    relative = {name for name, _, _ in imports(path)} if path in MODULES else set()
    assert not (imported | relative) & set(PROGRAMS), \
        f"{path.name} imports a program; import the library module it runs instead"


def test_the_top_level_reads_like_a_table_of_contents():
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    # 17, plus experiments/ (the studies of other objectives)
    assert len(entries) <= 18, entries


def test_the_tiny_presets_vocabulary_size_is_the_shipped_tokenizers():
    from miniclip.models import MINICLIP_VOCAB_SIZE, TINY_CONFIGS
    from miniclip.tokenizer import default_tokenizer

    assert MINICLIP_VOCAB_SIZE == default_tokenizer().vocab_size
    assert {config["vocab_size"] for config in TINY_CONFIGS.values()} == {MINICLIP_VOCAB_SIZE}


def test_import_miniclip_reaches_the_subpackages_a_pytorch_user_expects():
    import miniclip

    assert miniclip.nn.Linear and miniclip.functional.softmax and miniclip.optim.AdamW


#: The calls that parse a file a user hands over, and the packages whose readers guard them
#: (sizes checked, damage reported as one error naming the file, images skipped and counted).
READER_CALLS = {"Image.open", "np.load", "numpy.load", "pickle.load", "pickle.loads"}
READER_PACKAGES = ("miniclip.data", "miniclip.weights",
                   "miniclip.grading.wire")  # a submission's arrays, red-teamed by grading


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_only_the_readers_of_data_and_weights_parse_a_users_files(path):
    if module_name(path).startswith(READER_PACKAGES):
        return
    calls = {ast.unparse(node.func) for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
             if isinstance(node, ast.Call)}
    assert not calls & READER_CALLS, f"{module_name(path)} calls {calls & READER_CALLS}; " \
                                     "read user files through miniclip.data or miniclip.weights"
