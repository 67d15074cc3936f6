"""``python -m pattnet.cli`` (what torchrun -m runs): the same command as ``pattnet``."""

import sys

from pattnet.cli import main

sys.exit(main())
