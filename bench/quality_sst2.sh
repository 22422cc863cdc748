#!/usr/bin/env bash
# The SST-2 quality run (not part of CI): teacher ../shared/models/sst2-minilm, a transfer set
# from all of SST-2 train with its logits, students trained from it, everything scored on
# SST-2 dev. Prints the results table at the end. Expect about an hour on 2 CPU cores.
#   bash bench/quality_sst2.sh [N_ITER]
set -euo pipefail
cd "$(dirname "$0")/.."
N_ITER=${1:-8}
GLUE=../shared/data/glue/SST-2
TEACHER=../shared/models/sst2-minilm
Q=data/quality
TS=.venv/bin/transferset
mkdir -p $Q
[ -f data/sst2-kd/manifest.json ] || $TS build --task sst2 --input $GLUE/train.tsv \
    --out data/sst2-kd --n-iter "$N_ITER" --num-shards 4 --teacher $TEACHER \
    --teacher-cache data/teacher-cache --overwrite
$TS evaluate --model $TEACHER --task sst2 --data $GLUE/dev.tsv --out $Q/teacher.json
train() {  # name, then train-student flags
    local name=$1; shift
    $TS train-student --shards data/sst2-kd --task sst2 --eval $GLUE/dev.tsv --out $Q/$name "$@"
    $TS evaluate --model $Q/$name --task sst2 --data $GLUE/dev.tsv --out $Q/$name.json
}
train bilstm-gold --loss ce --originals-only --embeddings glove --epochs 10
train bilstm-kd-originals --loss mse --originals-only --embeddings glove --epochs 10
train bilstm-kd-augmented --loss mse --embeddings glove --epochs 5 --patience 2
train transformer-3l-kd-augmented --student transformer --teacher $TEACHER --layers 3 \
    --loss mse --optimizer adam --lr 1e-4 --epochs 2 --max-steps 3000
.venv/bin/python bench/quality_table.py $Q
