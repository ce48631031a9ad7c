"""``python -m rewardkit ...``: the `rewardkit` command, for environments without its script."""

import sys

from rewardkit.cli import main

sys.exit(main())
