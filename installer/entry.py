"""The frozen app's entry point: the same command line as `desktop-backup`."""

import sys

from desktop_backup.launcher import main

if __name__ == "__main__":
    sys.exit(main())
