#!/bin/sh
# Generates ./configure. dovecot.m4 comes from Debian's dovecot-dev, which
# installs it into aclocal's system directory.
set -e
cd "$(dirname "$0")"
mkdir -p m4
autoreconf -fi
