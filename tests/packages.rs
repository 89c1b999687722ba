//! The curated Python package set (docs/packages.md), through the real binary and the
//! real guest: each package doing a piece of real work, `list_packages` checked against
//! what actually imports, and the package site mounted read-only.

mod common;

use common::TestServer;
use serde_json::{Value, json};

/// Run `code` with `/execute_code` and return its stdout, failing with the whole result
/// unless it ended `ok`.
async fn stdout_of(server: &TestServer, code: &str) -> String {
    let result = server
        .execute(json!({"code": code, "timeout_seconds": 30}))
        .await;
    assert_eq!(result["exit_reason"], "ok", "{result}");
    result["stdout"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn dateutil_parses_a_date_and_zoneinfo_knows_its_zone() {
    let server = TestServer::spawn();
    let out = stdout_of(
        &server,
        "from datetime import timedelta\n\
         from zoneinfo import ZoneInfo\n\
         from dateutil import parser, relativedelta, tz\n\
         when = parser.parse('March 10, 2024 3:30 PM').replace(tzinfo=ZoneInfo('America/New_York'))\n\
         print(when.isoformat(), when.tzname())\n\
         print(when.astimezone(ZoneInfo('Asia/Tokyo')).isoformat())\n\
         print(when + relativedelta.relativedelta(months=+1, weekday=relativedelta.FR(-1)))\n\
         print(tz.gettz('Europe/Paris').utcoffset(parser.parse('2024-07-01')) == timedelta(hours=2))\n",
    )
    .await;
    assert_eq!(
        out,
        "2024-03-10T15:30:00-04:00 EDT\n\
         2024-03-11T04:30:00+09:00\n\
         2024-04-05 15:30:00-04:00\n\
         True\n"
    );
}

#[tokio::test]
async fn sympy_solves_equations_and_mpmath_computes_to_fifty_digits() {
    let server = TestServer::spawn();
    let out = stdout_of(
        &server,
        "import sympy as sp\n\
         import mpmath\n\
         x, y = sp.symbols('x y')\n\
         print(sp.solve(x**2 - 5*x + 6, x))\n\
         print(sp.solve([x + y - 10, x - y - 2], [x, y]))\n\
         print(sp.integrate(sp.sin(x)**2, (x, 0, sp.pi)))\n\
         print(sp.factor(x**4 - 1))\n\
         mpmath.mp.dps = 50\n\
         print(mpmath.sqrt(2))\n",
    )
    .await;
    assert_eq!(
        out,
        "[2, 3]\n\
         {x: 6, y: 4}\n\
         pi/2\n\
         (x - 1)*(x + 1)*(x**2 + 1)\n\
         1.4142135623730950488016887242096980785696718753769\n"
    );
}

#[tokio::test]
async fn networkx_finds_the_shortest_weighted_path() {
    let server = TestServer::spawn();
    let out = stdout_of(
        &server,
        "import networkx as nx\n\
         g = nx.Graph()\n\
         g.add_weighted_edges_from([('a', 'b', 1), ('b', 'c', 2), ('a', 'c', 5), ('c', 'd', 1)])\n\
         print(nx.shortest_path(g, 'a', 'd', weight='weight'))\n\
         print(nx.shortest_path_length(g, 'a', 'd', weight='weight'))\n\
         print(sorted(nx.minimum_spanning_tree(g).edges()))\n\
         print(nx.is_connected(g), nx.diameter(g))\n",
    )
    .await;
    assert_eq!(
        out,
        "['a', 'b', 'c', 'd']\n4\n[('a', 'b'), ('b', 'c'), ('c', 'd')]\nTrue 2\n"
    );
}

#[tokio::test]
async fn tabulate_renders_a_table() {
    let server = TestServer::spawn();
    let out = stdout_of(
        &server,
        "from tabulate import tabulate\n\
         print(tabulate([['apple', 3, 1.5], ['kiwi', 12, 0.25]], headers=['fruit', 'n', 'price'], tablefmt='github'))\n",
    )
    .await;
    assert_eq!(
        out,
        "| fruit   |   n |   price |\n\
         |---------|-----|---------|\n\
         | apple   |   3 |    1.5  |\n\
         | kiwi    |  12 |    0.25 |\n"
    );
}

#[tokio::test]
async fn yaml_round_trips_on_its_pure_python_path() {
    let server = TestServer::spawn();
    let out = stdout_of(
        &server,
        "import yaml\n\
         doc = yaml.safe_load('name: sandgraph\\nports: [8000, 8001]\\nnested:\\n  on: true\\n')\n\
         print(doc)\n\
         print(yaml.safe_dump(doc, sort_keys=True), end='')\n\
         print(yaml.__with_libyaml__)\n",
    )
    .await;
    assert_eq!(
        out,
        "{'name': 'sandgraph', 'ports': [8000, 8001], 'nested': {True: True}}\n\
         name: sandgraph\n\
         nested:\n  true: true\n\
         ports:\n- 8000\n- 8001\n\
         False\n"
    );
}

#[tokio::test]
async fn markdown_and_beautifulsoup_render_and_parse_html() {
    let server = TestServer::spawn();
    let out = stdout_of(
        &server,
        "import markdown\n\
         from bs4 import BeautifulSoup\n\
         html = markdown.markdown('# Title\\n\\nSome *text* and a [link](https://example.org).\\n\\n| a | b |\\n|---|---|\\n| 1 | 2 |\\n', extensions=['tables'])\n\
         soup = BeautifulSoup(html, 'html.parser')\n\
         print(soup.h1.get_text())\n\
         print(soup.select_one('p > em').get_text(), soup.select_one('a[href^=\"https\"]')['href'])\n\
         print([td.get_text() for td in soup.select('table tbody td')])\n",
    )
    .await;
    assert_eq!(out, "Title\ntext https://example.org\n['1', '2']\n");
}

#[tokio::test]
async fn openpyxl_writes_an_xlsx_and_reads_it_back_from_scratch() {
    let server = TestServer::spawn();
    let out = stdout_of(
        &server,
        "import openpyxl\n\
         wb = openpyxl.Workbook()\n\
         ws = wb.active\n\
         ws.title = 'sales'\n\
         ws.append(['month', 'units'])\n\
         for month, units in [('jan', 10), ('feb', 32)]:\n    ws.append([month, units])\n\
         ws['C1'] = 'total'\n\
         ws['C2'] = '=SUM(B2:B3)'\n\
         wb.save('/scratch/report.xlsx')\n\
         back = openpyxl.load_workbook('/scratch/report.xlsx')['sales']\n\
         print([[c.value for c in row] for row in back.iter_rows()])\n",
    )
    .await;
    assert_eq!(
        out,
        "[['month', 'units', 'total'], ['jan', 10, '=SUM(B2:B3)'], ['feb', 32, None]]\n"
    );
}

#[tokio::test]
async fn pypdf_writes_a_pdf_and_reads_it_back() {
    let server = TestServer::spawn();
    let out = stdout_of(
        &server,
        "import io\n\
         from pypdf import PdfReader, PdfWriter\n\
         w = PdfWriter()\n\
         for _ in range(3):\n    w.add_blank_page(width=612, height=792)\n\
         w.add_metadata({'/Title': 'quarterly', '/Author': 'agent'})\n\
         buf = io.BytesIO()\n\
         w.write(buf)\n\
         r = PdfReader(io.BytesIO(buf.getvalue()))\n\
         print(len(r.pages), r.metadata.title, r.metadata.author, r.pages[0].mediabox.width)\n",
    )
    .await;
    assert_eq!(out, "3 quarterly agent 612.0\n");
}

#[tokio::test]
async fn hypothesis_property_tests_pass_and_fail_through_run_tests() {
    let server = TestServer::spawn();
    let code = "\
from hypothesis import given, strategies as st


def encode(xs):
    return ','.join(map(str, xs))


def decode(s):
    return [int(x) for x in s.split(',')] if s else []


@given(st.lists(st.integers()))
def test_round_trip(xs):
    assert decode(encode(xs)) == xs


@given(st.integers())
def test_small(x):
    assert x < 1000
";
    let (status, body) = server
        .post("/run_tests", json!({"code": code, "timeout_seconds": 60}))
        .await;
    assert_eq!(status, 200, "{body}");
    // A failing test is a non-zero exit (`error`), not a timeout: hypothesis ran its
    // examples and shrank within the time limit.
    assert_eq!(body["exit_reason"], "error", "{body}");
    assert_eq!(body["return_code"], 1, "{body}");
    let outcome = |id: &str| {
        body["tests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["nodeid"] == id)
            .unwrap_or_else(|| panic!("no {id} in {body}"))
            .clone()
    };
    assert_eq!(
        outcome("test_code.py::test_round_trip")["outcome"],
        "passed"
    );
    let failed = outcome("test_code.py::test_small");
    assert_eq!(failed["outcome"], "failed");
    // hypothesis shrinks the counterexample to the boundary.
    assert_eq!(
        failed["message"],
        "assert 1000 < 1000\nFalsifying example: test_small(\n    x=1000,\n)"
    );
}

#[tokio::test]
async fn iteration_helpers_attrs_and_typing_extensions_work() {
    let server = TestServer::spawn();
    let out = stdout_of(
        &server,
        "import more_itertools as mi\n\
         import toolz\n\
         from sortedcontainers import SortedDict, SortedList\n\
         import attrs\n\
         from typing_extensions import TypedDict, Literal, get_type_hints\n\
         print(list(mi.chunked(range(7), 3)), list(mi.windowed([1, 2, 3, 4], 2)))\n\
         print(toolz.pipe([3, 1, 2], sorted, toolz.curried.map(lambda v: v * 10), list), toolz.frequencies('abca'))\n\
         s = SortedList([5, 1, 4]); s.add(2)\n\
         print(list(s), s.bisect_left(4), SortedDict({'b': 2, 'a': 1}).peekitem(0))\n\
         @attrs.define\n\
         class Point:\n    x: int\n    y: int = attrs.field(validator=attrs.validators.instance_of(int))\n\
         print(Point(1, 2), attrs.asdict(Point(3, 4)))\n\
         try:\n    Point(1, 'no')\nexcept TypeError as e:\n    print('TypeError', e.args[0].split(' must')[0])\n\
         class Movie(TypedDict):\n    title: str\n    kind: Literal['film', 'series']\n\
         print(get_type_hints(Movie))\n",
    )
    .await;
    assert_eq!(
        out,
        "[[0, 1, 2], [3, 4, 5], [6]] [(1, 2), (2, 3), (3, 4)]\n\
         [10, 20, 30] {'a': 2, 'b': 1, 'c': 1}\n\
         [1, 2, 4, 5] 2 ('a', 1)\n\
         Point(x=1, y=2) {'x': 3, 'y': 4}\n\
         TypeError 'y'\n\
         {'title': <class 'str'>, 'kind': typing.Literal['film', 'series']}\n"
    );
}

#[tokio::test]
async fn pygal_draws_an_svg_chart_and_pypng_writes_a_png() {
    let server = TestServer::spawn();
    let out = stdout_of(
        &server,
        "import pygal, png\n\
         chart = pygal.Bar(title='Units per month')\n\
         chart.x_labels = ['jan', 'feb', 'mar']\n\
         chart.add('units', [10, 32, 21])\n\
         chart.render_to_file('/scratch/units.svg')\n\
         svg = open('/scratch/units.svg', encoding='utf-8').read()\n\
         print(svg.startswith('<?xml'), '<svg' in svg, 'Units per month' in svg, 'feb' in svg)\n\
         rows = [[(x * y) % 256 for x in range(16)] for y in range(8)]\n\
         with open('/scratch/g.png', 'wb') as f:\n    png.Writer(16, 8, greyscale=True).write(f, rows)\n\
         width, height, pixels, info = png.Reader(filename='/scratch/g.png').read()\n\
         print(width, height, [list(r) for r in pixels] == rows, open('/scratch/g.png', 'rb').read(4))\n",
    )
    .await;
    assert_eq!(out, "True True True True\n16 8 True b'\\x89PNG'\n");
}

#[tokio::test]
async fn list_packages_matches_what_imports_in_the_guest() {
    let server = TestServer::spawn();
    let listed = server.get_json("/packages").await;
    let packages = listed["python"]["packages"]
        .as_array()
        .expect("python packages");
    let names: Vec<&str> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for wanted in [
        "python-dateutil",
        "tzdata",
        "sympy",
        "mpmath",
        "networkx",
        "tabulate",
        "PyYAML",
        "Markdown",
        "beautifulsoup4",
        "soupsieve",
        "openpyxl",
        "et_xmlfile",
        "pypdf",
        "hypothesis",
        "more-itertools",
        "toolz",
        "sortedcontainers",
        "attrs",
        "typing_extensions",
        "pygal",
    ] {
        assert!(names.contains(&wanted), "{wanted} not listed: {names:?}");
    }
    // Every listed module imports, and the installed distribution has the listed version.
    let expected: Vec<Value> = packages
        .iter()
        .map(|p| json!([p["name"], p["version"], p["modules"]]))
        .collect();
    let code = format!(
        "import importlib, importlib.metadata, json\n\
         for name, version, modules in json.loads({:?}):\n    \
             for module in modules:\n        importlib.import_module(module)\n    \
             print(name, importlib.metadata.version(name) == version, len(modules))\n",
        Value::Array(expected).to_string()
    );
    let out = stdout_of(&server, &code).await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), packages.len(), "{out}");
    for (line, package) in lines.iter().zip(packages) {
        let name = package["name"].as_str().unwrap();
        let modules = package["modules"].as_array().unwrap().len();
        assert!(modules > 0, "{package}");
        assert_eq!(*line, format!("{name} True {modules}"), "{out}");
    }
    // The JavaScript guest says what it has, and a filter narrows the answer.
    assert!(listed["javascript"]["runtime"].is_string(), "{listed}");
    let only_js = server.get_json("/packages?language=javascript").await;
    assert!(only_js.get("python").is_none(), "{only_js}");
    let (status, body) = server.post("/packages", json!({})).await;
    assert!(status == 405 || status == 404, "{status} {body}");
}

#[tokio::test]
async fn list_packages_refuses_an_unknown_language() {
    let server = TestServer::spawn();
    let response = server
        .http
        .get(server.url("/packages?language=cobol"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("cobol"), "{body}");
    server.assert_alive().await;
}

#[tokio::test]
async fn guest_cannot_change_the_shared_package_site() {
    let server = TestServer::spawn();
    let out = stdout_of(
        &server,
        "import os, sympy\n\
         site = os.path.dirname(os.path.dirname(sympy.__file__))\n\
         for attempt in (lambda: open(os.path.join(site, 'evil.py'), 'w'),\n\
                         lambda: open(sympy.__file__, 'a'),\n\
                         lambda: os.remove(sympy.__file__),\n\
                         lambda: os.mkdir(os.path.join(site, 'x'))):\n    \
             try:\n        attempt()\n        print('allowed')\n    \
             except OSError as e:\n        print(type(e).__name__)\n",
    )
    .await;
    assert!(!out.contains("allowed"), "{out}");
    assert_eq!(out.lines().count(), 4, "{out}");
}
