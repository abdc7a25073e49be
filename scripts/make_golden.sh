#!/usr/bin/env bash
# Makes the format 1.0 golden files in fixtures/golden/ (see fixtures/golden/README.md):
#   1. writes a GPT-2-shaped mini model with a fixed seed (fixtures/golden/source/),
#   2. converts it with eqconvert: simquant 4-bit group:4 and absmax 8-bit per channel,
#   3. decodes both files with the independent Python reader (scripts/eqm_reader.py) into
#      the values and codes the Swift reader must keep producing (*.expected.json).
#
# The files are committed once: rerunning changes the `created` timestamp inside them, so
# only rerun this to make golden files of a new format version.
#
# Needs Python 3 with numpy, safetensors and zstandard: PYTHON=/path/to/python scripts/make_golden.sh
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
OUT=fixtures/golden
SRC=$OUT/source
mkdir -p "$SRC"

swift build --product eqconvert >/dev/null
EQCONVERT=$(swift build --show-bin-path)/eqconvert

"$PYTHON" - "$SRC" <<'EOF'
import json, sys
import numpy as np
from safetensors.numpy import save_file

src = sys.argv[1]
rng = np.random.RandomState(20261129)
E, V, P = 8, 16, 4  # n_embd, vocab_size, n_positions; one layer

def normal(*shape, scale=0.2):
    return (rng.standard_normal(shape) * scale).astype(np.float32)

tensors = {
    "wte.weight": normal(V, E),
    "wpe.weight": normal(P, E, scale=0.05),
    "h.0.ln_1.weight": (1 + normal(E, scale=0.05)),
    "h.0.ln_1.bias": normal(E, scale=0.02),
    # GPT-2's causal-mask buffer, as old checkpoints carry it: eqconvert drops it.
    "h.0.attn.bias": np.tril(np.ones((P, P), dtype=np.float32)).reshape(1, 1, P, P),
    "h.0.attn.c_attn.weight": normal(E, 3 * E),
    "h.0.attn.c_attn.bias": normal(3 * E, scale=0.02),
    "h.0.attn.c_proj.weight": normal(E, E),
    "h.0.attn.c_proj.bias": normal(E, scale=0.02),
    "h.0.ln_2.weight": (1 + normal(E, scale=0.05)),
    "h.0.ln_2.bias": normal(E, scale=0.02),
    "h.0.mlp.c_fc.weight": normal(E, 4 * E),
    "h.0.mlp.c_fc.bias": normal(4 * E, scale=0.02),
    "h.0.mlp.c_proj.weight": normal(4 * E, E),
    "h.0.mlp.c_proj.bias": normal(E, scale=0.02),
    "ln_f.weight": (1 + normal(E, scale=0.05)),
    "ln_f.bias": normal(E, scale=0.02),
}
# An outlier, so that some block's range is set by one value and codes hit the clamp limits.
tensors["h.0.mlp.c_fc.weight"][3, 5] = 1.5
tensors["h.0.attn.c_proj.weight"][0, 0] = 0.0  # an exact zero
save_file(tensors, src + "/model.safetensors", metadata={"format": "pt"})
config = {
    "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
    "vocab_size": V, "n_positions": P, "n_ctx": P, "n_embd": E, "n_layer": 1, "n_head": 2,
    "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-05,
    "resid_pdrop": 0.0, "embd_pdrop": 0.0, "attn_pdrop": 0.0,
    "bos_token_id": 0, "eos_token_id": 0, "tie_word_embeddings": True,
}
with open(src + "/config.json", "w") as f:
    json.dump(config, f, indent=2)
    f.write("\n")
EOF

"$EQCONVERT" "$SRC" "$OUT/golden-v1.0.eqm" --method simquant --bits 4 --granularity group:4
"$EQCONVERT" "$SRC" "$OUT/golden-v1.0-absmax.eqm" --method absmax --bits 8 --granularity channel

for name in golden-v1.0 golden-v1.0-absmax; do
    "$PYTHON" scripts/eqm_reader.py "$OUT/$name.eqm" --dump-json "$OUT/$name.expected.json"
    "$PYTHON" scripts/eqm_reader.py "$OUT/$name.eqm" | tail -1
done
sha256sum "$SRC"/* "$OUT"/*.eqm "$OUT"/*.expected.json
