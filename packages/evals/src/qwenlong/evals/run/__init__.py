"""The eval runner: `qwenlong eval CONFIG.yaml` (config, resumable predictions, scoring, report)."""
