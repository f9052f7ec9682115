#!/usr/bin/env bash
# Sets up a Python in which diffusers v0.37.0 imports, to regenerate the reference tensors
# (reference/generate.py) and time diffusers (reference/bench_diffusers.py). See reference/README.md.
#
#   eval "$(reference/env.sh DIFFUSERS_GIT HUB_GIT [SCRATCH])"
#   "$REF_PYTHON" reference/generate.py
#
#   DIFFUSERS_GIT  a clone (or bare git directory) of github.com/huggingface/diffusers, with tag v0.37.0
#   HUB_GIT        a clone (or bare git directory) of github.com/huggingface/huggingface_hub, with tag v0.35.0
#   SCRATCH        where the two sources are unpacked (default: /tmp/dpmsolver-reference-env)
#
# Debian's python3 with its torch (1.13), numpy and scipy packages; nothing is pip-installed and
# nothing of diffusers enters this repository: the sources are unpacked under SCRATCH and only put
# on PYTHONPATH. Progress goes to stderr; stdout is the two export lines for eval.
set -euo pipefail

diffusers_git=${1:?usage: reference/env.sh DIFFUSERS_GIT HUB_GIT [SCRATCH]}
hub_git=${2:?usage: reference/env.sh DIFFUSERS_GIT HUB_GIT [SCRATCH]}
scratch=${3:-/tmp/dpmsolver-reference-env}
python=/usr/bin/python3

# 1. Debian packages: torch and the libraries diffusers and huggingface_hub import.
packages=(python3-torch python3-numpy python3-scipy python3-pil python3-requests python3-httpx
  python3-fsspec python3-filelock python3-packaging python3-yaml python3-tqdm python3-regex
  python3-typing-extensions python3-importlib-metadata)
absent=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    absent+=("$package")
done
if ((${#absent[@]} > 0)); then
  echo "reference/env.sh: installing ${absent[*]}" >&2
  sudo=$([[ $(id -u) == 0 ]] || echo sudo)
  $sudo apt-get update -qq >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${absent[@]}" >&2
fi

# 2. The pinned sources, unpacked once (git archive works on clones and bare directories alike).
unpack() { # git-dir tag folder
  if [[ ! -d $scratch/$3 ]]; then
    mkdir -p "$scratch"
    git --git-dir="$(git -C "$1" rev-parse --absolute-git-dir 2>/dev/null || echo "$1")" \
      archive "$2" "src/$(basename "$3")" | tar -x -C "$scratch" >&2
  fi
}
unpack "$diffusers_git" v0.37.0 src/diffusers
unpack "$hub_git" v0.35.0 src/huggingface_hub

# 3. torch 1.13 predates the xpu/mps/mtia namespaces diffusers 0.37 probes when it loads. Empty
#    stand-ins satisfy the probes; the scheduler code paths never reach them (diffusers' own
#    expected values for these schedulers reproduce with them).
mkdir -p "$scratch/site"
cat >"$scratch/site/sitecustomize.py" <<'PY'
import types

import torch

for backend in ("xpu", "mps", "mtia"):
    module = getattr(torch, backend, None)
    if module is None:
        module = types.SimpleNamespace()
        setattr(torch, backend, module)
    for name in ("is_available", "device_count", "empty_cache", "synchronize", "manual_seed",
                 "memory_allocated", "max_memory_allocated", "reset_peak_memory_stats"):
        if not hasattr(module, name):
            setattr(module, name, lambda *args, **kwargs: 0)
PY

path="$scratch/site:$scratch/src"
PYTHONPATH=$path "$python" -c '
import diffusers
assert diffusers.__version__ == "0.37.0", diffusers.__version__
' >&2
echo "export PYTHONPATH='$path'"
echo "export REF_PYTHON=$python"
