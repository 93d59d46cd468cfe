#!/usr/bin/env bash
# Starts versitygw (the S3 server the tests use) on loopback, creates the test
# bucket and prints the environment the storage/s3 tests read:
#
#   eval "$(.ci/s3.sh)"            # dirs under /tmp/packreg-ci/s3, port 7070
#   .ci/s3.sh /some/dir            # other state dir; PACKREG_S3_PORT for another port
#   .ci/s3.sh stop [/some/dir]     # stop the server this script started
#
# Idempotent: a healthy server already on the port is reused, and an existing
# bucket is kept. Only the env lines go to stdout, so eval is safe; progress
# goes to stderr.
set -euo pipefail

if [[ ${1:-} == stop ]]; then
  DIR=${2:-/tmp/packreg-ci/s3}
  if [[ -f $DIR/vgw.pid ]]; then
    pid=$(cat "$DIR/vgw.pid")
    # Only kill the pid we recorded, and only if it is still versitygw.
    if [[ $(cat /proc/"$pid"/comm 2>/dev/null) == versitygw ]]; then kill "$pid"; fi
    rm -f "$DIR/vgw.pid"
  fi
  exit 0
fi

DIR=${1:-/tmp/packreg-ci/s3}
PORT=${PACKREG_S3_PORT:-7070}
ACCESS=packreg
SECRET=packregsecret
REGION=us-east-1
BUCKET=packreg-test
URL=http://127.0.0.1:$PORT
VGW=$(go env GOPATH)/bin/versitygw
[[ -x $VGW ]] || VGW=$(command -v versitygw || true)

mkdir -p "$DIR"
log() { echo "s3.sh: $*" >&2; }
healthy() { [[ $(curl -s -m 2 -o /dev/null -w '%{http_code}' "$URL/health") == 200 ]]; }

if healthy; then
  log "versitygw already answering on $URL, reusing it"
else
  [[ -n $VGW && -x $VGW ]] || { log "versitygw not installed: run .ci/tools.sh"; exit 1; }
  mkdir -p "$DIR/data" "$DIR/iam"
  # --keep-alive: without it every SDK request pays a new TCP connection.
  # setsid: the server outlives the shell that started it (CI steps, eval).
  ROOT_ACCESS_KEY=$ACCESS ROOT_SECRET_KEY=$SECRET setsid nohup "$VGW" \
    --port "127.0.0.1:$PORT" --iam-dir "$DIR/iam" --health /health --keep-alive --quiet \
    posix "$DIR/data" >"$DIR/vgw.log" 2>&1 </dev/null &
  echo $! >"$DIR/vgw.pid"
  for _ in $(seq 1 100); do
    healthy && break
    if ! kill -0 "$(cat "$DIR/vgw.pid")" 2>/dev/null; then
      log "versitygw exited; log follows"; cat "$DIR/vgw.log" >&2; exit 1
    fi
    sleep 0.2
  done
  healthy || { log "versitygw not healthy after 20s; see $DIR/vgw.log"; exit 1; }
  log "versitygw started on $URL (pid $(cat "$DIR/vgw.pid"), data in $DIR/data)"
fi

# Create the bucket. curl does not add x-amz-content-sha256, which the server
# requires; this is the sha256 of the empty body.
EMPTY=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
code=$(curl -s -m 10 -o "$DIR/mb.out" -w '%{http_code}' -X PUT \
  --aws-sigv4 "aws:amz:$REGION:s3" --user "$ACCESS:$SECRET" \
  -H "x-amz-content-sha256: $EMPTY" "$URL/$BUCKET" || true)
case $code in
  200) log "bucket $BUCKET created" ;;
  409) log "bucket $BUCKET already there" ;; # BucketAlreadyOwnedByYou
  *) log "create bucket $BUCKET: HTTP $code"; cat "$DIR/mb.out" >&2 2>/dev/null || true; exit 1 ;;
esac

echo "export AWS_ACCESS_KEY_ID=$ACCESS AWS_SECRET_ACCESS_KEY=$SECRET AWS_REGION=$REGION PACKREG_TEST_S3='s3://$BUCKET/ci?endpoint=$URL&region=$REGION'"
