"""The module map of docs/architecture.md, enforced: imports point one way, no file cycles, command-line
programs live in the entry scripts.

Every ``.py`` file of ``glm/``, ``data_utils/``, ``tasks/``, the top-level entry scripts and ``scripts/`` is
parsed with :mod:`ast` (no import is executed); every ``import`` statement counts, at module level or
inside a function, because a function-local import is still a dependency (it only hides it from a
reader).  Each module belongs to one component of :data:`LAYERS`; a module may import its own component
and components of lower layers, never a sibling of its own layer and never a layer above.

Run ``python tests/test_architecture.py`` to print the figures (imports, wrong-way imports, cycles,
command-line mains in the library).
"""

import ast
import os
import subprocess
import sys
from functools import lru_cache

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("glm", "data_utils", "tasks")

#: Bottom to top.  Each layer is a list of components (module-name prefixes); the longest prefix wins.
#: A module may import its own component and any component of a lower layer.  ``glm`` names the package's
#: ``__init__`` only (see :data:`EXACT`): every module of ``glm/`` must be placed by name.
LAYERS = (
    ("foundation", ("glm", "glm.mpu", "glm.launch", "glm.precision", "glm.learning_rates", "glm.config",
                    "glm.inputs", "glm.memory",
                    "data_utils.tokenizers")),
    ("model", ("glm.model",)),
    ("checkpoint files", ("glm.checkpoint",)),
    ("library services", ("data_utils", "glm.generation", "glm.training")),
    ("tasks", ("tasks",)),
    # The flag registry is read by the programs only; the library gets explicit values.
    ("entry points", ("glm.arguments", "<entry>")),
)

#: Components that are one module, not a prefix of others.
EXACT = {"glm"}

#: Library modules that keep a ``python -m`` alias of a program users were told to run; the guard's body
#: must stay a one-line hand-over (checked below), the program itself is the entry script named here.
COMMAND_ALIASES = {
    "tasks.lm_eval_backend": "lm_eval_glm.py",  # `python -m tasks.lm_eval_backend`, documented by issue 19
}


def _module_name(path):
    rel = os.path.relpath(path, ROOT)[:-len(".py")].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


