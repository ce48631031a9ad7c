"""The GRPO trainer of rewardkit (see issue 3). Imports rewardkit, never the reverse.

The first line is what `rewardkit.cli.trainer_problem` looks for: it tells this package from
another distribution's `trainer` installed over it.
"""
