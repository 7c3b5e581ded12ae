"""A minimal PEP 517/660 backend: build_editable writes a wheel holding a .pth file that points
at src/, which is what an editable install is."""

from __future__ import annotations

import os
import zipfile

NAME = "pyvenv_tiny"
VERSION = "0.1"


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, object] | None = None,
    metadata_directory: str | None = None,
) -> str:
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "src")
    dist_info = f"{NAME}-{VERSION}.dist-info"
    files = {
        f"{NAME}.pth": src + "\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\n",
        f"{dist_info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: backend\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = f"{dist_info}/RECORD"
    files[record] = "".join(f"{name},,\n" for name in [*files, record])
    wheel = f"{NAME}-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel), "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, object] | None = None,
    metadata_directory: str | None = None,
) -> str:
    raise NotImplementedError("only editable installs")
