#!/usr/bin/env bash
# The GPU figures in benchmarks/README.md: run from the repository root on a machine with one GPU
# and JAX for CUDA. Results are appended to ${OUT:-benchmarks/results}/train_step_gpu.jsonl.
set -u
out=${OUT:-benchmarks/results}/train_step_gpu.jsonl
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/lib PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import jax, flax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())"
bench() { timeout 100 python3 benchmarks/train_step.py --steps 10 --warmup 2 --out "$out" "$@" | tr -d '\n' | cut -c1-400; echo; }
bench --model wavegan --d 64 --batch 64 --n-critic 5
bench --model wavegan --d 64 --batch 64 --n-critic 1
bench --model specgan --d 64 --batch 64 --n-critic 5
bench --model mlp --batch 128 --n-critic 1
AUDIOGAN_CONV_FORM=matmul bench --model wavegan --d 64 --batch 64 --n-critic 5
