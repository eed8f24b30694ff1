#!/usr/bin/env bash
# Printed by `make run` before coffred --dev starts in the foreground: the commands to try.
set -euo pipefail
bin="$1"
state="$2"
# A valid test INS: NIR 1 84 05 63 123 456, key 97 − (NIR mod 97).
ins="184056312345658"
cat <<BANNER

  coffred --dev is starting in the foreground (state in ${state}).
  Stop it with Ctrl-C. In another terminal, try:

    export COFFRE_SOCKET="${state}/coffred.sock"
    export PATH="${bin}:\$PATH"

    coffre --as patient:${ins} dossier create
    coffre --as patient:${ins} dossier show
    echo "Hémoglobine 14,2 g/dL" > bilan.txt
    coffre --as patient:${ins} doc put bilan.txt --class BIOLOGIE --title "Bilan sanguin" --date 2026-11-02
    coffre --as patient:${ins} doc list
    coffre --as patient:${ins} doc get <ID printed by doc put>
    coffre --as patient:${ins} --json doc show <ID>
    coffre --as patient:${ins} access grant 10003123451
    coffre --as pro:10003123451:10 --patient ${ins} doc list
    coffre --as patient:${ins} trace
    coffre --as patient:${ins} notifications
    coffre admin status
    coffre admin verify

BANNER
