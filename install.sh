#!/usr/bin/env bash
# Install nn-server into ./.venv on a fresh Debian/Ubuntu machine. Safe to run again.
#
#   ./install.sh          CPU build of MXNet, runtime only
#   ./install.sh dev      plus the test and lint tools (pytest, tox, ruff, mypy, chromium, ...)
#   ./install.sh gpu      CUDA build of MXNet (mxnet-cu112) instead of the CPU one
#   ./install.sh gpu dev  both
#
# PYTHON=/path/to/python3.11 picks the interpreter. Versions are pinned in constraints.txt.
set -euo pipefail

cd "$(dirname "$0")"
gpu=0
dev=0
for arg in "$@"; do
  case "$arg" in
    gpu) gpu=1 ;;
    dev) dev=1 ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$arg' (expected: gpu, dev)" >&2; exit 2 ;;
  esac
done

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then python=$candidate; break; fi
  done
fi
if [ -z "$python" ] || ! command -v "$python" >/dev/null 2>&1; then
  echo "install.sh: Python 3.11 is needed (apt-get install python3.11 python3.11-venv)" >&2
  exit 1
fi
version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case "$version" in
  3.11) ;;
  *)
    # MXNet 1.9.1 (the last release) needs numpy < 1.24, which has no wheels past 3.11;
    # the code uses 3.11's asyncio and datetime.
    echo "install.sh: $python is Python $version; nn-server needs Python 3.11" \
         "(MXNet 1.9.1 works only with numpy < 1.24). Set PYTHON=/path/to/python3.11." >&2
    exit 1 ;;
esac

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"

# OpenCV's wheel (needed by gluoncv, and by our preprocessing) links the system's libGL and
# GLib, which minimal Debian/Ubuntu images lack.
if command -v ldconfig >/dev/null 2>&1 && \
   ! { ldconfig -p | grep -q 'libGL\.so\.1' && ldconfig -p | grep -q 'libgthread-2\.0\.so\.0'; }; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "==> installing libgl1 and libglib2.0-0 for OpenCV"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq libgl1 libglib2.0-0 >/dev/null
  else
    echo "install.sh: OpenCV needs libGL.so.1 and libgthread-2.0.so.0; install them" \
         "with your package manager (Debian: libgl1 libglib2.0-0)" >&2
    exit 1
  fi
fi

# LeNet's training mixes in digits drawn from other people's handwriting fonts
# (nn_server.training.synthetic), and the tests measure it on still other hands'
# (bench/writers.py): Debian packages both sets. tests/test_writers.py checks that these
# lists name every package the code needs.
TRAINING_FONTS="fonts-comic-neue fonts-bwht fonts-breip fonts-ecolier-court fonts-tomsontalks
  fonts-sjfonts fonts-yusei-magic fonts-leckerli-one fonts-kaushanscript fonts-havana
  fonts-isabella fonts-sil-andika fonts-dejavu-core fonts-urw-base35 fonts-opendyslexic
  fonts-klaudia-berenika fonts-lobster fonts-klee fonts-navilu"
WRITERS_FONTS="fonts-dkg-handwriting fonts-bwht fonts-humor-sans fonts-kristi fonts-sjfonts
  fonts-seto fonts-kiloji fonts-tlwg-purisa-ttf fonts-rufscript fonts-dustin
  fonts-dancingscript"
fonts=$TRAINING_FONTS
[ "$dev" = 1 ] && fonts="$fonts $WRITERS_FONTS"
missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for font in $fonts; do
    dpkg-query -W -f='${Status}' "$font" 2>/dev/null | grep -q "ok installed" \
      || missing="$missing $font"
  done
fi
if [ -n "$missing" ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "==> installing handwriting fonts for LeNet's training:$missing"
    $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "install.sh: warning: training LeNet needs the Debian font packages$missing" \
         "(serving does not)" >&2
  fi
fi

# The web page's tests drive a real browser: the system's Chromium, through Playwright
# (Playwright's own browser downloads come from hosts test machines may not reach).
if [ "$dev" = 1 ] && [ -z "${NN_CHROMIUM:-}" ] && ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "==> installing chromium for the web page's tests"
    $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
  else
    echo "install.sh: the web page's tests need Chromium; install it with your package" \
         "manager (Debian: chromium), or set NN_CHROMIUM=/path/to/chromium" >&2
    exit 1
  fi
fi

# The cluster tests (tests/cluster) start real Redis and nginx servers on loopback ports;
# the benchmark's load generator is wrk.
if [ "$dev" = 1 ] && ! { command -v redis-server >/dev/null 2>&1 && \
     command -v wrk >/dev/null 2>&1 && \
     { command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx; }; }; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "==> installing redis-server, nginx and wrk for the cluster and benchmark tests"
    $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends redis-server nginx wrk >/dev/null
  else
    echo "install.sh: the cluster and benchmark tests need redis-server, nginx and wrk;" \
         "install them with your package manager" >&2
    exit 1
  fi
fi

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $python ($version)"
  if ! "$python" -m venv .venv; then
    echo "install.sh: could not create a virtual environment;" \
         "on Debian/Ubuntu: sudo apt-get install python$version-venv" >&2
    exit 1
  fi
fi

pip=(.venv/bin/python -m pip --disable-pip-version-check --quiet)
"${pip[@]}" install --upgrade "pip>=23"
extras=""
[ "$dev" = 1 ] && extras="[dev]"
echo "==> installing nn-server$extras and its pinned dependencies"
"${pip[@]}" install -c constraints.txt -e ".$extras"

# gluoncv asks for OpenCV's GUI build (opencv-python, with Qt); nn-server needs only the
# headless build of the same version, ~37 MB smaller in every server process. Both install
# the same cv2 package, so remove the GUI build and reinstall the headless one whole
# (pip check will say gluoncv wants opencv-python: the headless build serves it).
if .venv/bin/python -m pip show opencv-python >/dev/null 2>&1; then
  echo "==> using OpenCV's headless build"
  "${pip[@]}" uninstall -y opencv-python
  "${pip[@]}" install -c constraints.txt --force-reinstall --no-deps opencv-python-headless
fi

if [ "$gpu" = 1 ]; then
  # Both builds install the same "mxnet" package folder, so remove both and reinstall the
  # CUDA one whole (a second run has just reinstalled the CPU build over it).
  echo "==> replacing the CPU build of MXNet with the CUDA 11.2 build"
  "${pip[@]}" uninstall -y mxnet mxnet-cu112 >/dev/null 2>&1 || true
  "${pip[@]}" install --force-reinstall --no-deps "mxnet-cu112==1.9.1"
fi

.venv/bin/python - <<'PY'
import mxnet as mx
import onnxruntime as ort
import nn_server
from nn_server.networks.device import pick_device
from nn_server.networks import digits
kernel = "compiled" if digits.KERNEL is not None else "NumPy (no C compiler found: slower)"
print(f"nn-server {nn_server.__version__} ready: MXNet {mx.__version__} on {pick_device()}, "
      f"ONNX Runtime {ort.__version__}, LeNet preprocessing {kernel}")
PY
