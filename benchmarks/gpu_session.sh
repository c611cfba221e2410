#!/usr/bin/env bash
# The GPU figures in benchmarks/README.md, in one call of a machine with one GPU and JAX for CUDA: run from
# the repository root. Five gpu_bench.py processes compile their groups at once, then time one at a time
# (see gpu_bench.py). Records go to ${OUT:-benchmarks/results}/train_step_gpu.jsonl, profiles beside them.
set -u
out=${OUT:-benchmarks/results}
# Packages the GPU image lacks (librosa, soundfile, IPython and their needs) travel in .gpusite/: gpu_site.sh.
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD/lib:$PWD/.gpusite PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.18  # up to five processes share the GPU's memory
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.max.sm --format=csv,noheader
python3 -c "import flax, optax; print('flax', flax.__version__, 'optax', optax.__version__)"
if ! timeout 120 python3 -c "import audiogan, jax; from audiogan import train; print('jax', jax.__version__, jax.devices())"; then
    echo "import with audiogan's XLA:CPU flag failed; going on without it"; export AUDIOGAN_XLA_FLAGS=0
fi
groups=${GPU_GROUPS:-wavegan-f32 wavegan-bf16 specgan-f32 specgan-bf16 small}  # gpu_bench.py's GROUPS
n_groups=$(echo $groups | wc -w)
for g in $groups; do
    extra=""; case $g in *-f32|*-polyphase) extra=--profile;; esac
    timeout ${GPU_BENCH_TIMEOUT:-400} python3 benchmarks/gpu_bench.py --group "$g" --out "$out" --n-groups $n_groups $extra \
        > "$out/log_$g.txt" 2>&1 &
done
wait
rm -f "$out"/compiled.* "$out"/timing.lock
cat "$out"/log_*.txt > "$out/gpu_log.txt" && rm "$out"/log_*.txt
grep -v "^\s*$" "$out/gpu_log.txt" | cut -c1-300 | tail -n 60
python3 - "$out/train_step_gpu.jsonl" <<'PY'
import json, sys
print("model d batch n_critic form precision | s/step (waited) | s/step pipelined | steps/s | useful TFLOP/s | of peak | compile s | XLA temp MiB")
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(r["model"], r["d"], r["batch"], r["n_critic"], r["conv_form"], r["precision"], "|", f"{r['jax_s']:.5f} | {r['pipelined_s']:.5f} | {r['steps_per_s']:.1f} | {r['tflops'] or 0:.2f} | {100 * (r['of_peak'] or 0):.2f}% | {r['compile_s']:.1f} | {(r['xla_memory_mib'] or {}).get('temp', 0):.0f}")
PY
