"""`python -m callguard` is the `callguard` command."""

import sys

from .cli import main

sys.exit(main())
