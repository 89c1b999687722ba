// sandgraph's JavaScript test runner (run_tests with language=javascript): the host
// runs this script with the user's source, as a JSON string literal, in place of the
// placeholder in the eval call below. It defines test()/it()/describe()/expect()
// and the hooks, evaluates the source (a syntax error is a collection error, like
// pytest's), runs the tests one after another (async tests awaited), prints a short
// pytest-like report and, last, one line "\u001eSANDGRAPH_TEST_REPORT " + JSON that
// the host takes off stdout and parses. The host maps the report's exit_code.
(function () {
  "use strict";
  const FILE = "test_code.js";
  const root = { name: null, items: [], before: [], after: [], beforeEach: [], afterEach: [] };
  let current = root;
  let collecting = true;

  function register(name, fn, mode) {
    if (!collecting) throw new Error("test() called while tests run: declare tests at the top level or in describe()");
    if (typeof name !== "string") throw new TypeError("test name must be a string");
    current.items.push({ name, fn, mode, suite: current });
  }
  function test(name, fn) { register(name, fn, "run"); }
  test.skip = (name, fn) => register(name, fn, "skip");
  test.only = (name, fn) => register(name, fn, "only");
  test.todo = (name) => register(name, null, "skip");
  function describe(name, fn) {
    const suite = { name: String(name), items: [], parent: current, before: [], after: [], beforeEach: [], afterEach: [] };
    current.items.push({ child: suite });
    const saved = current;
    current = suite;
    try { fn(); } finally { current = saved; }
  }
  describe.skip = (name, fn) => describe(name, () => { const s = current; fn(); s.skipped = true; });

  function fmt(v) {
    if (typeof v === "string") return JSON.stringify(v);
    if (typeof v === "bigint") return v + "n";
    if (typeof v === "function") return "[Function " + (v.name || "anonymous") + "]";
    if (v instanceof Error) return v.name + ": " + v.message;
    try {
      const s = JSON.stringify(v, (k, x) => (typeof x === "bigint" ? x + "n" : x === undefined ? "undefined" : x));
      return s === undefined ? String(v) : s;
    } catch (e) { return String(v); }
  }
  function equal(a, b) {
    if (Object.is(a, b)) return true;
    if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
    if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
    if (a instanceof Date) return a.getTime() === b.getTime();
    if (a instanceof Map || a instanceof Set) {
      if (a.size !== b.size) return false;
      return equal([...a.entries()], [...b.entries()]);
    }
    const ka = Object.keys(a), kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && equal(a[k], b[k]));
  }
  class AssertionError extends Error { constructor(m) { super(m); this.name = "AssertionError"; } }

  function expect(actual) {
    function make(negate) {
      const check = (ok, what, ...expected) => {
        if (ok === negate) {
          const tail = expected.length ? " " + fmt(expected[0]) : "";
          throw new AssertionError("expected " + fmt(actual) + (negate ? " not " : " ") + what + tail);
        }
      };
      const m = {
        toBe: (e) => check(Object.is(actual, e), "to be", e),
        toEqual: (e) => check(equal(actual, e), "to equal", e),
        toStrictEqual: (e) => check(equal(actual, e), "to strictly equal", e),
        toBeTruthy: () => check(!!actual, "to be truthy"),
        toBeFalsy: () => check(!actual, "to be falsy"),
        toBeNull: () => check(actual === null, "to be null"),
        toBeUndefined: () => check(actual === undefined, "to be undefined"),
        toBeDefined: () => check(actual !== undefined, "to be defined"),
        toBeNaN: () => check(Number.isNaN(actual), "to be NaN"),
        toBeGreaterThan: (e) => check(actual > e, "to be greater than", e),
        toBeGreaterThanOrEqual: (e) => check(actual >= e, "to be greater than or equal to", e),
        toBeLessThan: (e) => check(actual < e, "to be less than", e),
        toBeLessThanOrEqual: (e) => check(actual <= e, "to be less than or equal to", e),
        toBeCloseTo: (e, digits = 2) => check(Math.abs(actual - e) < Math.pow(10, -digits) / 2, "to be close to", e),
        toContain: (e) => check(actual != null && actual.includes(e), "to contain", e),
        toHaveLength: (n) => check(actual != null && actual.length === n, "to have length", n),
        toHaveProperty: (k) => check(actual != null && k in Object(actual), "to have property", k),
        toBeInstanceOf: (c) => check(actual instanceof c, "to be an instance of", c),
        toMatch: (re) => check(typeof actual === "string" && (re instanceof RegExp ? re.test(actual) : actual.includes(re)), "to match", String(re)),
        toThrow: (e) => {
          if (typeof actual !== "function") throw new TypeError("expect(fn).toThrow() needs a function");
          let thrown = null, did = false;
          try { actual(); } catch (x) { thrown = x; did = true; }
          let ok = did;
          if (did && e !== undefined) {
            const msg = thrown && thrown.message !== undefined ? String(thrown.message) : String(thrown);
            ok = e instanceof RegExp ? e.test(msg) : typeof e === "function" ? thrown instanceof e : msg.includes(String(e));
          }
          if (ok === negate) {
            throw new AssertionError("expected function " + (negate ? "not " : "") + "to throw" +
              (e === undefined ? "" : " " + fmt(e instanceof RegExp ? String(e) : e)) +
              (did ? ", it threw " + fmt(thrown) : ", it did not throw"));
          }
        },
      };
      return m;
    }
    const positive = make(false);
    positive.not = make(true);
    return positive;
  }

  const hooks = {
    beforeAll: (fn) => current.before.push(fn),
    afterAll: (fn) => current.after.push(fn),
    beforeEach: (fn) => current.beforeEach.push(fn),
    afterEach: (fn) => current.afterEach.push(fn),
  };
  Object.assign(globalThis, { test, it: test, describe, expect }, hooks);

  const results = [];
  let collectionError = null;
  try {
    (0, eval)(__SANDGRAPH_SOURCE__);
  } catch (e) {
    collectionError = e;
  }
  collecting = false;

  function pathOf(suite) {
    const names = [];
    for (let s = suite; s && s.name !== null; s = s.parent) names.unshift(s.name);
    return names;
  }
  function message(e) {
    if (e instanceof Error) {
      // QuickJS names the evaluated source <input> in the stack: its first frame there
      // is where in the user's code the error is.
      const at = /<input>:(\d+):(\d+)/.exec(String(e.stack || ""));
      return e.name + ": " + e.message + (at ? " (line " + at[1] + ", column " + at[2] + ")" : "");
    }
    return "thrown: " + fmt(e);
  }
  function all(suite, out) {
    for (const item of suite.items) {
      if (item.child) all(item.child, out);
      else out.push(item);
    }
    return out;
  }
  function skippedSuite(suite) {
    for (let s = suite; s; s = s.parent) if (s.skipped) return true;
    return false;
  }
  function chain(suite, key) {
    const fns = [];
    for (let s = suite; s; s = s.parent) fns.unshift(...s[key]);
    return key === "afterEach" ? fns.reverse() : fns;
  }
  const now = () => Date.now() / 1000;

  async function run() {
    const tests = all(root, []);
    const only = tests.some((t) => t.mode === "only");
    for (const t of tests) {
      const nodeid = [FILE, ...pathOf(t.suite), t.name].join("::");
      const started = now();
      const entry = { nodeid, outcome: "passed", duration_seconds: 0, message: null };
      if (t.mode === "skip" || skippedSuite(t.suite) || (only && t.mode !== "only")) {
        entry.outcome = "skipped";
        entry.message = t.fn ? "skipped" : "todo";
      } else {
        try {
          // beforeAll hooks run before a suite's first test; afterAll ones at the end.
          const suites = [];
          for (let x = t.suite; x; x = x.parent) suites.unshift(x);
          for (const x of suites) {
            if (started_suites.includes(x)) continue;
            started_suites.push(x);
            for (const h of x.before) await h();
          }
          for (const h of chain(t.suite, "beforeEach")) await h();
          await t.fn();
        } catch (e) {
          entry.outcome = "failed";
          entry.message = message(e);
        }
        try {
          for (const h of chain(t.suite, "afterEach")) await h();
        } catch (e) {
          entry.outcome = "error";
          entry.message = "error in teardown: " + message(e);
        }
      }
      entry.duration_seconds = Math.round((now() - started) * 1e6) / 1e6;
      results.push(entry);
    }
    for (const x of started_suites.reverse()) {
      for (const h of x.after) {
        try { await h(); } catch (e) {
          results.push({ nodeid: [FILE, ...pathOf(x), "afterAll"].join("::"), outcome: "error", duration_seconds: 0, message: "error in afterAll: " + message(e) });
        }
      }
    }
  }
  const started_suites = [];

  function finish() {
    const summary = { passed: 0, failed: 0, errors: 0, skipped: 0, xfailed: 0, xpassed: 0 };
    const key = { passed: "passed", failed: "failed", error: "errors", skipped: "skipped" };
    let lines = [];
    if (collectionError !== null) {
      summary.errors = 1;
      results.length = 0;
      results.push({ nodeid: FILE, outcome: "error", duration_seconds: 0, message: message(collectionError) });
      lines.push("ERROR collecting " + FILE + ": " + message(collectionError));
    }
    for (const r of results) {
      if (collectionError === null) summary[key[r.outcome]] += 1;
      if (r.outcome === "failed" || r.outcome === "error") {
        lines.push((r.outcome === "failed" ? "FAILED " : "ERROR ") + r.nodeid + " - " + r.message);
      }
    }
    const parts = [];
    if (summary.failed) parts.push(summary.failed + " failed");
    if (summary.passed) parts.push(summary.passed + " passed");
    if (summary.skipped) parts.push(summary.skipped + " skipped");
    if (summary.errors) parts.push(summary.errors + (summary.errors === 1 ? " error" : " errors"));
    const exit_code = collectionError !== null ? 2 : results.length === 0 ? 5
      : summary.failed || summary.errors ? 1 : 0;
    lines.push(parts.length ? parts.join(", ") : "no tests ran");
    console.log(lines.join("\n"));
    console.log("\u001eSANDGRAPH_TEST_REPORT " + JSON.stringify({ summary, tests: results, exit_code }));
  }

  if (collectionError !== null) {
    finish();
  } else {
    run().then(finish, (e) => { collectionError = e; finish(); });
  }
})();
