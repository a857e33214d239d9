#!/usr/bin/env bash
# brainlib's full profile on a SLURM cluster: 2 nodes x 8 GPUs, one torchrun agent per node.
# Submit with:  sbatch docs/slurm_example.sh
# Every rank runs the notebooks; each engine.fit call trains with DistributedDataParallel
# (nccl) across all 16 GPUs; rank 0 writes outputs/ (on a file system every node sees: the
# checkpoints are read back by every rank when a run resumes). See docs/scale.md.
#SBATCH --job-name=brainlib-full
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1          # one torchrun agent per node; it starts the 8 ranks
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=64           # loader workers: see docs/scale.md for how many per GPU
#SBATCH --time=48:00:00
#SBATCH --output=brainlib-%j.log
set -euo pipefail

REPO="${REPO:-$HOME/brainlib}"       # a checkout on the shared file system
DATA="${DATA:-/shared/datasets}"     # rsna/, cq500/, deeplesion/, busi/ (README: --data-root)
OUT="${OUT:-$REPO/outputs-full}"
cd "$REPO"

# the rendezvous host: the first node of the allocation
head_node="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export BRAINLIB_DIST_TIMEOUT=1800    # seconds a rank waits in a collective before failing

srun --kill-on-bad-exit=1 .venv/bin/python -m torch.distributed.run \
  --nnodes="$SLURM_JOB_NUM_NODES" --nproc-per-node=8 \
  --rdzv-backend=c10d --rdzv-endpoint="$head_node:29500" --rdzv-id="$SLURM_JOB_ID" \
  -m brainlib run --profile full --data-root "$DATA" --out "$OUT" --device cuda

# afterwards, on one node: .venv/bin/python -m brainlib report --out "$OUT"
