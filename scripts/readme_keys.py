"""Write the README's key table from the key table (vditui/ui/keys.py).

    .venv/bin/python scripts/readme_keys.py [--check]

The table goes between ``<!-- keys:start -->`` and ``<!-- keys:end -->``; ``--check`` only says
whether the README is up to date (exit 1 if not).
"""

from __future__ import annotations

import sys
from pathlib import Path

from vditui.ui.keys import readme_section

README = Path(__file__).resolve().parent.parent / "README.md"


def main() -> int:
    text = README.read_text(encoding="utf-8")
    new = readme_section(text)
    if "--check" in sys.argv[1:]:
        return 0 if new == text else 1
    if new != text:
        README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
