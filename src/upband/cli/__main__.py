"""``python -m upband.cli``: the ``upband`` command (also under ``torchrun -m upband.cli``)."""

import sys

from upband.cli import main

sys.exit(main())
