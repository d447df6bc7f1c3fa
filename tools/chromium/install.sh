#!/bin/sh
# Debian's Chromium for the browser tests (tests/browser.py drives it headless through Playwright). Installed only
# where it is missing; needs root (CI runs as root). Playwright's own browser download is not used: it fetches from
# a CDN outside the package registries.
set -e
if command -v chromium >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
    echo "chromium is missing and this is not root: install Debian's chromium package (apt-get install chromium)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
