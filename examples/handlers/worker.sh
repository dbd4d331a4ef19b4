#!/bin/sh
# A persistent handler in plain sh (handler: { persistent: [path/to/worker.sh] }):
# one JSON job per line on stdin, one JSON answer per line on stdout. The id is cut out
# of the line with sed and the payload (as it was enqueued, spaces included) is looked at
# with grep; a real worker would use jq.
while IFS= read -r line; do
  id=$(printf '%s\n' "$line" | sed -n 's/^{"attempt":[0-9]*,"id":"\([^"]*\)".*/\1/p')
  echo "sh worker $$: job $id" >&2
  if printf '%s\n' "$line" | grep -q '"fail" *: *true'; then
    printf '{"id":"%s","status":"error","error":"the payload asked to fail","retry":true}\n' "$id"
  else
    printf '{"id":"%s","status":"ok"}\n' "$id"
  fi
done
