"""`python -m desktop_backup` is the same as the `desktop-backup` command."""

import sys

from desktop_backup.launcher import main

sys.exit(main())
