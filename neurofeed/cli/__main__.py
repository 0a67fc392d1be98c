"""``python -m neurofeed.cli``: the ``neurofeed`` command."""

import sys

from . import main

sys.exit(main())
