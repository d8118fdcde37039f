"""The manual in docs/ builds with every page in its nav and every link and anchor resolved (mkdocs.yml's
`validation`), and the README's links lead somewhere."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MKDOCS = Path(sys.executable).parent / "mkdocs"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_the_docs_build_in_strict_mode_without_a_warning(tmp_path: Path) -> None:
    build = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert build.returncode == 0, build.stderr
    assert "WARNING" not in build.stderr
    assert (tmp_path / "site" / "configuration" / "index.html").exists()


def test_every_relative_link_of_the_readme_names_a_file_of_the_repository() -> None:
    links = [link for link in LINK.findall((ROOT / "README.md").read_text()) if "://" not in link]
    missing = [link for link in links if not (ROOT / link.split("#")[0]).exists()]

    assert len(links) >= 8
    assert missing == []
