"""The documentation: the site builds with --strict, the README stays a front door, the configuration reference
lists every schema key, nothing points outside the repository, and the getting-started commands run."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import os
import re
import shlex
import struct
import subprocess
import sys
import typing
import zlib
from pathlib import Path

import numpy as np
import yaml
from conftest import run_cli

from sslrun import config

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").rglob("*.md"))
COMMANDS = ("sslrun", "sslrun-data", "sslrun-report", "sslrun-predict")
MARKER = "<!-- results: updated from bench/COMPARE_RESULTS.md -->"
# the getting-started commands at smoke scale: seconds of training on a folder of 33 images
SMOKE = [
    "trainer.progress=false",
    "tensorboard=false",
    "trainer.batch_size=16",
    "trainer.steps_per_epoch=4",
    "downstream.unfrozen_epochs=1",
]
COMPARE_METHODS = ["rotation"]  # the smoke run's pretext and scratch, cached; tests/test_compare.py ranks several


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_mkdocs_build_strict(tmp_path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reference = (tmp_path / "site" / "configuration" / "index.html").read_text()
    assert "downstream=finetune" in reference and "unfrozen_lr" in reference and "<!-- configuration" not in reference
    # a file outside docs/ that a page links is copied into the site, so the link works there too
    assert (tmp_path / "site" / "repo" / "bench" / "RESULTS" / "index.html").is_file()
    # and so is a figure a page shows (the README's compare figure, on the benchmarks page)
    figure = tmp_path / "site" / "repo" / "bench" / "figures" / "compare_fashion_mnist" / "compare_accuracy.png"
    assert figure.is_file()


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 160, f"README.md has {len(lines)} lines; move the detail into docs/"
    head = "\n".join(lines[:6])
    assert "make run" in head and "make test" in head
    assert lines.count(MARKER) == 1
    assert len([line for line in lines if line.startswith("![")]) == 1, "one figure"
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[:2] == ["## Results", "## Commands"], headings


def _rows(markdown: str) -> dict[str, list[str]]:
    """The first table's rows by their method cell (the second column)."""
    table = re.search(r"^\|.*?(?=^(?!\|))", markdown, re.S | re.M)[0]
    cells = [[c.strip() for c in line.strip().strip("|").split("|")] for line in table.splitlines()]
    return {row[1]: row for row in cells[2:]}


def test_readme_results_are_the_compare_results_file():
    readme = (ROOT / "README.md").read_text()
    results = readme[readme.index(MARKER) : readme.index("## Commands")]
    measured = (ROOT / "bench" / "COMPARE_RESULTS.md").read_text()
    table = measured[measured.index("| rank | method |") :]
    ours, theirs = _rows(results), _rows(table)
    assert set(ours) == set(theirs) == {"rotation", "simclr", "vicreg", "scratch"}
    for method, (rank, _, val, test, vs_scratch, p, wall) in ours.items():
        t = theirs[method]  # rank | method | draws | val | test | vs scratch | p (Holm) | vs best | p | wall
        assert [rank, val, test, vs_scratch, p] == [t[0], t[3], t[4], t[5], t[6]], method
        assert t[9].startswith(wall), (method, wall, t[9])
    answer = re.search(r"^\*\*(.+?)\*\*$", measured, re.M | re.S)[1]
    assert " ".join(answer.split()) in " ".join(results.split()), "the compare's sentence, word for word"
    date = re.search(r"^Measured (\d{4}-\d\d-\d\d)", measured, re.M)[1]
    assert date in results and "Intel Xeon with AMX" in results and "2-core" in results
    assert "`make bench-compare`" in results and "experiment=compare dataset=fashion_mnist" in measured
    figure = re.search(r"!\[[^]]*\]\(([^)]+)\)", results)[1]
    assert figure == "bench/figures/compare_fashion_mnist/compare_accuracy.png" and (ROOT / figure).is_file()
    assert f"]({Path(figure).relative_to('bench')})" in measured, "the results file shows the same figure"


