"""Run the ``memsyn`` command line as ``python -m memsyn``."""

import sys

from memsyn.cli import main

sys.exit(main())
