"""What every hostile-input test asserts: a bad input is refused in one line, and nothing on disk changes.

    code = main(argv); refused(capsys, code, "fragment")    # exit 2, one `error:` line holding each fragment
    before = tree(tmp); …; assert tree(tmp) == before          # no file or folder created or changed
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def refused(capsys, code: int, *fragments: str) -> str:
    """Exit 2 and exactly one ``error: ...`` line on stderr holding every fragment; no traceback. Returns it."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert "Traceback" not in err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def tree(root) -> dict[str, str]:
    """Every file and folder under ``root`` with its content hash (folders as "dir"): what must not change."""
    root = Path(root)
    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir")
            for p in sorted(root.rglob("*")) if p.is_file() or p.is_dir()}


def refused_unchanged(capsys, line: str | list[str], fragment: str, files: dict[str, str]) -> str:
    """One catalogue case: ``line`` (``{tmp}``, ``{table}``… filled from ``files``) is refused in one line holding
    ``fragment``, and nothing under ``files["tmp"]`` is created or changed. Returns the line."""
    from complaw.cli import main

    argv = [a.format(**files) for a in (line if isinstance(line, list) else line.split())]
    before = tree(files["tmp"])
    message = refused(capsys, main(argv), fragment.format(**files))
    assert tree(files["tmp"]) == before  # nothing written, nothing changed
    return message
