#!/bin/bash
# Record of the script run 5 ran on the lent H200 (not a project tool). It expected, in the ignored folder
# .devcarry/: wheels of the packages the machine lacked (diffusers 0.42.1, librosa 0.11.0 and their
# missing dependencies), this machine's espeak-ng with its libraries and voice data (espeak.tar.xz), a
# moviepy stand-in (training writes no video there), smoke.yaml (every stage 2-3 steps),
# prep_components.py (the role --components-from now plays) and gpu_infer.py (the inference timing).
# Device bootstrap + run 5 (one GPU). Env: CLIPS (train talking clips), WORKERS, SMOKE_ONLY=1, LOCAL=1 (no wheel install)
set -eo pipefail
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1
T0=$(date +%s); stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }
OUT=${OUT:-/tmp/devout}; mkdir -p "$OUT"
CLIPS=${CLIPS:-3000}; WORKERS=${WORKERS:-15}; PY=${PY:-python3}
if [ -z "$LOCAL" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .devcarry/whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD:$PWD/.devcarry/stubs
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  nproc
else
  export PYTHONPATH=$PWD
fi
tar xJf .devcarry/espeak.tar.xz -C /tmp && export PATH=/tmp/espeak/bin:$PATH
$PY -c "import torch, diffusers, librosa; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'diffusers', diffusers.__version__)"
stamp "setup done"
synth() {  # out clips eval workers
  $PY -c "
from starcaster.data.synthtalk import SynthConfig, generate_dataset
generate_dataset(SynthConfig(out='$1', clips=$2, multiview_sets=0, eval_clips=$3, workers=$4, splits=('train', 'val')), progress=False)"
}
# 1. smoke: every stage a few steps on a tiny set (fails fast, before the long synth)
synth /tmp/tiny 48 1 $WORKERS
stamp "tiny synth done"
$PY .devcarry/prep_components.py /tmp/smoke
$PY -m starcaster train --config .devcarry/smoke.yaml --data /tmp/tiny --out /tmp/smoke --export /tmp/smoke_export
for f in /tmp/smoke/*/log.csv; do echo "$f"; tail -n 2 "$f"; done
stamp "smoke train done"
if [ -z "$LOCAL" ]; then ($PY .devcarry/gpu_infer.py checkpoints/starcaster-synth 2>&1 | tail -n 4) || true; stamp "gpu inference timed"; fi
[ -n "$SMOKE_ONLY" ] && exit 0
# 2. data for run 5
synth data/synthtalk-gpu $CLIPS 2 $WORKERS
stamp "synth $CLIPS clips done"; du -sh data/synthtalk-gpu
# 3. run 5
RUN=${RUN:-runs/gpu5}
$PY .devcarry/prep_components.py $RUN
LIMIT=${LIMIT:-565}; AVAIL=$(( LIMIT - ($(date +%s) - T0) - 50 ))
$PY - <<PY
import yaml
cfg = yaml.safe_load(open("${CONFIG:-configs/demo-gpu.yaml}"))
total = sum(s["max_minutes"] for s in cfg["stages"])
scale = max(0.1, $AVAIL / 60 / total)
for s in cfg["stages"]:
    s["max_minutes"] = round(s["max_minutes"] * scale, 2)
print("budgets (min):", [s["max_minutes"] for s in cfg["stages"]], "scale", round(scale, 2))
yaml.safe_dump(cfg, open("/tmp/run5.yaml", "w"))
PY
(nvidia-smi dmon -s u -d 5 > /tmp/dmon.txt 2>&1 &) || true
($PY -m starcaster train --config /tmp/run5.yaml --out $RUN ${EXTRA} 2>&1 | tail -n 30) || echo "TRAINING FAILED (packing what exists)"
for f in $RUN/*/log.csv; do echo "$f"; head -n 2 "$f"; tail -n 3 "$f"; done
stamp "training done"
# 4. bring back the UNets (fp16) and logs
$PY - <<PY
import torch, shutil
from pathlib import Path
from safetensors.torch import load_file, save_file
run = Path("$RUN"); out = Path("/tmp/pack"); out.mkdir(exist_ok=True)
for stage in ("reference", "self_forcing"):
    final = run / stage / "final"
    if (final / "config.json").is_file():
        sd = {k: v.half() if v.is_floating_point() else v for k, v in load_file(final / "diffusion_pytorch_model.safetensors").items()}
        save_file(sd, out / f"unet_{stage}.safetensors"); shutil.copy(final / "config.json", out / f"unet_{stage}.json")
shutil.copy("/tmp/run5.yaml", out / "run5.yaml")
if Path("/tmp/dmon.txt").is_file():
    shutil.copy("/tmp/dmon.txt", out / "dmon.txt")
for log in run.glob("*/log.csv"):
    shutil.copy(log, out / f"log_{log.parent.name}.csv")
PY
tar cf /tmp/pack.tar -C /tmp pack && split -b 15m /tmp/pack.tar "$OUT/pack.tar.part-"
ls -la "$OUT"; stamp "all done"
