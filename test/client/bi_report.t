#!/usr/bin/python3
"""BI outputs read by real clients (issue 13), on test/fixtures/bi_fixture.sql:
- process_map_dot() is accepted by Graphviz (dot -Tsvg) and gives valid SVG;
- export_xes() is well-formed XML (xmllint and Python's parser) whose trace
  and event counts equal the orders and events of the period, per trace too;
- tools/report.sh, run as order_mgmt_reader, writes index.html and
  process.svg; headless Chromium opens the page, takes a screenshot, and the
  page's text holds the fixture's KPI figures (worked out by hand in
  test/pgtap/bi_views.sql).  The Chromium checks are skipped, with a TAP
  SKIP, only when Chromium cannot start.
Prints TAP."""
import html.parser
import os
import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), "..", ".."))
DB = "om_bi_report"
XES = "{http://www.xes-standard.org/}"
n = 0


def tap(ok, name, diag=None):
    global n
    n += 1
    print(("ok" if ok else "not ok") + f" {n} - {name}", flush=True)
    if not ok and diag:
        for line in str(diag).splitlines()[:20]:
            print("# " + line, flush=True)


def skip(name, why):
    global n
    n += 1
    print(f"ok {n} # SKIP {name}: {why}", flush=True)


def psql(sql, db=DB, role=None):
    env = dict(os.environ, PGOPTIONS="-c client_min_messages=warning -c jit=off"
               + (f" -c role={role}" if role else ""))
    return subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
                          capture_output=True, text=True, env=env, check=True).stdout


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


tmp = tempfile.mkdtemp(prefix="om-bi-report-")
os.chmod(tmp, 0o755)
psql(f"DROP DATABASE IF EXISTS {DB}", db="postgres")
psql(f"CREATE DATABASE {DB}", db="postgres")
psql("CREATE EXTENSION order_mgmt")
subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", DB, "-f",
                os.path.join(ROOT, "test/fixtures/bi_fixture.sql")],
               check=True, capture_output=True)
PERIOD = "'2025-10-01', '2025-11-01'"

