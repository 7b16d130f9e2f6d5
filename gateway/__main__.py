"""`python -m gateway` is the `huxiao` command."""

import sys

from gateway.cli import main

sys.exit(main())
