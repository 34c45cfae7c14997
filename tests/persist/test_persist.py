# SPDX-License-Identifier: Apache-2.0
"""Registry persistence across real processes and real files.

Each test drives cm_persist_fixture processes (CM_PERSIST_FIXTURE) over stdin
against a metrics file in a fresh temporary directory: clean restarts,
SIGKILL in the middle of flushing, the owner lock and its takeover, foreign
and damaged files (which must stay byte for byte untouched), changed
histogram buckets, and `cachemeter dump --db` (CM_CACHEMETER). No sleeps:
waits are bounded polls. CTest runs one group per entry (-k restart, crash,
owner, corrupt, layout, dump):
  CM_PERSIST_FIXTURE=<fixture> CM_CACHEMETER=<cachemeter> \\
    /usr/bin/python3 -m pytest -q -p no:cacheprovider tests/persist/test_persist.py
"""
import hashlib
import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import threading
import time

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

FIXTURE = os.environ.get("CM_PERSIST_FIXTURE")
CACHEMETER = os.environ.get("CM_CACHEMETER")
TIMEOUT = 60  # seconds for any one answer: generous for sanitizer builds

pytestmark = pytest.mark.skipif(not FIXTURE, reason="CM_PERSIST_FIXTURE is not set")


class Fixture:
    """One cm_persist_fixture process; cmd() sends a line, returns the answer."""

    def __init__(self, options=None):
        args = [FIXTURE] + (["--options", options] if options else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.pid = self.proc.pid
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def line(self):
        line = self.lines.get(timeout=TIMEOUT)
        assert line is not None, "the fixture exited (status %r)" % self.proc.poll()
        return line

    def send(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def cmd(self, text, ok=True):
        """The answer line ("OK ..." / "ERR ..."); with ok, asserts OK and
        returns its words after OK. Lines before it are in self.output."""
        self.send(text)
        self.output = []
        while True:
            line = self.line()
            if line.startswith("OK") or line.startswith("ERR"):
                break
            self.output.append(line)
        if ok:
            assert line.startswith("OK"), "%s -> %s" % (text, line)
            return line.split()[1:]
        return line

    def value(self, *args):
        return [float(x) for x in self.cmd(" ".join(args))]

    def render(self, fmt="openmetrics"):
        self.cmd("render " + fmt)
        return "\n".join(self.output) + "\n"

    def quit(self):
        self.send("quit")
        assert self.line() == "OK"
        assert self.proc.wait(timeout=TIMEOUT) == 0

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=TIMEOUT)
        assert self.proc.returncode == -signal.SIGKILL

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)


@pytest.fixture
def procs():
    started = []

    def start(options=None):
        f = Fixture(options)
        started.append(f)
        return f

    yield start
    for f in started:
        f.close()


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "metrics.db")


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def created_of(openmetrics, sample):
    """The _created value of a sample written as `name{labels}`."""
    m = re.search("^" + re.escape(sample) + r" (\S+)$", openmetrics, re.M)
    assert m, "no %s in\n%s" % (sample, openmetrics)
    return m.group(1)


def rows(path, sql, args=()):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def poll(what, fn, seconds=TIMEOUT):
    deadline = time.monotonic() + seconds
    while True:
        got = fn()
        if got:
            return got
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.01)


# ---- restart -------------------------------------------------------------------


def record_known(p):
    assert p.value("counter req a 3") == [3]
    assert p.value("counter req b 4.25") == [4.25]
    for v in ("0.05", "0.5", "5"):
        p.cmd("histogram lat 0.1,1 x " + v)
    assert p.value("histogram lat 0.1,1 y 0.5") == [1, 0.5]


