"""`python -m service` is the `callguard` command."""

import sys

from service.cli import main

sys.exit(main())
