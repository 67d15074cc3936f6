"""``python -m pattnet``: the same command as ``pattnet``."""

import sys

from pattnet.cli import main

sys.exit(main())
