"""Where build products (syntheses, simulations, proofs) are kept between runs."""

import os
import pathlib

__all__ = ["cache_dir"]


def cache_dir(*parts):
    """Folder for build products: ``$SWAT_ACCEL_CACHE``, else ``~/.cache/swat-accel``; the
    ``parts`` below it are created if missing."""
    base = os.environ.get("SWAT_ACCEL_CACHE")
    if base:
        root = pathlib.Path(base)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (pathlib.Path(xdg) if xdg else pathlib.Path.home() / ".cache") / "swat-accel"
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
