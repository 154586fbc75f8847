"""Every API the broker advertises is exercised by an interop test, and README's API matrix says so."""
import ast
import os

import api_coverage

HERE = os.path.dirname(os.path.abspath(__file__))


def defined_tests():
    found = set()
    for name in os.listdir(HERE):
        if name.startswith("test_") and name.endswith(".py"):
            with open(os.path.join(HERE, name)) as f:
                tree = ast.parse(f.read())
            found |= {f"{name}::{node.name}" for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    return found


def test_every_advertised_api_has_an_interop_test_and_the_readme_matrix_is_current(broker):
    apis = api_coverage.advertised(broker.port)
    names = {api_coverage.API_NAMES.get(key, f"api {key}") for key, _, _ in apis}
    untested = sorted(n for n in names if not api_coverage.COVERAGE.get(n))
    assert not untested, f"advertised but exercised by no interop test: {untested}"
    tests = defined_tests()
    dangling = sorted(t for entries in api_coverage.COVERAGE.values() for _, t in entries if t not in tests)
    assert not dangling, f"coverage names tests that do not exist: {dangling}"
    _, section = api_coverage.readme_section()
    assert section, "README.md lacks the API matrix section"
    assert section.group(1).rstrip("\n") == api_coverage.matrix(apis), "README's API matrix is stale: run python3 Tests/Interop/api_coverage.py --write"
