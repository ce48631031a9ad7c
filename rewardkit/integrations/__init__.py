"""Rewardkit's rewards inside the trainers people already use.

Each module adapts one trainer's reward contract to the same scheme rewards that
``rewardkit score`` computes, so a reward means the same thing in a TRL or verl run, in the
CLI and in the golden fixtures. A module imports nothing of the trainer it serves:
``rewardkit.integrations.trl`` works without ``trl`` or ``torch`` installed, and
``rewardkit.integrations.verl`` without ``verl``.
"""
