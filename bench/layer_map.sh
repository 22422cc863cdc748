#!/usr/bin/env bash
# The transformer student's initialisation: which teacher layers a 3-layer student starts from.
# SST-2, teacher ../shared/models/sst2-minilm (6 layers); the student distils the teacher's
# logits on SST-2 train's originals (the last 2,000 rows held out to pick the epoch), one epoch
# of at most MAX_STEPS steps of 32, Adam 1e-4, MSE; SST-2 dev is reported (nothing tuned on it).
# Maps: 0,2,4 (the earlier default, j*T//S) and 0,3,5 (DistilBERT's rule, the default now).
#   bash bench/layer_map.sh [MAX_STEPS]        (about 25 minutes on 2 CPU cores at 1500)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-1500}
G=../shared/data/glue/SST-2
T=../shared/models/sst2-minilm
Q=data/layer-map
TS=.venv/bin/transferset
mkdir -p $Q
[ -f $Q/sel.tsv ] || .venv/bin/python bench/split_rows.py $G/train.tsv $Q/train.tsv $Q/sel.tsv 2000
[ -f $Q/set/manifest.json ] || $TS build --task sst2 --input $Q/train.tsv --out $Q/set \
    --n-iter 0 --teacher $T --teacher-cache data/teacher-cache
for map in 0,2,4 0,3,5; do
    out=$Q/tf-${map//,/}
    [ -f $out.json ] && continue
    $TS train-student --shards $Q/set --task sst2 --eval $Q/sel.tsv --out $out \
        --student transformer --teacher $T --layer-map $map --loss mse --optimizer adam \
        --lr 1e-4 --epochs 1 --max-steps "$STEPS" --seed 0
    $TS evaluate --model $out --task sst2 --data $G/dev.tsv --out $out.json
done
.venv/bin/python - <<'PY'
import json
for m in ("024", "035"):
    r = json.load(open(f"data/layer-map/tf-{m}.json"))
    sel = json.load(open(f"data/layer-map/tf-{m}/metrics.json"))
    print(f"LAYERS map={','.join(m)} dev_accuracy={r['metrics']['accuracy']:.4f} "
          f"selection_accuracy={sel['dev']['accuracy']:.4f}")
PY
