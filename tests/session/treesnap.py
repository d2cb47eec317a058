#!/usr/bin/env python3
"""Prints one line per path under DIR: type, mode, owner, and the content
hash or link target, so two runs can be compared byte for byte. The drvcore
mock's private state (DIR/.drvcore: what the kernel keeps in memory) is left
out, and so is the cache of what the QEMU binary offers
(DIR/var/cache/vfio, src/hostprep/qemucaps.c): the dry run and -run
keep it like a package cache, it is no host change to give back.

    treesnap.py DIR
"""
import hashlib
import os
import stat
import sys


def main():
    root = sys.argv[1]
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == root and ".drvcore" in dirnames:
            dirnames.remove(".drvcore")
        if os.path.relpath(dirpath, root) == os.path.join("var", "cache") and "vfio" in dirnames:
            dirnames.remove("vfio")
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            rel = os.path.relpath(full, root)
            kind = stat.S_IFMT(st.st_mode)
            line = "%s %o %d:%d" % (rel, st.st_mode, st.st_uid, st.st_gid)
            if kind == stat.S_IFLNK:
                line += " -> " + os.readlink(full)
            elif kind == stat.S_IFREG:
                with open(full, "rb") as f:
                    line += " " + hashlib.sha256(f.read()).hexdigest()
            out.append(line)
    sys.stdout.write("\n".join(out) + "\n")


main()