# 1. The process map through Graphviz
for label, args in (("October 2025", PERIOD), ("the whole log", "")):
    dot_src = psql(f"SELECT order_mgmt.process_map_dot({args})", role="order_mgmt_reader")
    r = run(["dot", "-Tsvg"], input=dot_src)
    tap(r.returncode == 0 and not r.stderr.strip(),
        f"dot -Tsvg accepts process_map_dot() of {label}", r.stderr)
    try:
        svg = ET.fromstring(r.stdout)
        texts = {t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")}
        tap(svg.tag == "{http://www.w3.org/2000/svg}svg" and "shipment.repack_started" in texts,
            f"the SVG of {label} is well-formed and shows the re-pack step")
    except ET.ParseError as e:
        tap(False, f"the SVG of {label} is well-formed and shows the re-pack step", e)

# 2. The XES export: well-formed, counts equal the orders and events of the period
for label, args, where in (
        ("October 2025", PERIOD, "o.placed_at >= '2025-10-01' AND o.placed_at < '2025-11-01'"),
        ("the whole log", "", "true")):
    path = os.path.join(tmp, "log.xes")
    with open(path, "w") as f:
        f.write(psql(f"SELECT order_mgmt.export_xes({args})", role="order_mgmt_reader"))
    r = run(["xmllint", "--noout", path])
    tap(r.returncode == 0, f"xmllint: the XES of {label} is well-formed", r.stderr)
    log = ET.parse(path).getroot()
    traces = log.findall(f"{XES}trace")
    got = {}
    for t in traces:
        case = [s.get("value") for s in t.findall(f"{XES}string") if s.get("key") == "concept:name"][0]
        got[int(case)] = len(t.findall(f"{XES}event"))
    want = dict(tuple(map(int, line.split("|"))) for line in psql(
        f"""SELECT o.order_id, count(e.seq) FROM order_mgmt.orders o
              LEFT JOIN order_mgmt.events e ON e.order_id = o.order_id
             WHERE {where} GROUP BY o.order_id""").split())
    tap(log.tag == f"{XES}log" and log.get("xes.version") == "1849-2016",
        f"XES of {label}: an IEEE 1849-2016 log")
    tap(len(traces) == len(want), f"XES of {label}: {len(traces)} traces, one per order of the "
        f"period ({len(want)})")
    tap(sum(got.values()) == sum(want.values()),
        f"XES of {label}: {sum(got.values())} events, the period's events ({sum(want.values())})")
    tap(got == want, f"XES of {label}: every trace has exactly its order's events",
        {k: (got.get(k), want.get(k)) for k in set(got) | set(want) if got.get(k) != want.get(k)})
    stamps_sorted = all(
        (lambda ts: ts == sorted(ts))([e.find(f"{XES}date").get("value") for e in t.findall(f"{XES}event")])
        for t in traces)
    tap(stamps_sorted, f"XES of {label}: events in time order within each trace")

# 3. The report, as a reader
out = os.path.join(tmp, "report")
env = dict(os.environ, PGOPTIONS="-c role=order_mgmt_reader -c jit=off")
r = run([os.path.join(ROOT, "tools/report.sh"), DB, out], env=env)
index = os.path.join(out, "index.html")
tap(r.returncode == 0 and r.stdout.strip() == index and os.path.getsize(index) > 1000,
    "tools/report.sh DB OUTDIR writes index.html as order_mgmt_reader and prints its path",
    r.stderr)
try:
    svg = ET.parse(os.path.join(out, "process.svg")).getroot()
    tap(svg.tag == "{http://www.w3.org/2000/svg}svg", "and process.svg, a well-formed SVG")
except (ET.ParseError, OSError) as e:
    tap(False, "and process.svg, a well-formed SVG", e)
r = run([os.path.join(ROOT, "tools/report.sh"), DB])
tap(r.returncode == 2 and "usage" in r.stderr, "report.sh without OUTDIR prints its usage")


# 4. pg_dump / pg_restore keep the settings (bi_settings is registered) and the answers
RESTORE = "om_bi_report_restore"
psql(f"DROP DATABASE IF EXISTS {RESTORE}", db="postgres")
psql(f"CREATE DATABASE {RESTORE}", db="postgres")
dump = os.path.join(tmp, "bi.dump")
r1 = run(["pg_dump", "-Fc", "-d", DB, "-f", dump])
r2 = run(["pg_restore", "-d", RESTORE, "--exit-on-error", dump]) if r1.returncode == 0 else r1
tap(r1.returncode == 0 and r2.returncode == 0, "pg_dump and pg_restore of the fixture", r1.stderr + r2.stderr)
q = "SELECT stuck_after, system_actors FROM order_mgmt.bi_config"
tap("carrier:%" in psql(q) and psql(q) == psql(q, db=RESTORE),
    "the settings (bi_settings) survive a dump and restore")
q = "SELECT * FROM order_mgmt.kpi_daily WHERE day < current_date - 30 ORDER BY day, channel"
tap(psql(q) != "" and psql(q) == psql(q, db=RESTORE), "kpi_daily answers the same after the restore")
psql(f"DROP DATABASE IF EXISTS {RESTORE}", db="postgres")


# 5. Headless Chromium: screenshot and the page's text
class Tables(html.parser.HTMLParser):
    """Rows of every table as lists of cell texts."""

    def __init__(self):
        super().__init__()
        self.rows, self.cell, self.text = [], None, []

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self.cell is not None:
            self.cell.append(data)


CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium(*args):
    profile = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
    return run([CHROMIUM] + FLAGS + [f"--user-data-dir={profile}"] + list(args), timeout=120)


why = None
if CHROMIUM is None:
    why = "chromium is not installed"
else:
    try:
        probe = chromium("--dump-dom", "about:blank")
        if probe.returncode != 0 or "<html" not in probe.stdout:
            why = "chromium cannot start: " + (probe.stderr.strip().splitlines() or ["?"])[-1]
    except (OSError, subprocess.TimeoutExpired) as e:
        why = f"chromium cannot start: {e}"
CHECKS = ["Chromium takes a screenshot of the report", "the page shows the KPIs of 2025-10-20",
          "the page shows the KPIs of 2025-10-24", "the page shows the top variant",
          "the page lists the orders at risk with their reasons",
          "the page shows the stock short of demand", "the page embeds the process map"]
if why:
    for c in CHECKS:
        skip(c, why)
else:
    url = "file://" + index
    shot = os.path.join(tmp, "report.png")
    r = chromium("--window-size=1400,2400", f"--screenshot={shot}", url)
    ok = os.path.exists(shot) and os.path.getsize(shot) > 20000
    with open(shot, "rb") if ok else open(os.devnull, "rb") as f:
        ok = ok and f.read(8) == b"\x89PNG\r\n\x1a\n"
    tap(ok, CHECKS[0] + f" ({os.path.getsize(shot) if os.path.exists(shot) else 0} bytes PNG)",
        r.stderr)
    dom = chromium("--dump-dom", url).stdout
    page = Tables()
    page.feed(dom)
    rows = {tuple(r[:1]): r for r in page.rows if r}
    # hand-worked in test/pgtap/bi_views.sql
    tap(rows.get(("2025-10-20",)) == ["2025-10-20", "4", "0", "4", "4", "100.0 %", "75.0 %", "75.0 %",
                                      "56.00", "91.40", "50.0 %", "25.0 %", "26.00", "25.0 %",
                                      "25.0 %"], CHECKS[1], rows.get(("2025-10-20",)))
    tap(rows.get(("2025-10-24",)) == ["2025-10-24", "2", "1", "1", "1", "0.0 %", "0.0 %", "0.0 %",
                                      "87.50", "87.50", "50.0 %", "0.0 %", "", "0.0 %", "0.0 %"],
        CHECKS[2], rows.get(("2025-10-24",)))
    tap(rows.get(("1",), [])[:3] == ["1", "3", "23.1 %"]
        and rows.get(("1",), [""])[-1] == "order.placed > order.credit_checked > order.confirmed",
        CHECKS[3], rows.get(("1",)))
    text = " ".join("".join(page.text).split())
    tap(["9007", "9012", "9011", "9013", "9009", "9008"] == [
            r[0] for r in page.rows if r and r[0] in ("9007", "9008", "9009", "9011", "9012", "9013")]
        and "delivery overdue, ship date passed, late estimate, stuck in confirmed" in text
        and "on hold: credit, stuck in on_hold" in text and "shipment 9109 lost" in text, CHECKS[4])
    tap(rows.get(("BI-BER",)) == ["BI-BER", "BI-B", "2", "2", "0", "3", "-3"], CHECKS[5],
        rows.get(("BI-BER",)))
    tap('src="process.svg"' in dom, CHECKS[6])

shutil.rmtree(tmp, ignore_errors=True)
psql(f"DROP DATABASE IF EXISTS {DB}", db="postgres")
print(f"1..{n}")
