import sys

from migrate_cli.cli import main

sys.exit(main())
