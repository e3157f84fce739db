# diagnostic only (not part of Sluice): tracemalloc snapshots on demand
import os, threading, time

if os.environ.get("PERF2_TRACEMALLOC"):
    import tracemalloc, gc

    tracemalloc.start(int(os.environ.get("PERF2_TRACEMALLOC")))
    out = os.environ["PERF2_OUT"]

    def rss():
        with open("/proc/self/status") as f:
            for l in f:
                if l.startswith("VmRSS"):
                    return int(l.split()[1])

    def loop():
        n = 0
        while True:
            time.sleep(0.2)
            trig = os.path.join(out, "snap.trigger")
            if os.path.exists(trig):
                label = open(trig).read().strip()
                os.remove(trig)
                snap = tracemalloc.take_snapshot()
                snap.dump(os.path.join(out, f"snap-{label}.pickle"))
                cur, peak = tracemalloc.get_traced_memory()
                with open(os.path.join(out, "mem.log"), "a") as f:
                    f.write(
                        f"{label} rss_kib={rss()} traced={cur} peak={peak} gc={gc.get_count()} objs={len(gc.get_objects())}\n"
                    )
                open(os.path.join(out, f"snap-{label}.done"), "w").close()

    threading.Thread(target=loop, daemon=True).start()
