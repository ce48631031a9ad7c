"""The GRPO trainer (see issue 3). Imports rewardkit, never the reverse."""
