"""The rollout side of RL: rollout kinds (single pass, memory agent) over rollout engines."""
