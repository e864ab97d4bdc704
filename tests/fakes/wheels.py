"""Write minimal, valid pure-Python wheels (py3-none-any) by hand: no build backend, no network."""

from __future__ import annotations

import base64
import hashlib
import re
import zipfile
from pathlib import Path


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode()


def build_wheel(
    dest_dir: Path, name: str, version: str, *, module: str = "", entry_points: str = ""
) -> Path:
    """Write ``<name>-<version>-py3-none-any.whl`` holding one module ``<name>.py`` with
    ``VERSION = "<version>"`` (``-`` and ``.`` in ``name`` become ``_`` in file and module names).

    ``module`` is added to the module's text, and ``entry_points`` is the
    distribution's ``entry_points.txt`` (a plugin's ``[wev.plugins]`` section).
    """
    stem = re.sub(r"[-_.]+", "_", name).lower()
    dist_info = f"{stem}-{version}.dist-info"
    files = {
        f"{stem}.py": f'VERSION = "{version}"\n{module}',
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: wev-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    if entry_points:
        files[f"{dist_info}/entry_points.txt"] = entry_points
    record = "".join(
        f"{path},{_record_hash(text.encode())},{len(text.encode())}\n"
        for path, text in files.items()
    )
    files[f"{dist_info}/RECORD"] = record + f"{dist_info}/RECORD,,\n"
    dest_dir.mkdir(parents=True, exist_ok=True)
    wheel = dest_dir / f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path, text in files.items():
            # A fixed timestamp keeps the wheel's bytes, and so its sha256, reproducible.
            archive.writestr(zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0)), text)
    return wheel
