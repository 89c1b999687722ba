"""Load test for sandgraph and for the platform it replaces (same POST paths and fields).

One Locust user stands for one coding agent: it lints far more than it runs code, runs
tests about as often as it executes, and now and then renders a template, reads its
history or touches the knowledge graph.  Requests are a mix of *repeat* snippets (a fixed
pool, so a server with a result cache answers many of them from it) and *unique* snippets
(a pool snippet with a fresh nonce comment, so no cache can answer them).  Only the old
platform's request fields are sent and only its response fields are checked, so the file
runs unchanged against both servers.

Environment (all optional):
  SANDGRAPH_TOKEN      bearer token; sent as `Authorization: Bearer ...` only when set
  LOCUST_WAIT_MIN/MAX  seconds between a user's tasks (default 0.1 / 0.5)
  LOCUST_UNIQUE_RATIO  share of requests with a unique (uncacheable) snippet (default 0.5)
  LOCUST_JS_RATIO      share of execute_code calls in JavaScript (default 0: the old
                       platform may not run JavaScript; run_headless.sh local sets 0.1)
  LOCUST_WEIGHTS       task weights, e.g. "lint=30,execute=10,run_tests=10,generate=3,
                       history=2,code_stats=1,graph=2"; a weight of 0 disables a task
  LOCUST_TIMEOUT       client-side timeout per request in seconds (default 90)
  LOCUST_TOKENS        comma-separated bearer tokens: user N sends token N mod count
                       (several callers from one run; overrides SANDGRAPH_TOKEN)
  LOCUST_ACK_LOG       file to append one JSON line per request to: time, name, HTTP
                       status (0 = no answer), the echoed x-request-id and the record id
                       of a 200 (the soak test checks each acknowledged call is in Neo4j)

Endpoints that are optional (graph_upsert, graph_query, execution_history, code_stats)
answer 404 on a server that does not have them, and the graph ones answer a 4xx naming
Neo4j on a server without it: such an answer counts as a success, the endpoint is noted
as unavailable (listed when the run ends) and is not called again by this process.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import random
import threading
import time
import uuid

import gevent
from locust import HttpUser, between, events
from locust import stats as locust_stats

log = logging.getLogger("sandgraph-load")


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise SystemExit(f"{name}={raw!r} is not a number") from exc


TOKEN = os.environ.get("SANDGRAPH_TOKEN", "").strip()
TOKENS = [t.strip() for t in os.environ.get("LOCUST_TOKENS", "").split(",") if t.strip()]
ACK_LOG = os.environ.get("LOCUST_ACK_LOG", "").strip()
WAIT_MIN = _env_float("LOCUST_WAIT_MIN", 0.1)
WAIT_MAX = _env_float("LOCUST_WAIT_MAX", 0.5)
UNIQUE_RATIO = _env_float("LOCUST_UNIQUE_RATIO", 0.5)
JS_RATIO = _env_float("LOCUST_JS_RATIO", 0.0)
REQUEST_TIMEOUT = _env_float("LOCUST_TIMEOUT", 90.0)

# lint 3 : execute 1 : run_tests 1, plus small weights for the rest.
DEFAULT_WEIGHTS = {
    "lint": 30,
    "execute": 10,
    "run_tests": 10,
    "generate": 3,
    "history": 2,
    "code_stats": 1,
    "graph": 2,
}


def _weights() -> dict[str, int]:
    weights = dict(DEFAULT_WEIGHTS)
    raw = os.environ.get("LOCUST_WEIGHTS", "").strip()
    for item in filter(None, (part.strip() for part in raw.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in weights or not value.strip().isdigit():
            raise SystemExit(
                f"LOCUST_WEIGHTS item {item!r}: expected NAME=INT with NAME in {sorted(weights)}"
            )
        weights[name] = int(value)
    if not any(weights.values()):
        raise SystemExit("LOCUST_WEIGHTS disables every task")
    return weights


WEIGHTS = _weights()

# --------------------------------------------------------------------------------------
# Snippets
# --------------------------------------------------------------------------------------

# Small computations with a known answer: (code, expected stdout).
PYTHON_PROGRAMS = [
    (
        "def fib(n):\n"
        "    a, b = 0, 1\n"
        "    for _ in range(n):\n"
        "        a, b = b, a + b\n"
        "    return a\n"
        "\n"
        "print(fib(90))\n",
        "2880067194370816120\n",
    ),
    (
        "def primes(limit):\n"
        "    sieve = bytearray([1]) * (limit + 1)\n"
        "    sieve[0:2] = b'\\x00\\x00'\n"
        "    for i in range(2, int(limit ** 0.5) + 1):\n"
        "        if sieve[i]:\n"
        "            sieve[i * i::i] = bytearray(len(sieve[i * i::i]))\n"
        "    return [i for i, flag in enumerate(sieve) if flag]\n"
        "\n"
        "found = primes(20000)\n"
        "print(len(found), found[-1])\n",
        "2262 19997\n",
    ),
    (
        "import json\n"
        "from collections import Counter\n"
        "\n"
        "text = 'the quick brown fox jumps over the lazy dog the end'\n"
        "counts = Counter(text.split())\n"
        "print(json.dumps(counts.most_common(2)))\n",
        '[["the", 3], ["quick", 1]]\n',
    ),
    (
        "import statistics\n"
        "\n"
        "data = [(i * 37) % 101 for i in range(1, 500)]\n"
        "print(round(statistics.mean(data), 3), statistics.median(data), max(data))\n",
        "50.094 50 100\n",
    ),
    (
        "def collatz_steps(n):\n"
        "    steps = 0\n"
        "    while n != 1:\n"
        "        n = n // 2 if n % 2 == 0 else 3 * n + 1\n"
        "        steps += 1\n"
        "    return steps\n"
        "\n"
        "best = max(range(1, 3000), key=collatz_steps)\n"
        "print(best, collatz_steps(best))\n",
        "2919 216\n",
    ),
    (
        "from dataclasses import dataclass\n"
        "\n"
        "@dataclass\n"
        "class Item:\n"
        "    name: str\n"
        "    price: float\n"
        "    qty: int\n"
        "\n"
        "cart = [Item('pen', 1.5, 4), Item('book', 12.0, 2), Item('bag', 30.25, 1)]\n"
        "total = sum(i.price * i.qty for i in cart)\n"
        "print(f'{total:.2f}')\n",
        "60.25\n",
    ),
]

JAVASCRIPT_PROGRAMS = [
    (
        "function fib(n) { let a = 0, b = 1; for (let i = 0; i < n; i++) [a, b] = [b, a + b]; return a; }\n"
        "console.log(fib(40));\n",
        "102334155\n",
    ),
    (
        "const words = 'to be or not to be'.split(' ');\n"
        "const counts = {};\n"
        "for (const w of words) counts[w] = (counts[w] || 0) + 1;\n"
        "console.log(JSON.stringify(counts));\n",
        '{"to":2,"be":2,"or":1,"not":1}\n',
    ),
]

# A realistic ~50-line module for lint_code (a couple of style nits left in on purpose).
LINT_MODULES = [
    (
        '''"""Inventory helpers used by the order service."""
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable


@dataclass
class Product:
    sku: str
    name: str
    price: float
    tags: list = field(default_factory=list)


class Inventory:
    """Stock levels per SKU."""

    def __init__(self):
        self._stock = defaultdict(int)
        self._products = {}

    def add(self, product: Product, qty: int = 1) -> None:
        if qty <= 0:
            raise ValueError("qty must be positive")
        self._products[product.sku] = product
        self._stock[product.sku] += qty

    def remove(self, sku: str, qty: int = 1) -> bool:
        if self._stock.get(sku, 0) < qty:
            return False
        self._stock[sku] -= qty
        return True

    def value(self) -> float:
        return sum(self._products[s].price * n for s, n in self._stock.items())

    def low_stock(self, threshold: int = 3) -> list:
        return sorted(s for s, n in self._stock.items() if n < threshold)


def load_products(rows: Iterable[dict]) -> list:
    products = []
    for row in rows:
        if not row.get("sku") or row.get("price") is None:
            continue
        products.append(Product(row["sku"], row.get("name", ""), float(row["price"])))
    return products


def to_json(inventory: Inventory) -> str:
    return json.dumps({"value": inventory.value(), "low": inventory.low_stock()})
''',
        {"functions": {"add", "remove", "value", "low_stock", "load_products", "to_json"},
         "classes": {"Product", "Inventory"}},
    ),
    (
        '''"""Retry and backoff utilities."""
import random
import time
import logging
from functools import wraps

log = logging.getLogger(__name__)


class RetryError(Exception):
    def __init__(self, attempts, last):
        super().__init__(f"gave up after {attempts} attempts: {last}")
        self.attempts = attempts
        self.last = last


def backoff_delays(base=0.1, factor=2.0, cap=5.0, attempts=5, jitter=True):
    delay = base
    for _ in range(attempts):
        yield min(cap, delay * (random.random() + 0.5 if jitter else 1.0))
        delay *= factor


def retry(exceptions=(Exception,), attempts=5, base=0.1, sleep=time.sleep):
    def decorate(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            last = None
            for i, delay in enumerate(backoff_delays(base=base, attempts=attempts)):
                try:
                    return fn(*args, **kwargs)
                except exceptions as exc:
                    last = exc
                    log.warning("attempt %d failed: %s", i + 1, exc)
                    if i + 1 < attempts:
                        sleep(delay)
            raise RetryError(attempts, last)
        return wrapper
    return decorate


def parse_duration(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    raise ValueError("unknown unit in %r" % text)


def unused_helper(x, y):
    z = x + y
    return x*y
''',
        {"functions": {"backoff_delays", "retry", "parse_duration", "unused_helper"},
         "classes": {"RetryError"}},
    ),
]

# A module and its three pytest tests, in one file (the code carries its tests).
TEST_FILES = [
    (
        '''import pytest


def slugify(text):
    out = []
    for ch in text.lower().strip():
        if ch.isalnum():
            out.append(ch)
        elif out and out[-1] != "-":
            out.append("-")
    return "".join(out).strip("-")


def chunk(items, size):
    if size <= 0:
        raise ValueError("size must be positive")
    return [items[i:i + size] for i in range(0, len(items), size)]


def test_slugify_basic():
    assert slugify("  Hello, World!  ") == "hello-world"


@pytest.mark.parametrize("size,expected", [(2, [[1, 2], [3, 4], [5]]), (5, [[1, 2, 3, 4, 5]])])
def test_chunk(size, expected):
    assert chunk([1, 2, 3, 4, 5], size) == expected


def test_chunk_rejects_zero():
    with pytest.raises(ValueError):
        chunk([1], 0)
''',
        4,  # test_chunk is parametrized twice
    ),
    (
        '''class Stack:
    def __init__(self):
        self._items = []

    def push(self, item):
        self._items.append(item)

    def pop(self):
        if not self._items:
            raise IndexError("pop from empty stack")
        return self._items.pop()

    def __len__(self):
        return len(self._items)


def test_push_pop():
    s = Stack()
    s.push(1)
    s.push(2)
    assert s.pop() == 2
    assert len(s) == 1


def test_pop_empty():
    s = Stack()
    try:
        s.pop()
    except IndexError:
        pass
    else:
        raise AssertionError("expected IndexError")


def test_len():
    s = Stack()
    for i in range(10):
        s.push(i)
    assert len(s) == 10
''',
        3,
    ),
]

TEMPLATES = [
    (
        "def {{ name }}({{ params | join(', ') }}):\n"
        '    """{{ doc }}"""\n'
        "    return {{ body }}\n",
        lambda n: {"name": f"add_{n}", "params": ["a", "b"], "doc": "Add two numbers.", "body": "a + b"},
        lambda n: f"def add_{n}(a, b):",
    ),
    (
        "class {{ cls }}:\n"
        "{% for f in fields %}    {{ f }}: int = 0\n{% endfor %}",
        lambda n: {"cls": f"Point{n}", "fields": ["x", "y", "z"]},
        lambda n: f"class Point{n}:",
    ),
]

# --------------------------------------------------------------------------------------
# Bookkeeping shared by every user in this process
# --------------------------------------------------------------------------------------

_unavailable: dict[str, str] = {}
_unavailable_lock = threading.Lock()


def _mark_unavailable(endpoint: str, reason: str) -> None:
    with _unavailable_lock:
        if endpoint not in _unavailable:
            _unavailable[endpoint] = reason
            log.warning("%s is not available on this server: %s", endpoint, reason)


def _is_unavailable(endpoint: str) -> bool:
    return endpoint in _unavailable


@events.test_stop.add_listener
def _report_unavailable(**_kwargs):
    for endpoint, reason in sorted(_unavailable.items()):
        print(f"note: {endpoint} not available on this server ({reason}); not load-tested",
              flush=True)


_csv_enabled = False


@events.init.add_listener
def _on_init(environment, **_kwargs):
    global _csv_enabled
    options = getattr(environment, "parsed_options", None)
    _csv_enabled = bool(getattr(options, "csv_prefix", None))


_ack_file = None
_ack_lock = threading.Lock()


@events.request.add_listener
def _log_ack(request_type, name, response_time, response=None, exception=None, **_kwargs):
    """One JSON line per request (LOCUST_ACK_LOG): what the client saw acknowledged."""
    global _ack_file
    if not ACK_LOG:
        return
    status = getattr(response, "status_code", 0) or 0
    entry = {"t": time.time(), "name": name, "method": request_type, "status": status,
             "ms": round(response_time or 0, 2)}
    if response is not None and status:
        entry["request_id"] = response.headers.get("x-request-id")
        if status == 200:
            body = _json_object(response)
            if body is not None and isinstance(body.get("id"), str):
                entry["id"] = body["id"]
    if exception is not None and not status:
        entry["error"] = str(exception)[:200]
    with _ack_lock:
        if _ack_file is None:
            _ack_file = open(ACK_LOG, "a", buffering=1)
        _ack_file.write(json.dumps(entry) + "\n")


@events.quit.add_listener
def _final_csv(**_kwargs):
    # Locust rewrites *_stats.csv every CSV_STATS_INTERVAL_SEC from a background greenlet
    # and closes the files right after this event, so requests that finished during
    # --stop-timeout can be missing from the CSV.  Yield long enough for one more pass.
    if _csv_enabled:
        gevent.sleep(locust_stats.CSV_STATS_INTERVAL_SEC + 0.5)


def _nonce() -> str:
    return f"\n# load-test nonce {uuid.uuid4().hex}\n"


def _detail(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or "")[:200]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:200]
    return str(body)[:200]


def _json_object(response):
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _missing(body: dict, fields) -> list[str]:
    return [f for f in fields if f not in body]


# Response fields the old platform already returned (sandgraph adds more; none are needed).
EXECUTE_FIELDS = ("id", "return_code", "stdout", "stderr", "duration_seconds")
LINT_FIELDS = ("id", "functions", "classes", "imports", "complexity", "linter_exit_code",
               "linter_output")
TESTS_FIELDS = ("id", "framework", "return_code", "stdout", "stderr", "duration_seconds",
                "summary", "tests")
GENERATE_FIELDS = ("id", "language", "output")


_user_numbers = itertools.count()


class AgentUser(HttpUser):
    """One coding agent calling the toolbox."""

    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self):
        token = TOKENS[next(_user_numbers) % len(TOKENS)] if TOKENS else TOKEN
        if token:
            self.client.headers["Authorization"] = f"Bearer {token}"
        # Code hashes this user has executed successfully (for /code_stats).
        self.executed_hashes: list[str] = []
        # Graph keys this user has written (for /graph_query).
        self.graph_keys: list[str] = []
        self.user_key = uuid.uuid4().hex[:12]

    # -- helpers ------------------------------------------------------------------------

    def _variant(self, code: str) -> tuple[str, str]:
        """The code as sent (repeat or unique) and the stats name suffix."""
        if random.random() < UNIQUE_RATIO:
            return code + _nonce(), "unique"
        return code, "repeat"

    def _post(self, path: str, payload: dict, kind: str | None = None):
        name = f"{path} ({kind})" if kind else path
        return self.client.post(path, json=payload, name=name, catch_response=True,
                                timeout=REQUEST_TIMEOUT)

    @staticmethod
    def _fail_status(response) -> None:
        hint = ""
        if response.status_code == 429:
            hint = " (rate limited: raise SANDGRAPH_RATE_LIMIT on the server)"
        elif response.status_code == 401:
            hint = " (set SANDGRAPH_TOKEN)"
        response.failure(f"HTTP {response.status_code}{hint}: {_detail(response)}")

    def _optional_endpoint_unavailable(self, endpoint: str, response, graph: bool) -> bool:
        """True (and the response marked a success) when the server lacks the endpoint."""
        status = response.status_code
        detail = _detail(response)
        if status in (404, 405):
            _mark_unavailable(endpoint, f"HTTP {status}: {detail}")
            response.success()
            return True
        if graph and 400 <= status < 600 and status not in (401, 403, 429) \
                and "neo4j" in detail.lower():
            _mark_unavailable(endpoint, f"HTTP {status}: {detail}")
            response.success()
            return True
        return False

    # -- tasks --------------------------------------------------------------------------

    def lint(self):
        source, expected = random.choice(LINT_MODULES)
        code, kind = self._variant(source)
        with self._post("/lint_code", {"code": code, "language": "python"}, kind) as r:
            if r.status_code != 200:
                return self._fail_status(r)
            body = _json_object(r)
            if body is None:
                return r.failure("response is not a JSON object")
            missing = _missing(body, LINT_FIELDS)
            if missing:
                return r.failure(f"missing fields {missing}")
            functions = set(body["functions"] or [])
            classes = set(body["classes"] or [])
            if not expected["functions"] <= functions or not expected["classes"] <= classes:
                return r.failure(f"wrong AST summary: functions={sorted(functions)} "
                                 f"classes={sorted(classes)}")
            r.success()

    def execute(self):
        if random.random() < JS_RATIO:
            language, (source, expected) = "javascript", random.choice(JAVASCRIPT_PROGRAMS)
        else:
            language, (source, expected) = "python", random.choice(PYTHON_PROGRAMS)
        code, kind = self._variant(source)
        if language == "javascript":
            code = code.replace("\n# load-test nonce", "\n// load-test nonce")
        payload = {"code": code, "language": language, "timeout_seconds": 10}
        with self._post("/execute_code", payload, kind) as r:
            if r.status_code != 200:
                return self._fail_status(r)
            body = _json_object(r)
            if body is None:
                return r.failure("response is not a JSON object")
            missing = _missing(body, EXECUTE_FIELDS)
            if missing:
                return r.failure(f"missing fields {missing}")
            if body["return_code"] != 0 or body["stdout"] != expected:
                return r.failure(f"{language} run: return_code={body['return_code']} "
                                 f"stdout={body['stdout'][:80]!r} "
                                 f"stderr={body['stderr'][-160:]!r}")
            r.success()
        if kind == "repeat":
            digest = hashlib.sha256(code.encode()).hexdigest()
            if digest not in self.executed_hashes:
                self.executed_hashes.append(digest)

    def run_tests(self):
        source, n_tests = random.choice(TEST_FILES)
        code, kind = self._variant(source)
        payload = {"code": code, "language": "python", "test_framework": "pytest",
                   "timeout_seconds": 30}
        with self._post("/run_tests", payload, kind) as r:
            if r.status_code != 200:
                return self._fail_status(r)
            body = _json_object(r)
            if body is None:
                return r.failure("response is not a JSON object")
            missing = _missing(body, TESTS_FIELDS)
            if missing:
                return r.failure(f"missing fields {missing}")
            if body["return_code"] != 0:
                return r.failure(f"tests did not pass: return_code={body['return_code']} "
                                 f"stdout={body['stdout'][-200:]!r}")
            summary = body.get("summary")
            if isinstance(summary, dict) and summary.get("passed") not in (None, n_tests):
                return r.failure(f"expected {n_tests} passed, summary={summary}")
            r.success()

    def generate(self):
        template, context, expect = random.choice(TEMPLATES)
        n = random.randrange(1_000_000) if random.random() < UNIQUE_RATIO else 0
        payload = {"template": template, "context": context(n), "language": "python"}
        with self._post("/generate_code", payload) as r:
            if r.status_code != 200:
                return self._fail_status(r)
            body = _json_object(r)
            if body is None:
                return r.failure("response is not a JSON object")
            missing = _missing(body, GENERATE_FIELDS)
            if missing:
                return r.failure(f"missing fields {missing}")
            if expect(n) not in str(body["output"]):
                return r.failure(f"unexpected output {str(body['output'])[:120]!r}")
            r.success()

    def history(self):
        endpoint = "/execution_history"
        if _is_unavailable(endpoint):
            return
        params = {"limit": 20}
        roll = random.random()
        if roll < 0.3:
            params["tool"] = "execute_code"
        elif roll < 0.5:
            params["language"] = "python"
        elif roll < 0.6 and self.executed_hashes:
            params["code_hash"] = random.choice(self.executed_hashes)
        with self.client.get(endpoint, params=params, name=endpoint, catch_response=True,
                             timeout=REQUEST_TIMEOUT) as r:
            if self._optional_endpoint_unavailable(endpoint, r, graph=False):
                return
            if r.status_code != 200:
                return self._fail_status(r)
            try:
                body = r.json()
            except ValueError:
                return r.failure("response is not JSON")
            if not isinstance(body, (list, dict)):
                return r.failure(f"unexpected history body {str(body)[:120]!r}")
            r.success()

    def code_stats(self):
        endpoint = "/code_stats"
        if _is_unavailable(endpoint) or not self.executed_hashes:
            return
        digest = random.choice(self.executed_hashes)
        with self.client.get(f"{endpoint}/{digest}", name=f"{endpoint}/[code_hash]",
                             catch_response=True, timeout=REQUEST_TIMEOUT) as r:
            if r.status_code == 404:
                detail = _detail(r)
                # A missing route (axum fallback or FastAPI's default) vs. no stats yet
                # for this hash (history is written asynchronously): both are fine.
                if "no such endpoint" in detail or detail == "Not Found":
                    _mark_unavailable(endpoint, f"HTTP 404: {detail}")
                return r.success()
            if r.status_code == 405:
                _mark_unavailable(endpoint, "HTTP 405")
                return r.success()
            if r.status_code != 200:
                return self._fail_status(r)
            if _json_object(r) is None:
                return r.failure("response is not a JSON object")
            r.success()

    def graph(self):
        """Upsert a small subgraph, then query it back (two requests)."""
        if not _is_unavailable("/graph_upsert"):
            key = f"loadtest-{self.user_key}-{random.randrange(50)}"
            payload = {
                "nodes": [
                    {"key": key, "labels": ["LoadTest", "Snippet"],
                     "properties": {"language": "python", "lines": random.randrange(1, 200)}},
                    {"key": f"loadtest-agent-{self.user_key}", "labels": ["LoadTest", "Agent"],
                     "properties": {"name": f"agent-{self.user_key}"}},
                ],
                "relationships": [
                    {"start": f"loadtest-agent-{self.user_key}", "end": key, "type": "WROTE",
                     "properties": {"weight": 1}},
                ],
            }
            with self._post("/graph_upsert", payload) as r:
                if not self._optional_endpoint_unavailable("/graph_upsert", r, graph=True):
                    if r.status_code != 200:
                        self._fail_status(r)
                    else:
                        if key not in self.graph_keys:
                            self.graph_keys.append(key)
                        r.success()
        if not _is_unavailable("/graph_query"):
            payload = {
                "cypher": "MATCH (a:LoadTest {key: $agent})-[:WROTE]->(s:Snippet) "
                          "RETURN s.key AS key, s.lines AS lines LIMIT 25",
                "parameters": {"agent": f"loadtest-agent-{self.user_key}"},
            }
            with self._post("/graph_query", payload) as r:
                if self._optional_endpoint_unavailable("/graph_query", r, graph=True):
                    return
                if r.status_code != 200:
                    return self._fail_status(r)
                body = _json_object(r)
                if body is None or not isinstance(body.get("results"), list):
                    return r.failure("expected {\"results\": [...]}")
                r.success()

    tasks = {
        fn: WEIGHTS[key]
        for key, fn in {
            "lint": lint,
            "execute": execute,
            "run_tests": run_tests,
            "generate": generate,
            "history": history,
            "code_stats": code_stats,
            "graph": graph,
        }.items()
        if WEIGHTS[key] > 0
    }
