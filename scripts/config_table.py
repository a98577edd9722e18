#!/usr/bin/env python3
"""README's configuration table, generated from config.yaml (`--write` updates README.md).

A unit test fails when README.md and config.yaml disagree: run this with --write after
changing config.yaml.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def table() -> str:
    options = yaml.safe_load((ROOT / "config.yaml").read_text())["options"]
    rows = ["| option | type | default | description |", "|---|---|---|---|"]
    for name, spec in options.items():
        default = spec.get("default", "—")
        shown = "—" if default == "—" else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        if default == "":
            shown = '`""`'
        text = " ".join(str(spec["description"]).split()).replace("|", "\\|")
        rows.append(f"| `{name}` | {spec['type']} | {shown} | {text} |")
    return "\n".join(rows)


def with_table(readme: str) -> str:
    block = f"{START}\n{table()}\n{END}"
    return re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, readme, flags=re.S)


if __name__ == "__main__":
    path = ROOT / "README.md"
    if "--write" in sys.argv:
        path.write_text(with_table(path.read_text()))
    else:
        print(table())
