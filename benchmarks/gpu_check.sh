#!/usr/bin/env bash
# The GPU checks of the Megatron policy and the vLLM rollout engine, as one prepared run on one
# H100/H200 (under 8 minutes when Transformer Engine installs from a wheel or a warm cache):
#   1. the environment (uv sync --locked), then Transformer Engine from the gpu extra, bounded by
#      TE_INSTALL_SECONDS (a source build can take longer; the TE checks are then skipped, and
#      the output says so);
#   2. the `gpu`-marked tests: the Megatron policy (packages/rl/tests/test_megatron_gpu.py:
#      float32 distributed optimizer against the torch policy, bf16 with float32 main weights,
#      TE layers with THD packing against the torch policy in bf16) and the vLLM engine
#      (test_vllm_gpu.py: log-probs against the policy's before and after a weight sync, a
#      colocated engine's memory released and reclaimed);
#   3. benchmarks/megatron_gpu.py on the tiny model and on a ~1B random Qwen3-MoE: tokens/s,
#      MFU and peak memory beside `qwenlong plan`'s estimate, for each backend.
# Everything it prints is also written under ${OUT:-runs/gpu-check}.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-runs/gpu-check}"
mkdir -p "$out"
export PATH="$HOME/.local/bin:$PATH"
command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
uv sync --locked 2>&1 | tail -1
if ! uv run python -c "import transformer_engine.pytorch" 2>/dev/null; then
    echo "installing Transformer Engine (at most ${TE_INSTALL_SECONDS:-240} s)"
    timeout "${TE_INSTALL_SECONDS:-240}" uv pip install --no-build-isolation \
        "transformer-engine[pytorch]>=2.9,<2.12" >"$out/te-install.log" 2>&1 \
        || echo "Transformer Engine did not install in time: TE checks skip (see $out/te-install.log)"
fi

if ! uv run python -c "import vllm" 2>/dev/null; then
    echo "installing vLLM 0.33.0 (the gpu extra's pin; a prebuilt wheel)"
    timeout 240 uv pip install "vllm==0.33.0" >"$out/vllm-install.log" 2>&1 \
        || echo "vLLM did not install: vLLM checks skip (see $out/vllm-install.log)"
fi

uv run pytest -m gpu -p no:cacheprovider -q -rs packages/rl/tests/test_megatron_gpu.py \
    packages/rl/tests/test_vllm_gpu.py \
    2>&1 | tee "$out/tests.txt"
tests=${PIPESTATUS[0]}
uv run python benchmarks/megatron_gpu.py --size tiny --sequence 1024 --sequences 8 \
    --out "$out" 2>&1 | tee "$out/bench-tiny.txt"
uv run python benchmarks/megatron_gpu.py --size 1b --sequence 4096 --sequences 8 \
    --out "$out" 2>&1 | tee "$out/bench-1b.txt"
exit "$tests"
