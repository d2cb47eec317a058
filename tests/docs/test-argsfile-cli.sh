#!/bin/bash
# -args FILE through the real vfio binary: the file's flags stand in place of
# -args (comments and blank lines skipped, flags after -args still override),
# and a bad line is refused naming FILE:LINE before anything else happens.
set -u
: "${VFIO:?VFIO is the vfio binary}" "${MKHOST:?}"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
python3 "$MKHOST" --preset desktop "$tmp/host" >/dev/null || exit 1
export VFIO_HOST_ROOT=$tmp/host NO_COLOR=1
failed=0
fail() { echo "FAIL: $*"; failed=1; }

cat >"$tmp/web.args" <<'ARGS'
# a guest kept in a file, as vfio@.service reads it
   # indented comment

-name web
-memory 2G
-accel tcg
-nonet
ARGS

# args-file-flags-are-used: the plan is the one the file describes.
out=$("$VFIO" -args "$tmp/web.args" -json 2>"$tmp/err"); rc=$?
[ $rc -le 1 ] || fail "dry run with -args exited $rc: $(cat "$tmp/err")"
grep -q '"web,debug-threads=on"' <<<"$out" || fail "the plan does not carry -name web from the file: $out"
grep -A1 -- '"-accel"' <<<"$out" | grep -q '"tcg"' || fail "the plan does not use -accel tcg from the file"

# later-flags-override-the-file: -name after -args wins.
out=$("$VFIO" -args "$tmp/web.args" -name later -json 2>/dev/null)
grep -q '"later,debug-threads=on"' <<<"$out" || fail "-name after -args did not override the file's"

# bad-line-names-file-and-line: line 4 is not a flag; nothing else runs.
printf '# ok\n-memory 2G\n\nmemory 4G\n-nonet\n' >"$tmp/bad.args"
"$VFIO" -args "$tmp/bad.args" -json >"$tmp/out" 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "a bad args file exited $rc, want 2 (usage)"
grep -q -- "$tmp/bad.args:4:" "$tmp/err" || fail "the error does not name $tmp/bad.args:4: $(cat "$tmp/err")"
[ -s "$tmp/out" ] && fail "a bad args file still printed a plan"

# missing-file-is-named
"$VFIO" -args "$tmp/none.args" >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] || fail "a missing args file exited $rc, want 2"
grep -q -- "$tmp/none.args" "$tmp/err" || fail "the error does not name the missing file: $(cat "$tmp/err")"

# -help lists -args
"$VFIO" -help | grep -q -- '^  -args FILE' || fail "-help does not list -args FILE"

[ $failed -eq 0 ] && echo "ok: -args files through the binary"
exit $failed
