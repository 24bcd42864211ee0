#!/usr/bin/env bash
# Installs the system packages accelforge needs on a Debian/Ubuntu machine, when missing:
# Verilator (simulation, lint), Icarus Verilog (parse check), Yosys (synthesis statistics), the
# CBC MILP solver library (mapper), tclsh (Vivado-script checks), the C++ toolchain Verilator
# compiles models with, and the Python packages the reference checks use (numpy, cocotb).
# Uses sudo only when not already root. Safe to run repeatedly.
set -euo pipefail

packages=(verilator yosys iverilog coinor-libcbc-dev pkg-config make g++ tcl python3 python3-pip)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The PYNQ driver test imports numpy into whichever python3 is first on PATH.
if ! python3 -c 'import numpy' >/dev/null 2>&1; then
  echo "setup: installing numpy for $(command -v python3)"
  python3 -m pip install --quiet numpy || $sudo apt-get install -y -q python3-numpy
fi

# The independent AXI check drives the generated Zynq top with cocotb + cocotbext-axi (third-party
# AXI4-Lite/AXI4-Stream models) on Icarus. Pinned: the test uses cocotb 2.x's runner API.
if ! python3 -c 'import cocotb, cocotb_tools.runner, cocotbext.axi' >/dev/null 2>&1; then
  echo "setup: installing cocotb and cocotbext-axi for $(command -v python3)"
  pip_pkgs=(cocotb==2.1.0 cocotbext-axi==0.1.28)
  python3 -m pip install --quiet "${pip_pkgs[@]}" ||
    python3 -m pip install --quiet --break-system-packages "${pip_pkgs[@]}"
fi

# The model tests compare `accelforge run` with the models' own reference executors: the qonnx
# package for QONNX graphs, onnxruntime for QCDQ (scripts/onnx_reference.py). Pinned to the
# versions the committed fixtures were made with.
if ! python3 -c 'import qonnx.core.onnx_exec, onnxruntime, onnx' >/dev/null 2>&1; then
  echo "setup: installing qonnx, onnxruntime and onnx for $(command -v python3)"
  pip_pkgs=(qonnx==1.0.0 onnxruntime==1.32.0 onnx==1.23.2)
  python3 -m pip install --quiet "${pip_pkgs[@]}" ||
    python3 -m pip install --quiet --break-system-packages "${pip_pkgs[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi
echo "setup: $(verilator --version | head -1); $(yosys -V); $(iverilog -V 2>&1 | head -1)"
