"""Where the time goes, per process, while the pipeline benchmark runs a load.

- Each service process: `py-spy record` samples its Python stacks (the running greenlet's,
  which under eventlet is the main thread's) for the length of the load, idle time left
  out; the report gives the functions most often on CPU, by their own samples and by
  samples under them (Amends' own code only, for the latter).
- PostgreSQL: `pg_stat_statements`, reset before the load, gives the statements FerretDB
  sent, by total execution time. (The bootstrap loads the extension; without it this part
  says so and is left out.)
"""
import collections
import os
import shutil
import subprocess
import tempfile

from tests.support import ferretdb_postgresql_url

PY_SPY = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                      ".venv", "bin", "py-spy")
OURS = ("services/", "shared/")


class Profiles:
    def __init__(self, pids, seconds, rate=50):
        self.pids, self.seconds, self.rate = pids, seconds, rate
        self.dir = tempfile.mkdtemp(prefix="amends-profiles-")
        self.spies = {}

    def start(self):
        _statements("SELECT pg_stat_statements_reset()")
        for label, pid in self.pids.items():
            out = os.path.join(self.dir, f"{label}.txt")
            self.spies[label] = (out, subprocess.Popen(
                [PY_SPY, "record", "--pid", str(pid), "--duration", str(int(self.seconds)), "--rate", str(self.rate),
                 "--format", "raw", "--output", out, "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def report(self, top=8):
        lines = []
        for label, (out, spy) in self.spies.items():
            try:
                spy.wait(timeout=self.seconds + 60)
            except subprocess.TimeoutExpired:
                spy.kill()
            stacks = _read(out)
            total = sum(stacks.values())
            lines.append(f"\n{label}: {total} samples on CPU at {self.rate}/s")
            if not total:
                continue
            own, under = collections.Counter(), collections.Counter()
            for stack, count in stacks.items():
                frames = stack.split(";")
                own[_short(frames[-1])] += count
                for frame in set(frames):
                    if any(part in frame for part in OURS):
                        under[_short(frame)] += count
            lines.append("  most on CPU (own samples): " + "; ".join(
                f"{name} {count * 100 / total:.0f}%" for name, count in own.most_common(top)))
            lines.append("  Amends code, with what it calls: " + "; ".join(
                f"{name} {count * 100 / total:.0f}%" for name, count in under.most_common(top)))
        rows = _statements("SELECT calls, total_exec_time, mean_exec_time, left(regexp_replace(query, '\\s+', ' ', "
                           "'g'), 110) FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT %d" % top)
        if rows is None:
            lines.append("\npostgres: pg_stat_statements is not loaded (the bootstrap's server loads it)")
        else:
            lines.append("\npostgres, statements by total time (calls, total ms, mean ms, statement):")
            lines.extend(f"  {calls:>7} {total:>9.0f} {mean:>7.2f}  {query}" for calls, total, mean, query in rows)
        shutil.rmtree(self.dir, ignore_errors=True)
        return "\n".join(lines)


def _read(path):
    stacks = collections.Counter()
    try:
        with open(path) as handle:
            for line in handle:
                stack, _, count = line.rstrip("\n").rpartition(" ")
                if stack and count.isdigit():
                    stacks[stack] += int(count)
    except OSError:
        pass
    return stacks


def _short(frame):
    # "function (path/to/module.py:line)" -> "function (module.py)"
    name, _, where = frame.partition(" (")
    path = where.split(":")[0]
    return f"{name} ({'/'.join(path.split('/')[-2:])})" if path else name


def _statements(sql):
    url = ferretdb_postgresql_url()
    if not url:
        return None
    try:
        import psycopg
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except Exception:  # no extension, or no such server: the report says so
        return None
