"""``python -m tritonrec``: the same as the ``tritonrec`` command."""

import sys

from tritonrec.cli import main

sys.exit(main())
