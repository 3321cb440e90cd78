#!/usr/bin/python3
"""The ingest benchmark's PostgreSQL: a throwaway cluster on 127.0.0.1
(test/support/pg_server.py), durable this time (fsync and full page
writes on, synchronous_commit on as gitopsd asks), with
pg_stat_statements loaded so that the run can say where the time goes.

  pg.py start DIR DB...    starts it, creates the databases (each with
                           pg_stat_statements), writes DIR/pg.env
                           (PG_PORT, PG_BIN, PG_PID) and DIR/DB.dsn, and
                           runs until SIGTERM, then stops and removes it
  pg.py reset DSN          resets the statement and WAL statistics
  pg.py top DSN            statement statistics since the last reset
                           (pg_stat_statements) and WAL writes and syncs
  pg.py cpu DIR            CPU seconds (user + system) of the server's
                           processes so far
"""
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "test", "support"))
import pg_server  # noqa: E402

OPTIONS = ("-c fsync=on -c full_page_writes=on -c synchronous_commit=on "
           "-c shared_preload_libraries=pg_stat_statements "
           "-c pg_stat_statements.track_utility=on -c track_wal_io_timing=on")


def psql(dsn, sql):
    r = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t",
                        "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("psql: " + r.stderr)
    return r.stdout


def start(out, dbs):
    pg = pg_server.PgServer(OPTIONS)
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    signal.signal(signal.SIGINT, lambda *a: stop.append(1))
    try:
        pg.start()
        for db in dbs:
            dsn = pg.createdb(db)
            psql(dsn, "CREATE EXTENSION pg_stat_statements")
            with open(os.path.join(out, db + ".dsn"), "w") as f:
                f.write(dsn + "\n")
        with open(os.path.join(pg.data, "postmaster.pid")) as f:
            pid = int(f.readline())
        with open(os.path.join(out, "pg.env.tmp"), "w") as f:
            f.write("PG_PORT=%d\nPG_PID=%d\nPG_DATA=%s\n" % (
                pg.port, pid, pg.data))
        os.rename(os.path.join(out, "pg.env.tmp"),
                  os.path.join(out, "pg.env"))
        while not stop:
            time.sleep(0.2)
    finally:
        pg.stop()


def top(dsn):
    """The statements that took the server's time, and the commits'."""
    rows = psql(dsn, """
        SELECT calls, round(total_exec_time::numeric, 1),
               round(mean_exec_time::numeric, 3),
               regexp_replace(left(query, 70), '\\s+', ' ', 'g')
        FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database
                      WHERE datname = current_database())
        ORDER BY total_exec_time DESC LIMIT 6""")
    print("  %8s %10s %9s  %s" % ("calls", "total_ms", "mean_ms",
                                  "statement"))
    for line in rows.splitlines():
        calls, total, mean, q = line.split("\t", 3)
        print("  %8s %10s %9s  %s" % (calls, total, mean, q))
    calls, total = psql(dsn, """
        SELECT sum(calls), round(sum(total_exec_time)::numeric, 1)
        FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database
                      WHERE datname = current_database())""").split()
    print("  all statements (each a round trip): %s calls, %s ms in the"
          " server" % (calls, total))
    wal = psql(dsn, "SELECT wal_records, wal_bytes, wal_sync,"
               " round(wal_sync_time::numeric, 1) FROM pg_stat_wal")
    print("  WAL: records, bytes, syncs, sync ms: " +
          wal.strip().replace("\t", ", "))


def reset(dsn):
    psql(dsn, "SELECT pg_stat_statements_reset(); "
         "SELECT pg_stat_reset_shared('wal')")


def cpu(data):
    with open(os.path.join(data, "postmaster.pid")) as f:
        root = int(f.readline())
    hz = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # st[1] is the parent, st[11] and st[12] utime and stime.
        if int(pid) == root or int(st[1]) == root:
            total += int(st[11]) + int(st[12])
    print("%.2f" % (total / hz))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "start":
        start(sys.argv[2], sys.argv[3:])
    elif cmd == "reset":
        reset(sys.argv[2])
    elif cmd == "top":
        top(sys.argv[2])
    elif cmd == "cpu":
        cpu(sys.argv[2])
    else:
        sys.exit(__doc__)
