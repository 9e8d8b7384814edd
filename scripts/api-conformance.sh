#!/usr/bin/env bash
# API conformance: runs schemathesis against docs/openapi.yaml and a live `faultline agent`.
#
# Starts an agent on a free loopback port with a fresh token and state directory, fuzzes
# every documented operation (with the bearer token), and fails when a response does not
# match the spec: a 5xx, an undocumented status, a wrong Content-Type, a body or header
# that does not match its schema, schema-invalid input that is not refused with a 4xx, an
# operation that ignores the token, or a schedule still reachable after its DELETE.
#
# Usage:  scripts/api-conformance.sh
# Env:    FAULTLINE     the faultline binary (default .build/debug/faultline)
#         SCHEMATHESIS  an `st`/`schemathesis` executable to use instead of the pinned venv
#         API_MAX_EXAMPLES  test cases per operation and phase (default 100)
#         API_MAX_TIME      schemathesis time budget in seconds: fuzzing repeats until it is spent (default: none)
#         API_TIMEOUT       hard limit for the schemathesis run in seconds (default 150)
#         API_CHECKS        schemathesis checks (default: see CHECKS below)
#         API_SEED          a seed, to reproduce a run
#         API_SPEC          the OpenAPI file (default docs/openapi.yaml)
#
# Safety: the agent runs real faults for a valid scenario. The only run started on
# purpose is the seed below (one worker at 1% CPU for 1s, finished before the fuzzing).
# The spec carries no example of a valid scenario, so generated bodies are not valid
# scenarios; should one ever be, the trap sends SIGTERM, on which the agent reverts every
# run before it exits. Needs curl and python3 (for the venv).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# A FAULTLINE given relative to the caller's directory stays valid after the cd below.
if [[ -n ${FAULTLINE:-} && $FAULTLINE != /* && -e $FAULTLINE ]]; then FAULTLINE=$PWD/$FAULTLINE; fi
if [[ -n ${API_SPEC:-} && $API_SPEC != /* ]]; then API_SPEC=$PWD/$API_SPEC; fi
if [[ ${SCHEMATHESIS:-} == */* && $SCHEMATHESIS != /* ]]; then SCHEMATHESIS=$PWD/$SCHEMATHESIS; fi
cd "$ROOT"

SCHEMATHESIS_VERSION=4.32.5
FAULTLINE=${FAULTLINE:-.build/debug/faultline}
SPEC=${API_SPEC:-$ROOT/docs/openapi.yaml}
MAX_EXAMPLES=${API_MAX_EXAMPLES:-100}
MAX_TIME=${API_MAX_TIME:-}
TIMEOUT=${API_TIMEOUT:-150}
# Not checked: positive_data_acceptance (random text is never a valid scenario, so the agent
# rightly answers 400), object_level_authorization (one token).
CHECKS=${API_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,negative_data_rejection,missing_required_header,ignored_auth,use_after_free,ensure_resource_availability,unsupported_method,allow_header_conformance}

[[ -x $FAULTLINE ]] || { echo "api-conformance: no faultline binary at $FAULTLINE (build it, or set FAULTLINE)" >&2; exit 2; }
[[ -f $SPEC ]] || { echo "api-conformance: $SPEC is missing" >&2; exit 2; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/faultline-api.XXXXXX")
AGENT_PID=
ST_PID=

cleanup() {
    local status=$?
    if [[ -n $ST_PID ]] && kill -0 "$ST_PID" 2>/dev/null; then
        kill -TERM "$ST_PID" 2>/dev/null || true
        wait "$ST_PID" 2>/dev/null || true
    fi
    if [[ -n $AGENT_PID ]] && kill -0 "$AGENT_PID" 2>/dev/null; then
        kill -TERM "$AGENT_PID" 2>/dev/null || true
        # The agent reverts every run on SIGTERM; give it up to 10 s.
        for _ in $(seq 1 100); do
            kill -0 "$AGENT_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$AGENT_PID" 2>/dev/null; then
            echo "api-conformance: the agent did not stop within 10 s of SIGTERM; killing it" >&2
            kill -KILL "$AGENT_PID" 2>/dev/null || true
        fi
        wait "$AGENT_PID" 2>/dev/null || true
    fi
    if [[ $status -ne 0 && -s $TMP/agent.log ]]; then
        echo "--- agent log (last 40 lines) ---" >&2
        tail -n 40 "$TMP/agent.log" >&2 || true
    fi
    cd / && rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A random token in a 0600 file.
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$TMP/token")
chmod 600 "$TMP/token"
TOKEN=$(cat "$TMP/token")

# Schemathesis: the given executable, or a pinned one in a venv under .build-tools (gitignored: .build-*/).
if [[ -n ${SCHEMATHESIS:-} ]]; then
    ST=$SCHEMATHESIS
else
    VENV=$ROOT/.build-tools/venv
    ST=$VENV/bin/st
    if ! [[ -x $ST ]] || [[ $("$ST" --version 2>/dev/null) != *" $SCHEMATHESIS_VERSION" ]]; then
        echo "api-conformance: installing schemathesis $SCHEMATHESIS_VERSION into $VENV" >&2
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    fi
fi
echo "api-conformance: $("$ST" --version)" >&2

# Start the agent on a free port and read the port from its log.
"$FAULTLINE" agent --listen 127.0.0.1:0 --token-file "$TMP/token" --state-dir "$TMP/state" 2> "$TMP/agent.log" &
AGENT_PID=$!
PORT=
for _ in $(seq 1 200); do
    PORT=$(sed -n 's|^faultline agent listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' "$TMP/agent.log" | head -n 1)
    [[ -n $PORT ]] && break
    kill -0 "$AGENT_PID" 2>/dev/null || { echo "api-conformance: the agent exited before it listened" >&2; exit 1; }
    sleep 0.1
done
[[ -n $PORT ]] || { echo "api-conformance: the agent did not say where it listens within 20 s" >&2; exit 1; }
BASE=http://127.0.0.1:$PORT
echo "api-conformance: agent pid $AGENT_PID at $BASE" >&2

# Seed known ids, so the per-run and per-schedule operations answer more than 404 and their
# answers are checked too. The seed scenario is the mildest fault there is: one busy-loop
# worker at 1% load for 1s. It runs once here, to its end, before schemathesis starts (so
# that a finished run has a report); everything else is parked: one run is scheduled for
# 300 days ahead and aborted at once, one is scheduled 300 days ahead, and the cron schedule fires only on
# 29 February.
SEED='{apiVersion: faultline/v1, kind: Scenario, metadata: {name: api-conformance-seed}, spec: {maxDuration: 5s, faults: [{name: idle, type: cpu-stress, workers: 1, load: 1%, duration: 1s}]}}'
api() { curl -sS --fail-with-body --max-time 30 -H "Authorization: Bearer $TOKEN" -H 'X-Faultline-Source: api-conformance-seed.yaml' "$@"; }
json_id() { sed -n 's/.*"id":"\([^"]*\)".*/\1/p'; }
REPORTED_RUN=$(api -X POST -H 'Content-Type: application/yaml' --data-binary "$SEED" "$BASE/v1/runs" | json_id)
# The event stream ends when the run does.
api "$BASE/v1/runs/$REPORTED_RUN/events" > "$TMP/seed-events.txt"
if ! api "$BASE/v1/runs/$REPORTED_RUN" | grep -q '"state":"succeeded"'; then
    echo "api-conformance: the seed run $REPORTED_RUN did not succeed:" >&2
    cat "$TMP/seed-events.txt" >&2
    exit 1
fi
LATER=$(date -u -d '+300 days' +%Y-%m-%dT%H:%M:%SZ)  # an 'at' may be at most a year away
ABORTED_RUN=$(api -X POST -H 'Content-Type: application/yaml' --data-binary "$SEED" "$BASE/v1/runs?at=$LATER" | json_id)
api -X POST "$BASE/v1/runs/$ABORTED_RUN/abort" > /dev/null
SCHEDULED_RUN=$(api -X POST -H 'Content-Type: application/yaml' --data-binary "$SEED" "$BASE/v1/runs?at=$LATER&lease=1m" | json_id)
CRON_SCHEDULE=$(api -X POST -H 'Content-Type: application/json' --data-binary "{\"scenario\": \"$SEED\", \"cron\": \"0 0 29 2 *\", \"lease\": \"30s\"}" "$BASE/v1/schedules" | json_id)
if [[ -z $ABORTED_RUN || -z $SCHEDULED_RUN || -z $CRON_SCHEDULE ]]; then
    echo "api-conformance: could not seed the agent" >&2
    exit 1
fi
echo "api-conformance: seeded runs $REPORTED_RUN (succeeded), $ABORTED_RUN (aborted), $SCHEDULED_RUN (scheduled), schedule $CRON_SCHEDULE" >&2

# Schemathesis config: about half of the generated path ids are seeded ones. The run
# operations get the finished runs (their event streams end at once); DELETE the schedules.
cat > "$TMP/schemathesis.toml" <<EOF
[dictionaries.finished-runs]
values = ["$REPORTED_RUN", "$ABORTED_RUN"]

[dictionaries.schedules]
values = ["$SCHEDULED_RUN", "$CRON_SCHEDULE"]

[[operations]]
include-path-regex = '^/v1/runs/\{id\}'
parameters = { "path.id" = { dictionary = "finished-runs", probability = 0.5 } }

[[operations]]
include-path = "/v1/schedules/{id}"
parameters = { "path.id" = { dictionary = "schedules", probability = 0.5 } }
EOF

ARGS=(
    --config-file "$TMP/schemathesis.toml"
    run "$SPEC"
    --url "$BASE"
    --header "Authorization: Bearer $TOKEN"
    --checks "$CHECKS"
    --max-examples "$MAX_EXAMPLES"
    --request-timeout 10
    --workers 1
    --generation-database none
    --no-color
)
if [[ -n $MAX_TIME ]]; then ARGS+=(--max-time "$MAX_TIME"); fi
if [[ -n ${API_SEED:-} ]]; then ARGS+=(--seed "$API_SEED"); fi

# Schemathesis keeps a crash cache in its working directory: give it the temp dir.
cd "$TMP"
# In the background with `wait`, so that INT or TERM reach the traps at once.
timeout --signal=TERM --kill-after=10 "$TIMEOUT" "$ST" "${ARGS[@]}" &
ST_PID=$!
set +e
wait "$ST_PID"
RESULT=$?
ST_PID=
if [[ $RESULT -eq 124 ]]; then echo "api-conformance: schemathesis did not finish within $TIMEOUT s" >&2; fi
set -e

# The agent must have survived the run.
if ! kill -0 "$AGENT_PID" 2>/dev/null; then
    echo "api-conformance: the agent died during the run" >&2
    RESULT=1
fi
if [[ $RESULT -eq 0 ]]; then
    echo "api-conformance: passed" >&2
else
    echo "api-conformance: FAILED (schemathesis exit $RESULT)" >&2
fi
exit "$RESULT"
