# tracemalloc snapshot diff: python snapdiff.py A.pickle B.pickle [N]
import sys, tracemalloc

a, b = sys.argv[1], sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 25
key = sys.argv[4] if len(sys.argv) > 4 else "lineno"
s1 = tracemalloc.Snapshot.load(a)
s2 = tracemalloc.Snapshot.load(b)
filt = [
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "<frozen importlib._bootstrap>"),
]
s1 = s1.filter_traces(filt)
s2 = s2.filter_traces(filt)
st = s2.compare_to(s1, key)
tot = sum(x.size_diff for x in st)
print(f"total diff {tot / 1024:.1f} KiB")
for x in st[:n]:
    print(
        f"{x.size_diff / 1024:9.1f} KiB {x.count_diff:+7d}  {x.traceback.format()[-1].strip() if key != 'traceback' else ''} {x.traceback[0].filename}:{x.traceback[0].lineno}"
    )
