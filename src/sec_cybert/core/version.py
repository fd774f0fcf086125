"""The installed version of sec_cybert, on the ground floor: caches and lineage records key on it,
and they sit below the package's public face that re-exports it."""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("sec-cybert")
except _metadata.PackageNotFoundError:  # a source tree on sys.path without installation
    __version__ = "0+unknown"
