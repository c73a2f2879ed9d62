"""`sslrun --help`: every config group, its options, and each option's one-line description.

The descriptions are the first-line comments of the YAML files, so a new
option documents itself in --help by being written.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_store import ConfigStore

GROUPS = ("dataset", "pretext", "encoder", "downstream", "trainer", "experiment")

HEADER = """sslrun: self-supervised pretext training on unlabeled images, then few-label
fine-tuning, compared with the same network trained from scratch.

Usage:  sslrun [group=option ...] [key=value ...]      e.g. sslrun pretext=rotation dataset=fashion_mnist
        sslrun --cfg job                               print the composed config
        sslrun -m seed=0,1,2                           multirun sweep"""

FOOTER = """Docs: README.md and docs/ (docs/configuration.md: every key, its default and why).
Runs are written under outputs/; see metrics.json and report.md in each run dir."""


def describe(path: Path) -> str:
    """First comment line of a YAML file, without the '#'."""
    for line in path.read_text().splitlines():
        if line.startswith("#") and "@package" not in line:
            return line.lstrip("# ").strip()
        if line.strip() and not line.startswith("#"):
            break
    return ""


def groups_text(conf_dir: Path) -> str:
    blocks = []
    for group in GROUPS:
        files = sorted((conf_dir / group).glob("*.yaml"))
        width = max((len(f.stem) for f in files), default=0)
        lines = [f"{group}:"] + [f"  {f.stem.ljust(width)}  {describe(f)}" for f in files]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def register_help(conf_dir: Path) -> None:
    # Escape `$` and `${` so Hydra's template substitution leaves descriptions alone.
    groups = groups_text(conf_dir).replace("${", "\\${")
    template = (
        "${hydra.help.header}\n\n== Config groups (group=option) ==\n"
        f"{groups}\n\n== Composed config (override any key=value) ==\n$CONFIG\n"
        "${hydra.help.footer}\n"
    )
    ConfigStore.instance().store(
        group="hydra/help",
        name="sslrun",
        node={"app_name": "sslrun", "header": HEADER, "footer": FOOTER, "template": template},
    )