def test_make_install_brings_the_pinned_docs_tools():
    from packaging.requirements import Requirement

    makefile = (ROOT / "Makefile").read_text()
    install = re.search(r"^\t\$\(BIN\)/pip install .*-c requirements-ci\.txt .*'\.\[([\w,]+)\]'", makefile, re.M)
    assert install and "docs" in install[1].split(","), "make install leaves out the docs extra"
    pins = dict(line.split("==") for line in (ROOT / "requirements-ci.txt").read_text().split())
    extra = re.search(r"^docs = \[(.*)\]$", (ROOT / "pyproject.toml").read_text(), re.M)[1]
    wanted = [Requirement(r.strip(' "')) for r in extra.split('",')]
    assert {r.name for r in wanted} == {"mkdocs", "mkdocs-material"}
    for r in wanted:
        assert r.name in pins and r.specifier.contains(pins[r.name]), f"{r.name}: pinned {pins.get(r.name)}, wants {r}"
    # make test runs this file: pytest's own test paths, no path, file or marker that leaves it out
    target = re.search(r"^test: install\n\t(.*)$", makefile, re.M)[1].split("#")[0]
    assert "-m pytest" in target and not re.search(r"tests/|--ignore|--deselect|-k |-m ['\"]", target), target
    assert 'testpaths = ["tests"]' in (ROOT / "pyproject.toml").read_text()
    tests = [f for name, f in globals().items() if name.startswith("test_")]
    assert tests and "pytestmark" not in globals(), "a module mark (slow?) leaves this file out of make test"
    assert not any(getattr(f, "pytestmark", None) for f in tests), "a mark (slow?) leaves a test out of make test"


# ------------------------------------------------------------------ the configuration reference
def _flat_keys(cls: type, prefix: str = "") -> list[str]:
    """Every key of a schema as a user sets it; a field that is a config group (a conf/ folder) stays one key."""
    hints = typing.get_type_hints(cls)
    keys: list[str] = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint) and not (ROOT / "conf" / field.name).is_dir():
            keys += _flat_keys(hint, f"{prefix}{field.name}.")
        else:
            keys.append(prefix + field.name)
    return keys


def _sections(markdown: str) -> dict[str, tuple[str | None, set[str]]]:
    """Heading -> (the schema it names, the keys of its tables)."""
    out: dict[str, tuple[str | None, set[str]]] = {}
    for block in re.split(r"^(?=#{2,3} )", markdown, flags=re.M):
        heading = block.splitlines()[0].lstrip("# ") if block.strip() else ""
        schema = re.search(r"^Schema: `(\w+)`", block, re.M)
        out[heading] = (schema[1] if schema else None, set(re.findall(r"^\| `([^`]+)` \|", block, re.M)))
    return out


def test_configuration_reference_lists_every_key_of_every_schema():
    sections = _sections(_hooks().config_reference())
    schemas = {name: getattr(config, name) for name, _ in sections.values() if name}
    for heading, (name, keys) in sections.items():
        if name:
            missing = set(_flat_keys(schemas[name])) - keys
            assert not missing, f"{heading}: keys of {name} missing from the reference: {sorted(missing)}"
    # every dataclass of sslrun.config is a section's schema, one's base, or a node inside one
    reached = {c for s in schemas.values() for c in inspect.getmro(s)}
    reached |= {
        h
        for c in list(reached)
        if dataclasses.is_dataclass(c)
        for h in typing.get_type_hints(c).values()
        if dataclasses.is_dataclass(h)
    }
    defined = {
        obj
        for _, obj in inspect.getmembers(config, dataclasses.is_dataclass)
        if isinstance(obj, type) and obj.__module__ == config.__name__
    }
    assert defined and not defined - reached, f"schemas the reference never shows: {defined - reached}"
    options = [p for p in (ROOT / "conf").rglob("*.yaml") if p.parent != ROOT / "conf"]
    for path in options:
        assert f"{path.parent.relative_to(ROOT / 'conf')}={path.stem}" in sections, path


def test_reference_row_has_the_yaml_value_and_its_comment():
    sections = _sections(_hooks().config_reference())
    assert "unfrozen_lr" in sections["downstream=finetune"][1]
    text = _hooks().config_reference()
    assert "| `unfrozen_lr` | float | `1.0e-3` | the peak rate of both arms;" in text
    assert "| `compare.methods` | list of str | `[rotation, simclr, vicreg]` |" in text


# ------------------------------------------------------------------ what the text points to
def test_text_points_only_into_the_repository():
    texts = {p: p.read_text() for p in [ROOT / "README.md", ROOT / "mkdocs.yml", *DOCS]}
    written = set(re.findall(r"-> (bench/\S+)", (ROOT / "Makefile").read_text()))  # a make target's output file
    for path, text in texts.items():
        for banned in ("../shared", "NOTES.md", "NOTES)", "/work/", "shared/seeds", "shared/data"):
            assert banned not in text, f"{path.name} points to {banned!r}, which a clone does not have"
        for token in re.findall(r"(?<![\w/.$<-])((?:bench|conf|docs|sslrun|tests|\.ci)/[\w./-]*\w)", text):
            pattern = token.replace("NNN", "[0-9][0-9][0-9]")
            assert token in written or list(ROOT.glob(pattern)), f"{path.name} names {token}, not in the repository"
    for link in re.findall(r"\]\(([^)#\s:]+)(?:#[^)]*)?\)", texts[ROOT / "README.md"]):
        assert (ROOT / link).exists(), f"README.md links {link}, which is not in the repository"


