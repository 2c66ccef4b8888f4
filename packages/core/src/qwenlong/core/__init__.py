"""qwenlong.core: the records, config, chat-model backends and tiny-model factory every package uses."""