@lru_cache(maxsize=None)
def project_files():
    """``{module name: path}``: the library packages, the top-level scripts and ``scripts/*.py``."""
    files = {}
    for package in PACKAGES:
        for folder, dirs, names in os.walk(os.path.join(ROOT, package)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in names:
                if name.endswith(".py"):
                    files[_module_name(os.path.join(folder, name))] = os.path.join(folder, name)
    for folder in (ROOT, os.path.join(ROOT, "scripts")):
        for name in sorted(os.listdir(folder)):
            if name.endswith(".py"):
                files[_module_name(os.path.join(folder, name))] = os.path.join(folder, name)
    return files


def is_entry(module):
    """A program: a top-level script or one of ``scripts/``."""
    return module.split(".")[0] not in PACKAGES


def component(module):
    """``(layer index, component)`` of a project module."""
    if is_entry(module):
        return len(LAYERS) - 1, "<entry>"
    best = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (prefix not in EXACT and module.startswith(prefix + ".")):
                if best is None or len(prefix) > len(best[1]):
                    best = index, prefix
    assert best is not None, f"{module} is in no layer of tests/test_architecture.py LAYERS (and docs/architecture.md)"
    return best


def _resolve(name, modules):
    """The project module ``name`` refers to: itself, or the closest enclosing package."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


@lru_cache(maxsize=None)
def imports_of(module):
    """``[(imported project module, line)]`` of every import statement of ``module``, anywhere in the file."""
    modules = project_files()
    path = modules[module]
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read(), path)
    package = module if path.endswith("__init__.py") else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module
            # ``from pkg import sub`` imports the module ``pkg.sub`` when there is one, else names of ``pkg``.
            targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                       for alias in node.names]
        else:
            continue
        for target in targets:
            if target.split(".")[0] not in PACKAGES:
                continue
            resolved = _resolve(target, modules)
            if resolved and resolved != module and (resolved, node.lineno) not in found:
                found.append((resolved, node.lineno))
    return found


def wrong_way_imports():
    """``["a (layer) -> b (layer), line n"]`` for every import of a sibling component or of a higher layer
    (the programs of the top layer may use one another and the flag registry)."""
    top = len(LAYERS) - 1
    wrong = []
    for module in sorted(project_files()):
        layer, own = component(module)
        for target, line in imports_of(module):
            target_layer, target_component = component(target)
            sibling = target_layer == layer < top and target_component != own
            if target_layer > layer or sibling:
                wrong.append(f"{module} ({LAYERS[layer][0]}) -> {target} ({LAYERS[target_layer][0]}), line {line}")
    return wrong


def file_cycles():
    """Strongly connected groups of more than one module in the import graph (Tarjan)."""
    graph = {m: sorted({t for t, _ in imports_of(m)}) for m in project_files()}
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(frozenset(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph)))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return groups


def _is_main_guard(node):
    test = node.test if isinstance(node, ast.If) else None
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and any(isinstance(c, ast.Constant) and c.value == "__main__" for c in test.comparators))


def _is_one_line_alias(guard):
    """``if __name__ == "__main__":`` holding only an import and one call on one line."""
    return len({n.lineno for n in guard.body}) == 1 and len(guard.body) <= 2 and not guard.orelse


def command_line_code():
    """``["module: what"]`` for each command-line program found in a library module: a
    ``__name__ == "__main__"`` block, a top-level ``main`` function, an argument parser, ``sys.argv``."""
    found = []
    for module, path in sorted(project_files().items()):
        if component(module)[0] == len(LAYERS) - 1:
            continue  # the programs and their flag registry
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
        for node in tree.body:
            if _is_main_guard(node) and not (module in COMMAND_ALIASES and _is_one_line_alias(node)):
                found.append(f"{module}:{node.lineno}: if __name__ == '__main__'")
            if isinstance(node, ast.FunctionDef) and node.name == "main":
                found.append(f"{module}:{node.lineno}: def main")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("ArgumentParser", "argv"):
                found.append(f"{module}:{node.lineno}: .{node.attr}")
            if isinstance(node, ast.Name) and node.id == "ArgumentParser":
                found.append(f"{module}:{node.lineno}: ArgumentParser")
    return found


# ------------------------------------------------------------------------------------------------ tests
def test_every_module_has_a_layer():
    for module in project_files():
        component(module)  # raises for a module nobody placed
    with pytest.raises(AssertionError, match="glm.new_module is in no layer"):
        component("glm.new_module")


def test_imports_point_down():
    assert wrong_way_imports() == []


def test_no_file_cycles():
    assert [sorted(group) for group in file_cycles()] == []


def test_no_command_line_program_in_the_library():
    assert command_line_code() == []


def test_command_aliases_name_real_programs():
    for module, program in COMMAND_ALIASES.items():
        assert module in project_files() and os.path.isfile(os.path.join(ROOT, program))


def test_the_checker_sees_function_local_imports_and_cycles(tmp_path, monkeypatch):
    """The checks themselves: a function-local upward import and a two-file cycle behind function-local
    imports are both reported (so an empty list above means something)."""
    pkg = tmp_path / "glm" / "model"
    pkg.mkdir(parents=True)
    (tmp_path / "glm" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from . import b\n    from glm.training import loop\n")
    (pkg / "b.py").write_text("def g():\n    from .a import f\n")
    (tmp_path / "glm" / "training").mkdir()
    (tmp_path / "glm" / "training" / "__init__.py").write_text("")
    (tmp_path / "glm" / "training" / "loop.py").write_text("if __name__ == '__main__':\n    pass\n")
    (tmp_path / "scripts").mkdir()
    monkeypatch.setattr(sys.modules[__name__], "ROOT", str(tmp_path))
    for cached in (project_files, imports_of):
        cached.cache_clear()
    try:
        assert wrong_way_imports() == ["glm.model.a (model) -> glm.training.loop (library services), line 3"]
        assert file_cycles() == [frozenset({"glm.model.a", "glm.model.b"})]
        assert command_line_code() == ["glm.training.loop:1: if __name__ == '__main__'"]
    finally:
        monkeypatch.undo()
        for cached in (project_files, imports_of):
            cached.cache_clear()


def _run(code):
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_glm_imports_without_deepspeed_or_transformers():
    _run("import sys\n"
         "sys.modules['deepspeed'] = sys.modules['transformers'] = sys.modules['apex'] = None  # imports fail\n"
         "import glm, glm.mpu, glm.model, glm.checkpoint, glm.generation, glm.training\n"
         "print('ok')\n")


def test_data_utils_loads_torch_only_when_asked():
    """``import data_utils`` (tokenizers included) loads no torch; its torch modules load on first access."""
    _run("import sys\n"
         "import data_utils\n"
         "data_utils.prepare_tokenizer, data_utils.make_tokenizer\n"
         "assert 'torch' not in sys.modules, 'import data_utils loaded torch'\n"
         "assert callable(data_utils.ConstructBlockStrategy)\n"
         "assert 'torch' in sys.modules and 'data_utils.blocklm' in sys.modules\n"
         "print('ok')\n")


if __name__ == "__main__":
    files = project_files()
    edges = sum(len(imports_of(m)) for m in files)
    print(f"{len(files)} files, {edges} project import statements (module-level and function-local)")
    wrong = wrong_way_imports()
    print(f"wrong-way imports: {len(wrong)}")
    for line in wrong:
        print("  ", line)
    cycles = file_cycles()
    print(f"file cycles: {len(cycles)}")
    for group in cycles:
        print("  ", " <-> ".join(sorted(group)))
    mains = command_line_code()
    print(f"command-line code in the library: {len(mains)}")
    for line in mains:
        print("  ", line)
