#!/usr/bin/env bash
# The SST-2 quality run (not part of CI): teacher ../shared/models/sst2-minilm, a transfer set
# from all of SST-2 train with its logits, the recommended BiLSTM (left at data/quality/best-bilstm)
# and the reference rows, everything scored on SST-2 dev. Prints the results table at the end.
# Steps whose output exists are skipped (the set and the logits cache are shared with
# bench/recipe_sst2.py, which measures the recipe table). About 2 hours on 2 CPU cores.
#   bash bench/quality_sst2.sh
set -euo pipefail
cd "$(dirname "$0")/.."
GLUE=../shared/data/glue/SST-2
TEACHER=../shared/models/sst2-minilm
Q=data/quality
SET=$Q/sst2-n20
TS=.venv/bin/transferset
# The recommended recipe (the README's recipe table) is the defaults: the build's (n_iter 20,
# the paper's rates) and train-student's (MSE on logits, GloVe 50-d trainable plus GloVe's 100k
# most frequent words as frozen rows, hidden 150, Adadelta, batch 50, 10 epochs, patience 3).
mkdir -p $Q
[ -f $SET/manifest.json ] || $TS build --task sst2 --input $GLUE/train.tsv --out $SET \
    --teacher $TEACHER --teacher-cache data/teacher-cache
[ -f $Q/teacher.json ] || $TS evaluate --model $TEACHER --task sst2 --data $GLUE/dev.tsv \
    --out $Q/teacher.json
train() {  # name, then train-student flags
    local name=$1; shift
    [ -f $Q/$name.json ] && return
    $TS train-student --shards $SET --task sst2 --eval $GLUE/dev.tsv --out $Q/$name "$@"
    $TS evaluate --model $Q/$name --task sst2 --data $GLUE/dev.tsv --out $Q/$name.json
}
train best-bilstm
train bilstm-gold --loss ce --originals-only --epochs 10
train bilstm-kd-originals --loss mse --originals-only --epochs 10
train transformer-3l-kd-augmented --student transformer --teacher $TEACHER --layers 3 \
    --loss mse --optimizer adam --lr 1e-4 --epochs 2 --max-steps 3000
.venv/bin/python bench/quality_table.py $Q
