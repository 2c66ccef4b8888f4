"""The Megatron-Core policy backend: Qwen3-MoE as a Megatron `GPTModel` with expert, tensor,
context and pipeline parallelism, HF weights in and out, behind the `PolicyRank` protocol."""
