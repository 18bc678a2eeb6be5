"""memsyn: characterise an SrTiO3 memristive synapse and simulate it in an m-STPN network."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("memsyn")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
