"""``python -m mlchaos`` runs the command line."""

import sys

from mlchaos.cli import main

sys.exit(main())