def test_restart_keeps_values_and_created(procs, db):
    p1 = procs()
    p1.cmd("persist %s 0" % db)
    record_known(p1)
    om1 = p1.render()
    p1.quit()  # the last flush happens in cm_registry_free

    p2 = procs()
    p2.cmd("persist %s 0" % db)  # families registered after persist
    assert p2.value("counter req a 0") == [3]
    assert p2.value("counter req b 0") == [4.25]
    assert p2.value("histogram lat 0.1,1 x none") == [3, 5.55]
    assert p2.value("histogram lat 0.1,1 y none") == [1, 0.5]
    om2 = p2.render()
    for sample in ('req_created{l="a"}', 'req_created{l="b"}', 'lat_created{l="x"}', 'lat_created{l="y"}'):
        assert created_of(om2, sample) == created_of(om1, sample)
    assert 'lat_bucket{l="x",le="0.1"} 1' in om2 and 'lat_bucket{l="x",le="1.0"} 2' in om2
    p2.cmd("counter req a 2")
    p2.cmd("histogram lat 0.1,1 x 0.01")
    p2.quit()

    p3 = procs()
    # Registered before persist this time: the saved values add to the series.
    p3.cmd("counter req a 0")
    p3.cmd("persist %s 0" % db)
    assert p3.value("counter req a 0") == [5]
    assert p3.value("counter req b 0") == [4.25]
    assert p3.value("histogram lat 0.1,1 x none") == [4, 5.56]
    p3.quit()


def test_restart_before_persist_increments_are_kept(procs, db):
    p1 = procs()
    p1.cmd("persist %s 0" % db)
    p1.cmd("counter jobs - 10")
    p1.quit()
    p2 = procs()
    p2.cmd("counter jobs - 1")  # counted before the file is opened
    p2.cmd("persist %s 0" % db)
    assert p2.value("counter jobs - 0") == [11]
    p2.quit()


def test_restart_reset_is_persisted(procs, db):
    p1 = procs()
    p1.cmd("persist %s 0" % db)
    p1.cmd("counter req a 7")
    p1.cmd("flush")
    p1.cmd("reset")
    p1.cmd("counter req a 2")
    p1.quit()
    assert rows(db, "SELECT value FROM cm_series s JOIN cm_family f ON f.id = s.family_id "
                    "WHERE f.name = 'req_total'") == [(2.0,)]
    p2 = procs()
    p2.cmd("persist %s 0" % db)
    assert p2.value("counter req a 0") == [2]
    p2.quit()


def test_restart_unregistered_family_stays_in_file(procs, db):
    p1 = procs()
    p1.cmd("persist %s 0" % db)
    p1.cmd("counter kept a 5")
    p1.cmd("counter other a 1")
    p1.quit()
    before = rows(db, "SELECT s.* FROM cm_series s JOIN cm_family f ON f.id = s.family_id WHERE f.name = 'kept_total'")
    p2 = procs()
    p2.cmd("persist %s 0" % db)
    p2.cmd("counter other a 1")  # "kept" is never registered here
    p2.quit()
    after = rows(db, "SELECT s.* FROM cm_series s JOIN cm_family f ON f.id = s.family_id WHERE f.name = 'kept_total'")
    assert after == before and len(after) == 1
    p3 = procs()
    p3.cmd("persist %s 0" % db)
    assert p3.value("counter kept a 0") == [5]
    assert p3.value("counter other a 0") == [2]
    p3.quit()


@pytest.mark.parametrize("persist_gauges", [False, True])
def test_restart_gauges_only_with_option(procs, db, persist_gauges):
    options = "persist_gauges=true" if persist_gauges else None
    p1 = procs(options)
    p1.cmd("persist %s 0" % db)
    p1.cmd("gauge temp 21.5")
    p1.cmd("counter c - 1")
    p1.quit()
    saved = rows(db, "SELECT count(*) FROM cm_family WHERE kind = 'gauge'")[0][0]
    assert saved == (1 if persist_gauges else 0)
    p2 = procs(options)
    p2.cmd("persist %s 0" % db)
    assert p2.value("gauge temp none") == [21.5 if persist_gauges else 0]
    p2.quit()


