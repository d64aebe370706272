#!/usr/bin/python3
"""Checks that every folder of src/ includes only the layers below it.

    tests/check_layers.py [SRC_DIR]      (default: the src/ next to tests/)

Reads every `#include "folder/..."` of every .c and .h file under SRC_DIR
and checks it against LAYERS below (docs/decisions/0013-layers.md says
why the order is this one).  Prints one line per violation, file:line
first, then one result line per folder, and ends with exactly
"N passed, N failed": one check per folder of src/, passed when none of
its files includes a folder it may not.  Exit status 1 if any failed.

A folder that is in no layer fails too: a new folder must be given its
place here when it is added.
"""

import os
import re
import sys

# Low to high.  A folder may include its own headers and those of every
# folder on a lower line, never one on its own line or above: folders on
# one line are independent of each other.
LAYERS = [
    ["common"],  # wire buffer, arena, CRC, logging, error codes, counters
    ["storage", "proto"],  # the partition log; generated codecs
    ["filter", "timer"],  # filter expressions (on batches); the timer store
    # The network layer, and the client commands beside it: cli talks to a
    # broker only over the wire, so it includes nothing of the broker.
    ["net", "cli"],
    ["broker"],  # settings, topic registry, partitions, group commit
    # The follower's fetchers: they call the partitions' follower doors.
    ["replica"],
    # The group coordinator; held-back records; cluster membership and the
    # controller in ZooKeeper (which will drive the partitions below it).
    ["group", "delivery", "cluster"],
    ["kafka"],  # the Kafka APIs and their dispatch table
    ["admin"],  # the HTTP admin API (reads kafka's API table for /metrics)
    ["app"],  # runnel broker: the composition, includes everything
    ["main"],  # src/main.c, the binary's entry point
]

# Files directly in src/ belong to this pseudo-folder.
ROOT = "main"

INCLUDE = re.compile(r'^\s*#\s*include\s*(?:"([^"]+)"|<([^>]+)>)')


def rank_table():
    ranks = {}
    for i, line in enumerate(LAYERS):
        for folder in line:
            ranks[folder] = i
    return ranks


def sources(src):
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith((".c", ".h")):
                yield os.path.join(dirpath, name)


def folder_of(src, path):
    rel = os.path.relpath(path, src).split(os.sep)
    return ROOT if len(rel) == 1 else rel[0]


def check(src):
    ranks = rank_table()
    shown = os.path.dirname(os.path.abspath(src))
    violations = {}  # folder -> [message]
    folders = set()
    for path in sources(src):
        folder = folder_of(src, path)
        folders.add(folder)
        bad = violations.setdefault(folder, [])
        where = os.path.relpath(path, shown)
        if folder not in ranks:
            bad.append(f"{where}:1: folder '{folder}' is in no layer (add it to LAYERS in "
                       f"tests/check_layers.py)")
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, text in enumerate(f, 1):
                m = INCLUDE.match(text)
                if not m:
                    continue
                inc = m.group(1)
                if inc is None:
                    # <folder/x.h> finds src/ too (-Isrc); <net/if.h> is the system's
                    inc = m.group(2)
                    if not os.path.isfile(os.path.join(src, inc)):
                        continue
                if inc.startswith("../") or "/../" in inc:
                    bad.append(f"{where}:{lineno}: relative include \"{inc}\" (name the folder)")
                    continue
                if "/" not in inc:
                    continue  # a header of the same folder
                target = inc.split("/", 1)[0]
                if target == folder:
                    continue
                if target not in ranks:
                    # "sub/x.h" relative to the including file's folder
                    if os.path.exists(os.path.join(os.path.dirname(path), inc)):
                        continue
                    bad.append(f"{where}:{lineno}: {folder} includes \"{inc}\", from a folder "
                               f"in no layer")
                    continue
                if ranks[target] >= ranks[folder]:
                    how = "beside" if ranks[target] == ranks[folder] else "above"
                    bad.append(f"{where}:{lineno}: {folder} includes \"{inc}\": {target} is "
                               f"{how} {folder}")
    return folders, violations


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    src = argv[1] if len(argv) > 1 else os.path.join(here, "..", "src")
    if not os.path.isdir(src):
        print(f"check_layers: no directory {src}", file=sys.stderr)
        return 2
    folders, violations = check(src)
    for folder in sorted(folders):
        for message in violations.get(folder, []):
            print(message)
    passed = failed = 0
    order = " < ".join(", ".join(line) for line in LAYERS)
    print(f"layers, low to high: {order}")
    for folder in sorted(folders):
        n = len(violations.get(folder, []))
        if n:
            failed += 1
            print(f"not ok {folder}: {n} include{'s' if n > 1 else ''} out of order")
        else:
            passed += 1
            print(f"ok {folder}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
