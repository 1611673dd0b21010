"""Run the data command line: ``python -m utils.data --source PATH --size 128``."""

import sys

from .cli import main

sys.exit(main())
