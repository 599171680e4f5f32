"""The layers hold: the import-linter contracts of pyproject.toml, run here so that pytest (and so
`make test` and CI) fails on a forbidden import or an import cycle, and shown to bite on a small tree."""
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = {c["id"]: c["name"] for c in
             tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]}


def lint(where: Path) -> subprocess.CompletedProcess:
    """lint-imports over the packages in `where`, with the pyproject.toml there. It runs in its own process:
    it finds the packages by importing their names, which this process has bound to the real ones."""
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo"]
    return subprocess.run(command, cwd=where, capture_output=True, text=True, timeout=120, check=False)


def test_the_contracts_hold():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# A tree with every root package of the contracts and the imports the layers allow: the wire layer on the
# domain and the schemas, the agent on the adapters and the wire layer, the server on both, the root on all.
ALLOWED = {
    "domain/__init__.py": "",
    "domain/money.py": "import decimal\n",
    "schemas/__init__.py": "",
    "gateway/__init__.py": "",
    "gateway/settings.py": "",
    "gateway/directory.py": "import gateway.settings\n",
    "gateway/rulebook.py": "",
    "gateway/protocol/__init__.py": "",
    "gateway/protocol/wire.py": "import domain.money\nimport schemas\n",
    "gateway/cli/__init__.py": "import agent.link\nimport reconcile.report\nimport gateway.directory\n",
    "adapters/__init__.py": "",
    "adapters/base.py": "from gateway.protocol import wire\n",
    "agent/__init__.py": "",
    "agent/link.py": "from adapters import base\nfrom gateway.protocol import wire\n",
    "reconcile/__init__.py": "",
    "reconcile/report.py": "import adapters.base\nimport domain.money\n",
    "bench/__init__.py": "import gateway.directory\n",
}

LATE = "def later():\n    {}\n"   # an import inside a function counts as much as one at the top


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "pyproject.toml").write_text((ROOT / "pyproject.toml").read_text())

    def make(**changes: str) -> Path:
        for path, source in {**ALLOWED, **{k.replace("__", "/") + ".py": v for k, v in changes.items()}}.items():
            (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / path).write_text(source)
        return tmp_path
    return make


def test_the_allowed_shape_passes(tree):
    result = lint(tree())
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("changes", "contract", "named"), [
    ({"domain__money": "from gateway import settings\n"}, "domain", "domain.money -> gateway.settings"),
    ({"gateway__protocol__wire": "import gateway.settings\n"}, "protocol",
     "gateway.protocol.wire -> gateway.settings"),
    ({"gateway__protocol__wire": "import adapters.base\n"}, "protocol", "gateway.protocol.wire -> adapters.base"),
    ({"agent__link": LATE.format("from gateway import settings")}, "clients", "agent.link -> gateway.settings"),
    ({"adapters__base": "import gateway.directory\n"}, "clients", "adapters.base -> gateway.directory"),
    ({"gateway__directory": "import reconcile.report\n"}, "root", "gateway.directory -> reconcile.report"),
    ({"reconcile__report": "import agent.link\n"}, "root", "reconcile.report -> agent.link"),
    ({"gateway__settings": "import gateway.cli\n"}, "root", "gateway.settings -> gateway.cli"),
    ({"gateway__settings": "import bench\n"}, "bench", "gateway.settings -> bench"),
    ({"gateway__rulebook": LATE.format("from gateway import directory"),
      "gateway__directory": "import gateway.rulebook\n"}, "acyclic", ".rulebook -> .directory"),
], ids=["domain", "protocol-server", "protocol-adapters", "agent-late", "adapters", "server-reconcile",
        "reconcile-agent", "cli", "bench", "cycle"])
def test_a_forbidden_import_breaks_its_contract(tree, changes, contract, named):
    result = lint(tree(**changes))
    assert result.returncode != 0
    assert f"{CONTRACTS[contract]} BROKEN" in result.stdout
    assert named in result.stdout, result.stdout
