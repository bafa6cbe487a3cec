"""``python -m trio_stt``: the ``trio-stt`` command."""

import sys

from .cli import main

sys.exit(main())
