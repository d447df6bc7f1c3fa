#!/bin/sh
# Build llama-server (and llama-perplexity, llama-imatrix, llama-quantize) into VENV/bin from the llama-cpp-python
# source archive that the Makefile downloads into VENV/sdist.
# Usage: tools/llama-server/build.sh VENV
set -eu
VENV=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
ARCHIVE=$(ls "$VENV"/sdist/llama_cpp_python-*.tar.gz | head -n 1)
WORK="$VENV/llama-server-build"
rm -rf "$WORK" && mkdir -p "$WORK"
tar -xzf "$ARCHIVE" -C "$WORK" --strip-components=1 --exclude='*/.git/*' --wildcards '*/vendor/llama.cpp/*'
LIBDIR=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"] + "/lib")')
test -f "$LIBDIR/libllama-common.so" || { echo "no libllama-common.so in $LIBDIR: is llama-cpp-python installed?" >&2; exit 1; }
"$VENV/bin/cmake" -S "$HERE" -B "$WORK/build" -G Ninja -DCMAKE_MAKE_PROGRAM="$VENV/bin/ninja" \
  -DLLAMA_CPP_DIR="$WORK/vendor/llama.cpp" -DLLAMA_LIB_DIR="$LIBDIR" >"$WORK/cmake.log" 2>&1 \
  || { cat "$WORK/cmake.log" >&2; exit 1; }
"$VENV/bin/cmake" --build "$WORK/build" -j "$(nproc 2>/dev/null || echo 2)" >"$WORK/build.log" 2>&1 \
  || { tail -n 40 "$WORK/build.log" >&2; exit 1; }
for tool in llama-perplexity llama-imatrix llama-quantize llama-server; do  # the server last: make checks its timestamp
  cp "$WORK/build/$tool" "$VENV/bin/$tool.tmp" && mv "$VENV/bin/$tool.tmp" "$VENV/bin/$tool"
done
rm -rf "$WORK/vendor" "$WORK/build"