# ------------------------------------------------------------------ getting started
def _png(path: Path, image: np.ndarray) -> None:
    """An 8-bit RGB PNG without TensorFlow or Pillow."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = image.shape[:2]
    rows = b"".join(b"\x00" + image[y].tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
    )


def _photos(root: Path) -> None:
    """The page's photos/ layout: three classes of coloured 16x16 noise, 8 train and 3 test images each."""
    rng = np.random.default_rng(0)
    for name, colour in {"cat": (200, 40, 40), "dog": (40, 200, 40), "owl": (40, 40, 200)}.items():
        for split, count in (("train", 8), ("test", 3)):
            for i in range(count):
                image = np.clip(np.array(colour) + rng.normal(0, 25, (16, 16, 3)), 0, 255).astype(np.uint8)
                _png(root / split / name / f"{i:04d}.png", image)


def _commands(page: Path) -> list[list[str]]:
    blocks = re.findall(r"^```bash\n(.*?)^```", page.read_text(), re.S | re.M)
    lines = [line.split(" #")[0].strip() for block in blocks for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line]


def _smoke_experiment() -> list[str]:
    """conf/experiment/smoke.yaml as overrides, for a command that names another experiment (compare)."""
    option = yaml.safe_load((ROOT / "conf" / "experiment" / "smoke.yaml").read_text())
    out = [f"{k.split('/')[-1]}={v}" for d in option.pop("defaults") for k, v in d.items() if "dataset" not in k]

    def flat(node: dict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                flat(value, f"{prefix}{key}.")
            else:
                out.append(f"{prefix}{key}={str(value).lower() if isinstance(value, bool) else value}")

    flat(option, "")
    return out


def _smoke(args: list[str]) -> list[str]:
    """A getting-started command at smoke scale, without the command's name."""
    if args[0] != "sslrun":
        return args[1:]
    if "experiment=compare" in args:
        settings = dict(a.split("=", 1) for a in [*_smoke_experiment(), *SMOKE])  # SMOKE's values win
        return args[1:] + [f"{k}={v}" for k, v in settings.items()] + [f"compare.methods=[{','.join(COMPARE_METHODS)}]"]
    return args[1:] + ([] if "experiment=smoke" in args else ["experiment=smoke"]) + SMOKE


def _value(args: list[str], key: str) -> str | None:
    return next((a.split("=", 1)[1] for a in args if a.startswith(f"{key}=")), None)


def _check(args: list[str], proc: subprocess.CompletedProcess, cwd: Path) -> None:
    """What the page says the command leaves behind."""
    if args[0] == "sslrun" and "-m" not in args:
        run_dir = _value(args, "hydra.run.dir")
        run = cwd / run_dir if run_dir else max((cwd / "outputs").glob("*/*"), key=lambda p: p.stat().st_mtime)
        answer = (run / "report.md").read_text().splitlines()[2]
        assert answer.startswith("**rotation pretext: ") and "over the same network on the same 6 labels" in answer
        assert (run / "model" / "model.keras").is_file() and (run / "metrics.json").is_file()
        # the page: the log names the images decoded and the size and channels chosen from them
        log = (run / "cli.log").read_text()
        assert "train 24 / test 9 / unlabeled 0" in log and "dataset.image_size=16" in log and "channels=3" in log
    elif args[0] == "sslrun":
        report = (cwd / _value(args, "hydra.sweep.dir") / "compare.md").read_text()
        assert all(f"| {m} |" in report for m in [*COMPARE_METHODS, "scratch"]), report
    elif args[0] == "sslrun-predict":
        rows = (cwd / args[args.index("--out") + 1]).read_text().splitlines()
        assert rows[0] == "path,class,confidence,top_k" and len(rows) == 1 + 9, rows  # the 9 test images
        assert "accuracy" in proc.stdout + proc.stderr
    elif args[0] == "sslrun-report":
        assert (cwd / args[-1] / "compare.md").is_file()


def test_getting_started_commands_run(tmp_path):
    commands = _commands(ROOT / "docs" / "getting-started.md")
    assert {c[0] for c in commands} <= set(COMMANDS), "a getting-started command this test cannot run"
    assert {"sslrun", "sslrun-predict", "sslrun-report"} <= {c[0] for c in commands}
    _photos(tmp_path / "photos")
    for args in commands:
        if args[0] == "sslrun-report":  # it must write the report again, not find the sweep's
            (tmp_path / args[-1] / "compare.md").unlink()
        proc = run_cli(_smoke(args), tmp_path, exe=args[0])
        assert proc.returncode == 0, f"{shlex.join(args)}:\n{proc.stderr[-3000:]}"
        _check(args, proc, tmp_path)
