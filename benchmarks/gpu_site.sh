#!/usr/bin/env bash
# Fills .gpusite/ (git-ignored) with the Python packages audiogan imports that the device machine's GPU image
# lacks, for gpu_session.sh there (carry .gpusite). Pure-Python ones are copied from the project's .venv; the
# two with compiled parts come as wheels for the image's Python 3.12.
set -eu
site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
rm -rf .gpusite && mkdir .gpusite
for m in IPython traitlets decorator pooch platformdirs librosa soundfile _soundfile _soundfile_data pycparser audioread; do
    for p in "$site/$m" "$site/$m.py"; do [ -e "$p" ] && cp -r "$p" .gpusite/; done
done
wheels=$(mktemp -d)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$wheels" cffi soxr
for w in "$wheels"/*.whl; do (cd .gpusite && unzip -q -o "$w" -x '*.dist-info/*'); done
grep -qx '/.gpusite/' .git/info/exclude 2>/dev/null || echo /.gpusite/ >> .git/info/exclude
du -sh .gpusite
