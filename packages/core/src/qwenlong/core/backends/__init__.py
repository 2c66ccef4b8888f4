"""Chat-model backends behind one factory.

Backends are registered lazily by module path, so `import qwenlong.core.backends` imports
neither transformers nor vLLM; each is imported when first asked for.
"""

from __future__ import annotations

from qwenlong.core.backends.config import BackendConfig
from qwenlong.core.interfaces import ChatModel
from qwenlong.core.registry import Registry

BACKENDS: Registry[type] = Registry("chat-model backend")
BACKENDS.add_lazy("hf", "qwenlong.core.backends.hf:HFChatModel")
BACKENDS.add_lazy("openai", "qwenlong.core.backends.openai:OpenAIChatModel")
BACKENDS.add_lazy("vllm", "qwenlong.core.backends.vllm:VLLMChatModel")


def make_chat_model(config: BackendConfig) -> ChatModel:
    """Build the backend `config.backend` names. Each backend class takes the whole config."""
    return BACKENDS.get(config.backend).from_config(config)


__all__ = ["BACKENDS", "BackendConfig", "make_chat_model"]
