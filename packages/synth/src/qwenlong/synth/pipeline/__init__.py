"""The `qwenlong synth` pipeline: corpus -> extraction -> generators -> assembly -> verification -> filtering."""
