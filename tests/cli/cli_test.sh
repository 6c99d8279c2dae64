#!/usr/bin/env bash
# Drives the pipebridge program as a user would: exit codes, stdout and
# stderr of the offline pattern commands, file:// arguments, --help, and
# the dead-letters command line without a server.
# Usage: cli_test.sh PATH/TO/pipebridge
set -u
PB=$1
DATA=$(cd "$(dirname "$0")/../data" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

check() { # name, expected exit, expected stdout (exact), expected stderr substring, command...
  local name=$1 want_rc=$2 want_out=$3 want_err=$4
  shift 4
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  local out
  out=$(cat "$tmp/out")
  if [ "$rc" != "$want_rc" ] || { [ -n "$want_out" ] && [ "$out" != "$want_out" ]; } ||
     { [ -n "$want_err" ] && ! grep -qF -- "$want_err" "$tmp/err"; }; then
    echo "FAIL $name: rc=$rc (want $want_rc)"
    echo "  stdout: $out"
    echo "  stderr: $(cat "$tmp/err")"
    fail=$((fail + 1))
  else
    pass=$((pass + 1))
  fi
}

EV='{"id":"1","account":"123456789012","source":"order","time":"2022-07-13T13:48:01Z","region":"us-east-1","detail-type":"Test","detail":{"state":"running","n":5}}'

check "match" 0 '{"Result": true}' "" \
  "$PB" test-event-pattern --event-pattern '{"source":["order"]}' --event "$EV"
check "no match" 0 '{"Result": false}' "" \
  "$PB" test-event-pattern --event-pattern '{"source":["shipment"]}' --event "$EV"
check "option=value form" 0 '{"Result": true}' "" \
  "$PB" test-event-pattern --event-pattern='{"detail":{"n":[{"numeric":[">",4]}]}}' --event="$EV"
check "file:// arguments" 0 '{"Result": true}' "" \
  "$PB" test-event-pattern --event-pattern "file://$DATA/sample-pattern.json" --event "file://$DATA/sample-event.json"
check "invalid pattern" 254 "" \
  "An error occurred (InvalidEventPatternException) when calling the TestEventPattern operation: Event pattern is not valid. Reason: Empty arrays are not allowed" \
  "$PB" test-event-pattern --event-pattern '{"source":[]}' --event "$EV"
check "invalid JSON pattern" 254 "" \
  "Reason: Unrecognized token 'this': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')" \
  "$PB" test-event-pattern --event-pattern 'this is not json' --event "$EV"
check "event without envelope" 254 "" \
  "An error occurred (ValidationException) when calling the TestEventPattern operation: Parameter Event is not valid." \
  "$PB" test-event-pattern --event-pattern '{"source":["order"]}' --event '{"source":"order"}'
check "event not an object" 254 "" "Parameter Event is not valid." \
  "$PB" test-event-pattern --event-pattern '{"source":["order"]}' --event '["x"]'
long=$(python3 -c 'print("{\"source\":[" + ",".join("\"%04d\"" % i for i in range(700)) + "]}")')
check "pattern over 4096 chars" 254 "" "failed to satisfy constraint: Member must have length less than or equal to 4096" \
  "$PB" test-event-pattern --event-pattern "$long" --event "$EV"
check "missing file" 252 "" "Unable to load paramfile file://$tmp/nope" \
  "$PB" test-event-pattern --event-pattern "file://$tmp/nope" --event "$EV"
check "missing argument" 252 "" "required: --event-pattern, --event" \
  "$PB" test-event-pattern --event-pattern '{"source":["order"]}'
check "explain match" 0 '{"Result":true}' "" \
  "$PB" explain-event-pattern --event-pattern '{"source":["order"]}' --event "$EV"
check "explain mismatch json" 0 \
  '{"Result":false,"Mismatches":[{"Path":"detail.state","Condition":["stopped"],"Values":["running"],"Reason":"no value at this path satisfies the condition"}]}' "" \
  "$PB" explain-event-pattern --event-pattern '{"source":["order"],"detail":{"state":["stopped"]}}' --event "$EV"
check "explain missing text" 0 "" "" \
  "$PB" explain-event-pattern --event-pattern '{"detail":{"gone":["x"]}}' --event "$EV" --output text
grep -q "detail.gone: the field is missing" "$tmp/out" && pass=$((pass + 1)) || { echo "FAIL explain text: $(cat "$tmp/out")"; fail=$((fail + 1)); }
check "help" 0 "" "" "$PB" --help
grep -q "test-event-pattern" "$tmp/out" && pass=$((pass + 1)) || { echo "FAIL help text"; fail=$((fail + 1)); }
check "command help" 0 "" "" "$PB" test-event-pattern --help
grep -q "exits 254" "$tmp/out" && pass=$((pass + 1)) || { echo "FAIL command help text"; fail=$((fail + 1)); }
check "next fire times cron" 0 '{"FireTimes": ["2026-12-07T08:00:00Z", "2027-01-04T08:00:00Z"]}' "" \
  "$PB" next-fire-times --schedule-expression 'cron(0 8 ? * MON#1 *)' --count 2 --after 2026-11-25T00:00:00Z
check "next fire times rate" 0 '{"FireTimes": ["2026-11-25T00:05:00Z", "2026-11-25T00:10:00Z", "2026-11-25T00:15:00Z"]}' "" \
  "$PB" next-fire-times --schedule-expression 'rate(5 minutes)' --count 3 --after 2026-11-25T00:00:00Z
check "next fire times invalid" 254 "" \
  "An error occurred (ValidationException) when calling the NextFireTimes operation: Parameter ScheduleExpression is not valid." \
  "$PB" next-fire-times --schedule-expression 'rate(1 minutes)'
check "schedule-preview seed" 0 '2026-12-07T08:00:00Z
2027-01-04T08:00:00Z
2027-02-01T08:00:00Z' "" \
  "$PB" schedule-preview --schedule-expression 'cron(0 8 ? * MON#1 *)' --count 3 --from 2026-11-25T00:00:00Z
check "schedule-preview json" 0 '["2026-11-25T00:05:00Z", "2026-11-25T00:10:00Z"]' "" \
  "$PB" schedule-preview --schedule-expression 'rate(5 minutes)' --count 2 --from 2026-11-25T00:00:00 --output json
check "schedule-preview default count" 0 "" "" \
  "$PB" schedule-preview --schedule-expression 'cron(0/15 * * * ? *)' --from 2026-11-25
[ "$(wc -l < "$tmp/out")" -eq 10 ] && pass=$((pass + 1)) || { echo "FAIL schedule-preview: not 10 lines"; fail=$((fail + 1)); }
check "schedule-preview at" 0 '["2026-12-07T08:00:30Z"]' "" \
  "$PB" schedule-preview --schedule-expression 'at(2026-12-07T08:00:30)' --from 2026-11-25T00:00:00Z --output json
check "schedule-preview never" 0 "" "never fires after 2026-11-25T00:00:00Z" \
  "$PB" schedule-preview --schedule-expression 'cron(0 0 1 1 ? 2020)' --from 2026-11-25T00:00:00Z
check "schedule-preview invalid" 254 "" \
  "An error occurred (ValidationException) when calling the PreviewSchedule operation: Parameter ScheduleExpression is not valid." \
  "$PB" schedule-preview --schedule-expression 'cron(0 1 * * * *)'
check "schedule-preview bad from" 252 "" "--from wants" \
  "$PB" schedule-preview --schedule-expression 'rate(1 minute)' --from tomorrow
check "unknown command" 252 "" "unknown command" "$PB" frobnicate
check "serve --max-connections 0" 252 "" "--max-connections is a number from 1 to 65536" \
  "$PB" serve --max-connections 0 --data-dir "$tmp/never"
check "serve --max-connections x" 252 "" "--max-connections is a number from 1 to 65536" \
  "$PB" serve --max-connections 12x --data-dir "$tmp/never"
check "serve help" 0 "" "" "$PB" serve --help
grep -q -- "--max-connections N" "$tmp/out" && pass=$((pass + 1)) || { echo "FAIL serve help lacks --max-connections"; fail=$((fail + 1)); }
# dead-letters without a server (with one: tests/e2e/test_dead_letters.py)
check "dead-letters help" 0 "" "" "$PB" dead-letters --help
grep -q "development credential" "$tmp/out" && pass=$((pass + 1)) || { echo "FAIL dead-letters help text"; fail=$((fail + 1)); }
check "help lists dead-letters" 0 "" "" "$PB" help
grep -q "dead-letters" "$tmp/out" && pass=$((pass + 1)) || { echo "FAIL help lacks dead-letters"; fail=$((fail + 1)); }
check "redrive without selector" 252 "" "say which dead letters to redrive" "$PB" dead-letters redrive
check "redrive --id and --all" 252 "" "--id cannot be combined" "$PB" dead-letters redrive --id 3 --all
check "dead-letters unknown subcommand" 252 "" "unknown subcommand" "$PB" dead-letters purge
check "dead-letters no server" 255 "" 'Could not connect to the endpoint URL: "http://127.0.0.1:1"' \
  env -u AWS_ENDPOINT_URL "$PB" dead-letters list --endpoint-url http://127.0.0.1:1
check "dead-letters AWS_ENDPOINT_URL" 255 "" 'Could not connect to the endpoint URL: "http://127.0.0.1:1"' \
  env AWS_ENDPOINT_URL=http://127.0.0.1:1 "$PB" dead-letters redrive --all

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
