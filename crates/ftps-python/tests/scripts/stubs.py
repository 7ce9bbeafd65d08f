"""Checks that the type stubs (argv[1]) and the extension module agree: the same public
names, the same classes with the same public members, and the same parameters for every
function and method whose signature the module exposes."""

import ast
import inspect
import sys

import ftps
import ftps._native as native


def stub_params(fn: ast.FunctionDef) -> list:
    args = fn.args
    names = [a.arg for a in args.posonlyargs + args.args]
    if args.vararg:
        names.append("*" + args.vararg.arg)
    elif args.kwonlyargs:
        names.append("*")
    names += [a.arg for a in args.kwonlyargs]
    return names


def runtime_params(obj) -> list:
    sig = inspect.signature(obj)
    names = []
    star = False
    for p in sig.parameters.values():
        if p.kind == p.VAR_POSITIONAL:
            names.append("*" + p.name)
            star = True
        elif p.kind == p.KEYWORD_ONLY and not star:
            names.append("*")
            star = True
            names.append(p.name)
        else:
            names.append(p.name)
    return names


tree = ast.parse(open(sys.argv[1]).read())
problems = []
stub_names = set()
for node in tree.body:
    if isinstance(node, ast.ClassDef):
        stub_names.add(node.name)
        cls = getattr(native, node.name, None)
        if cls is None:
            problems.append(f"class {node.name} is not in the module")
            continue
        members = set()
        for item in node.body:
            if isinstance(item, ast.FunctionDef):
                members.add(item.name)
                attr = getattr(cls, item.name, None)
                if attr is None:
                    problems.append(f"{node.name}.{item.name} is not in the module")
                    continue
                is_property = any(
                    isinstance(d, ast.Name) and d.id == "property" for d in item.decorator_list
                )
                if is_property or item.name.startswith("__"):
                    continue
                expected = stub_params(item)
                try:
                    actual = runtime_params(attr)
                except (TypeError, ValueError):
                    continue
                if expected != actual:
                    problems.append(f"{node.name}.{item.name}: stub {expected}, module {actual}")
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                members.add(item.target.id)
        if not issubclass(cls, BaseException):
            public = {n for n in dir(cls) if not n.startswith("_")}
            for missing in sorted(public - members):
                problems.append(f"{node.name}.{missing} is in the module but not in the stubs")
    elif isinstance(node, ast.FunctionDef):
        stub_names.add(node.name)
        fn = getattr(native, node.name, None)
        if fn is None:
            problems.append(f"function {node.name} is not in the module")
            continue
        expected, actual = stub_params(node), runtime_params(fn)
        if expected != actual:
            problems.append(f"{node.name}: stub {expected}, module {actual}")
    elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        stub_names.add(node.target.id)

module_names = {n for n in dir(native) if not n.startswith("_")} | {"__version__"}
stub_public = {n for n in stub_names if not n.startswith("_") or n == "__version__"}
for missing in sorted(module_names - stub_public):
    problems.append(f"{missing} is in the module but not in the stubs")
for extra in sorted(stub_public - module_names):
    problems.append(f"{extra} is in the stubs but not in the module")
# Everything but ConnectionError, which would hide the built-in one after `import *`.
exported = sorted(stub_public - {"ConnectionError"})
if sorted(ftps.__all__) != exported:
    problems.append(f"ftps.__all__ {sorted(ftps.__all__)} differs from the stubs {exported}")
for name in stub_public:
    if getattr(ftps, name, None) is not getattr(native, name):
        problems.append(f"ftps.{name} is not the module's {name}")

if problems:
    print("\n".join(problems))
    sys.exit(1)
print("stubs match")
