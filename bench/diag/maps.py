# RSS breakdown of a process by mapping kind: python3 maps.py PID
import sys, re

pid = sys.argv[1]
cur = None
out = {"heap": 0, "anon": 0, "file": 0, "stack": 0, "other": 0}
anon_regions = []
for line in open(f"/proc/{pid}/smaps"):
    m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$", line)
    if m:
        name = m.group(5).strip()
        size = (int(m.group(2), 16) - int(m.group(1), 16)) // 1024
        cur = (
            "heap"
            if name == "[heap]"
            else "stack"
            if name.startswith("[stack")
            else "anon"
            if name == ""
            else "file"
            if name.startswith("/")
            else "other"
        )
        cursize = size
        continue
    if line.startswith("Rss:") and cur:
        kb = int(line.split()[1])
        out[cur] += kb
        if cur == "anon" and kb > 1024:
            anon_regions.append((cursize, kb))
print(
    " ".join(f"{k}={v / 1024:.1f}M" for k, v in out.items()),
    "big-anon:",
    sorted(anon_regions, reverse=True)[:12],
)
