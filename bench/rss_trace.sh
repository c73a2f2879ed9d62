#!/bin/bash
# bench/rss_trace.sh PATTERN OUT: every 2 s, append "HH:MM:SS PID RSS_MB" of the newest python process whose
# command line contains PATTERN to OUT (runs until killed). Shows *when* a row reaches the peak RSS that
# bench/run.py reports (os.wait4 gives only the peak). Cheap enough to run beside a bench row under `nice -n 19`.
set -u
pat="$1"; out="$2"; : > "$out"
while true; do
  pid=$(pgrep -f "^[^ ]*python[^ ]* .*$pat" | grep -v -x "$$" | tail -1)
  if [ -n "$pid" ]; then
    r=$(awk '/VmRSS/{print int($2/1024)}' "/proc/$pid/status" 2>/dev/null)
    [ -n "$r" ] && echo "$(date +%H:%M:%S) $pid $r" >> "$out"
  fi
  sleep 2
done
