#!/usr/bin/env bash
# Create .venv and install pattnet with everything it needs, offline-safe and CPU-friendly.
#
# Why three steps:
#  1. torch first, pinned: a torch range asked for by a dependency would otherwise pull the newest
#     CUDA build (several GB). Users with their own torch (CUDA) keep it: set PATTNET_TORCH="".
#  2. pattnet and its dependencies (numpy<2, opencv-python-headless<4.12, MediaPipe's runtime needs).
#  3. MediaPipe 0.10.21 with --no-deps: the last release whose wheel ships the face-mesh models
#     (later ones download .task files at run time). Its declared deps would pull jax, jaxlib and
#     opencv-contrib-python (the GUI build, needs libGL, clashes with the headless cv2 folder);
#     none of them is used by mp.solutions.face_mesh.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip -q --disable-pip-version-check"
TORCH=${PATTNET_TORCH-torch==2.13.0}
[ -n "$TORCH" ] && $PIP install "$TORCH"
$PIP install -e ".[dev]"
$PIP install --no-deps mediapipe==0.10.21
.venv/bin/python -c "import mediapipe as mp; mp.solutions.face_mesh" >/dev/null
echo "pattnet set up in .venv (activate with: . .venv/bin/activate)"
