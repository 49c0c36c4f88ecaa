#!/bin/sh
# Runs inside one sandbox (see README: "The main job"). Everything it changes
# is thrown away when it exits; compare `ls` here before and after.
set -e
echo "user:        $(id -un) (uid $(id -u)), capabilities $(grep CapEff /proc/self/status | cut -f2)"
echo "processes:   $(ls /proc | grep -c '^[0-9]') visible; my parent is pid $PPID"
echo "hostname:    $(hostname)"
echo "network:     $(ls /sys/class/net | tr '\n' ' ')(loopback only)"
echo "/tmp:        $(ls -A /tmp | wc -l) entries (private tmpfs)"
echo "scribble" > scribble.txt && rm -f README.md
echo "workdir:     wrote scribble.txt and deleted README.md: $(ls | tr '\n' ' ')"
touch /etc/sandbox-run-was-here 2>/dev/null && echo "host /etc:   WRITABLE (unexpected)" || echo "host /etc:   read-only"
