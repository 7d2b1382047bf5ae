"""Regenerate vizcli/draw/colormap_tables.py from matplotlib's published colormaps.

vizcli does not depend on matplotlib: the 256-entry tables are stored as hex strings
(viridis and inferno are CC0; jet follows matplotlib's segment data). Run:
``.venv/bin/python scripts/colormap_tables.py > vizcli/draw/colormap_tables.py``.
"""

from __future__ import annotations

import textwrap

import matplotlib
import numpy as np

NAMES = ("viridis", "inferno", "jet")


def main() -> None:
    print('"""matplotlib\'s colormaps as 256 RGB hex triples (scripts/colormap_tables.py)."""')
    print()
    print("TABLES = {")
    for name in NAMES:
        rgb = matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3]
        text = bytes(np.rint(rgb * 255).astype(np.uint8).ravel()).hex()
        lines = textwrap.wrap(text, 88)
        print(f'    "{name}": (')
        for line in lines:
            print(f'        "{line}"')
        print("    ),")
    print("}")


if __name__ == "__main__":
    main()