def test_restart_background_flusher_then_sigkill(procs, db):
    p1 = procs()
    p1.cmd("persist %s 10" % db)
    p1.cmd("counter bg - 42")
    # Bounded poll of the file (read-only, while p1 owns it) until a background
    # flush wrote the value.
    poll("a background flush", lambda: rows(db, "SELECT value FROM cm_series WHERE value = 42"))
    p1.send("crash")
    p1.proc.wait(timeout=TIMEOUT)
    assert p1.proc.returncode == -signal.SIGKILL
    p2 = procs()
    p2.cmd("persist %s 0" % db)
    assert p2.value("counter bg - 0") == [42]
    p2.quit()


# ---- crash ----------------------------------------------------------------------


@pytest.mark.parametrize("after_flushes", [1, 50, 400])
def test_crash_sigkill_while_flushing_keeps_a_completed_flush(procs, db, after_flushes):
    p1 = procs()
    p1.cmd("persist %s 0" % db)
    p1.send("flushloop 0")
    printed = []
    while len(printed) < after_flushes:
        printed.append([float(x) for x in p1.line().split()[1:]])
    p1.proc.kill()  # in the middle of some flush, most likely
    p1.proc.wait(timeout=TIMEOUT)
    while True:  # what it printed before dying
        line = p1.lines.get(timeout=TIMEOUT)
        if line is None:
            break
        if line.startswith("FLUSHED"):
            printed.append([float(x) for x in line.split()[1:]])
    # Each completed flush saw more than the one before.
    assert all(b[0] == a[0] + 1 and b[1] == a[1] + 1 for a, b in zip(printed, printed[1:]))
    last = printed[-1][0]

    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    con.close()

    p2 = procs()
    p2.cmd("persist %s 0" % db)
    counter = p2.value("counter loop - 0")[0]
    count = p2.value("histogram loop_seconds - - none")[0]
    # The last completed flush, or the one in progress if its commit landed;
    # counter and histogram from the same transaction.
    assert last <= counter <= last + 1, (last, counter)
    assert count == counter
    p2.quit()


# ---- owner ----------------------------------------------------------------------


def test_owner_second_process_gets_estate_with_pid(procs, db):
    p1 = procs()
    p1.cmd("persist %s 0" % db)
    p1.cmd("counter c - 1")
    p1.cmd("flush")
    p2 = procs()
    answer = p2.cmd("persist %s 0" % db, ok=False)
    assert answer.startswith("ERR CM_ESTATE"), answer
    assert "process %d" % p1.pid in answer, answer
    # The refused process did not write: flush has nothing to flush into.
    assert p2.cmd("flush", ok=False).startswith("ERR CM_ESTATE")
    p2.quit()
    p1.cmd("counter c - 1")
    p1.quit()
    assert rows(db, "SELECT value FROM cm_series") == [(2.0,)]


def test_owner_takeover_after_sigkill(procs, db):
    p1 = procs()
    p1.cmd("persist %s 0" % db)
    p1.cmd("counter c - 5")
    p1.cmd("flush")
    p1.cmd("counter c - 1")  # never flushed
    p1.kill()
    p2 = procs()
    p2.cmd("persist %s 0" % db)
    assert p2.value("counter c - 0") == [5]
    with open(db + "-lock") as f:
        assert f.read().strip() == str(p2.pid)
    assert rows(db, "SELECT pid FROM cm_owner") == [(p2.pid,)]
    p3 = procs()
    assert "process %d" % p2.pid in p3.cmd("persist %s 0" % db, ok=False)
    p3.quit()
    p2.quit()


# ---- corrupt / foreign / unwritable ------------------------------------------------


def assert_refused_untouched(procs, path, status="CM_ECORRUPT", own_wal=True):
    directory = os.path.dirname(path)
    before_files = sorted(os.listdir(directory))
    before = sha256(path)
    p = procs()
    answer = p.cmd("persist %s 0" % path, ok=False)
    assert answer.startswith("ERR " + status), answer
    assert "untouched" in answer
    p.quit()
    assert sha256(path) == before
    # No lock file, nothing new beside a foreign file. (Reading one of our
    # own WAL files read-only lets SQLite add its empty -wal/-shm companions.)
    def files(names):
        return [n for n in sorted(names) if not (own_wal and n.endswith(("-wal", "-shm")))]

    assert files(os.listdir(directory)) == files(before_files)
    return answer


