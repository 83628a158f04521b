#!/usr/bin/env bash
# Stage onnxruntime-gpu for the lent GPU machine. Its wheel (~255 MB) is over the device tool's 64 MiB per call,
# so it travels in parts, one call each, to one warm machine (it stays warm ~30 s after a call: make the calls
# back to back); gpu_check.sh's ort_gpu step joins the parts, checks the hash and installs the wheel.
#
#   here:          bash scripts/stage_ort_gpu.sh            → .ortgpu/part.00 … and .ortgpu/SHA256SUMS
#   device, k=0…:  carry [".ortgpu/part.0k"]  command "mkdir -p /tmp/ortgpu && cp .ortgpu/part.0k /tmp/ortgpu/"
#   device, last:  carry [".whl", ".gpudata", ".ortgpu/SHA256SUMS"]
#                  command "STEPS='train ort_gpu inspect cli' bash scripts/gpu_check.sh"
# The CUDA and cuDNN libraries it needs come from the nvidia-* packages beside that machine's torch.
set -euo pipefail
VERSION=${ORT_GPU_VERSION:-1.31.1}
PART_MB=${PART_MB:-56}  # + the working tree (~2 MB) stays under 64 MiB
PYTHON=${PYTHON:-python3}
cd "$(dirname "$0")/.."
grep -qx '/.ortgpu/' .git/info/exclude || echo /.ortgpu/ >> .git/info/exclude
mkdir -p .ortgpu/wheel && rm -f .ortgpu/part.*
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  -d .ortgpu/wheel "onnxruntime-gpu==$VERSION"
whl=$(ls .ortgpu/wheel/onnxruntime_gpu-"$VERSION"-*.whl)
split -b "${PART_MB}M" -d -a 2 "$whl" .ortgpu/part.
(cd .ortgpu/wheel && sha256sum "$(basename "$whl")") > .ortgpu/SHA256SUMS
ls -l .ortgpu/part.*
echo "$(ls .ortgpu/part.* | wc -l) parts; then the last call (see the top of this script)"
