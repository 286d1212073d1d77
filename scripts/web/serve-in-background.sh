# Sourced by scripts/web.sh and scripts/bench-web.sh. serve_in_background SITE serves the
# folder SITE with python3's http.server on a free loopback port, in the background, and
# sets server_pid and page_url; the caller stops it (kill "$server_pid").
serve_in_background() {
  local log port=
  log="$(mktemp)"
  (cd "$1" && exec python3 -u -m http.server --bind 127.0.0.1 0 >"$log" 2>&1) &
  server_pid=$!
  for _ in $(seq 50); do
    port="$(sed -n 's/^Serving HTTP on 127.0.0.1 port \([0-9]*\).*/\1/p' "$log")"
    [[ -n $port ]] && break
    sleep 0.2
  done
  if [[ -z $port ]]; then
    echo "error: the server did not start: $(cat "$log")" >&2
    kill "$server_pid" 2>/dev/null
    rm -f "$log"
    return 1
  fi
  rm -f "$log"
  page_url="http://127.0.0.1:$port/"
}