def test_corrupt_foreign_sqlite_database(procs, db):
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO users(name) VALUES ('ada')")
    con.commit()
    con.close()
    assert "not a cachemeter metrics file" in assert_refused_untouched(procs, db, own_wal=False)


def test_corrupt_not_sqlite(procs, db):
    with open(db, "wb") as f:
        f.write(b"this is a text file, not a database\n" * 100)
    assert_refused_untouched(procs, db, own_wal=False)


def test_corrupt_damaged_file(procs, db):
    p1 = procs()
    p1.cmd("persist %s 0" % db)
    for i in range(300):
        p1.cmd("counter c%d some-longer-label-value-%d %d" % (i % 3, i, i))
    p1.quit()
    size = os.path.getsize(db)
    page = 4096
    assert size >= 8 * page
    with open(db, "r+b") as f:  # a whole b-tree page in the middle
        f.seek((size // page // 2) * page)
        f.write(b"\xa5" * page)
    assert "damaged" in assert_refused_untouched(procs, db)


def test_corrupt_newer_schema_version(procs, db):
    p1 = procs()
    p1.cmd("persist %s 0" % db)
    p1.quit()
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    assert "version 99" in assert_refused_untouched(procs, db)


def test_corrupt_unwritable_directory(procs, tmp_path):
    p = procs()
    answer = p.cmd("persist %s 0" % (tmp_path / "missing" / "m.db"), ok=False)
    assert answer.startswith("ERR CM_EUNAVAILABLE") and "No such file or directory" in answer, answer
    (tmp_path / "file").write_text("x")
    answer = p.cmd("persist %s 0" % (tmp_path / "file" / "m.db"), ok=False)
    assert answer.startswith("ERR CM_EUNAVAILABLE") and "Not a directory" in answer, answer
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        answer = p.cmd("persist %s 0" % (ro / "m.db"), ok=False)
        assert answer.startswith("ERR CM_EUNAVAILABLE") and "Permission denied" in answer, answer
    answer = p.cmd("persist %s 0" % tmp_path, ok=False)
    assert answer.startswith("ERR CM_EINVAL") and "not a regular file" in answer, answer
    p.quit()


# ---- layout ---------------------------------------------------------------------


def test_layout_changed_buckets_keep_old_data(procs, db):
    p1 = procs()
    p1.cmd("persist %s 0" % db)
    p1.cmd("histogram lat 0.1,1 x 0.5")
    p1.cmd("histogram lat 0.1,1 x 0.05")
    p1.quit()
    old = rows(db, "SELECT s.buckets, s.sum FROM cm_series s JOIN cm_family f ON f.id = s.family_id "
                   "WHERE f.bounds = '[0.1,1]'")
    assert old == [("[1,1,0]", 0.55)]

    p2 = procs()
    p2.cmd("persist %s 0" % db)
    assert p2.value("histogram lat 0.2,2 x none") == [0, 0]  # starts at zero
    msg = " ".join(p2.cmd("errmsg"))
    assert "lat" in msg and "[0.1,1]" in msg and "stays in the file" in msg, msg
    assert "cachemeter_persist_conflicts_total 1" in p2.render("prometheus")
    p2.cmd("histogram lat 0.2,2 x 1")
    p2.quit()
    assert rows(db, "SELECT s.buckets, s.sum FROM cm_series s JOIN cm_family f ON f.id = s.family_id "
                    "WHERE f.bounds = '[0.1,1]'") == old
    assert rows(db, "SELECT s.buckets FROM cm_series s JOIN cm_family f ON f.id = s.family_id "
                    "WHERE f.bounds = '[0.2,2]'") == [("[0,1,0]",)]

    p3 = procs()  # back to the old buckets: the old data is there
    p3.cmd("persist %s 0" % db)
    assert p3.value("histogram lat 0.1,1 x none") == [2, 0.55]
    p3.quit()


# ---- dump -----------------------------------------------------------------------


def dump(db, fmt):
    if not CACHEMETER:
        pytest.skip("CM_CACHEMETER is not set")
    return subprocess.run([CACHEMETER, "dump", "--db", db, "--format", fmt], capture_output=True, text=True,
                          timeout=TIMEOUT)


def samples(families):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_dump_while_owner_runs(procs, db):
    p1 = procs()
    p1.cmd("persist %s 0" % db)
    record_known(p1)
    p1.cmd('counter quoted a"b\\c 2')
    p1.cmd("flush")
    p1.cmd("counter req a 100")  # not flushed: not in the dump
    om = p1.render()

    out = dump(db, "prometheus")
    assert out.returncode == 0, out.stderr
    got = samples(parse_text(out.stdout))
    assert got[("req_total", (("l", "a"),))] == 3
    assert got[("req_total", (("l", "b"),))] == 4.25
    assert got[("quoted_total", (("l", 'a"b\\c'),))] == 2
    assert got[("lat_bucket", (("l", "x"), ("le", "0.1")))] == 1
    assert got[("lat_bucket", (("l", "x"), ("le", "1.0")))] == 2
    assert got[("lat_bucket", (("l", "x"), ("le", "+Inf")))] == 3
    assert got[("lat_count", (("l", "x"),))] == 3
    assert abs(got[("lat_sum", (("l", "x"),))] - 5.55) < 1e-12

    out = dump(db, "openmetrics")
    assert out.returncode == 0, out.stderr
    got = samples(parse_openmetrics(out.stdout))
    assert got[("lat_count", (("l", "y"),))] == 1
    assert created_of(out.stdout, 'req_created{l="b"}') == created_of(om, 'req_created{l="b"}')

    out = dump(db, "json")
    assert out.returncode == 0, out.stderr
    assert "req_total" in json.dumps(json.loads(out.stdout))
    p1.quit()


def test_dump_refuses_foreign_file(db):
    with open(db, "wb") as f:
        f.write(b"not a database at all" * 50)
    before = sha256(db)
    out = dump(db, "prometheus")
    assert out.returncode == 1 and "CM_ECORRUPT" in out.stderr, out.stderr
    assert sha256(db) == before


# ---- hostile -----------------------------------------------------------------------
# A file that passes application_id, user_version and quick_check but whose
# schema was rewritten: each must be refused with CM_ECORRUPT, within a bounded
# time (HOSTILE_TIMEOUT: a hang fails the test instead of stalling the suite),
# by cm_registry_persist and by `cachemeter dump --db`, the file unchanged.

HOSTILE_TIMEOUT = 30  # seconds; the refusals take milliseconds

# A view that never ends: a recursive CTE counting forever, with the columns
# of cm_series so that every query we run against it would compile.
ENDLESS_SERIES_VIEW = (
    "CREATE VIEW cm_series(family_id, label_values, value, int_part, double_part, sum, count, buckets, "
    "created, updated) AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
    "SELECT 1, '[\"' || i || '\"]', 1, 1, 0, 0, 0, '[]', 0, 0 FROM n")


def hostile_view_replacing_family(con):
    con.execute("ALTER TABLE cm_family RENAME TO real_family")
    con.execute("CREATE VIEW cm_family AS SELECT * FROM real_family")


def hostile_endless_view(con):
    con.execute("DROP TABLE cm_series")
    con.execute(ENDLESS_SERIES_VIEW)


def hostile_trigger(con):
    con.execute("CREATE TRIGGER wipe AFTER INSERT ON cm_series BEGIN DELETE FROM cm_family; END")


def hostile_huge_blob(con):
    # A 100 MB label_values in one row (zeroblob: cheap to write).
    con.execute("INSERT INTO cm_series(family_id, label_values, value, int_part, double_part, created, updated) "
                "SELECT id, zeroblob(100000000), 1, 1, 0, 0, 0 FROM cm_family LIMIT 1")


def hostile_huge_name(con):
    con.execute("UPDATE cm_family SET name = CAST(zeroblob(100000000) AS TEXT) WHERE id = "
                "(SELECT min(id) FROM cm_family)")


def hostile_many_bounds(con):
    # A short value that parses into many items: 200000 bounds in 400 kB.
    con.execute("UPDATE cm_family SET bounds = ? WHERE kind = 'histogram'",
                ("[" + ",".join(["1"] * 200000) + "]",))


def hostile_extra_table(con):
    con.execute("CREATE TABLE extra(x)")


def hostile_extra_index(con):
    con.execute("CREATE INDEX extra_idx ON cm_series(updated)")


def hostile_changed_table_sql(con):
    # Same table names, other definitions (a generated column that calls a
    # function on every read).
    con.execute("ALTER TABLE cm_owner ADD COLUMN note TEXT DEFAULT 'x'")


HOSTILE = [hostile_view_replacing_family, hostile_endless_view, hostile_trigger, hostile_huge_blob,
           hostile_huge_name, hostile_many_bounds, hostile_extra_table, hostile_extra_index, hostile_changed_table_sql]


def make_hostile(procs, db, change):
    p = procs()
    p.cmd("persist %s 0" % db)
    record_known(p)
    p.quit()
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
    con.execute("PRAGMA legacy_alter_table = ON")  # rename without rewriting the view
    change(con)
    con.commit()
    con.close()
    # What makes these hostile: everything the old checks looked at still passes.
    assert rows(db, "PRAGMA application_id") == [(0x434D6574,)]
    assert rows(db, "PRAGMA user_version") == [(1,)]
    assert rows(db, "PRAGMA quick_check") == [("ok",)]


@pytest.fixture
def hostile_db(db):
    """db, removed afterwards: some hostile files are 100 MB."""
    yield db
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)


@pytest.mark.parametrize("change", HOSTILE, ids=[h.__name__[len("hostile_"):] for h in HOSTILE])
def test_hostile_file_refused_by_persist(procs, hostile_db, change):
    db = hostile_db
    make_hostile(procs, db, change)
    before = sha256(db)
    lock_before = sha256(db + "-lock")
    p = procs()
    p.send("persist %s 0" % db)
    try:
        line = p.lines.get(timeout=HOSTILE_TIMEOUT)
    except queue.Empty:
        pytest.fail("cm_registry_persist did not answer within %d s" % HOSTILE_TIMEOUT)
    assert line.startswith("ERR CM_ECORRUPT") and "untouched" in line, line
    assert p.value("counter fresh - 1") == [1]  # the registry still works
    p.quit()
    assert sha256(db) == before
    assert sha256(db + "-lock") == lock_before  # refused before the owner lock: no pid written


@pytest.mark.parametrize("change", HOSTILE, ids=[h.__name__[len("hostile_"):] for h in HOSTILE])
def test_hostile_file_refused_by_dump(procs, hostile_db, change):
    db = hostile_db
    if not CACHEMETER:
        pytest.skip("CM_CACHEMETER is not set")
    make_hostile(procs, db, change)
    before = sha256(db)
    try:
        out = subprocess.run([CACHEMETER, "dump", "--db", db], capture_output=True, text=True,
                             timeout=HOSTILE_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("cachemeter dump --db did not finish within %d s" % HOSTILE_TIMEOUT)
    assert out.returncode == 1 and "CM_ECORRUPT" in out.stderr, out.stderr
    assert sha256(db) == before


def test_hostile_untouched_own_file_still_accepted(procs, db):
    # The exact-schema check accepts what we wrote, in both journal modes.
    make_hostile(procs, db, lambda con: None)
    p = procs()
    p.cmd("persist %s 0" % db)
    assert p.value("counter req a 0") == [3]
    p.quit()
    if CACHEMETER:
        out = dump(db, "prometheus")
        assert out.returncode == 0, out.stderr
